"""Connection state recovery across a Redis cluster (``create_adapter(recovery=True)``).

Two socketwire servers on a real redis-server; a client reaches them through a
TCP proxy that the test re-points, so that it comes back on another server (or
on a restarted one) with its ``pid`` and offset, as after a lost connection.
The sessions of connected sockets that a server keeps for the case it dies
(its live hash) are checked here in Redis; a server really killed is in
``tests/nodes/test_recovery.py``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

import socketwire
from socketwire.adapters.redis import RedisAdapter, create_adapter
from socketwire.client import Client
from socketwire.core.cluster.recovery_format import decode_session

from ..conftest import run_node
from .conftest import JS_DIR, TIMEOUT, RedisServer
from .proxy import Proxy
from .test_redis_adapter import Inbox


class Node:
    """A socketwire server of the cluster and what its sockets tell."""

    def __init__(self, sio: socketwire.Server, port: int) -> None:
        self.sio = sio
        self.port = port
        self.gone: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self.came: asyncio.Queue[socketwire.Socket] = asyncio.Queue()

    @property
    def adapter(self) -> RedisAdapter:
        ad = self.sio.of("/").adapter
        assert isinstance(ad, RedisAdapter)
        return ad

    async def disconnected(self) -> tuple[str, str]:
        return await asyncio.wait_for(self.gone.get(), TIMEOUT)

    async def connected(self) -> socketwire.Socket:
        return await asyncio.wait_for(self.came.get(), TIMEOUT)


@pytest.fixture
async def start_node(redis_server: RedisServer, key: str) -> AsyncIterator[Any]:
    nodes: list[socketwire.Server] = []

    async def start(duration: float = 60.0) -> Node:
        sio = socketwire.Server(
            adapter=create_adapter(redis_server.url, key=key, requests_timeout=3.0, recovery=True),
            connection_state_recovery={"max_disconnection_duration": duration},
        )
        node: Node | None = None

        @sio.on("connection")
        def on_connection(socket: socketwire.Socket) -> None:
            assert node is not None
            here = node
            if not socket.recovered:
                auth = socket.handshake.auth
                socket.data = {"name": auth.get("name")}
                for room in auth.get("rooms", ()):
                    socket.join(room)
            socket.on("disconnect", lambda reason: here.gone.put_nowait((socket.id, reason)))
            here.came.put_nowait(socket)

        port = await sio.listen(0, "127.0.0.1")
        nodes.append(sio)
        node = Node(sio, port)
        return node

    yield start
    for sio in nodes:
        await sio.close()


@pytest.fixture
async def proxy() -> AsyncIterator[Proxy]:
    p = Proxy(0)
    await p.start()
    yield p
    await p.close()


CONNECTS: dict[int, asyncio.Queue[None]] = {}


async def moving_client(url: str, **options: Any) -> Client:
    client = Client(
        url,
        transports=["websocket"],
        reconnection_delay=0.05,
        reconnection_delay_max=0.2,
        randomization_factor=0.0,
        **options,
    )
    await asyncio.wait_for(client.connect(), TIMEOUT)
    connects: asyncio.Queue[None] = asyncio.Queue()
    client.on("connect", lambda: connects.put_nowait(None))
    CONNECTS[id(client)] = connects
    return client


async def back(client: Client) -> None:
    """Wait until the client has reconnected (its CONNECT answered)."""
    await asyncio.wait_for(CONNECTS[id(client)].get(), TIMEOUT)


async def probe(url: str, rooms: list[str]) -> tuple[Client, Inbox]:
    """A client that stays on one server: it sees each broadcast arrive (so the
    test sends the next one only when the previous one went through Redis)."""
    client = Client(url, transports=["websocket"], reconnection=False, auth={"rooms": rooms})
    inbox = Inbox(client, "msg")
    await asyncio.wait_for(client.connect(), TIMEOUT)
    return client, inbox


async def emitter(redis_server: RedisServer, key: str, *steps: dict[str, Any]) -> None:
    await run_node(
        JS_DIR / "cluster_emitter.js",
        "--redis-port",
        str(redis_server.port),
        "--key",
        key,
        json.dumps(list(steps)),
    )


async def move(client: Client, proxy: Proxy, old: Node, new: Node) -> None:
    """Cut the client's connection (to ``old``) and let it come back on ``new``
    only once ``old`` has seen it go."""
    sid = client.id
    proxy.hold()
    proxy.point(new.port)
    proxy.drop()
    assert await old.disconnected() == (sid, "transport close")


async def test_recovery_on_another_server(
    start_node: Any, proxy: Proxy, redis_server: RedisServer, key: str
) -> None:
    """Missed broadcasts from A, B and Node's emitter arrive once, in order, on B."""
    a, b = await start_node(), await start_node()
    proxy.point(a.port)
    client = await moving_client(proxy.url, auth={"rooms": ["red"], "name": "ada"})
    inbox = Inbox(client, "msg")
    first = await a.connected()
    sid = client.id
    watch, seen = await probe(f"http://127.0.0.1:{b.port}", ["red"])
    await b.connected()

    a.sio.to("red").emit("msg", "before")
    assert (await inbox.next())[1][0] == "before"
    assert (await seen.next())[1][0] == "before"
    await move(client, proxy, a, b)
    assert first.id == sid

    a.sio.to("red").emit("msg", "from A")
    assert (await seen.next())[1][0] == "from A"
    b.sio.emit("msg", "from B to all")
    assert (await seen.next())[1][0] == "from B to all"
    b.sio.to("blue").emit("msg", "not for red")
    await emitter(
        redis_server,
        key,
        {"op": "emit", "event": "msg", "args": ["from the emitter"], "rooms": ["red"]},
    )
    assert (await seen.next())[1][0] == "from the emitter"
    a.sio.to(sid).emit("msg", "to its id")  # private room, as io.to(sid)

    proxy.release()
    restored = await b.connected()
    await back(client)
    assert client.connected and client.recovered and client.id == sid
    assert restored.recovered and restored.id == sid
    assert restored.data == {"name": "ada"}
    assert b.adapter.socket_rooms(sid) == {sid, "red"}
    got = [(await inbox.next())[1][0] for _ in range(4)]
    assert got == ["from A", "from B to all", "from the emitter", "to its id"]

    b.sio.to("red").emit("msg", "live")
    assert (await inbox.next())[1][0] == "live"
    assert inbox.empty()
    await client.disconnect()
    await watch.disconnect()


