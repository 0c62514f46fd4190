"""Using Socket.IO just as a cross-browser WebSocket.

``send`` emits the ``message`` event, so both sides can talk as with a plain
WebSocket (with reconnection, fallback to HTTP long-polling and binary support
thrown in)::

    socket.on("connect", () => socket.send("hi"));
    socket.on("message", (msg) => console.log(msg));   // "hi"

The server echoes every message back to its sender with ``socket.send``, with
all of its arguments.
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
        @socket.on("message")
        def echo(*msg: Any) -> None:
            socket.send(*msg)

        @socket.on("disconnect")
        def gone(reason: str) -> None:
            log.info("%s disconnected: %s", socket.id, reason)

    return sio


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    create_server().run(3000)
