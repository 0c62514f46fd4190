"""Per-packet middlewares: ``socket.use(fn)``.

``fn([event, *args])`` runs for every event the client sends, before its
handlers, in the order the middlewares were added. It may change the list in
place (here: strip the text of a ``message``) and may be async. Raising drops
the packet: no handler runs, the client's ack is never answered, and the socket's
``error`` handlers get the exception::

    socket.emit("message", "  hi  ", (echo) => console.log(echo));   // "hi"
    socket.timeout(1000).emit("admin:reset", (err) => console.log(err.message));
    // "operation has timed out", and the server sent:
    socket.on("refused", (why) => console.log(why));   // "admin:reset is for admins"
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import socketwire

log = logging.getLogger(__name__)


def create_server(**options: Any) -> socketwire.Server:
    sio = socketwire.Server(**options)

    @sio.on("connection")
    def on_connection(socket: socketwire.Socket) -> None:
        @socket.use
        def strip_text(packet: list[Any]) -> None:
            if packet[0] == "message" and len(packet) > 1 and isinstance(packet[1], str):
                packet[1] = packet[1].strip()

        @socket.use
        async def guard_admin_events(packet: list[Any]) -> None:
            await asyncio.sleep(0)  # stands for a permission lookup
            if str(packet[0]).startswith("admin:") and not socket.data.get("admin"):
                raise PermissionError(f"{packet[0]} is for admins")

        @socket.on("error")
        def on_error(err: Exception) -> None:
            log.info("%s: packet refused: %s", socket.id, err)
            socket.emit("refused", str(err))

    @sio.on("message")
    def on_message(socket: socketwire.Socket, text: str) -> str:
        return text

    @sio.on("admin:reset")
    def on_reset(socket: socketwire.Socket) -> str:
        return "reset done"

    return sio


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    create_server().run(3000)
