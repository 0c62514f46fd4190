"""Disconnection: ``disconnecting`` then ``disconnect``.

``disconnecting`` runs while the socket is still in its rooms, so it can tell
the other members; ``disconnect`` runs once the socket has left everything. Both
get the reason, with Node's names: ``client namespace disconnect`` (the client
called ``socket.disconnect()``), ``server namespace disconnect`` (the server
did), ``transport close``, ``ping timeout``...

A client sees ``io client disconnect`` after its own ``socket.disconnect()`` and
``io server disconnect`` when the server disconnects it::

    socket.emit("join", "room1");
    socket.on("user has left", ({ id, room }) => console.log(`${id} left ${room}`));
    socket.on("user disconnected", ({ id, reason }) => console.log(id, reason));
    socket.emit("kick me");                    // server calls socket.disconnect()
    socket.on("disconnect", (reason) => {});   // "io server disconnect"
"""

from __future__ import annotations

import logging
from typing import Any

import socketwire

log = logging.getLogger(__name__)


def create_server(**options: Any) -> socketwire.Server:
    sio = socketwire.Server(**options)

    @sio.on("join")
    def join(socket: socketwire.Socket, room: str) -> list[str]:
        socket.join(room)
        return sorted(socket.rooms)

    @sio.on("kick me")
    def kick_me(socket: socketwire.Socket) -> None:
        socket.disconnect()

    @sio.on("disconnecting")
    def on_disconnecting(socket: socketwire.Socket, reason: str) -> None:
        for room in socket.rooms - {socket.id}:
            socket.to(room).emit("user has left", {"id": socket.id, "room": room, "reason": reason})

    @sio.on("disconnect")
    def on_disconnect(socket: socketwire.Socket, reason: str) -> None:
        log.info("%s disconnected: %s", socket.id, reason)
        sio.emit("user disconnected", {"id": socket.id, "reason": reason})

    return sio


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    create_server().run(3000)
