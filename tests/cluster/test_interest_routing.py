"""The Redis adapter's interest mode on a real redis-server, beside classic
socketwire servers, Node's socket.io 4.8 with ``@socket.io/redis-adapter`` 8.3 and
Node's ``@socket.io/redis-emitter`` 5.1.

An interest-mode server subscribes to its namespace's channel and to one channel
per room it holds (socket ids included) instead of Node's pattern. Publishers are
unchanged, so every kind of server and emitter keeps reaching it, and a server
never receives a broadcast to one room it does not hold: checked with Redis's own
``PUBSUB CHANNELS``/``NUMSUB`` and with the bus's count of received messages.

Interest-mode servers here make their sockets join the rooms of their auth in a
middleware: such rooms are subscribed before the client's CONNECT is answered,
so a test may target them as soon as the client is connected.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

import socketwire
from socketwire.adapters.redis import RedisAdapter, create_adapter
from socketwire.adapters.redis_bus import RedisBus
from socketwire.adapters.room_subscriptions import RoomSubscriptions
from socketwire.client import Client
from socketwire.emitter import AsyncEmitter
from tests.integration.rawclient import WebSocketClient

from ..conftest import run_node
from .conftest import JS_DIR, TIMEOUT, ClientFactory, ClusterStarter, NodeStarter, RedisServer
from .test_redis_adapter import Inbox, room_change, setup_rooms

INTEREST: dict[str, Any] = {"subscription_mode": "interest"}


def join_early(sio: socketwire.Server) -> None:
    """``setup_rooms``, with the rooms of the auth joined in a middleware."""
    setup_rooms(sio)

    @sio.use
    def rooms(socket: socketwire.Socket) -> None:
        for room in socket.handshake.auth.get("rooms", ()):
            socket.join(room)


async def interest_server(
    cluster_server: ClusterStarter, setup: Callable[[socketwire.Server], None] = join_early
) -> tuple[socketwire.Server, str]:
    return await cluster_server(setup, adapter_options=INTEREST)


def adapter(sio: socketwire.Server, nsp: str = "/") -> RedisAdapter:
    ad = sio.of(nsp).adapter
    assert isinstance(ad, RedisAdapter)
    return ad


def bus(sio: socketwire.Server) -> RedisBus:
    b = adapter(sio).bus
    assert isinstance(b, RedisBus)
    return b


def tracker(sio: socketwire.Server) -> RoomSubscriptions:
    subs = adapter(sio).room_subscriptions
    assert subs is not None
    return subs


def sid(client: Client) -> str:
    assert client.id is not None
    return str(client.id)


def server_socket(sio: socketwire.Server, client: Client) -> socketwire.Socket:
    return sio.of("/").sockets[sid(client)]


async def until(check: Callable[[], Awaitable[bool] | bool]) -> None:
    """Wait until ``check()`` holds (bounded by TIMEOUT), looking again every 10 ms."""

    async def loop() -> None:
        while True:
            result = check()
            if not isinstance(result, bool):
                result = await result
            if result:
                return
            await asyncio.sleep(0.01)

    await asyncio.wait_for(loop(), TIMEOUT)


async def room_channels(redis: Redis, key: str, nsp: str = "/") -> set[str]:
    """The broadcast channels of ``nsp`` that some connection subscribes (not patterns)."""
    names = await redis.pubsub_channels(f"{key}#{nsp}#*")
    return {c.decode() if isinstance(c, bytes) else c for c in names}


async def numsub(redis: Redis, channel: str) -> int:
    ((_, count),) = await redis.pubsub_numsub(channel)
    return int(count)


async def until_barrier(inbox: Inbox) -> list[Any]:
    """The first argument of each "msg" received before the next "barrier"."""
    got: list[Any] = []
    while True:
        event, args = await inbox.next()
        if event == "barrier":
            return got
        got.append(args[0])


# -- options -----------------------------------------------------------------------------


def test_recovery_is_refused_in_interest_mode() -> None:
    with pytest.raises(ValueError, match="recovery=True needs subscription_mode='pattern'"):
        create_adapter("redis://127.0.0.1:1", subscription_mode="interest", recovery=True)
    with pytest.raises(ValueError, match="sometimes"):
        create_adapter("redis://127.0.0.1:1", subscription_mode="sometimes")


# -- subscriptions -----------------------------------------------------------------------


async def test_subscriptions_follow_the_rooms(
    cluster_server: ClusterStarter, connect: ClientFactory, redis: Redis, key: str
) -> None:
    sio, url = await interest_server(cluster_server)
    assert adapter(sio).subscriptions[1] == ()  # no pattern
    assert await room_channels(redis, key) == {f"{key}#/#"}

    client = await connect(url, auth={"rooms": ["red", "blue"]})
    # Subscribed before the CONNECT was answered: nothing to wait for.
    own = f"{key}#/#{sid(client)}#"
    assert await room_channels(redis, key) == {f"{key}#/#", own, f"{key}#/#red#", f"{key}#/#blue#"}

    server_socket(sio, client).leave("red")

    async def red_left() -> bool:
        return await room_channels(redis, key) == {f"{key}#/#", own, f"{key}#/#blue#"}

    await until(red_left)
    await client.disconnect()

    async def all_left() -> bool:
        return await room_channels(redis, key) == {f"{key}#/#"}

    await until(all_left)
    await until(lambda: tracker(sio).settled)


async def test_many_joins_in_one_turn_are_one_subscribe(
    cluster_server: ClusterStarter, connect: ClientFactory, redis: Redis, key: str
) -> None:
    sio, url = await interest_server(cluster_server)
    client = await connect(url)
    subs = tracker(sio)
    before = subs.subscribe_commands
    rooms = [f"room-{i}" for i in range(500)]
    server_socket(sio, client).join(rooms)
    assert await adapter(sio).wait_until_subscribed(*rooms)
    assert subs.subscribe_commands == before + 1
    counts = await redis.pubsub_numsub(*(f"{key}#/#{r}#" for r in rooms))
    assert [int(n) for _, n in counts] == [1] * len(rooms)

    # Joined, left and joined again in one turn: subscribed, without a command.
    sock = server_socket(sio, client)
    sock.join("again")
    sock.leave("again")
    sock.join("again")
    sock.join("never")
    sock.leave("never")
    assert await adapter(sio).wait_until_subscribed("again", "never")
    assert subs.subscribe_commands == before + 2
    assert await numsub(redis, f"{key}#/#again#") == 1
    assert await numsub(redis, f"{key}#/#never#") == 0


@pytest.fixture
def own_redis() -> Any:
    """A redis-server of this test alone (it may be paused or restarted)."""
    server = RedisServer()
    server.start()
    yield server
    if server.proc is not None:
        os.kill(server.proc.pid, signal.SIGCONT)
    server.stop()


@pytest.fixture
async def own_servers(own_redis: RedisServer, key: str) -> AsyncIterator[Any]:
    """``sio, url = await start(mode, setup=join_early, **adapter_options)`` on ``own_redis``."""
    started: list[socketwire.Server] = []

    async def start(
        mode: str = "interest",
        setup: Callable[[socketwire.Server], None] = join_early,
        **adapter_options: Any,
    ) -> tuple[socketwire.Server, str]:
        adapter_options.setdefault("requests_timeout", 3.0)
        sio = socketwire.Server(
            adapter=create_adapter(
                own_redis.url, key=key, subscription_mode=mode, **adapter_options
            )
        )
        setup(sio)
        port = await sio.listen(0, "127.0.0.1")
        started.append(sio)
        return sio, f"http://127.0.0.1:{port}"

    yield start
    for sio in started:
        await sio.close()


async def test_join_leave_join_while_the_commands_are_on_their_way(
    own_redis: RedisServer, own_servers: Any, connect: ClientFactory, key: str
) -> None:
    """Redis paused: each command is written but not read yet. Whatever the rooms
    did meanwhile, Redis ends with the last word once it reads them in order."""
    sio, url = await own_servers()
    client = await connect(url)
    sock = server_socket(sio, client)
    subs = tracker(sio)
    redis = Redis.from_url(own_redis.url)
    assert own_redis.proc is not None
    pid = own_redis.proc.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        joins, leaves = subs.subscribe_commands, subs.unsubscribe_commands
        sock.join(["x", "z"])
        await until(lambda: subs.subscribe_commands == joins + 1)
        sock.leave("x")
        sock.leave("z")
        await until(lambda: subs.unsubscribe_commands == leaves + 1)
        sock.join("x")  # subscribed again, after the unsubscription on its way
        await until(lambda: subs.subscribe_commands == joins + 2)
    finally:
        os.kill(pid, signal.SIGCONT)
    try:
        # The last SUBSCRIBE is confirmed: Redis read every command before it.
        assert await adapter(sio).wait_until_subscribed("x")
        assert await numsub(redis, f"{key}#/#x#") == 1
        assert await numsub(redis, f"{key}#/#z#") == 0
        assert subs.settled
    finally:
        await redis.aclose()


# -- a mixed cluster ---------------------------------------------------------------------

# Who each broadcast of the matrix reaches, by client name.
CLIENTS = {
    "i_red": ("interest", ["red"]),
    "i_blue": ("interest", ["blue"]),
    "i_none": ("interest", []),
    "c_red": ("classic", ["red"]),
    "c_blue": ("classic", ["blue"]),
    "n_red": ("node", ["red"]),
    "n_blue": ("node", ["blue"]),
}
DIRECT = {"interest": "i_none", "classic": "c_red", "node": "n_blue"}


def reached(rooms: list[str], except_rooms: list[str], name: str) -> bool:
    own = set(CLIENTS[name][1])
    return (not rooms or bool(own & set(rooms))) and not own & set(except_rooms)


@pytest.mark.parametrize("sender", ["interest", "classic", "node"])
async def test_broadcasts_between_interest_classic_and_node_servers(
    cluster_server: ClusterStarter,
    node_server: NodeStarter,
    connect: ClientFactory,
    redis: Redis,
    key: str,
    sender: str,
) -> None:
    interest, i_url = await interest_server(cluster_server)
    classic, c_url = await cluster_server(setup_rooms)
    node = await node_server()
    urls = {"interest": i_url, "classic": c_url, "node": node.url}
    clients: dict[str, Client] = {}
    inboxes: dict[str, Inbox] = {}
    for name, (where, rooms) in CLIENTS.items():
        clients[name] = await connect(urls[where], auth={"rooms": rooms})
        inboxes[name] = Inbox(clients[name], "msg", "barrier")

    async def emit(tag: str, rooms: list[str], except_rooms: list[str]) -> None:
        if sender == "node":
            await node.call(
                "emit", event="msg", args=[tag], rooms=rooms, **{"except": except_rooms}
            )
            return
        op: Any = interest if sender == "interest" else classic
        for room in rooms:
            op = op.to(room)
        if except_rooms:
            op = op.except_(except_rooms)
        op.emit("msg", tag)

    sent: list[tuple[str, list[str], list[str]]] = [
        ("all", [], []),
        ("red", ["red"], []),
        ("red+blue", ["red", "blue"], []),
        ("not red", [], ["red"]),
    ]
    sent += [(f"to {name}", [sid(clients[name])], []) for name in DIRECT.values()]
    for tag, rooms, except_rooms in sent:
        await emit(tag, rooms, except_rooms)
    # Last, on the namespace's channel: each client has all the rest once it has this.
    if sender == "node":
        await node.call("emit", event="barrier", args=[])
    else:
        (interest if sender == "interest" else classic).emit("barrier")

    for name, inbox in inboxes.items():
        expected = []
        for tag, rooms, except_rooms in sent:
            if tag.startswith("to "):
                if tag == f"to {name}":
                    expected.append(tag)
            elif reached(rooms, except_rooms, name):
                expected.append(tag)
        assert await until_barrier(inbox) == expected, name
    # The interest server held red, blue and its sockets' own rooms, nothing else.
    assert await room_channels(redis, key) == {
        f"{key}#/#",
        f"{key}#/#red#",
        f"{key}#/#blue#",
        *(f"{key}#/#{sid(clients[n])}#" for n in ("i_red", "i_blue", "i_none")),
    }


async def test_a_server_never_receives_a_room_it_does_not_hold(
    cluster_server: ClusterStarter,
    node_server: NodeStarter,
    connect: ClientFactory,
    redis: Redis,
    key: str,
) -> None:
    red_server, red_url = await interest_server(cluster_server)
    blue_server, blue_url = await interest_server(cluster_server)
    classic, c_url = await cluster_server(setup_rooms)
    node = await node_server()
    on_red = Inbox(await connect(red_url, auth={"rooms": ["red"]}), "msg")
    on_node_red = Inbox(await connect(node.url, auth={"rooms": ["red"]}), "msg")
    on_blue = Inbox(await connect(blue_url, auth={"rooms": ["blue"]}), "msg")
    on_classic_blue = Inbox(await connect(c_url, auth={"rooms": ["blue"]}), "msg")
    assert await numsub(redis, f"{key}#/#red#") == 1  # the red interest server alone
    assert await numsub(redis, f"{key}#/#blue#") == 1
    blue_before = bus(blue_server).received_messages
    classic_before = bus(classic).received_messages
    emitter = AsyncEmitter(redis, key=key)

    count = 20
    for i in range(count):
        await node.call("emit", event="msg", args=[f"node {i}"], rooms=["red"])
        red_server.to("red").emit("msg", f"interest {i}")
        await emitter.to("red").emit("msg", f"emitter {i}")
    for inbox in (on_red, on_node_red):
        got = [(await inbox.next())[1][0] for _ in range(3 * count)]
        assert sorted(got) == sorted(
            f"{who} {i}" for who in ("node", "interest", "emitter") for i in range(count)
        )
    # Redis has published every red broadcast; one more, to blue, from Node, comes after.
    await node.call("emit", event="msg", args=["marker"], rooms=["blue"])
    assert await on_blue.next() == ("msg", ("marker",))
    assert await on_classic_blue.next() == ("msg", ("marker",))

    # The blue interest server received the marker alone; the classic one everything.
    assert bus(blue_server).received_messages - blue_before == 1
    assert bus(classic).received_messages - classic_before == 3 * count + 1


async def test_node_emitter_reaches_interest_servers(
    cluster_server: ClusterStarter,
    connect: ClientFactory,
    redis_server: RedisServer,
    redis: Redis,
    key: str,
) -> None:
    notes: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()

    def setup(sio: socketwire.Server) -> None:
        join_early(sio)
        sio.of("/chat")
        sio.of("/").on_server_side_emit("note", lambda *args: notes.put_nowait(args))

    sio, url = await interest_server(cluster_server, setup)
    _, other_url = await interest_server(cluster_server)
    red = await connect(url, auth={"rooms": ["red"]})
    blue = await connect(url, auth={"rooms": ["blue"]})
    alone = await connect(url)
    chat = await connect(url + "/chat")
    elsewhere = await connect(other_url, auth={"rooms": ["elsewhere"]})
    on_red, on_blue, on_alone = Inbox(red, "msg"), Inbox(blue, "msg"), Inbox(alone, "msg")
    on_chat, on_elsewhere = Inbox(chat, "msg"), Inbox(elsewhere, "msg")
    gone = asyncio.Event()
    blue.on("disconnect", lambda *args: gone.set())
    joined = room_change(sio, red.id, "green")
    before = bus(sio).received_messages

    async def run(*steps: dict[str, Any]) -> None:
        await run_node(
            JS_DIR / "cluster_emitter.js",
            "--redis-port",
            str(redis_server.port),
            "--key",
            key,
            json.dumps(list(steps)),
        )

    await run(
        {"op": "emit", "event": "msg", "args": ["elsewhere"], "rooms": ["elsewhere"]},
        {"op": "emit", "event": "msg", "args": ["all"]},
        {"op": "emit", "event": "msg", "args": ["red"], "rooms": ["red"]},
        {"op": "emit", "event": "msg", "args": ["not red"], "except": ["red"]},
        {"op": "emit", "event": "msg", "args": ["just you"], "rooms": [sid(alone)]},
        {"op": "emit", "event": "msg", "args": ["chat"], "nsp": "/chat"},
        {"op": "serverSideEmit", "event": "note", "args": ["from emitter"]},
        {"op": "socketsJoin", "rooms": ["red"], "join": ["green"]},
        {"op": "disconnectSockets", "rooms": ["blue"], "close": True},
    )
    assert [(await on_red.next())[1] for _ in range(2)] == [("all",), ("red",)]
    assert [(await on_blue.next())[1] for _ in range(2)] == [("all",), ("not red",)]
    assert [(await on_alone.next())[1] for _ in range(3)] == [("all",), ("not red",), ("just you",)]
    assert await on_chat.next() == ("msg", ("chat",))
    assert await on_elsewhere.next() == ("msg", ("elsewhere",))
    assert await asyncio.wait_for(notes.get(), TIMEOUT) == ("from emitter",)
    await asyncio.wait_for(gone.wait(), TIMEOUT)
    await asyncio.wait_for(joined, TIMEOUT)
    # The room the emitter's socketsJoin made: reached once its subscription is confirmed.
    assert await adapter(sio).wait_until_subscribed("green")
    await run({"op": "emit", "event": "msg", "args": ["green"], "rooms": ["green"]})
    assert await on_red.next() == ("msg", ("green",))
    # Not the broadcast to "elsewhere": 5 broadcasts on "/" and "/chat", 3
    # requests, and "green".
    assert bus(sio).received_messages - before == 5 + 3 + 1
    assert await numsub(redis, f"{key}#/#elsewhere#") == 1


async def test_requests_and_acks_in_a_mixed_cluster(
    cluster_server: ClusterStarter, node_server: NodeStarter, connect: ClientFactory
) -> None:
    def setup(name: str) -> Callable[[socketwire.Server], None]:
        def install(sio: socketwire.Server) -> None:
            join_early(sio)
            sio.of("/").on_server_side_emit("whoami", lambda *args: name)

        return install

    interest, i_url = await interest_server(cluster_server, setup("interest"))
    classic, c_url = await cluster_server(setup("classic"))
    node = await node_server()
    names = {}
    for url, name, rooms in (
        (i_url, "i", ["q"]),
        (c_url, "c", []),
        (node.url, "n", ["q"]),
    ):
        client = await connect(url, auth={"name": name, "rooms": rooms})
        client.on("question", lambda n, name=name: f"{name}:{n}")
        names[sid(client)] = name

    found = {s.id: s for s in await interest.fetch_sockets()}
    assert {names[s] for s in found} == {"i", "c", "n"}
    assert {names[s.id] for s in await interest.in_("q").fetch_sockets()} == {"i", "n"}
    seen = await node.call("fetchSockets", rooms=["q"])
    assert {names[s["id"]] for s in seen} == {"i", "n"}

    answers = await interest.server_side_emit_with_ack("whoami", timeout=TIMEOUT)
    assert sorted(answers) == ["classic", "node"]
    answer = await node.call("serverSideEmitWithAck", event="whoami")
    assert sorted(answer["responses"]) == ["classic", "interest"]

    assert sorted(await interest.timeout(TIMEOUT).emit_with_ack("question", 1)) == [
        "c:1",
        "i:1",
        "n:1",
    ]
    assert sorted(await interest.to("q").timeout(TIMEOUT).emit_with_ack("question", 2)) == [
        "i:2",
        "n:2",
    ]
    result = await node.call("emitWithAck", event="question", args=[3], rooms=["q"], timeout=5000)
    assert result["err"] is None and sorted(result["responses"]) == ["i:3", "n:3"]
    answers = await classic.to("q").timeout(TIMEOUT).emit_with_ack("question", 4)
    assert sorted(answers) == ["i:4", "n:4"]


# -- the connection window and Redis outages ------------------------------------------------


async def test_connect_is_answered_once_its_rooms_are_subscribed(
    own_redis: RedisServer, own_servers: Any, key: str
) -> None:
    """Redis paused: the server holds the CONNECT; once Redis reads the SUBSCRIBE
    and confirms it, the client is connected and its rooms are subscribed."""
    sio, url = await own_servers(requests_timeout=10.0)
    subs = tracker(sio)
    assert own_redis.proc is not None
    pid = own_redis.proc.pid
    client = Client(url, transports=["websocket"], reconnection=False, auth={"rooms": ["early"]})
    os.kill(pid, signal.SIGSTOP)
    try:
        connecting = asyncio.get_running_loop().create_task(client.connect())
        await until(lambda: len(subs.wanted) == 2 and subs.subscribe_commands == 1)
        # Sent, not confirmed: the socket is not in the namespace, the client waits.
        assert not sio.of("/").sockets and not connecting.done()
    finally:
        os.kill(pid, signal.SIGCONT)
    redis = Redis.from_url(own_redis.url)
    try:
        await asyncio.wait_for(connecting, TIMEOUT)
        assert await numsub(redis, f"{key}#/#{sid(client)}#") == 1
        assert await numsub(redis, f"{key}#/#early#") == 1
    finally:
        await redis.aclose()
        await client.disconnect()


async def test_connect_waits_for_the_subscriptions_at_most_requests_timeout(
    own_redis: RedisServer, own_servers: Any, caplog: pytest.LogCaptureFixture, key: str
) -> None:
    """Redis paused: the first CONNECT is answered once ``requests_timeout`` has
    passed, with a warning; the next ones do not wait (Redis confirmed nothing
    since); the subscriptions complete when Redis is back."""
    sio, url = await own_servers(requests_timeout=2.0)
    assert own_redis.proc is not None
    pid = own_redis.proc.pid
    first = Client(url, transports=["websocket"], reconnection=False, auth={"rooms": ["late"]})
    second = Client(url, transports=["websocket"], reconnection=False)
    os.kill(pid, signal.SIGSTOP)
    try:
        with caplog.at_level(logging.WARNING, logger="socketwire.adapters.redis"):
            await asyncio.wait_for(first.connect(), TIMEOUT)
        assert any("before Redis confirmed" in r.getMessage() for r in caplog.records)
        await asyncio.wait_for(second.connect(), 1.5)  # well within requests_timeout
    finally:
        os.kill(pid, signal.SIGCONT)
    try:
        assert await adapter(sio).wait_until_subscribed(sid(first), "late", sid(second))
    finally:
        await first.disconnect()
        await second.disconnect()


async def test_a_connection_that_goes_before_its_subscription_leaves_nothing(
    own_redis: RedisServer, own_servers: Any, key: str
) -> None:
    sio, url = await own_servers(requests_timeout=5.0)
    subs = tracker(sio)
    ad = adapter(sio)
    assert own_redis.proc is not None
    pid = own_redis.proc.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        port = url.rsplit(":", 1)[1]
        ws = await WebSocketClient.connect(
            f"http://127.0.0.1:{port}", "/socket.io/?EIO=4&transport=websocket"
        )
        assert (await ws.recv_text()).startswith("0{")  # the Engine.IO open packet
        ws.send_text("40")
        # Its own room is wanted (the server waits for Redis) before it has one.
        await until(lambda: len(subs.wanted) == 1 and not ad.rooms)
        await ws.aclose()
        await until(lambda: sio.engine.clients_count == 0)
    finally:
        os.kill(pid, signal.SIGCONT)
    await until(lambda: not subs.wanted and subs.settled)
    redis = Redis.from_url(own_redis.url)
    try:

        async def nothing_left() -> bool:
            return await room_channels(redis, key) == {f"{key}#/#"}

        await until(nothing_left)
    finally:
        await redis.aclose()
    assert not ad.rooms and not sio.of("/").sockets


async def test_subscriptions_come_back_after_a_redis_restart(
    own_redis: RedisServer, own_servers: Any, key: str
) -> None:
    interest, i_url = await own_servers()
    classic, _ = await own_servers("pattern", setup_rooms)
    stays = Client(i_url, transports=["websocket"], reconnection=False, auth={"rooms": ["red"]})
    on_stays = Inbox(stays, "msg")
    await asyncio.wait_for(stays.connect(), TIMEOUT)
    newcomer = Client(i_url, transports=["websocket"], reconnection=False)
    on_newcomer = Inbox(newcomer, "msg")
    try:
        classic.to("red").emit("msg", "before")
        assert await on_stays.next() == ("msg", ("before",))

        port = own_redis.port
        proc, own_redis.proc = own_redis.proc, None
        assert proc is not None and proc.stdout is not None
        proc.terminate()
        proc.wait()
        proc.stdout.close()
        await until(lambda: not bus(interest).connected)
        # While Redis is away: a room left, a room joined, a socket connected.
        sock = server_socket(interest, stays)
        sock.leave("red")
        sock.join("green")
        await asyncio.wait_for(newcomer.connect(), TIMEOUT)

        own_redis.start(port)
        redis = Redis.from_url(own_redis.url)
        try:
            expected = {
                f"{key}#/#",
                f"{key}#/#green#",
                f"{key}#/#{sid(stays)}#",
                f"{key}#/#{sid(newcomer)}#",
            }

            async def restored() -> bool:
                try:
                    return await room_channels(redis, key) == expected
                except Exception:
                    return False

            await until(restored)
        finally:
            await redis.aclose()
        assert await adapter(interest).wait_until_subscribed("green", sid(newcomer))
        # Broadcasts published while the classic server resubscribes may be lost:
        # send until one arrives, then check the rest in order.
        for attempt in range(100):
            classic.to("green").emit("msg", "green", attempt)
            event, args = await on_stays.next_or_none(0.1)
            if event == "msg" and args[0] == "green":
                break
        else:
            pytest.fail("broadcasts did not resume after Redis came back")
        classic.to(sid(newcomer)).emit("msg", "welcome")
        assert await on_newcomer.next() == ("msg", ("welcome",))
    finally:
        await stays.disconnect()
        await newcomer.disconnect()
