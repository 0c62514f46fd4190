"""How to use: the first recipe of the Socket.IO README.

The server greets every new client with a ``news`` event carrying
``{"hello": "world"}``. The browser (or Node) client listens for ``news``, logs
it, and answers with ``my other event`` ``{"my": "data"}``::

    const socket = io("http://localhost:3000");
    socket.on("news", (data) => {
      console.log(data);
      socket.emit("my other event", { my: "data" });
    });

The server logs what it got and echoes it back as ``my other event received``.
"""

from __future__ import annotations

import logging
from typing import Any

import socketwire

log = logging.getLogger(__name__)


def create_server(**options: Any) -> socketwire.Server:
    sio = socketwire.Server(**options)

    @sio.on("connection")
    def on_connection(socket: socketwire.Socket) -> None:
        socket.emit("news", {"hello": "world"})

    @sio.on("my other event")
    def on_my_other_event(socket: socketwire.Socket, data: Any) -> None:
        log.info("%s says %r", socket.id, data)
        socket.emit("my other event received", data)

    return sio


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    create_server().run(3000)
