"""socketwire's client against Node's socket.io and socketwire's server, over every transport.

Each test runs for both servers (``peer``) and, where the transport matters, for
WebSocket only, polling only, and polling upgraded to WebSocket (``transports``).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest

import socketwire.client as swc
from socketwire.errors import AckTimeout, ConnectionRefused, Disconnected

from .conftest import ClientFactory, Peer
from .helpers import WAIT, Events, watch, watch_manager
from .peers import NodePeer, SocketwirePeer

_keys = itertools.count()


def key() -> str:
    """A key of the peers' record store unique to this run."""
    return f"k{next(_keys)}-{id(object())}"


async def ack(client: swc.Client, event: str, *args: Any) -> Any:
    return await client.emit_with_ack(event, *args, timeout=WAIT)


async def settle_transport(client: swc.Client, transports: list[str], events: Events) -> None:
    """In upgrade mode, wait for the switch to WebSocket."""
    if len(transports) > 1 and client.transport != "websocket":
        await events.wait("upgrade")
    assert client.transport == transports[-1]


# -- connecting ---------------------------------------------------------------------------


async def test_connect_and_echo(
    peer: Peer, transports: list[str], make_client: ClientFactory
) -> None:
    client = make_client(peer.url, transports=transports)
    manager_events = watch_manager(client.manager)
    events = watch(client)
    assert not client.connected and client.id is None
    await asyncio.wait_for(client.connect(), WAIT)
    assert client.connected and client.id
    assert events.names()[:1] == ["connect"]
    await settle_transport(client, transports, manager_events)
    payload = [1, 2.5, "three", None, True, {"four": [4]}]
    assert await ack(client, "echo", *payload) == tuple(payload)
    assert await ack(client, "echo", "one") == "one"
    assert await ack(client, "echo") is None
    who = await ack(client, "whoami")
    assert who["sid"] == client.id
    assert who["transport"] == transports[-1]


async def test_query_headers_and_auth(
    peer: Peer, transports: list[str], make_client: ClientFactory
) -> None:
    client = make_client(
        peer.url + "/?from_url=1",
        transports=transports,
        query={"extra": "two"},
        headers={"X-Test": "hello"},
        auth={"token": "t0k"},
    )
    await asyncio.wait_for(client.connect(), WAIT)
    who = await ack(client, "whoami")
    assert who["auth"] == {"token": "t0k"}
    assert who["query"]["from_url"] == "1"
    assert who["query"]["extra"] == "two"
    assert who["query"]["EIO"] == "4"
    assert who["header"] == "hello"


async def test_async_auth_callable(peer: Peer, make_client: ClientFactory) -> None:
    async def auth() -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"token": "secret"}

    client = make_client(peer.url + "/private", transports=["websocket"], auth=auth)
    await asyncio.wait_for(client.connect(), WAIT)
    assert (await ack(client, "whoami"))["auth"] == {"token": "secret"}


async def test_connect_helper_and_async_with(peer: Peer) -> None:
    client = await asyncio.wait_for(
        swc.connect(peer.url, transports=["websocket"], force_new=True), WAIT
    )
    try:
        assert client.connected
        assert await ack(client, "echo", 7) == 7
    finally:
        await client.disconnect()
    assert not client.connected
    async with swc.Client(peer.url, transports=["polling"], force_new=True) as inner:
        assert inner.connected
        assert await ack(inner, "echo", 8) == 8
    assert not inner.connected
    assert inner.manager.ready_state == "closed"


