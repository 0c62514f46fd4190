"""Connection middlewares: ``sio.use(fn)`` and ``sio.of("/admin").use(fn)``.

A middleware runs once per namespace connection, before the ``connection``
handler, in the order it was added. It gets the socket (``socket.handshake``
holds what the client sent, ``socket.auth`` included) and may fill
``socket.data``. It may be sync or async. Raising ``ConnectionRefused(message,
data=...)`` refuses the connection: the client gets ``connect_error`` with
``err.message`` and ``err.data``. Any other exception is a bug of the server:
it is logged with its traceback and the client only learns "Internal server
error"::

    const socket = io("http://localhost:3000", { auth: { token: "alice-token" } });
    socket.on("welcome", (data) => console.log(data));   // {user: "alice", trail: [...]}
    socket.on("connect_error", (err) => console.log(err.message, err.data));
    // no token: "not authorized" {reason: "unknown token"}

    const admin = io("http://localhost:3000/admin", { auth: { token: "bob-token" } });
    // bob is no admin: connect_error "admins only"

Middlewares of ``/`` do not run for ``/admin`` and the other way round.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import socketwire

log = logging.getLogger(__name__)

USERS = {"alice-token": "alice", "bob-token": "bob"}
ADMINS = {"alice"}


async def find_user(token: Any) -> str | None:
    """Stands for a database lookup."""
    await asyncio.sleep(0)
    return USERS.get(token) if isinstance(token, str) else None


def create_server(**options: Any) -> socketwire.Server:
    sio = socketwire.Server(**options)
    admin = sio.of("/admin")

    def remember(socket: socketwire.Socket, step: str) -> None:
        socket.data.setdefault("trail", []).append(step)

    @sio.use
    def log_handshake(socket: socketwire.Socket) -> None:
        log.info("%s connecting from %s", socket.id, socket.handshake.address)
        remember(socket, "log_handshake")

    @sio.use
    async def authenticate(socket: socketwire.Socket) -> None:
        user = await find_user(socket.handshake.auth.get("token"))
        if user is None:
            raise socketwire.ConnectionRefused("not authorized", data={"reason": "unknown token"})
        socket.data["user"] = user
        remember(socket, "authenticate")

    @admin.use
    async def admin_user(socket: socketwire.Socket) -> None:
        socket.data["user"] = await find_user(socket.handshake.auth.get("token"))
        remember(socket, "admin_user")

    @admin.use
    def only_admins(socket: socketwire.Socket) -> None:
        if socket.data["user"] not in ADMINS:
            raise socketwire.ConnectionRefused("admins only")
        remember(socket, "only_admins")

    @sio.on("connection")
    def on_connection(socket: socketwire.Socket) -> None:
        socket.emit("welcome", socket.data)

    @admin.on("connection")
    def on_admin_connection(socket: socketwire.Socket) -> None:
        socket.emit("welcome", socket.data)

    return sio


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    create_server().run(3000)
