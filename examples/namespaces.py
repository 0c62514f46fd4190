"""Restricting yourself to a namespace: several channels over one connection.

``/chat`` and ``/news`` are independent namespaces, each with its own
``connection`` handler, events and rooms. A client that opens both with the same
manager multiplexes them over a single Engine.IO connection::

    const chat = io("http://localhost:3000/chat");
    const news = io("http://localhost:3000/news");   // same connection as chat

    chat.on("connect", () => chat.emit("hi!"));
    news.on("item", (item) => console.log(item));

On ``/chat`` the new socket gets ``a message`` ``{"that": "only", "/chat": "will get"}``
and every ``/chat`` socket (the new one included) gets
``{"everyone": "in", "/chat": "will get"}``. On ``/news`` the socket gets an
``item``. Nothing is sent on ``/``.
"""

from __future__ import annotations

import logging
from typing import Any

import socketwire

log = logging.getLogger(__name__)


def create_server(**options: Any) -> socketwire.Server:
    sio = socketwire.Server(**options)
    chat = sio.of("/chat")
    news = sio.of("/news")

    @chat.on("connection")
    def on_chat_connection(socket: socketwire.Socket) -> None:
        socket.emit("a message", {"that": "only", "/chat": "will get"})
        chat.emit("a message", {"everyone": "in", "/chat": "will get"})

    @chat.on("hi!")
    def on_hi(socket: socketwire.Socket) -> None:
        log.info("%s said hi on /chat", socket.id)

    @news.on("connection")
    def on_news_connection(socket: socketwire.Socket) -> None:
        socket.emit("item", {"news": "item"})

    return sio


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    create_server().run(3000)