async def test_namespaces_share_one_connection(
    peer: Peer, transports: list[str], make_client: ClientFactory
) -> None:
    main = make_client(peer.url, transports=transports)
    chat = main.manager.socket("/chat")
    private = main.manager.socket("/private", auth={"token": "secret"})
    # The cache of io(): same URL, other namespace -> same connection.
    shared_main = make_client(peer.url, transports=transports, force_new=False)
    shared_chat = make_client(peer.url + "/chat", transports=transports, force_new=False)
    assert shared_main.manager is shared_chat.manager
    assert shared_main.manager is not main.manager
    for client in (main, chat, private, shared_main, shared_chat):
        await asyncio.wait_for(client.connect(), WAIT)
    who = [await ack(c, "whoami") for c in (main, chat, private)]
    assert [w["nsp"] for w in who] == ["/", "/chat", "/private"]
    assert len({w["engine"] for w in who}) == 1, "one Engine.IO session for the namespaces"
    assert len({w["sid"] for w in who}) == 3
    shared = [await ack(c, "whoami") for c in (shared_main, shared_chat)]
    assert shared[0]["engine"] == shared[1]["engine"] != who[0]["engine"]
    # Leaving one namespace keeps the connection for the others.
    await chat.disconnect()
    assert main.manager.ready_state == "open"
    assert await ack(main, "echo", "still") == "still"
    assert (await ack(private, "whoami"))["engine"] == who[0]["engine"]


# -- events ---------------------------------------------------------------------------------


async def test_events_and_catch_all(
    peer: Peer, transports: list[str], make_client: ClientFactory
) -> None:
    client = make_client(peer.url, transports=transports)
    events = Events()
    received: list[tuple[Any, ...]] = []
    anything: list[tuple[Any, ...]] = []
    outgoing: list[tuple[Any, ...]] = []

    @client.on("news")
    def news(*args: Any) -> None:
        received.append(args)
        events.add("news", *args)

    @client.on("later")
    async def later(*args: Any) -> None:
        await asyncio.sleep(0)
        events.add("later", *args)

    client.once("first", lambda *args: events.add("first", *args))
    catch_all = client.on_any(lambda event, *args: anything.append((event, *args)))
    client.on_any_outgoing(lambda event, *args: outgoing.append((event, *args)))
    await asyncio.wait_for(client.connect(), WAIT)

    await ack(client, "echo_event", "news", 1, {"a": [2]})
    assert await events.wait("news") == (1, {"a": [2]})
    await ack(client, "echo_event", "later", "x")
    assert await events.wait("later") == ("x",)
    await ack(client, "echo_event", "first", 1)
    await ack(client, "echo_event", "first", 2)
    await ack(client, "echo_event", "news", 3)
    await events.wait("news", 2)
    assert events.named("first") == [(1,)]
    assert received == [(1, {"a": [2]}), (3,)]
    assert ("news", 1, {"a": [2]}) in anything
    assert ("echo_event", "news", 1, {"a": [2]}) in outgoing
    client.off_any(catch_all)
    client.off_any_outgoing()
    before = (len(anything), len(outgoing))
    await ack(client, "echo_event", "news", 4)
    await events.wait("news", 3)
    assert (len(anything), len(outgoing)) == before
    with pytest.raises(ValueError, match="reserved"):
        client.emit("disconnect")


async def test_send_and_message(
    peer: Peer, transports: list[str], make_client: ClientFactory
) -> None:
    client = make_client(peer.url, transports=transports)
    events = watch(client)
    await asyncio.wait_for(client.connect(), WAIT)
    client.send("hello", {"n": 1})
    assert await events.wait("message") == ("hello", {"n": 1})


# -- acknowledgements ------------------------------------------------------------------------


async def test_acks_client_to_server(
    peer: Peer, transports: list[str], make_client: ClientFactory
) -> None:
    client = make_client(peer.url, transports=transports)
    await asyncio.wait_for(client.connect(), WAIT)
    got: asyncio.Future[tuple[Any, ...]] = asyncio.get_running_loop().create_future()
    client.emit("echo", "a", 1, callback=lambda *args: got.set_result(args))
    assert await asyncio.wait_for(got, WAIT) == ("a", 1)
    # With a timeout the callback takes an error first.
    got2: asyncio.Future[tuple[Any, ...]] = asyncio.get_running_loop().create_future()
    client.timeout(WAIT).emit("echo", "b", callback=lambda *args: got2.set_result(args))
    assert await asyncio.wait_for(got2, WAIT) == (None, "b")
    assert await client.timeout(WAIT).emit_with_ack("echo", "c", "d") == ("c", "d")


