"""A mixed cluster on Redis streams: socketwire with the streams adapter beside Node's
socket.io 4.8.4 with ``@socket.io/redis-streams-adapter`` 0.3.1, every operation
tried in both directions, and connection state recovery across servers.

Each test has its own stream, channel prefix and session key prefix (its
``key``). A recovering client goes through ``SwitchProxy``: the test cuts the
server side of its connection (the server sees its transport close and stores
the session), broadcasts meanwhile, then points the proxy at another server,
where the client's reconnection lands.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

import socketwire
from socketwire import AckTimeout
from socketwire.adapters.streams import StreamsAdapter, create_streams_adapter
from socketwire.client import Client

from .conftest import (
    TIMEOUT,
    ClientFactory,
    ClusterStarter,
    NodeClusterPeer,
    NodeStarter,
    RedisServer,
)
from .switch_proxy import SwitchProxy
from .test_redis_adapter import Inbox, setup_rooms

RECOVERY = {"max_disconnection_duration": 60}


@pytest.fixture
async def streams_server(redis_server: RedisServer, key: str) -> AsyncIterator[ClusterStarter]:
    """``sio, url = await streams_server(setup=None, **server_options)``: a socketwire
    server with the streams adapter (stream, channels and sessions named after
    this test's key)."""
    started: list[socketwire.Server] = []

    async def start(
        setup: Callable[[socketwire.Server], None] | None = None, port: int = 0, **options: Any
    ) -> tuple[socketwire.Server, str]:
        adapter = create_streams_adapter(
            redis_server.url,
            stream_name=key,
            channel_prefix=key,
            session_key_prefix=key + ":session:",
            requests_timeout=3.0,
        )
        sio = socketwire.Server(adapter=adapter, **options)
        if setup is not None:
            setup(sio)
        started.append(sio)
        port = await sio.listen(port, "127.0.0.1")
        return sio, f"http://127.0.0.1:{port}"

    yield start
    for sio in started:
        await sio.close()


@pytest.fixture
async def streams_node(node_server: NodeStarter) -> NodeStarter:
    """``peer = await streams_node(*flags)``: Node's socket.io with the streams adapter."""

    async def start(*flags: str) -> NodeClusterPeer:
        return await node_server("--streams", *flags)

    return start


def adapter(sio: socketwire.Server) -> StreamsAdapter:
    ad = sio.of("/").adapter
    assert isinstance(ad, StreamsAdapter)
    return ad


def sid(client: Any) -> str:
    assert client.id is not None
    return str(client.id)


async def test_broadcasts_and_fetch_sockets_both_ways(
    streams_server: ClusterStarter, streams_node: NodeStarter, connect: ClientFactory
) -> None:
    sio, url = await streams_server(setup_rooms)
    sio2, url2 = await streams_server(setup_rooms)
    node = await streams_node()
    assert await adapter(sio).server_count() == 3
    assert await node.call("serverCount") == 3

    alice_client = await connect(url, auth={"name": "alice", "rooms": ["red"]})
    bob_client = await connect(node.url, auth={"name": "bob", "rooms": ["red", "blue"]})
    carol_client = await connect(url2, auth={"name": "carol", "rooms": ["blue"]})
    alice, bob, carol = (Inbox(c, "msg") for c in (alice_client, bob_client, carol_client))

    sio.emit("msg", "from python", {"n": [1, 2]}, b"\x00\xff")
    for inbox in (alice, bob, carol):
        assert await inbox.next() == ("msg", ("from python", {"n": [1, 2]}, b"\x00\xff"))
    await node.call("emit", event="msg", args=["from node", 3.5, None, {"$bin": [1, 2]}])
    for inbox in (alice, bob, carol):
        assert await inbox.next() == ("msg", ("from node", 3.5, None, b"\x01\x02"))

    sio.to("blue").emit("msg", "blue only")
    for inbox in (bob, carol):
        assert await inbox.next() == ("msg", ("blue only",))
    await node.call("emit", event="msg", args=["red only"], rooms=["red"])
    for inbox in (alice, bob):
        assert await inbox.next() == ("msg", ("red only",))
    sio2.to(sid(bob_client)).emit("msg", "to bob")
    assert await bob.next() == ("msg", ("to bob",))
    await node.call("emit", event="msg", args=["not blue"], **{"except": ["blue"]})
    assert await alice.next() == ("msg", ("not blue",))
    for inbox in (alice, bob, carol):
        assert inbox.empty()

    found = {s.id: s for s in await sio.fetch_sockets()}
    assert set(found) == {alice_client.id, bob_client.id, carol_client.id}
    assert found[sid(bob_client)].data == {"server": "node", "name": "bob"}
    assert found[sid(bob_client)].rooms == {sid(bob_client), "red", "blue"}
    blues = await sio.in_("blue").except_("red").fetch_sockets()
    assert [s.id for s in blues] == [carol_client.id]
    seen = {s["id"]: s for s in await node.call("fetchSockets")}
    assert set(seen) == {alice_client.id, bob_client.id, carol_client.id}
    assert seen[sid(carol_client)]["data"] == {"name": "carol"}
    assert seen[sid(alice_client)]["rooms"] == sorted([sid(alice_client), "red"])

    # sockets_join travels in the stream too, both ways.
    await node.call("socketsJoin", rooms=[sid(alice_client)], join=["green"])
    await node.call("emit", event="msg", args=["green"], rooms=["green"])
    assert await alice.next() == ("msg", ("green",))
    sio.in_(sid(bob_client)).sockets_join("purple")
    sio.to("purple").emit("msg", "purple")
    assert await bob.next() == ("msg", ("purple",))


async def test_requests_and_acks_both_ways(
    streams_server: ClusterStarter, streams_node: NodeStarter, connect: ClientFactory
) -> None:
    notes: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()

    def setup(sio: socketwire.Server) -> None:
        setup_rooms(sio)
        nsp = sio.of("/")
        nsp.on_server_side_emit("note", lambda *args: notes.put_nowait(args))
        nsp.on_server_side_emit("whoami", lambda *args: "socketwire")

    sio, url = await streams_server(setup)
    node = await streams_node()

    sio.server_side_emit("note", "py", 1)
    assert (await node.next_event("server-side"))["args"] == ["py", 1]
    await node.call("serverSideEmit", event="note", args=["node", 2])
    assert await asyncio.wait_for(notes.get(), TIMEOUT) == ("node", 2)
    assert await sio.server_side_emit_with_ack("whoami", timeout=TIMEOUT) == ["node"]
    answer = await node.call("serverSideEmitWithAck", event="whoami")
    assert answer == {"err": None, "responses": ["socketwire"]}

    clients = []
    for target, name in ((url, "py1"), (node.url, "node1"), (node.url, "node2")):
        client = await connect(target, auth={"rooms": ["q"]})
        client.on("question", lambda n, name=name: f"{name}:{n}")
        clients.append(client)
    responses = await sio.timeout(TIMEOUT).emit_with_ack("question", 1)
    assert sorted(responses) == ["node1:1", "node2:1", "py1:1"]
    # Binary both ways through msgpack pub/sub: the broadcast and the answers.
    for client, name in zip(clients, ("py1", "node1", "node2"), strict=True):
        client.on("blob", lambda data, name=name: [name, data + b"!"])
    responses = await sio.to("q").timeout(TIMEOUT).emit_with_ack("blob", b"\x01")
    assert sorted(responses) == [["node1", b"\x01!"], ["node2", b"\x01!"], ["py1", b"\x01!"]]
    result = await node.call("emitWithAck", event="question", args=[3], timeout=5000)
    assert result["err"] is None
    assert sorted(result["responses"]) == ["node1:3", "node2:3", "py1:3"]

    @clients[0].on("late")
    async def never() -> Any:
        await asyncio.Event().wait()

    clients[1].on("late", lambda: "node-quick")
    with pytest.raises(AckTimeout) as info:
        await sio.to(sid(clients[0])).to(sid(clients[1])).timeout(0.5).emit_with_ack("late")
    assert info.value.responses == ["node-quick"]


# -- connection state recovery across servers ---------------------------------------


class Server:
    """One server of a recovery test, socketwire or Node, seen the same way."""

    def __init__(self, url: str, broadcast: Callable[..., Awaitable[None]]) -> None:
        self.url = url
        self.port = int(url.rsplit(":", 1)[1])
        self.broadcast = broadcast


async def socketwire_server(streams_server: ClusterStarter) -> Server:
    sio, url = await streams_server(setup_rooms, connection_state_recovery=RECOVERY)

    async def broadcast(*args: Any, rooms: tuple[str, ...] = ()) -> None:
        sio.to(*rooms).emit("msg", *args) if rooms else sio.emit("msg", *args)

    return Server(url, broadcast)


async def node_server(streams_node: NodeStarter) -> Server:
    node = await streams_node("--recovery")

    async def broadcast(*args: Any, rooms: tuple[str, ...] = ()) -> None:
        await node.call("emit", event="msg", args=list(args), rooms=list(rooms))

    return Server(node.url, broadcast)


async def stored_session(redis: Redis, key: str) -> None:
    """Wait until a server stored a session under this test's prefix."""

    async def poll() -> None:
        while not [k async for k in redis.scan_iter(match=f"{key}:session:*")]:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), TIMEOUT)


