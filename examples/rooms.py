"""Rooms: server-side groups of sockets.

Every socket is in the room named by its own id; it can ``join`` and ``leave``
others. Emitting *to* a room reaches its members:

- ``sio.to(room).emit(...)``: every member;
- ``socket.to(room).emit(...)``: every member but ``socket``;
- ``sio.to(room).except_(other).emit(...)``: members not also in ``other``.

The client drives it with events, for example::

    const rooms = await socket.emitWithAck("join", "lobby");   // ["<own id>", "lobby"]
    socket.emit("say", "lobby", "hi all but me");
    socket.on("room message", ({ from, room, text }) => console.log(text));
"""

from __future__ import annotations

from typing import Any

import socketwire


def create_server(**options: Any) -> socketwire.Server:
    sio = socketwire.Server(**options)

    @sio.on("join")
    def join(socket: socketwire.Socket, room: str) -> list[str]:
        socket.join(room)
        return sorted(socket.rooms)

    @sio.on("leave")
    def leave(socket: socketwire.Socket, room: str) -> list[str]:
        socket.leave(room)
        return sorted(socket.rooms)

    def message(socket: socketwire.Socket, room: str, text: str) -> dict[str, str]:
        return {"from": socket.id, "room": room, "text": text}

    @sio.on("shout")
    def shout(socket: socketwire.Socket, room: str, text: str) -> None:
        """To every member of ``room``, the sender included if it is one."""
        sio.to(room).emit("room message", message(socket, room, text))

    @sio.on("say")
    def say(socket: socketwire.Socket, room: str, text: str) -> None:
        """To every member of ``room`` but the sender."""
        socket.to(room).emit("room message", message(socket, room, text))

    @sio.on("shout except")
    def shout_except(socket: socketwire.Socket, room: str, excluded: str, text: str) -> None:
        """To the members of ``room`` that are not in ``excluded``."""
        sio.to(room).except_(excluded).emit("room message", message(socket, room, text))

    @sio.on("finish")
    def finish(socket: socketwire.Socket) -> None:
        sio.emit("finished", socket.id)

    return sio


if __name__ == "__main__":
    create_server().run(3000)
