"""``socketwire.emitter`` driving real servers through a real redis-server.

* Classic: a socketwire server (Redis adapter) and a Node server (socket.io
  4.8.4 with ``@socket.io/redis-adapter`` 8.3.0 ``createAdapter``) on one key,
  reached by ``Emitter`` and ``AsyncEmitter``.
* Sharded: two Node servers with ``createShardedAdapter`` (``SPUBLISH`` on a
  plain Redis 7), reached by ``ShardedEmitter`` and ``AsyncShardedEmitter``.

Exactness without sleeps: every client collects its events until an ``end``
event that the emitter sends last. One publisher, and one subscriber connection
per server, so each server sees the messages in the order they were published:
a client whose list is right got nothing else before ``end``.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis
from redis.asyncio import Redis as AsyncRedis

import socketwire
from socketwire.client import Client
from socketwire.emitter import (
    AsyncEmitter,
    AsyncShardedEmitter,
    BaseEmitter,
    Emitter,
    ShardedEmitter,
)

from .conftest import TIMEOUT, ClientFactory, ClusterStarter, NodeStarter, RedisServer
from .test_redis_adapter import Inbox, setup_rooms

Event = tuple[str, tuple[Any, ...]]


async def sent(result: Any) -> None:
    """Complete an operation: a blocking emitter has published already."""
    if inspect.isawaitable(result):
        await result


EmitterFactory = Callable[..., BaseEmitter[Any]]


@pytest.fixture(params=["blocking", "asyncio"])
async def make_emitter(
    request: pytest.FixtureRequest, redis_server: RedisServer
) -> AsyncIterator[EmitterFactory]:
    """``make_emitter(sharded=False, **options)``: an emitter of either kind on
    a client of its own."""
    blocking = request.param == "blocking"
    sync_client = redis.Redis.from_url(redis_server.url)
    async_client = AsyncRedis.from_url(redis_server.url)

    def make(sharded: bool = False, **options: Any) -> BaseEmitter[Any]:
        if sharded:
            if blocking:
                return ShardedEmitter(sync_client, **options)
            return AsyncShardedEmitter(async_client, **options)
        if blocking:
            return Emitter(sync_client, **options)
        return AsyncEmitter(async_client, **options)

    yield make
    sync_client.close()
    await async_client.aclose()


async def until_end(inbox: Inbox) -> list[Event]:
    """The events of ``inbox`` before the next ``end``."""
    events: list[Event] = []
    while (event := await inbox.next())[0] != "end":
        events.append(event)
    return events


def disconnected(client: Client) -> asyncio.Future[str]:
    """Resolved with the reason of the client's next disconnection."""
    fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def on_disconnect(reason: str, *rest: Any) -> None:
        if not fut.done():
            fut.set_result(reason)

    client.on("disconnect", on_disconnect)
    return fut


# ---------------------------------------------------------------------------
# Classic: socketwire and Node servers
# ---------------------------------------------------------------------------


def setup_with_chat(sio: socketwire.Server) -> None:
    setup_rooms(sio)
    sio.of("/chat")


async def mixed(
    cluster_server: ClusterStarter, node_server: NodeStarter
) -> tuple[socketwire.Server, str, str]:
    """A socketwire server and a Node server of one cluster: ``(sio, url, node_url)``."""
    sio, url = await cluster_server(setup_with_chat)
    node = await node_server()
    return sio, url, node.url


async def test_broadcasts_reach_socketwire_and_node(
    cluster_server: ClusterStarter,
    node_server: NodeStarter,
    connect: ClientFactory,
    key: str,
    make_emitter: EmitterFactory,
) -> None:
    _, url, node_url = await mixed(cluster_server, node_server)
    red: dict[str, Inbox] = {}
    blue: dict[str, Inbox] = {}
    chat: dict[str, Inbox] = {}
    for where, base in (("socketwire", url), ("node", node_url)):
        red[where] = Inbox(await connect(base, auth={"rooms": ["red"]}), "msg", "end")
        blue[where] = Inbox(await connect(base, auth={"rooms": ["blue"]}), "msg", "end")
        chat[where] = Inbox(await connect(base + "/chat"), "msg", "end")
    emitter = make_emitter(key=key)

    # First, while every transport is idle: a server drops a volatile packet
    # for a client whose transport is still writing the previous one.
    await sent(emitter.volatile.compress(False).to("blue").emit("msg", "volatile"))
    for inbox in blue.values():
        assert await inbox.next() == ("msg", ("volatile",))
    await sent(emitter.emit("msg", "all", {"a": 1}))
    await sent(emitter.to("red").emit("msg", "red"))
    await sent(emitter.except_("red").emit("msg", "not red"))
    await sent(emitter.to(["red", "blue"]).except_("blue").emit("msg", "red again"))
    await sent(emitter.of("chat").emit("msg", "chat"))
    await sent(emitter.emit("msg", b"\x00\xffbin", {"nested": [b"\x01"]}))
    await sent(emitter.emit("end"))
    await sent(emitter.of("/chat").emit("end"))

    binary = ("msg", (b"\x00\xffbin", {"nested": [b"\x01"]}))
    for where in ("socketwire", "node"):
        assert await until_end(red[where]) == [
            ("msg", ("all", {"a": 1})),
            ("msg", ("red",)),
            ("msg", ("red again",)),
            binary,
        ], where
        assert await until_end(blue[where]) == [
            ("msg", ("all", {"a": 1})),
            ("msg", ("not red",)),
            binary,
        ], where
        assert await until_end(chat[where]) == [("msg", ("chat",))], where


