"""Engine.IO hooks: ``sio.engine.on(...)`` and ``sio.engine.generate_id``.

* ``connection_error``: ``fn(err)`` for every request the engine refuses, with
  ``err.code``, ``err.message``, ``err.req`` and ``err.context`` (Node's object).
* ``initial_headers``: ``fn(headers, req)`` before the handshake response;
  ``headers``: before every response (the WebSocket upgrade included).
  ``headers`` is a list of ``(name, value)`` pairs to extend in place.
* ``generate_id(req)`` makes the Engine.IO session ids (``socket.io.engine.id``
  on the client)::

    const socket = io("http://localhost:3000");
    socket.on("connect", () => console.log(socket.io.engine.id));   // "custom-1"
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

import socketwire

log = logging.getLogger(__name__)

ID_PREFIX = "custom-"
INITIAL_HEADER = ("X-Handshake", "welcome")
EVERY_HEADER = ("X-Served-By", "socketwire-example")


def create_server(**options: Any) -> socketwire.Server:
    sio = socketwire.Server(**options)
    counter = itertools.count(1)
    sio.engine.generate_id = lambda req: f"{ID_PREFIX}{next(counter)}"

    def on_connection_error(err: Any) -> None:
        log.info("refused %s %s: %d %s", err.req.method, err.req.url, err.code, err.message)

    def on_initial_headers(headers: list[tuple[str, str]], req: Any) -> None:
        headers.append(INITIAL_HEADER)

    def on_headers(headers: list[tuple[str, str]], req: Any) -> None:
        headers.append(EVERY_HEADER)

    sio.engine.on("connection_error", on_connection_error)
    sio.engine.on("initial_headers", on_initial_headers)
    sio.engine.on("headers", on_headers)

    @sio.on("connection")
    def on_connection(socket: socketwire.Socket) -> None:
        socket.emit("engine id", socket.conn.engine.id)

    return sio


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    create_server().run(3000)
