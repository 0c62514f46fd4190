"""The ClusterAdapter template on a transport of its own: an in-process broker.

Two socketwire servers (real sockets, socketwire's client) share a broker that
delivers messages as Redis pub/sub would (channels and glob patterns, in order,
never inside ``publish``). Filling in ``publish`` and ``server_count`` and
feeding ``on_message`` is all a transport does: the cluster logic is the
template's.
"""

from __future__ import annotations

import asyncio
import fnmatch
from collections.abc import Callable
from typing import Any

import socketwire
from socketwire.adapters.cluster import ClusterAdapter
from socketwire.adapters.ports import NamespacePort

from .conftest import TIMEOUT, ClientFactory

Handler = Callable[[str, bytes], None]


class Broker:
    """Pub/sub between the adapters of one process."""

    def __init__(self) -> None:
        self.channels: dict[str, list[Handler]] = {}
        self.patterns: dict[str, list[Handler]] = {}

    def subscribe(self, channels: tuple[str, ...], patterns: tuple[str, ...], fn: Handler) -> None:
        for c in channels:
            self.channels.setdefault(c, []).append(fn)
        for p in patterns:
            self.patterns.setdefault(p, []).append(fn)

    def unsubscribe(self, fn: Handler) -> None:
        for table in (self.channels, self.patterns):
            for handlers in table.values():
                if fn in handlers:
                    handlers.remove(fn)

    def publish(self, channel: str, payload: bytes) -> None:
        loop = asyncio.get_running_loop()
        for fn in self.channels.get(channel, ()):
            loop.call_soon(fn, channel, payload)
        for pattern, handlers in self.patterns.items():
            if fnmatch.fnmatchcase(channel, pattern):
                for fn in handlers:
                    loop.call_soon(fn, channel, payload)

    def count(self, channel: str) -> int:
        return len(self.channels.get(channel, ()))


class BrokerAdapter(ClusterAdapter):
    def __init__(self, nsp: NamespacePort, broker: Broker) -> None:
        super().__init__(nsp, requests_timeout=TIMEOUT)
        self.broker = broker

    def publish(self, channel: str, payload: bytes) -> None:
        self.broker.publish(channel, payload)

    async def server_count(self) -> int:
        return self.broker.count(self.channels.request)

    async def init(self) -> None:
        self.broker.subscribe(*self.subscriptions, self.on_message)

    async def close(self) -> None:
        await super().close()
        self.broker.unsubscribe(self.on_message)


async def test_a_cluster_on_another_transport(connect: ClientFactory) -> None:
    broker = Broker()
    servers: list[socketwire.Server] = []
    try:
        for name in ("a", "b"):
            sio = socketwire.Server(adapter=lambda nsp: BrokerAdapter(nsp, broker))

            @sio.on("connection")
            def connection(socket: socketwire.Socket) -> None:
                socket.join("room")
                socket.data = {"name": socket.handshake.auth.get("name")}

            @sio.on_server_side_emit("whoami")
            def whoami(*args: Any, name: str = name) -> str:
                return name

            await sio.listen(0, "127.0.0.1")
            servers.append(sio)
        a, b = servers
        client = await connect(f"http://127.0.0.1:{b.port}", auth={"name": "bob"})
        got: asyncio.Queue[Any] = asyncio.Queue()
        client.on("news", got.put_nowait)
        client.on("ask", lambda: "yes")  # its return value is the ack

        a.to("room").emit("news", "from a")
        assert await asyncio.wait_for(got.get(), TIMEOUT) == "from a"
        assert [s.data for s in await a.fetch_sockets()] == [{"name": "bob"}]
        assert await a.server_side_emit_with_ack("whoami", timeout=TIMEOUT) == ["b"]
        assert await a.timeout(TIMEOUT).emit_with_ack("ask") == ["yes"]
        assert await a.of("/").adapter.all_rooms() >= {"room"}
    finally:
        for sio in servers:
            await sio.close()
