"""Catch-all listeners: ``socket.on_any`` and ``socket.on_any_outgoing``.

``on_any(fn)`` calls ``fn(event, *args)`` for every event the client sends,
with or without a handler; ``on_any_outgoing(fn)`` for every event sent to the
client: its own emits and the broadcasts that reach it. ``prepend_any`` and
``prepend_any_outgoing`` put a listener first; ``off_any`` and
``off_any_outgoing`` remove one (or all)::

    socket.emit("chat", "hi");        // logged "<- chat", then everybody gets "chat"
    socket.emit("quiet");             // the incoming log of this socket stops
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
        def incoming(event: str, *args: Any) -> None:
            log.info("%s <- %s %r", socket.id, event, args)

        def outgoing(event: str, *args: Any) -> None:
            log.info("%s -> %s %r", socket.id, event, args)

        socket.on_any(incoming)
        socket.on_any_outgoing(outgoing)
        socket.data["incoming_log"] = incoming
        socket.emit("welcome", socket.id)

    @sio.on("chat")
    def on_chat(socket: socketwire.Socket, text: str) -> None:
        sio.emit("chat", socket.id, text)

    @sio.on("quiet")
    def on_quiet(socket: socketwire.Socket) -> None:
        socket.off_any(socket.data["incoming_log"])

    return sio


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    create_server().run(3000)