async def test_to_socket_ids_and_numeric_rooms(
    cluster_server: ClusterStarter,
    node_server: NodeStarter,
    connect: ClientFactory,
    key: str,
    make_emitter: EmitterFactory,
) -> None:
    _, url, node_url = await mixed(cluster_server, node_server)
    py = await connect(url, auth={"rooms": ["7"]})
    node = await connect(node_url)
    on_py, on_node = Inbox(py, "dm", "end"), Inbox(node, "dm", "end")
    emitter = make_emitter(key=key)
    assert py.id is not None and node.id is not None
    await sent(emitter.to(node.id).emit("dm", "to node's client"))
    await sent(emitter.to(py.id).emit("dm", "to socketwire's client"))
    await sent(emitter.to(7).emit("dm", "to room 7"))  # the room "7"
    await sent(emitter.emit("end"))
    assert await until_end(on_py) == [("dm", ("to socketwire's client",)), ("dm", ("to room 7",))]
    assert await until_end(on_node) == [("dm", ("to node's client",))]


async def test_sockets_join_and_leave(
    cluster_server: ClusterStarter,
    node_server: NodeStarter,
    connect: ClientFactory,
    key: str,
    make_emitter: EmitterFactory,
) -> None:
    _, url, node_url = await mixed(cluster_server, node_server)
    inboxes: dict[str, Inbox] = {}
    for where, base in (("socketwire", url), ("node", node_url)):
        inboxes[f"{where} red"] = Inbox(await connect(base, auth={"rooms": ["red"]}), "msg", "end")
        inboxes[f"{where} plain"] = Inbox(await connect(base), "msg", "end")
    emitter = make_emitter(key=key)

    # Requests and broadcasts reach a server in the order they were published:
    # the join is applied before the broadcast to the new room arrives.
    await sent(emitter.in_("red").sockets_join(["green", 42]))
    await sent(emitter.to("green").emit("msg", "green"))
    await sent(emitter.to(42).emit("msg", "42"))
    await sent(emitter.in_("green").sockets_leave("green"))
    await sent(emitter.to("green").emit("msg", "nobody"))
    await sent(emitter.in_("42").except_("green").sockets_join("purple"))
    await sent(emitter.to("purple").emit("msg", "purple"))
    await sent(emitter.emit("end"))
    for where in ("socketwire", "node"):
        assert await until_end(inboxes[f"{where} red"]) == [
            ("msg", ("green",)),
            ("msg", ("42",)),
            ("msg", ("purple",)),
        ], where
        assert await until_end(inboxes[f"{where} plain"]) == [], where


@pytest.mark.parametrize("close", [False, True])
async def test_disconnect_sockets(
    cluster_server: ClusterStarter,
    node_server: NodeStarter,
    connect: ClientFactory,
    key: str,
    make_emitter: EmitterFactory,
    close: bool,
) -> None:
    _, url, node_url = await mixed(cluster_server, node_server)
    kicked = [await connect(base, auth={"rooms": ["kick"]}) for base in (url, node_url)]
    stays = [await connect(base) for base in (url, node_url)]
    gone = [disconnected(client) for client in kicked]
    on_stays = [Inbox(client, "end") for client in stays]
    emitter = make_emitter(key=key)

    await sent(emitter.in_("kick").disconnect_sockets(close=close))
    await sent(emitter.emit("end"))
    reasons = await asyncio.wait_for(asyncio.gather(*gone), TIMEOUT)
    # Either way the server ends the session; a client's reason is the same.
    assert reasons == ["io server disconnect", "io server disconnect"]
    for inbox in on_stays:
        assert await until_end(inbox) == []
    assert all(client.connected for client in stays)


async def test_server_side_emit_reaches_every_server(
    cluster_server: ClusterStarter,
    node_server: NodeStarter,
    key: str,
    make_emitter: EmitterFactory,
) -> None:
    notes: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()

    def setup(sio: socketwire.Server) -> None:
        sio.of("/").on_server_side_emit("note", lambda *args: notes.put_nowait(args))

    await cluster_server(setup)
    node = await node_server()
    emitter = make_emitter(key=key)
    await sent(emitter.server_side_emit("note", "from the emitter", {"n": [1, 2]}))
    assert await asyncio.wait_for(notes.get(), TIMEOUT) == ("from the emitter", {"n": [1, 2]})
    event = await node.next_event("server-side")
    assert event["args"] == ["from the emitter", {"n": [1, 2]}]
    with pytest.raises(TypeError, match="acknowledgements are not supported"):
        emitter.server_side_emit("note", lambda *answers: None)