async def test_ack_timeout(peer: Peer, make_client: ClientFactory) -> None:
    client = make_client(peer.url, transports=["websocket"])
    await asyncio.wait_for(client.connect(), WAIT)
    with pytest.raises(AckTimeout):
        await client.emit_with_ack("nobody_answers", timeout=0.2)
    failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    client.timeout(0.2).emit("nobody_answers", callback=lambda *args: failed.set_result(args))
    (err,) = await asyncio.wait_for(failed, WAIT)
    assert isinstance(err, AckTimeout)
    # ack_timeout is the default deadline.
    quick = make_client(peer.url, transports=["websocket"], ack_timeout=0.2)
    await asyncio.wait_for(quick.connect(), WAIT)
    with pytest.raises(AckTimeout):
        await quick.emit_with_ack("nobody_answers")
    assert await quick.emit_with_ack("echo", 1) == 1


async def test_acks_server_to_client(
    peer: Peer, transports: list[str], make_client: ClientFactory
) -> None:
    client = make_client(peer.url, transports=transports)
    events = watch(client)

    @client.on("q_return")
    def q_return(x: int) -> tuple[int, str]:
        return x + 1, "two"

    @client.on("q_async")
    async def q_async(x: int) -> dict[str, int]:
        await asyncio.sleep(0)
        return {"double": x * 2}

    @client.on("q_explicit")
    def q_explicit(x: int, ack: Any) -> None:
        ack("explicit", x)

    @client.on("q_none")
    def q_none() -> None:
        return None

    @client.on("q_awaitable")
    def q_awaitable(x: int) -> Any:
        async def later() -> int:
            return x * 10

        return later()

    await asyncio.wait_for(client.connect(), WAIT)
    await ack(client, "ask", "q_return", 1)
    await ack(client, "ask", "q_async", 4)
    await ack(client, "ask", "q_explicit", 5)
    await ack(client, "ask", "q_none")
    await ack(client, "ask", "q_awaitable", 3)
    for n in range(1, 6):
        await events.wait("answer", n)
    answers = {args[0]: args[1] for args in events.named("answer")}
    assert answers == {
        "q_return": [2, "two"],
        "q_async": [{"double": 8}],
        "q_explicit": ["explicit", 5],
        "q_none": [],
        "q_awaitable": [30],
    }


# -- binary ---------------------------------------------------------------------------------


async def test_binary_both_ways(
    peer: Peer, transports: list[str], make_client: ClientFactory
) -> None:
    client = make_client(peer.url, transports=transports)
    events = watch(client)
    await asyncio.wait_for(client.connect(), WAIT)
    blob = bytes(range(256))
    nested = {"list": [b"\x00", "text", {"deep": b"\xff" * 70_000}]}
    assert await ack(client, "echo", blob, nested) == (blob, nested)
    await ack(client, "echo_event", "bin", b"\x01\x02", {"x": [b"\x03"]})
    assert await events.wait("bin") == (b"\x01\x02", {"x": [b"\x03"]})

    @client.on("bin_ask")
    def bin_ask(data: bytes) -> bytes:
        return data[::-1]

    await ack(client, "ask", "bin_ask", b"abc")
    assert await events.wait("answer") == ("bin_ask", [b"cba"])


# -- rooms ----------------------------------------------------------------------------------


async def test_room_broadcast(
    peer: Peer, transports: list[str], make_client: ClientFactory
) -> None:
    member = make_client(peer.url, transports=transports)
    other = make_client(peer.url, transports=transports)
    member_events = watch(member)
    other_events = watch(other)
    await asyncio.wait_for(member.connect(), WAIT)
    await asyncio.wait_for(other.connect(), WAIT)
    room = key()
    assert await ack(member, "join", room) == room
    await ack(other, "to_room", room, "room_event", 42, b"\x07")
    assert await member_events.wait("room_event") == (42, b"\x07")
    # The whole namespace gets the next broadcast; only the member got the room's.
    await ack(other, "broadcast", "sync", room)
    await other_events.wait("sync")
    await member_events.wait("sync")
    assert other_events.named("room_event") == []


# -- refusal --------------------------------------------------------------------------------


