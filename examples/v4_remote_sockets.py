"""Acting on sockets you do not hold: ``fetch_sockets`` and the socket operations.

``await sio.fetch_sockets()`` (or ``sio.in_(room).fetch_sockets()``) returns a
light view of each socket (``id``, ``handshake``, ``rooms``, ``data``) whose
``emit``, ``join``, ``leave`` and ``disconnect`` go through the adapter, so the
same code works for the sockets of other servers once a cluster adapter is in
place. ``sockets_join``, ``sockets_leave`` and ``disconnect_sockets`` do the same
for a whole selection at once::

    const socket = io("http://localhost:3000", { auth: { name: "ann", vip: true } });
    socket.emit("who", (people) => console.log(people));   // [{id, name, rooms}, ...]
    socket.emit("closing time");   // everybody but the VIPs: "io server disconnect"
"""

from __future__ import annotations

import logging
from typing import Any

import socketwire

log = logging.getLogger(__name__)


def create_server(**options: Any) -> socketwire.Server:
    sio = socketwire.Server(**options)

    @sio.use
    def name_from_auth(socket: socketwire.Socket) -> None:
        socket.data["name"] = str(socket.handshake.auth.get("name", "anonymous"))
        if socket.handshake.auth.get("vip"):
            socket.join("vip")

    @sio.on("connection")
    def on_connection(socket: socketwire.Socket) -> None:
        sio.sockets_join("everyone")

    @sio.on("who")
    async def who(socket: socketwire.Socket) -> list[dict[str, Any]]:
        views = await sio.fetch_sockets()
        return [
            {"id": v.id, "name": v.data["name"], "rooms": sorted(v.rooms - {v.id})} for v in views
        ]

    @sio.on("greet vips")
    async def greet_vips(socket: socketwire.Socket) -> int:
        views = await sio.in_("vip").fetch_sockets()
        for view in views:
            view.emit("hello vip", view.data["name"])
        return len(views)

    @sio.on("closing time")
    def closing_time(socket: socketwire.Socket) -> None:
        sio.except_("vip").disconnect_sockets()

    return sio


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    create_server().run(3000)
