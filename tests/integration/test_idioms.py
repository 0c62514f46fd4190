"""python-socketio and Node idioms on real sockets, and what the server logs about them.

Each test of the migration tables (docs/guide/migrating-from-*.md) that needs a
connection: a server on 127.0.0.1 port 0 and socketwire's own client. Log lines
are asserted as written, since they are what an operator greps for.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest

import socketwire
from socketwire.client import Client
from socketwire.durations import SecondsWarning
from tests.conftest import ServerStarter
from tests.waits import WAIT


@pytest.fixture
async def clients() -> AsyncIterator[list[Client]]:
    made: list[Client] = []
    yield made
    for client in made:
        await client.disconnect()


async def open_client(url: str, clients: list[Client], namespace: str = "") -> Client:
    client = Client(url + namespace, transports=["websocket"], force_new=True)
    clients.append(client)
    await asyncio.wait_for(client.connect(), WAIT)
    return client


def inbox(client: Client, event: str) -> asyncio.Queue[tuple[Any, ...]]:
    queue: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
    client.on(event, lambda *args: queue.put_nowait(args))
    return queue


async def test_python_socketio_emit_keywords(
    start_server: ServerStarter, clients: list[Client]
) -> None:
    """``emit(event, data, to=..., room=..., skip_sid=..., namespace=...)`` work,
    and ``to``/``skip_sid`` take the socket a handler got as well as its id."""
    sio = socketwire.Server()
    sockets: dict[str, socketwire.Socket] = {}

    @sio.on("connection")
    def connection(socket: socketwire.Socket) -> None:
        sockets[socket.id] = socket
        socket.join("lobby")

    sio.of("/chat")
    url = await start_server(sio)
    a, b = await open_client(url, clients), await open_client(url, clients)
    chat = await open_client(url, clients, "/chat")
    got_a, got_b, got_chat = inbox(a, "ev"), inbox(b, "ev"), inbox(chat, "ev")
    assert a.id is not None and b.id is not None

    await sio.emit("ev", "to a", to=a.id)
    assert await asyncio.wait_for(got_a.get(), WAIT) == ("to a",)
    sio.emit("ev", "lobby but b", room="lobby", skip_sid=sockets[b.id])
    assert await asyncio.wait_for(got_a.get(), WAIT) == ("lobby but b",)
    sio.emit("ev", "to both", {"n": 1}, to=[sockets[a.id], b.id])
    assert await asyncio.wait_for(got_a.get(), WAIT) == ("to both", {"n": 1})
    assert await asyncio.wait_for(got_b.get(), WAIT) == ("to both", {"n": 1})
    sio.emit("ev", "chat", namespace="/chat")
    assert await asyncio.wait_for(got_chat.get(), WAIT) == ("chat",)
    sio.send("hello", to=b.id)
    assert await asyncio.wait_for(inbox(b, "message").get(), WAIT) == ("hello",)
    # b got only what was meant for it.
    assert got_b.empty() and got_a.empty()


async def test_awaiting_an_emit_completes_at_once(
    start_server: ServerStarter, clients: list[Client]
) -> None:
    sio = socketwire.Server()
    sockets: asyncio.Queue[socketwire.Socket] = asyncio.Queue()
    sio.on("connection", sockets.put_nowait)
    client = await open_client(await start_server(sio), clients)
    got = inbox(client, "ev")
    socket = await asyncio.wait_for(sockets.get(), WAIT)

    await socket.emit("ev", 1)
    await sio.emit("ev", 2)
    await sio.to(socket.id).emit("ev", 3)
    await socket.timeout(1).emit("ev", 4)
    await client.emit("back", 5)
    assert [await asyncio.wait_for(got.get(), WAIT) for _ in range(4)] == [(1,), (2,), (3,), (4,)]


async def test_event_decorator_and_sid_style_disconnect(
    start_server: ServerStarter, clients: list[Client]
) -> None:
    sio = socketwire.Server()
    gone: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()

    @sio.event
    def connect(socket: socketwire.Socket) -> None:
        # Node's habit: a socket's disconnect handler without the reason.
        socket.on("disconnect", lambda: gone.put_nowait(("socket",)))

    @sio.event
    async def add(socket: socketwire.Socket, x: int, y: int) -> int:
        return x + y

    @sio.event
    def disconnect(socket: socketwire.Socket) -> None:
        # python-socketio's ``disconnect(sid)``: no reason parameter.
        gone.put_nowait(("namespace", socket.id))

    client = await open_client(await start_server(sio), clients)
    sid = client.id
    assert await client.emit_with_ack("add", 2, 3, timeout=WAIT) == 5
    await client.disconnect()
    assert {await asyncio.wait_for(gone.get(), WAIT) for _ in range(2)} == {
        ("socket",),
        ("namespace", sid),
    }


async def test_node_timeout_in_milliseconds_warns(
    start_server: ServerStarter, clients: list[Client]
) -> None:
    sio = socketwire.Server()
    sockets: asyncio.Queue[socketwire.Socket] = asyncio.Queue()
    sio.on("connection", sockets.put_nowait)
    client = await open_client(await start_server(sio), clients)
    client.on("question", lambda: "answer")
    socket = await asyncio.wait_for(sockets.get(), WAIT)
    with pytest.warns(SecondsWarning) as record:
        answer = await socket.timeout(5000).emit_with_ack("question")
    assert answer == "answer"
    assert str(record[0].message) == (
        "timeout(5000) waits 1 h 23 min: socketwire counts seconds, not milliseconds as "
        "Node does (did you mean timeout(5)?)"
    )
    with pytest.warns(SecondsWarning, match=r"emit_with_ack\(\.\.\., timeout=5\)\?"):
        await socket.emit_with_ack("question", timeout=5000)


async def test_packet_middleware_with_next_is_refused(
    start_server: ServerStarter, clients: list[Client]
) -> None:
    sio = socketwire.Server()
    refused: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    @sio.on("connection")
    def connection(socket: socketwire.Socket) -> None:
        def with_next(packet: list[Any], next: Any) -> None:
            next()

        try:
            socket.use(cast(Any, with_next))
        except TypeError as exc:
            refused.set_result(str(exc))

    await open_client(await start_server(sio), clients)
    message = await asyncio.wait_for(refused, WAIT)
    assert message.endswith(
        "cannot be the packet middleware of a socket: it is called as fn(packet). a packet "
        "middleware gets the packet alone, without Node's next: return to let it through, "
        'raise to stop it (the exception goes to the socket\'s "error" handlers)'
    )


async def test_middleware_exception_stays_on_the_server(
    start_server: ServerStarter, clients: list[Client], caplog: pytest.LogCaptureFixture
) -> None:
    """A middleware's exception is the server's failure: the client gets a generic
    message, the log gets the traceback; ``ConnectionRefused`` alone reaches the client."""
    caplog.set_level(logging.DEBUG, logger="socketwire.server")
    sio = socketwire.Server()

    @sio.of("/db").use
    async def lookup(socket: socketwire.Socket) -> None:
        raise KeyError("password=hunter2 at /srv/secret.db")

    @sio.of("/vip").use
    def only_vips(socket: socketwire.Socket) -> None:
        raise socketwire.ConnectionRefused("vips only", data={"retry": False})

    url = await start_server(sio)
    client = Client(url + "/db", transports=["websocket"], force_new=True, reconnection=False)
    clients.append(client)
    with pytest.raises(socketwire.ConnectionRefused) as info:
        await asyncio.wait_for(client.connect(), WAIT)
    assert info.value.message == "Internal server error"
    assert info.value.data is None
    assert "hunter2" not in repr(info.value.message)

    (record,) = [r for r in caplog.records if "middleware" in r.getMessage()]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None and record.exc_info[0] is KeyError
    message = record.getMessage()
    assert message.startswith("sid=") and " nsp=/db: middleware " in message
    assert message.endswith(
        "test_middleware_exception_stays_on_the_server.<locals>.lookup failed; "
        "connection refused with 'Internal server error'"
    )

    vip = Client(url + "/vip", transports=["websocket"], force_new=True, reconnection=False)
    clients.append(vip)
    with pytest.raises(socketwire.ConnectionRefused) as info:
        await asyncio.wait_for(vip.connect(), WAIT)
    assert (info.value.message, info.value.data) == ("vips only", {"retry": False})


async def test_handler_failures_are_logged_once_in_one_format(
    start_server: ServerStarter, clients: list[Client], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="socketwire.server")
    sio = socketwire.Server()

    @sio.on("sync")
    def sync_fails(socket: socketwire.Socket) -> None:
        raise ValueError("sync")

    @sio.on("async")
    async def async_fails(socket: socketwire.Socket) -> None:
        raise ValueError("async")

    @sio.on("unsendable")
    def unsendable(socket: socketwire.Socket) -> object:
        return object()

    client = await open_client(await start_server(sio), clients)
    sid = client.id
    for event in ("sync", "async", "unsendable"):
        with pytest.raises(socketwire.AckTimeout):
            await client.emit_with_ack(event, timeout=0.3)
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in failures] == [
        f"sid={sid} nsp=/: handler {sync_fails.__qualname__} failed on event 'sync'",
        f"sid={sid} nsp=/: handler {async_fails.__qualname__} failed on event 'async'",
        f"sid={sid} nsp=/: ack 2 not sent, the handler's answer cannot be sent: "
        "data is not JSON-serialisable: Type is not JSON serializable: object",
    ]
    assert [r.exc_info is not None for r in failures] == [True, True, False]


@pytest.mark.parametrize("log_connections", [False, True])
async def test_connections_are_logged_with_their_reason(
    start_server: ServerStarter,
    clients: list[Client],
    caplog: pytest.LogCaptureFixture,
    log_connections: bool,
) -> None:
    caplog.set_level(logging.DEBUG, logger="socketwire.server")
    sio = socketwire.Server(log_connections=log_connections)
    gone = asyncio.Event()
    sio.on("disconnect", lambda socket, reason: gone.set())
    client = await open_client(await start_server(sio), clients)
    sid = client.id
    await client.disconnect()
    await asyncio.wait_for(gone.wait(), WAIT)
    lines = [(r.levelno, r.getMessage()) for r in caplog.records if f"sid={sid}" in r.getMessage()]
    level = logging.INFO if log_connections else logging.DEBUG
    assert lines == [
        (level, f"sid={sid} nsp=/: connected (websocket from 127.0.0.1)"),
        (level, f"sid={sid} nsp=/: disconnected (client namespace disconnect)"),
    ]