async def test_middleware_refusal(
    peer: Peer, transports: list[str], make_client: ClientFactory
) -> None:
    client = make_client(peer.url + "/private", transports=transports, auth={"token": "nope"})
    events = watch(client)
    with pytest.raises(ConnectionRefused) as info:
        await asyncio.wait_for(client.connect(), WAIT)
    assert info.value.message == "not authorized"
    assert info.value.data == {"reason": "bad token"}
    (err,) = await events.wait("connect_error")
    assert isinstance(err, ConnectionRefused) and err.data == {"reason": "bad token"}
    assert not client.connected and not client.active
    await asyncio.wait_for(client.wait(), WAIT)
    # The auth is read again at the next attempt.
    client.auth = {"token": "secret"}
    await asyncio.wait_for(client.connect(), WAIT)
    assert client.connected


async def test_unknown_namespace_refused(peer: Peer, make_client: ClientFactory) -> None:
    client = make_client(peer.url + "/nowhere", transports=["websocket"])
    with pytest.raises(ConnectionRefused, match="Invalid namespace"):
        await asyncio.wait_for(client.connect(), WAIT)


# -- buffering and volatile ------------------------------------------------------------------


async def test_emits_buffered_until_connected(
    peer: Peer, transports: list[str], make_client: ClientFactory
) -> None:
    client = make_client(peer.url, transports=transports)
    k = key()
    client.emit("record", k, 1)
    client.emit("record", k, b"two")
    pending = asyncio.ensure_future(client.emit_with_ack("echo", "buffered"))
    client.volatile.emit("record", k, "volatile: dropped")
    await asyncio.sleep(0)
    assert not pending.done()
    await asyncio.wait_for(client.connect(), WAIT)
    assert await asyncio.wait_for(pending, WAIT) == "buffered"
    client.emit("record", k, 3)
    assert await ack(client, "records", k) == [1, b"two", 3]


async def test_volatile_while_connected(
    peer: Peer, transports: list[str], make_client: ClientFactory
) -> None:
    client = make_client(peer.url, transports=transports)
    manager_events = watch_manager(client.manager)
    await asyncio.wait_for(client.connect(), WAIT)
    await settle_transport(client, transports, manager_events)
    k = key()
    client.emit("record", k, 1)
    # Polling: the first emit's POST is in flight, so the transport is not
    # writable and the volatile emit is dropped (as the JavaScript client does).
    client.volatile.emit("record", k, 2)
    await ack(client, "echo")
    client.volatile.emit("record", k, 3)  # the transport is idle again
    records = await ack(client, "records", k)
    if transports == ["polling"]:
        assert records == [1, 3]
    else:
        assert records == [1, 2, 3]


# -- retries --------------------------------------------------------------------------------


async def test_retries_until_acknowledged(
    peer: Peer, transports: list[str], make_client: ClientFactory
) -> None:
    client = make_client(peer.url, transports=transports, retries=3, ack_timeout=0.25)
    await asyncio.wait_for(client.connect(), WAIT)
    k = key()
    # The peer acknowledges "flaky" from its third delivery on.
    first = asyncio.ensure_future(client.emit_with_ack("flaky", k, "a"))
    second = asyncio.ensure_future(client.emit_with_ack("record", k, "b"))
    assert await asyncio.wait_for(first, WAIT) == ("ok", 3)
    assert await asyncio.wait_for(second, WAIT) is None
    # One at a time, in order: "b" only went out once "a" was acknowledged.
    assert await client.timeout(WAIT).emit_with_ack("records", k) == ["a", "a", "a", "b"]


async def test_retries_exhausted(peer: Peer, make_client: ClientFactory) -> None:
    client = make_client(peer.url, transports=["websocket"], retries=1, ack_timeout=0.2)
    await asyncio.wait_for(client.connect(), WAIT)
    k = key()
    failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    client.emit("flaky", k, "x", callback=lambda *args: failed.set_result(args))
    (err,) = await asyncio.wait_for(failed, WAIT)
    assert isinstance(err, AckTimeout)
    assert await client.timeout(WAIT).emit_with_ack("records", k) == ["x", "x"]


