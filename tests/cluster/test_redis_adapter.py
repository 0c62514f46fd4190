"""The Redis adapter between socketwire servers, on a real redis-server.

Two (or three) socketwire servers share one Redis; clients are socketwire's own
client over WebSocket. Every cluster-wide operation is checked from one server
against the sockets of the others.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from redis.asyncio import Redis

import socketwire
from socketwire import AckTimeout, RequestTimeout
from socketwire.adapters.redis import RedisAdapter, create_adapter
from socketwire.client import Client

from .conftest import TIMEOUT, ClientFactory, ClusterStarter, RedisServer


class Inbox:
    """Events a client received, awaited one by one."""

    def __init__(self, client: Client, *events: str) -> None:
        self.queue: asyncio.Queue[tuple[str, tuple[Any, ...]]] = asyncio.Queue()
        for event in events:
            client.on(event, self._handler(event))

    def _handler(self, event: str) -> Any:
        def on(*args: Any) -> None:
            self.queue.put_nowait((event, args))

        return on

    async def next(self) -> tuple[str, tuple[Any, ...]]:
        return await asyncio.wait_for(self.queue.get(), TIMEOUT)

    def empty(self) -> bool:
        return self.queue.empty()

    async def next_or_none(self, timeout: float) -> tuple[str | None, tuple[Any, ...]]:
        """The next event, or ``(None, ())`` when none comes within ``timeout``."""
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return None, ()


def setup_rooms(sio: socketwire.Server) -> None:
    """Sockets join the rooms named in their auth and keep their name in ``data``."""

    @sio.on("connection")
    def on_connection(socket: socketwire.Socket) -> None:
        auth = socket.handshake.auth
        socket.data = {"name": auth.get("name")}
        for room in auth.get("rooms", ()):
            socket.join(room)

    @sio.on("ask")
    def ask(socket: socketwire.Socket, *args: Any) -> Any:
        return {"server": "socketwire", "args": list(args)}


async def two_servers(
    cluster_server: ClusterStarter, **options: Any
) -> tuple[socketwire.Server, str, socketwire.Server, str]:
    a, url_a = await cluster_server(setup_rooms, **options)
    b, url_b = await cluster_server(setup_rooms, **options)
    return a, url_a, b, url_b


def adapter(sio: socketwire.Server) -> RedisAdapter:
    ad = sio.of("/").adapter
    assert isinstance(ad, RedisAdapter)
    return ad


def room_change(sio: socketwire.Server, sid: str | None, room: str, join: bool = True) -> Any:
    """A future resolved when socket ``sid`` of ``sio`` joins (or leaves) ``room``."""
    ad = adapter(sio)
    fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    hook_name = "on_join_room" if join else "on_leave_room"
    previous = getattr(ad, hook_name)

    def hook(r: str, s: str) -> None:
        previous(r, s)
        if r == room and s == sid and not fut.done():
            fut.set_result(None)

    setattr(ad, hook_name, hook)
    return fut


async def barrier(*clients: Inbox, sio: socketwire.Server) -> None:
    """Every earlier message from ``sio`` reached these clients: one more broadcast
    travels the same path and is awaited (Redis keeps the order of a channel)."""
    sio.emit("barrier")
    for inbox in clients:
        while (await inbox.next())[0] != "barrier":
            pass


async def test_server_count(cluster_server: ClusterStarter) -> None:
    a, _, b, _ = await two_servers(cluster_server)
    assert await adapter(a).server_count() == 2
    c, _ = await cluster_server(setup_rooms)
    assert await adapter(b).server_count() == 3
    await c.close()
    assert await adapter(a).server_count() == 2


async def test_broadcast_reaches_the_other_server(
    cluster_server: ClusterStarter, connect: ClientFactory
) -> None:
    a, url_a, b, url_b = await two_servers(cluster_server)
    on_a = Inbox(await connect(url_a), "news")
    on_b = Inbox(await connect(url_b), "news")
    a.emit("news", "hello", {"n": 1})
    assert await on_a.next() == ("news", ("hello", {"n": 1}))
    assert await on_b.next() == ("news", ("hello", {"n": 1}))
    b.emit("news", "back")
    assert await on_a.next() == ("news", ("back",))
    assert await on_b.next() == ("news", ("back",))


async def test_binary_broadcast(cluster_server: ClusterStarter, connect: ClientFactory) -> None:
    a, _, _, url_b = await two_servers(cluster_server)
    on_b = Inbox(await connect(url_b), "blob")
    a.emit("blob", b"\x00\x01\xff", {"nested": [b"x", 2]})
    assert await on_b.next() == ("blob", (b"\x00\x01\xff", {"nested": [b"x", 2]}))


async def test_rooms_and_except_across_servers(
    cluster_server: ClusterStarter, connect: ClientFactory
) -> None:
    a, url_a, _, url_b = await two_servers(cluster_server)
    red_b = Inbox(await connect(url_b, auth={"rooms": ["red"]}), "msg", "barrier")
    blue_b = Inbox(await connect(url_b, auth={"rooms": ["blue"]}), "msg", "barrier")
    both_b = Inbox(await connect(url_b, auth={"rooms": ["red", "blue"]}), "msg", "barrier")
    red_a = Inbox(await connect(url_a, auth={"rooms": ["red"]}), "msg", "barrier")
    everyone = (red_b, blue_b, both_b, red_a)

    a.to("red").emit("msg", "to red")
    for inbox in (red_b, both_b, red_a):
        assert await inbox.next() == ("msg", ("to red",))
    a.to("red").to("blue").except_("red").emit("msg", "blue not red")
    assert await blue_b.next() == ("msg", ("blue not red",))
    a.except_("blue").emit("msg", "not blue")
    for inbox in (red_b, red_a):
        assert await inbox.next() == ("msg", ("not blue",))
    await barrier(*everyone, sio=a)
    for inbox in everyone:
        assert inbox.empty()


async def test_to_a_socket_id_on_another_server(
    cluster_server: ClusterStarter, connect: ClientFactory
) -> None:
    a, _, _, url_b = await two_servers(cluster_server)
    client = await connect(url_b)
    inbox = Inbox(client, "private")
    assert client.id is not None
    a.to(client.id).emit("private", "just you")
    assert await inbox.next() == ("private", ("just you",))


async def test_local_flag_stays_on_its_server(
    cluster_server: ClusterStarter, connect: ClientFactory
) -> None:
    a, url_a, _b, url_b = await two_servers(cluster_server)
    on_a = Inbox(await connect(url_a), "msg", "barrier")
    on_b = Inbox(await connect(url_b), "msg", "barrier")
    a.local.emit("msg", "local")
    assert await on_a.next() == ("msg", ("local",))
    await barrier(on_a, on_b, sio=a)
    assert on_b.empty()


async def test_volatile_broadcast_travels(
    cluster_server: ClusterStarter, connect: ClientFactory
) -> None:
    a, _, _, url_b = await two_servers(cluster_server)
    on_b = Inbox(await connect(url_b), "tick")
    a.volatile.emit("tick", 1)
    assert await on_b.next() == ("tick", (1,))


async def test_fetch_sockets_across_servers(
    cluster_server: ClusterStarter, connect: ClientFactory
) -> None:
    a, url_a, _, url_b = await two_servers(cluster_server)
    alice = await connect(url_a, auth={"name": "alice", "rooms": ["red"]})
    bob = await connect(url_b, auth={"name": "bob", "rooms": ["red", "blue"]})
    await connect(url_b, auth={"name": "carol"})

    found = {s.data["name"]: s for s in await a.fetch_sockets()}
    assert set(found) == {"alice", "bob", "carol"}
    assert found["bob"].id == bob.id
    assert found["bob"].rooms == {bob.id, "red", "blue"}
    assert found["bob"].handshake["auth"] == {"name": "bob", "rooms": ["red", "blue"]}
    assert found["alice"].id == alice.id

    reds = await a.in_("red").except_("blue").fetch_sockets()
    assert [s.data["name"] for s in reds] == ["alice"]
    assert {s.data["name"] for s in await a.in_("blue").fetch_sockets()} == {"bob"}
    local = await a.local.fetch_sockets()
    assert [s.data["name"] for s in local] == ["alice"]


async def test_fetched_remote_socket_can_be_reached(
    cluster_server: ClusterStarter, connect: ClientFactory
) -> None:
    a, _, _, url_b = await two_servers(cluster_server)
    bob = await connect(url_b, auth={"name": "bob"})
    inbox = Inbox(bob, "hi")
    (view,) = await a.fetch_sockets()
    view.emit("hi", "from a")
    assert await inbox.next() == ("hi", ("from a",))


async def test_sockets_join_and_leave_across_servers(
    cluster_server: ClusterStarter, connect: ClientFactory
) -> None:
    a, url_a, b, url_b = await two_servers(cluster_server)
    bob = await connect(url_b, auth={"rooms": ["red"]})
    alice = await connect(url_a, auth={"rooms": ["red"]})
    on_bob = Inbox(bob, "msg")
    on_alice = Inbox(alice, "msg")

    joined = [room_change(b, bob.id, "green"), room_change(a, alice.id, "green")]
    a.in_("red").sockets_join("green")
    # The request comes back to its sender too: both servers apply it.
    await asyncio.wait_for(asyncio.gather(*joined), TIMEOUT)
    a.to("green").emit("msg", "green")
    assert await on_bob.next() == ("msg", ("green",))
    assert await on_alice.next() == ("msg", ("green",))

    left = [room_change(b, bob.id, "red", join=False), room_change(a, alice.id, "red", join=False)]
    a.in_("green").sockets_leave("red")
    await asyncio.wait_for(asyncio.gather(*left), TIMEOUT)
    assert await a.in_("red").fetch_sockets() == []


async def test_disconnect_sockets_across_servers(
    cluster_server: ClusterStarter, connect: ClientFactory
) -> None:
    a, _url_a, _b, url_b = await two_servers(cluster_server)
    bob = await connect(url_b, auth={"rooms": ["kick"]})
    stay = await connect(url_b)
    gone = asyncio.Event()
    reasons: list[str] = []

    @bob.on("disconnect")
    def on_disconnect(reason: str, *rest: Any) -> None:
        reasons.append(reason)
        gone.set()

    a.in_("kick").disconnect_sockets()
    await asyncio.wait_for(gone.wait(), TIMEOUT)
    assert reasons == ["io server disconnect"]
    assert stay.connected
    assert [s.id for s in await a.fetch_sockets()] == [stay.id]


async def test_server_side_emit_with_and_without_ack(cluster_server: ClusterStarter) -> None:
    got: dict[str, asyncio.Queue[tuple[Any, ...]]] = {}

    def setup(name: str) -> Any:
        def install(sio: socketwire.Server) -> None:
            got[name] = asyncio.Queue()
            nsp = sio.of("/")

            def note(*args: Any) -> None:
                got[name].put_nowait(args)

            async def whoami(*args: Any) -> Any:
                return {"server": name, "args": list(args)}

            nsp.on_server_side_emit("note", note)
            nsp.on_server_side_emit("whoami", whoami)

        return install

    a, _ = await cluster_server(setup("a"))
    await cluster_server(setup("b"))
    await cluster_server(setup("c"))
    a.server_side_emit("note", 1, {"x": "y"})
    for name in ("b", "c"):
        assert await asyncio.wait_for(got[name].get(), TIMEOUT) == (1, {"x": "y"})
    answers = await a.server_side_emit_with_ack("whoami", 7, timeout=TIMEOUT)
    assert sorted(answers, key=lambda r: r["server"]) == [
        {"server": "b", "args": [7]},
        {"server": "c", "args": [7]},
    ]
    assert got["a"].empty()


async def test_server_side_emit_with_ack_times_out_with_partial_answers(
    cluster_server: ClusterStarter,
) -> None:
    def answering(sio: socketwire.Server) -> None:
        sio.of("/").on_server_side_emit("q", lambda: "yes")

    def silent(sio: socketwire.Server) -> None:
        async def never() -> Any:
            await asyncio.Event().wait()

        sio.of("/").on_server_side_emit("q", never)

    a, _ = await cluster_server()
    await cluster_server(answering)
    await cluster_server(silent)
    with pytest.raises(AckTimeout) as info:
        await a.server_side_emit_with_ack("q", timeout=0.5)
    assert info.value.responses == ["yes"]
    assert "1 responses received out of 2" in str(info.value)


async def test_broadcast_with_acks_across_servers(
    cluster_server: ClusterStarter, connect: ClientFactory
) -> None:
    a, url_a, _, url_b = await two_servers(cluster_server)
    for url, name in ((url_a, "a1"), (url_b, "b1"), (url_b, "b2")):
        client = await connect(url)
        client.on("question", lambda n, name=name: f"{name}:{n}")
    responses = await a.timeout(TIMEOUT).emit_with_ack("question", 42)
    assert sorted(responses) == ["a1:42", "b1:42", "b2:42"]


async def test_broadcast_with_acks_to_a_room_with_no_remote_member(
    cluster_server: ClusterStarter, connect: ClientFactory
) -> None:
    a, url_a, _, url_b = await two_servers(cluster_server)
    member = await connect(url_a, auth={"rooms": ["r"]})
    member.on("q", lambda: "here")
    await connect(url_b)
    assert await a.to("r").timeout(TIMEOUT).emit_with_ack("q") == ["here"]
    # Nobody anywhere: completes at once with no responses, not at the timeout.
    assert await a.to("nobody").timeout(TIMEOUT).emit_with_ack("q") == []


async def test_broadcast_with_acks_times_out_with_partial_answers(
    cluster_server: ClusterStarter, connect: ClientFactory
) -> None:
    a, _, _, url_b = await two_servers(cluster_server)
    quick = await connect(url_b)
    quick.on("q", lambda: "quick")
    slow = await connect(url_b)

    @slow.on("q")
    async def never() -> Any:
        await asyncio.Event().wait()

    with pytest.raises(AckTimeout) as info:
        await a.timeout(0.5).emit_with_ack("q")
    assert info.value.responses == ["quick"]


async def test_all_rooms(cluster_server: ClusterStarter, connect: ClientFactory) -> None:
    a, url_a, _, url_b = await two_servers(cluster_server)
    alice = await connect(url_a, auth={"rooms": ["red"]})
    bob = await connect(url_b, auth={"rooms": ["blue"]})
    rooms = await adapter(a).all_rooms()
    assert rooms == {"red", "blue", alice.id, bob.id}


async def test_fetch_sockets_times_out_when_a_server_is_mute(
    cluster_server: ClusterStarter, redis: Redis, key: str
) -> None:
    a, _ = await cluster_server()
    # A subscriber that counts as a server but never answers (cf. a monitoring tool).
    mute = redis.pubsub()
    await mute.subscribe(f"{key}-request#/#")
    try:
        with pytest.raises(RequestTimeout, match="fetchSockets"):
            await adapter(a).fetch_sockets(socketwire.BroadcastOptions())
    finally:
        await mute.aclose()


async def test_namespaces_are_separate_channels(
    cluster_server: ClusterStarter, connect: ClientFactory
) -> None:
    def with_chat(sio: socketwire.Server) -> None:
        sio.of("/chat")

    a, _ = await cluster_server(with_chat)
    _, url_b = await cluster_server(with_chat)
    on_main = Inbox(await connect(url_b), "msg", "barrier")
    on_chat = Inbox(await connect(url_b + "/chat"), "msg")
    a.of("/chat").emit("msg", "chat only")
    assert await on_chat.next() == ("msg", ("chat only",))
    await barrier(on_main, sio=a)
    assert on_main.empty()


async def test_invalid_messages_are_logged_and_ignored(
    cluster_server: ClusterStarter,
    connect: ClientFactory,
    redis: Redis,
    key: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    a, _url_a, _, url_b = await two_servers(cluster_server)
    on_b = Inbox(await connect(url_b), "msg", "barrier")
    garbage = [
        (f"{key}#/#", b"\xc1"),
        (f"{key}#/#", b"\x93\xa3uid\x80\x80"),
        (f"{key}#/#", b"\x93\xa3uid\x83\xa4type\x02\xa4data\x91\xa7connect\xa3nsp\xa1/\x80"),
        (f"{key}-request#/#", b"{not json"),
        (f"{key}-request#/#", b'{"type": 99}'),
        (f"{key}-request#/#", b'{"type": 2, "opts": {"rooms": "x"}, "rooms": []}'),
        (f"{key}-request#/#", b'{"type": 5, "requestId": "abcdef"}'),
        (f"{key}-response#/#", b'{"requestId": 5}'),
        (f"{key}-response#/#", b"[]"),
    ]
    with caplog.at_level(logging.INFO, logger="socketwire.adapters.redis"):
        for channel, payload in garbage:
            await redis.publish(channel, payload)
        a.emit("msg", "still fine")
        assert await on_b.next() == ("msg", ("still fine",))
        await barrier(on_b, sio=a)
    ignored = [r for r in caplog.records if "ignored" in r.getMessage()]
    assert len(ignored) >= len(garbage)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_specific_response_channel(
    cluster_server: ClusterStarter, connect: ClientFactory
) -> None:
    opts = {"adapter_options": {"publish_on_specific_response_channel": True}}
    a, _url_a, _, url_b = await two_servers(cluster_server, **opts)
    await connect(url_b, auth={"name": "bob"})
    assert [s.data["name"] for s in await a.fetch_sockets()] == ["bob"]


async def test_cluster_recovers_when_redis_restarts(
    connect: ClientFactory, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis goes away and comes back on the same port: emits do not raise while
    it is away, and broadcasts flow again once the subscribers reconnected."""
    own = RedisServer()
    own.start()
    started: list[socketwire.Server] = []
    try:
        for _ in range(2):
            sio = socketwire.Server(adapter=create_adapter(own.url, key=key))
            setup_rooms(sio)
            port = await sio.listen(0, "127.0.0.1")
            started.append(sio)
        a, b = started
        url_b = f"http://127.0.0.1:{b.port}"
        on_b = Inbox(await connect(url_b), "msg")
        a.emit("msg", "before")
        assert await on_b.next() == ("msg", ("before",))

        port = own.port
        own.stop()
        with caplog.at_level(logging.WARNING, logger="socketwire.adapters.redis"):
            a.emit("msg", "while away")  # queued, then dropped with a log line
            own.start(port=port)
            # Emit until one gets through: each try is a real round trip.
            for attempt in range(200):
                a.emit("msg", "after", attempt)
                event, args = await on_b.next_or_none(0.1)
                if event == "msg" and args and args[0] == "after":
                    break
            else:
                pytest.fail("broadcasts did not resume after Redis came back")
        assert await adapter(a).server_count() == 2
    finally:
        for sio in started:
            await sio.close()
        own.stop()