async def test_the_emitter_is_not_a_server(
    cluster_server: ClusterStarter, key: str, make_emitter: EmitterFactory
) -> None:
    """An emitter never subscribes: the servers' count stays theirs."""
    sio, _ = await cluster_server(setup_rooms)
    await sent(make_emitter(key=key).emit("msg", "hello"))
    assert await sio.of("/").adapter.server_count() == 1


# ---------------------------------------------------------------------------
# Sharded: Node servers with createShardedAdapter
# ---------------------------------------------------------------------------


async def shard_subscribed(redis_client: AsyncRedis, *channels: str) -> None:
    """Wait until some server subscribes each channel (``PUBSUB SHARDNUMSUB``).

    A Node server subscribes to a room's channel when one of its sockets joins
    the room and does not say when Redis confirmed: this is the only way to
    know that a broadcast to the room will find it.
    """

    async def poll() -> None:
        for channel in channels:
            while True:
                counts = await redis_client.pubsub_shardnumsub(channel)
                if counts and int(counts[0][1]) > 0:
                    break
                await asyncio.sleep(0.005)  # polls a condition; never the synchronisation

    await asyncio.wait_for(poll(), TIMEOUT)


@pytest.mark.parametrize("mode", ["dynamic", "static"])
async def test_sharded_emitter_drives_node_sharded_servers(
    node_server: NodeStarter,
    connect: ClientFactory,
    redis: AsyncRedis,
    key: str,
    make_emitter: EmitterFactory,
    mode: str,
) -> None:
    first = await node_server("--sharded", mode)
    second = await node_server("--sharded", mode)
    red = Inbox(await connect(first.url, auth={"rooms": ["red"]}), "msg", "end")
    blue = Inbox(await connect(second.url, auth={"rooms": ["blue"]}), "msg", "end")
    plain_client = await connect(second.url)
    plain = Inbox(plain_client, "msg", "end")
    chat = Inbox(await connect(first.url + "/chat"), "msg", "end")
    if mode == "dynamic":
        await shard_subscribed(redis, f"{key}#/#red#", f"{key}#/#blue#")
    emitter = make_emitter(sharded=True, channel_prefix=key, subscription_mode=mode)
    assert plain_client.id is not None

    # First, while every transport is idle: a busy one drops a volatile packet.
    await sent(emitter.except_("red").volatile.emit("msg", "volatile"))
    for inbox in (blue, plain):
        assert await inbox.next() == ("msg", ("volatile",))
    await sent(emitter.emit("msg", "all"))
    await sent(emitter.to("red").emit("msg", "red"))
    await sent(emitter.except_("red").emit("msg", "not red"))
    await sent(emitter.to(["red", "blue"]).emit("msg", "two rooms"))
    await sent(emitter.to(plain_client.id).emit("msg", "to a socket id"))
    await sent(emitter.emit("msg", b"\x00\xff", {"b": b"\x01"}))
    await sent(emitter.of("/chat").emit("msg", "chat"))
    await sent(emitter.in_("red").sockets_join("green"))
    if mode == "dynamic":
        await shard_subscribed(redis, f"{key}#/#green#")
    await sent(emitter.to("green").emit("msg", "green"))
    await sent(emitter.in_("blue").sockets_leave("blue"))
    await sent(emitter.to("blue").emit("msg", "nobody"))
    await sent(emitter.emit("end"))
    await sent(emitter.of("/chat").emit("end"))

    binary = ("msg", (b"\x00\xff", {"b": b"\x01"}))
    assert await until_end(red) == [
        ("msg", ("all",)),
        ("msg", ("red",)),
        ("msg", ("two rooms",)),
        binary,
        ("msg", ("green",)),
    ]
    assert await until_end(blue) == [
        ("msg", ("all",)),
        ("msg", ("not red",)),
        ("msg", ("two rooms",)),
        binary,
    ]
    assert await until_end(plain) == [
        ("msg", ("all",)),
        ("msg", ("not red",)),
        ("msg", ("to a socket id",)),
        binary,
    ]
    assert await until_end(chat) == [("msg", ("chat",))]

    await sent(emitter.server_side_emit("note", "sharded", {"$": [1]}, b"\x07"))
    for node in (first, second):
        event = await node.next_event("server-side")
        assert event["args"] == ["sharded", {"$": [1]}, {"$bin": [7]}]

    blue_client_gone = [disconnected(c) for c in (plain_client,)]
    await sent(emitter.except_("red").disconnect_sockets(close=True))
    assert await asyncio.wait_for(asyncio.gather(*blue_client_gone), TIMEOUT) == [
        "io server disconnect"
    ]
    await sent(emitter.emit("end"))
    assert await until_end(red) == []
