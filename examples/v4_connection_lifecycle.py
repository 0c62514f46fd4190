"""The life of a connection: ``connect_timeout``, disconnections and their reasons.

* A client that opens an Engine.IO connection but joins no namespace within
  ``connect_timeout`` seconds is closed.
* ``socket.disconnect()`` leaves one namespace (the connection stays open for the
  client's other namespaces); ``socket.disconnect(close=True)`` closes the whole
  connection, every namespace of the client.
* The ``disconnect`` handler gets Node's reason: ``client namespace disconnect``,
  ``server namespace disconnect``, ``transport close``, ``ping timeout``,
  ``server shutting down``...
* Reserved event names (``connect``, ``disconnect``, ``disconnecting``,
  ``connect_error``, ``newListener``, ``removeListener``) cannot be emitted.

::

    const main = io("http://localhost:3000");
    const chat = io("http://localhost:3000/chat");   // same connection
    main.emit("leave");       // main: "io server disconnect", chat stays connected
    chat.emit("leave all");   // every namespace of the connection is disconnected
"""

from __future__ import annotations

import logging
from typing import Any

import socketwire

log = logging.getLogger(__name__)


def create_server(**options: Any) -> socketwire.Server:
    options.setdefault("connect_timeout", 5.0)
    sio = socketwire.Server(**options)

    for nsp in (sio.sockets, sio.of("/chat")):

        @nsp.on("leave")
        def leave(socket: socketwire.Socket) -> None:
            socket.disconnect()

        @nsp.on("leave all")
        def leave_all(socket: socketwire.Socket) -> None:
            socket.disconnect(close=True)

        @nsp.on("disconnect")
        def on_disconnect(socket: socketwire.Socket, reason: str) -> None:
            log.info("%s left %s: %s", socket.id, socket.nsp.name, reason)

    return sio


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    create_server().run(3000)
