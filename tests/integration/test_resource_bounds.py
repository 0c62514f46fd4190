"""Resource bounds of the Socket.IO server: what a closed connection leaves behind.

Real sockets on 127.0.0.1 (port 0) and raw Engine.IO exchanges
(``tests/integration/rawclient.py``); waits are bounded (``tests.waits.WAIT``).
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
from collections.abc import Callable

import pytest

import socketwire
from socketwire.engine.socket import EngineSocket
from socketwire.server import listeners as server_listeners
from socketwire.server.connection import Connection
from tests.conftest import ServerStarter
from tests.integration.rawclient import WebSocketClient, http_request
from tests.waits import WAIT

WS = "/socket.io/?EIO=4&transport=websocket"


def live_connections() -> int:
    gc.collect()
    return sum(1 for obj in gc.get_objects() if type(obj) is Connection)


def live_engine_sockets() -> int:
    gc.collect()
    return sum(1 for obj in gc.get_objects() if type(obj) is EngineSocket)


async def wait_until_no_engine_clients(sio: socketwire.Server) -> None:
    async def poll() -> None:
        while sio.engine.clients:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), WAIT)


async def test_closed_connections_are_freed_before_the_connect_timeout(
    start_server: ServerStarter,
) -> None:
    # A connect timeout and a ping interval far longer than the test: the
    # connections must be freed because they closed, not because a deadline passed.
    sio = socketwire.Server(connect_timeout=3600, ping_interval=3600)
    url = await start_server(sio)
    before = live_connections()
    engine_before = live_engine_sockets()
    cycles = 200
    for _ in range(cycles):
        ws = await WebSocketClient.connect(url, WS)
        assert (await ws.recv_text()).startswith("0{")
        ws.send_text("1")  # Engine.IO close packet
        await ws.wait_closed()
        await ws.aclose()
    await wait_until_no_engine_clients(sio)
    # The deadlines are still queued, but hold nothing alive.
    assert len(sio._connect_timer.queue) == cycles
    assert live_connections() - before == 0
    assert live_engine_sockets() - engine_before == 0

    # A healthy client still connects and round-trips.
    @sio.on("echo")
    def echo(socket: socketwire.Socket, value: object) -> object:
        return value

    ws = await WebSocketClient.connect(url, WS)
    assert (await ws.recv_text()).startswith("0{")
    ws.send_text("40")
    assert (await ws.recv_text()).startswith("40{")
    ws.send_text('421["echo","hi"]')
    assert await ws.recv_text() == '431["hi"]'
    assert live_connections() - before == 1
    await ws.aclose()


async def test_connect_timeout_still_closes_an_idle_connection(
    start_server: ServerStarter,
) -> None:
    sio = socketwire.Server(connect_timeout=0.2)
    url = await start_server(sio)
    ws = await WebSocketClient.connect(url, WS)
    assert (await ws.recv_text()).startswith("0{")
    await ws.wait_closed()
    await wait_until_no_engine_clients(sio)
    await ws.aclose()


async def open_joined(url: str, nsp: str = "") -> WebSocketClient:
    ws = await WebSocketClient.connect(url, WS)
    assert (await ws.recv_text()).startswith("0{")
    prefix = f"40{nsp}," if nsp else "40"
    ws.send_text(prefix)
    assert (await ws.recv_text()).startswith(prefix + "{")
    return ws


async def test_duplicate_connect_while_pending_is_ignored(start_server: ServerStarter) -> None:
    sio = socketwire.Server()
    url = await start_server(sio)
    chat = sio.of("/chat")
    release = asyncio.Event()
    calls = 0

    @chat.use
    async def slow(socket: socketwire.Socket) -> None:
        nonlocal calls
        calls += 1
        await release.wait()

    @chat.on("echo")
    def echo(socket: socketwire.Socket, value: object) -> object:
        return value

    ws = await WebSocketClient.connect(url, WS)
    assert (await ws.recv_text()).startswith("0{")
    duplicates = 500
    for _ in range(duplicates):
        ws.send_text("40/chat,")
    # A healthy client joins and round-trips meanwhile.
    other = await open_joined(url)
    other.send_text('40/chat,{"x":1}')
    await asyncio.wait_for(_until(lambda: calls == 2), WAIT)
    # One middleware run per connection: the 499 repeats were dropped on arrival.
    assert calls == 2
    assert len(chat.sockets) == 0

    release.set()
    assert (await ws.recv_text()).startswith("40/chat,{")
    assert (await other.recv_text()).startswith("40/chat,{")
    assert len(chat.sockets) == 2
    ws.send_text('42/chat,1["echo","hi"]')
    assert await ws.recv_text() == '43/chat,1["hi"]'

    # Closing the connection frees its one socket: nothing stays in the namespace.
    ws.send_text("1")
    await ws.wait_closed()
    await ws.aclose()
    await asyncio.wait_for(_until(lambda: len(chat.sockets) == 1), WAIT)
    assert len(chat.adapter.sids) == 1
    other.send_text('42/chat,2["echo","still"]')
    assert await other.recv_text() == '43/chat,2["still"]'
    await other.aclose()


async def test_socket_pending_when_its_connection_closes_never_joins(
    start_server: ServerStarter,
) -> None:
    sio = socketwire.Server()
    url = await start_server(sio)
    release = asyncio.Event()
    entered = asyncio.Event()
    finished = asyncio.Event()

    @sio.use
    async def slow(socket: socketwire.Socket) -> None:
        entered.set()
        await release.wait()

    @sio.use
    def last(socket: socketwire.Socket) -> None:
        # Runs in the same step as the join attempt that follows the middlewares.
        finished.set()

    ws = await WebSocketClient.connect(url, WS)
    assert (await ws.recv_text()).startswith("0{")
    ws.send_text("40")
    await asyncio.wait_for(entered.wait(), WAIT)
    ws.send_text("1")
    await ws.wait_closed()
    await ws.aclose()
    await wait_until_no_engine_clients(sio)
    release.set()
    await asyncio.wait_for(finished.wait(), WAIT)
    assert len(sio.sockets.sockets) == 0
    assert len(sio.sockets.adapter.sids) == 0


async def test_connect_to_a_joined_namespace_closes_the_connection(
    start_server: ServerStarter,
) -> None:
    sio = socketwire.Server()
    url = await start_server(sio)
    ws = await open_joined(url)
    ws.send_text("40")
    await ws.wait_closed()
    await ws.aclose()
    await wait_until_no_engine_clients(sio)
    assert len(sio.sockets.sockets) == 0


async def _until(predicate: Callable[[], bool]) -> None:
    while not predicate():
        await asyncio.sleep(0.005)


async def test_repeated_handler_failures_are_summarised(
    start_server: ServerStarter, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server_listeners.runner, "failure_log_interval", 0.3)
    sio = socketwire.Server()
    url = await start_server(sio)

    @sio.on("ferret")
    def ferret(socket: socketwire.Socket) -> str:  # takes no argument: every call fails
        return "woot"

    @sio.on("echo")
    def echo(socket: socketwire.Socket, value: object) -> object:
        return value

    caplog.set_level(logging.INFO, logger="socketwire.server")
    ws = await open_joined(url)
    repeats = 1000
    for _ in range(repeats):
        ws.send_text('42["ferret","tobi"]')
    # Packets are handled in order: once this answer arrives, all failed.
    ws.send_text('421["echo","hi"]')
    assert await ws.recv_text() == '431["hi"]'
    tracebacks = [r for r in caplog.records if r.exc_info is not None]
    assert len(tracebacks) == 1
    assert "ferret" in tracebacks[0].getMessage()

    def summaries() -> list[str]:
        return [r.getMessage() for r in caplog.records if "more times" in r.getMessage()]

    await asyncio.wait_for(_until(lambda: bool(summaries())), WAIT)
    assert summaries() == [
        f"handler {ferret.__qualname__} failed {repeats - 1} more times on 'ferret' "
        "with TypeError in the last 0.3 s (tracebacks omitted)"
    ]
    assert len([r for r in caplog.records if r.exc_info is not None]) == 1
    # The connection is still healthy.
    ws.send_text('422["echo","again"]')
    assert await ws.recv_text() == '432["again"]'
    await ws.aclose()


async def test_lone_surrogate_is_echoed_as_node_does(start_server: ServerStarter) -> None:
    sio = socketwire.Server()
    url = await start_server(sio)

    @sio.on("echo")
    def echo(socket: socketwire.Socket, value: object) -> object:
        socket.emit("echoed", value)
        return value

    ws = await open_joined(url)
    # JSON.stringify("hi \ud83d") as the official client writes it.
    ws.send_text('421["echo","hi \\ud83d"]')
    assert await ws.recv_text() == '42["echoed","hi \\ud83d"]'
    assert await ws.recv_text() == '431["hi \\ud83d"]'
    ws.send_text('422["echo","ok"]')
    assert await ws.recv_text() == '42["echoed","ok"]'
    assert await ws.recv_text() == '432["ok"]'
    await ws.aclose()


def _echo_server() -> socketwire.Server:
    sio = socketwire.Server()

    @sio.on("echo")
    def echo(socket: socketwire.Socket, value: object) -> object:
        socket.emit("echoed", value)
        return value

    return sio


async def test_invalid_utf8_in_a_polling_body_reads_as_replacement_characters(
    start_server: ServerStarter,
) -> None:
    url = await start_server(_echo_server())
    polling = "/socket.io/?EIO=4&transport=polling"
    resp = await http_request(url, "GET", polling)
    sid = json.loads(resp.body[1:])["sid"]
    session = f"{polling}&sid={sid}"
    assert (await http_request(url, "POST", session, body=b"40")).body == b"ok"
    assert (await http_request(url, "GET", session)).body.startswith(b"40{")
    # "\xff" is no UTF-8; "\xed\xa0\x80" is an encoded surrogate (CESU-8).
    resp = await http_request(url, "POST", session, body=b'421["echo","a\xffb\xed\xa0\x80"]')
    assert (resp.status, resp.body) == (200, b"ok")
    resp = await http_request(url, "GET", session)
    replaced = "a\ufffdb\ufffd\ufffd\ufffd".encode()
    assert resp.body.split(b"\x1e") == [
        b'42["echoed","' + replaced + b'"]',
        b'431["' + replaced + b'"]',
    ]


async def test_numbers_and_ack_ids_that_node_accepts(start_server: ServerStarter) -> None:
    url = await start_server(_echo_server())
    ws = await open_joined(url)
    # JSON.parse reads 1e400 as Infinity, which JSON.stringify writes as null.
    ws.send_text('421["echo",1e400]')
    assert await ws.recv_text() == '42["echoed",null]'
    assert await ws.recv_text() == "431[null]"
    # Ack ids past 15 digits are answered with the same digits.
    ws.send_text('4212345678901234567890123["echo","x"]')
    assert await ws.recv_text() == '42["echoed","x"]'
    assert await ws.recv_text() == '4312345678901234567890123["x"]'
    # 254 levels (the event array and 253 inside it) go out as they came in.
    deep = "[" * 253 + "]" * 253
    ws.send_text(f'422["echo",{deep}]')
    assert await ws.recv_text() == f'42["echoed",{deep}]'
    assert await ws.recv_text() == f"432[{deep}]"
    await ws.aclose()


async def test_too_deep_to_send_back_is_refused_on_arrival(
    start_server: ServerStarter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="socketwire")
    sio = _echo_server()
    url = await start_server(sio)
    healthy = await open_joined(url)
    bad = await open_joined(url)
    deep = "[" * 254 + "]" * 254
    bad.send_text(f'421["echo",{deep}]')
    await bad.wait_closed()
    lines = [r.getMessage() for r in caplog.records if "nested deeper" in r.getMessage()]
    assert len(lines) == 1 and "payload nested deeper than 254 levels" in lines[0]
    assert all(r.exc_info is None for r in caplog.records)
    healthy.send_text('421["echo","still here"]')
    assert await healthy.recv_text() == '42["echoed","still here"]'
    assert await healthy.recv_text() == '431["still here"]'
    await healthy.aclose()
    await bad.aclose()