# -- disconnection ------------------------------------------------------------------------


async def test_client_disconnect(
    peer: Peer, transports: list[str], make_client: ClientFactory
) -> None:
    client = make_client(peer.url, transports=transports)
    events = watch(client)
    manager_events = watch_manager(client.manager)
    await asyncio.wait_for(client.connect(), WAIT)
    pending = asyncio.ensure_future(client.emit_with_ack("nobody_answers"))
    await asyncio.sleep(0)
    await asyncio.wait_for(client.disconnect(), WAIT)
    assert await events.wait("disconnect") == ("io client disconnect",)
    with pytest.raises(Disconnected):
        await asyncio.wait_for(pending, WAIT)
    await asyncio.wait_for(client.wait(), WAIT)
    assert client.manager.ready_state == "closed"
    assert manager_events.named("reconnect_attempt") == []
    # Emits while disconnected wait for the next connection.
    k = key()
    client.emit("record", k, "after")
    await asyncio.wait_for(client.connect(), WAIT)
    assert await ack(client, "records", k) == ["after"]


async def test_server_disconnect(
    peer: Peer, transports: list[str], make_client: ClientFactory
) -> None:
    client = make_client(peer.url, transports=transports, reconnection_delay=0.05)
    events = watch(client)
    manager_events = watch_manager(client.manager)
    await asyncio.wait_for(client.connect(), WAIT)
    client.emit("server_disconnect")
    assert await events.wait("disconnect") == ("io server disconnect",)
    await asyncio.wait_for(client.wait(), WAIT)
    assert not client.active
    assert manager_events.named("reconnect_attempt") == []


@pytest.mark.parametrize(
    ("trigger", "reason"), [("close_transport", "transport close"), ("garbage", "parse error")]
)
async def test_reconnects_after_connection_loss(
    peer: Peer,
    transports: list[str],
    make_client: ClientFactory,
    trigger: str,
    reason: str,
) -> None:
    client = make_client(
        peer.url, transports=transports, reconnection_delay=0.05, reconnection_delay_max=0.1
    )
    events = watch(client)
    manager_events = watch_manager(client.manager)
    k = key()

    @client.on("disconnect")
    def on_disconnect(why: str) -> None:
        client.emit("record", k, "sent while disconnected")

    await asyncio.wait_for(client.connect(), WAIT)
    first_id = client.id
    client.emit(trigger)
    assert await events.wait("disconnect") == (reason,)
    assert not client.connected
    await events.wait("connect", 2)
    assert await manager_events.wait("reconnect") == (1,)
    assert client.connected and client.id != first_id
    assert await ack(client, "records", k) == ["sent while disconnected"]


@pytest.fixture(params=["node", "socketwire"])
async def fast_ping_peer(request: pytest.FixtureRequest) -> AsyncIterator[Peer]:
    """A server pinging every 300 ms with a 200 ms timeout."""
    peer: Peer
    if request.param == "node":
        peer = NodePeer("--ping-interval", "300", "--ping-timeout", "200")
    else:
        peer = SocketwirePeer(ping_interval=0.3, ping_timeout=0.2)
    await peer.start()
    yield peer
    await peer.stop()


async def test_ping_timeout(
    fast_ping_peer: Peer, transports: list[str], make_client: ClientFactory
) -> None:
    """The server stops pinging: the client gives up after pingInterval + pingTimeout."""
    client = make_client(fast_ping_peer.url, transports=transports, reconnection=False)
    events = watch(client)
    pings: list[float] = []
    client.manager.on("ping", lambda: pings.append(asyncio.get_running_loop().time()))
    await asyncio.wait_for(client.connect(), WAIT)
    await ack(client, "stop_pings")
    stopped = asyncio.get_running_loop().time()
    assert await events.wait("disconnect") == ("ping timeout",)
    elapsed = asyncio.get_running_loop().time() - max([stopped, *pings])
    assert elapsed >= 0.5 - 0.05  # pingInterval + pingTimeout after the last ping
    await asyncio.wait_for(client.wait(), WAIT)