async def recovering_client(url: str) -> tuple[Client, Inbox, Inbox]:
    client = Client(
        url,
        transports=["websocket"],
        reconnection_delay=0.05,
        reconnection_delay_max=0.1,
        auth={"rooms": ["red"]},
    )
    inbox = Inbox(client, "msg")
    connects = Inbox(client, "connect")
    await asyncio.wait_for(client.connect(), TIMEOUT)
    await connects.next()
    return client, inbox, connects


@pytest.mark.parametrize(
    ("origin", "destination"),
    [("socketwire", "socketwire"), ("socketwire", "node"), ("node", "socketwire")],
)
async def test_recovery_on_another_server(
    streams_server: ClusterStarter,
    streams_node: NodeStarter,
    connect: ClientFactory,
    redis: Redis,
    key: str,
    origin: str,
    destination: str,
) -> None:
    async def make(kind: str) -> Server:
        if kind == "node":
            return await node_server(streams_node)
        return await socketwire_server(streams_server)

    a = await make(origin)
    b = await make(destination)
    # A client of B that hears every broadcast once it is in the stream.
    observer = Inbox(await connect(b.url, auth={"rooms": ["red", "blue"]}), "msg")
    proxy = SwitchProxy(a.port)
    await proxy.start()
    client, inbox, connects = await recovering_client(proxy.url)
    try:
        first_id = client.id
        await b.broadcast("before")
        _, (value, offset) = await inbox.next()
        assert value == "before" and isinstance(offset, str)
        await observer.next()

        proxy.cut_servers()
        await stored_session(redis, key)
        # One at a time: a Node server appends after its emit call returned.
        for server, text, rooms in (
            (a, "from a", ()),
            (b, "to red", ("red",)),
            (b, "to blue", ("blue",)),
        ):
            await server.broadcast(text, rooms=rooms)
            assert (await observer.next())[1][0] == text

        proxy.switch(b.port)
        await connects.next()
        assert client.recovered is True
        assert client.id == first_id
        missed = [await inbox.next() for _ in range(2)]
        assert [args[0] for _, args in missed] == ["from a", "to red"]
        offsets = [args[1] for _, args in missed]
        assert all(isinstance(o, str) and o > offset for o in offsets)
        # Live again: the next broadcast arrives as usual.
        await a.broadcast("after")
        assert (await inbox.next())[1][0] == "after"
        assert inbox.empty()
    finally:
        await client.disconnect()
        await proxy.close()