async def test_recovery_after_a_restart(start_node: Any, proxy: Proxy) -> None:
    """The server the client was on is closed; a new one on the same Redis recovers it."""
    a, b = await start_node(), await start_node()
    proxy.point(a.port)
    client = await moving_client(proxy.url, auth={"rooms": ["red"], "name": "bob"})
    inbox = Inbox(client, "msg")
    await a.connected()
    sid = client.id
    watch, seen = await probe(f"http://127.0.0.1:{b.port}", ["red"])
    await b.connected()
    b.sio.to("red").emit("msg", "before")
    assert (await inbox.next())[1][0] == "before"
    assert (await seen.next())[1][0] == "before"

    proxy.hold()
    await a.sio.close()  # "server shutting down": recoverable
    b.sio.to("red").emit("msg", "while down")
    assert (await seen.next())[1][0] == "while down"
    a2 = await start_node()
    proxy.point(a2.port)
    proxy.release()
    restored = await a2.connected()
    await back(client)
    assert client.recovered and restored.id == sid and restored.data == {"name": "bob"}
    assert (await inbox.next())[1][0] == "while down"
    b.sio.to("red").emit("msg", "live")
    assert (await inbox.next())[1][0] == "live"
    assert inbox.empty()
    await client.disconnect()
    await watch.disconnect()


async def test_recovery_when_nothing_was_received(start_node: Any, proxy: Proxy) -> None:
    """socket.io#5538: no broadcast before the disconnect, so no offset to send."""
    a, b = await start_node(), await start_node()
    proxy.point(a.port)
    client = await moving_client(proxy.url, auth={"rooms": ["red"]})
    inbox = Inbox(client, "msg")
    await a.connected()
    sid = client.id
    watch, seen = await probe(f"http://127.0.0.1:{b.port}", ["red"])
    await b.connected()
    # The position noted at connection time is in Redis before this broadcast.
    b.sio.to("green").emit("msg", "elsewhere")
    await move(client, proxy, a, b)
    b.sio.to("red").emit("msg", "missed")
    assert (await seen.next())[1][0] == "missed"
    proxy.release()
    await b.connected()
    await back(client)
    assert client.recovered and client.id == sid
    assert (await inbox.next())[1][0] == "missed"
    await client.disconnect()
    await watch.disconnect()


