"""Broadcasting messages.

``socket.broadcast.emit`` reaches every client of the namespace except the
socket it is called on; ``sio.emit`` reaches every client, sender included::

    socket.on("user connected", (id) => console.log(`${id} joined`));
    socket.emit("announce", "hello everyone");
    socket.on("announcement", ({ from, text }) => console.log(from, text));

When a client connects, the others learn about it with ``user connected``; an
``announce`` from any client is sent to all as ``announcement``.
"""

from __future__ import annotations

from typing import Any

import socketwire


def create_server(**options: Any) -> socketwire.Server:
    sio = socketwire.Server(**options)

    @sio.on("connection")
    def on_connection(socket: socketwire.Socket) -> None:
        socket.broadcast.emit("user connected", socket.id)

    @sio.on("announce")
    def announce(socket: socketwire.Socket, text: str) -> None:
        sio.emit("announcement", {"from": socket.id, "text": text})

    return sio


if __name__ == "__main__":
    create_server().run(3000)