async def test_recovery_after_a_restart(
    streams_server: ClusterStarter, connect: ClientFactory, redis: Redis, key: str
) -> None:
    """A stops (its clients' sessions stored as it goes), B broadcasts, A starts
    again on its port: the client gets what it missed from the stream."""
    a, url_a = await streams_server(setup_rooms, connection_state_recovery=RECOVERY)
    b, url_b = await streams_server(setup_rooms, connection_state_recovery=RECOVERY)
    observer = Inbox(await connect(url_b, auth={"rooms": ["red"]}), "msg")
    client, inbox, connects = await recovering_client(url_a)
    try:
        first_id = client.id
        b.emit("msg", "before")
        _, (value, offset) = await inbox.next()
        assert value == "before"
        await observer.next()

        await a.close()
        await stored_session(redis, key)
        b.emit("msg", "while down")
        b.to("red").emit("msg", "to red")
        for _ in range(2):
            await observer.next()

        port = int(url_a.rsplit(":", 1)[1])
        await streams_server(setup_rooms, connection_state_recovery=RECOVERY, port=port)
        await connects.next()
        assert client.recovered is True and client.id == first_id
        missed = [await inbox.next() for _ in range(2)]
        assert [args[0] for _, args in missed] == ["while down", "to red"]
        assert all(args[1] > offset for _, args in missed)
    finally:
        await client.disconnect()


async def test_unknown_session_or_offset_is_a_new_session(
    streams_server: ClusterStarter, redis: Redis, key: str
) -> None:
    sio, _ = await streams_server(setup_rooms, connection_state_recovery=RECOVERY)
    ad = adapter(sio)
    assert await ad.restore_session("nope", "1-0") is None
    assert await ad.restore_session("nope", "not an offset") is None
    ad.persist_session("sid1", "pid1", ["sid1", "red"], {"name": "x"})
    await stored_session(redis, key)
    # The offset is not in the stream: no recovery (and the session is spent).
    assert await ad.restore_session("pid1", "1-0") is None
    assert await redis.exists(f"{key}:session:pid1") == 0