async def test_session_expires(
    start_node: Any, proxy: Proxy, redis_server: RedisServer, key: str
) -> None:
    """After max_disconnection_duration, Redis forgot the session: a new one starts."""
    # Long enough that the session is still there when first looked at, on a
    # machine busy with the rest of the suite (half a second was not); the wait
    # for its expiry below is bounded by TIMEOUT.
    a = await start_node(duration=3.0)
    proxy.point(a.port)
    client = await moving_client(proxy.url, auth={"rooms": ["red"]})
    await a.connected()
    sid = client.id
    proxy.hold()
    proxy.drop()
    await a.disconnected()
    redis = Redis.from_url(redis_server.url)
    try:
        pattern = f"{key}-recovery#{{/}}#session#*"

        async def stored() -> int:
            return len([k async for k in redis.scan_iter(match=pattern)])

        async def kept() -> None:
            # The server writes the session after the disconnection, not before
            # the "disconnect" event: wait for the write to reach Redis.
            while not await stored():
                await asyncio.sleep(0.05)

        async def gone() -> None:
            while await stored():
                await asyncio.sleep(0.05)

        await asyncio.wait_for(kept(), TIMEOUT)
        assert await stored() == 1
        await asyncio.wait_for(gone(), TIMEOUT)  # Redis expires it (its TTL)
    finally:
        await redis.aclose()
    proxy.release()
    await a.connected()
    await back(client)
    assert client.connected and not client.recovered and client.id != sid
    await client.disconnect()


async def test_a_connected_sockets_session_is_kept_live(
    start_node: Any, redis_server: RedisServer, key: str
) -> None:
    """While a socket is connected, its server keeps its session in its live hash
    (for the case it dies); no server takes it while its server lives; it goes
    with the socket, the hash with the server."""
    a, b = await start_node(duration=3.0), await start_node(duration=3.0)
    client = Client(
        f"http://127.0.0.1:{a.port}",
        transports=["websocket"],
        reconnection=False,
        auth={"rooms": ["red"], "name": "ada"},
    )
    await asyncio.wait_for(client.connect(), TIMEOUT)
    socket = await a.connected()
    pid, uid = socket.pid, a.adapter.uid
    assert pid is not None
    prefix = f"{key}-recovery#{{/}}#"
    redis = Redis.from_url(redis_server.url)

    async def written() -> Any:
        # Behind every command the server queued before (one ordered queue).
        await a.adapter.bus.command("PING")
        live = await redis.hgetall(f"{prefix}live#{uid}")
        blob = live.get(f"d:{pid}".encode())
        assert blob is None or isinstance(blob, bytes)
        return live, (decode_session(blob) if blob is not None else None)

    try:
        live, stored = await written()
        assert stored is not None and stored.sid == socket.id and stored.pid == pid
        assert sorted(stored.rooms) == sorted([socket.id, "red"])
        assert stored.data == {"name": "ada"}
        assert f"s:{pid}".encode() in live  # where the history stood: for no offset
        assert await redis.sismember(f"{prefix}servers", uid)
        # Kept for the window (3 s) past the next heartbeat (every second).
        assert 3000 < await redis.pttl(f"{prefix}live#{uid}") <= 4000
        # Its server lives: another one does not take the session.
        assert await b.adapter.restore_session(pid, None) is None
        assert client.connected and (await written())[1] is not None
        # Rooms are written at once; socket.data at the next heartbeat.
        socket.leave("red")
        assert (await written())[1].rooms == [socket.id]
        socket.data = {"name": "ada", "n": 2}

        async def heartbeat() -> None:
            while (await written())[1].data != {"name": "ada", "n": 2}:
                await asyncio.sleep(0.05)

        await asyncio.wait_for(heartbeat(), TIMEOUT)
        await client.disconnect()
        await a.disconnected()
        assert (await written())[0] == {}
        await a.sio.close()
        assert not await redis.sismember(f"{prefix}servers", uid)
        assert not await redis.exists(f"{prefix}live#{uid}")
    finally:
        await redis.aclose()
