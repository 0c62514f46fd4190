"""Storing data associated with each client.

Each server-side socket has a ``data`` dict that lives as long as the client is
connected (it is also what ``fetch_sockets()`` returns as ``data``). The client
first picks a nickname, then chats; the server remembers the name, so chat
messages carry it without the client repeating it::

    socket.emit("set nickname", "tobi");
    socket.on("ready", () => socket.emit("msg", "hello"));
    socket.on("msg", ({ from, text }) => console.log(`${from}: ${text}`));

``set nickname`` stores ``socket.data["nickname"]`` and answers ``ready``; ``msg``
is broadcast to every client as ``{"from": <nickname>, "text": <text>}``.
"""

from __future__ import annotations

import logging
from typing import Any

import socketwire

log = logging.getLogger(__name__)

ANONYMOUS = "anonymous"


def create_server(**options: Any) -> socketwire.Server:
    sio = socketwire.Server(**options)

    @sio.on("set nickname")
    def set_nickname(socket: socketwire.Socket, name: str) -> None:
        socket.data["nickname"] = name
        socket.emit("ready", name)

    @sio.on("msg")
    def on_msg(socket: socketwire.Socket, text: str) -> None:
        nickname = socket.data.get("nickname", ANONYMOUS)
        log.info("chat message by %s", nickname)
        sio.emit("msg", {"from": nickname, "text": text})

    return sio


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    create_server().run(3000)
