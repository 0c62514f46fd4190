"""Dynamic namespaces: ``sio.of(regex)`` and ``sio.of(predicate)``.

A parent namespace creates a child namespace the first time a client connects to
a name it accepts. The parent's handlers and middlewares apply to every child,
and ``parent.emit`` reaches the clients of every child::

    const a = io("http://localhost:3000/dyn-1");
    const b = io("http://localhost:3000/dyn-2");
    a.on("welcome", (name) => console.log(name));        // "/dyn-1"
    a.emit("shout", "hello");                             // a and b get "shout"

    io("http://localhost:3000/team-blue", { auth: { member: true } });   // sync predicate
    io("http://localhost:3000/project-x", { auth: { key: "secret" } });  // async predicate
    io("http://localhost:3000/nowhere");   // connect_error "Invalid namespace"

A static namespace wins over a pattern: ``/dyn-0`` is declared with ``sio.of``
and answers "static". ``create_server(cleanup_empty_child_namespaces=True)``
forgets a child once its last client left.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import socketwire

log = logging.getLogger(__name__)

DYNAMIC = re.compile(r"^/dyn-\d+$")


def is_team(name: str, auth: dict[str, Any]) -> bool:
    return name.startswith("/team-") and auth.get("member") is True


async def is_project(name: str, auth: dict[str, Any]) -> bool:
    await asyncio.sleep(0)  # stands for a lookup
    return name.startswith("/project-") and auth.get("key") == "secret"


def create_server(**options: Any) -> socketwire.Server:
    sio = socketwire.Server(**options)
    dynamic = sio.of(DYNAMIC)
    static = sio.of("/dyn-0")

    @dynamic.on("connection")
    def on_dynamic_connection(socket: socketwire.Socket) -> None:
        log.info("%s joined %s", socket.id, socket.nsp.name)
        socket.emit("welcome", socket.nsp.name)

    @dynamic.on("shout")
    def on_shout(socket: socketwire.Socket, text: str) -> None:
        dynamic.emit("shout", socket.nsp.name, text)

    @static.on("connection")
    def on_static_connection(socket: socketwire.Socket) -> None:
        socket.emit("welcome", "static")

    for predicate in (is_team, is_project):
        parent = sio.of(predicate)

        @parent.on("connection")
        def on_connection(socket: socketwire.Socket) -> None:
            socket.emit("welcome", socket.nsp.name)

    return sio


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    create_server(cleanup_empty_child_namespaces=True).run(3000)
