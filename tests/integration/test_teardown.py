"""A closed connection leaves no cyclic garbage behind.

Every per-connection object of the server (HTTP protocol, WebSocket, Engine.IO
socket and session, Socket.IO connection and sockets) must be freed by reference
counting when the connection ends, however it ends. Cycles would leave them to
the cycle collector, whose full passes walk every live object: the bigger the
server, the more each leftover costs (see bench/RESULTS.md).

The collector is disabled while the connections open and close, then one
``gc.collect()`` with ``DEBUG_SAVEALL`` shows what only it could have freed.
"""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import AsyncIterator, Iterator

import pytest

import socketwire
from tests.conftest import ServerStarter
from tests.integration.rawclient import WebSocketClient, http_request

ROUNDS = 20
WS_TARGET = "/socket.io/?EIO=4&transport=websocket"


# What the server allocates per connection (server-wide objects of earlier tests
# may still be waiting for the collector; they are not this test's business).
PER_CONNECTION = {
    "Connection",
    "EngineSession",
    "EngineSocket",
    "HttpConnection",
    "PacketDecoder",
    "Request",
    "RequestInfo",
    "Socket",
    "WebSocketConnection",
    "WebSocketProtocol",
}


def _server_garbage() -> dict[str, int]:
    """Per-connection objects that only the cycle collector could free."""
    gc.collect()
    counts: dict[str, int] = {}
    for obj in gc.garbage:
        cls = type(obj)
        if cls.__module__.startswith("socketwire.") and cls.__qualname__ in PER_CONNECTION:
            counts[cls.__qualname__] = counts.get(cls.__qualname__, 0) + 1
    return counts


@pytest.fixture
def collector_off() -> Iterator[None]:
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    gc.garbage.clear()
    try:
        yield
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if was_enabled:
            gc.enable()


@pytest.fixture
async def server(
    collector_off: None, start_server: ServerStarter
) -> AsyncIterator[tuple[socketwire.Server, str]]:
    sio = socketwire.Server()

    @sio.on("echo")
    def echo(socket: socketwire.Socket, *args: object) -> tuple[object, ...]:
        return args

    @sio.on("bye")
    def bye(socket: socketwire.Socket) -> None:
        socket.disconnect(close=True)

    @sio.of("/other").on("leave")
    def leave(socket: socketwire.Socket) -> None:
        socket.disconnect()

    url = await start_server(sio)
    yield sio, url


async def _open(url: str) -> WebSocketClient:
    ws = await WebSocketClient.connect(url, WS_TARGET)
    assert (await ws.recv_text()).startswith("0{")
    ws.send_text("40")
    assert (await ws.recv_text()).startswith("40{")
    ws.send_text("40/other,")
    assert (await ws.recv_text()).startswith("40/other,{")
    ws.send_text('421["echo","x"]')
    assert await ws.recv_text() == '431["x"]'
    return ws


async def _wait_gone(sio: socketwire.Server) -> None:
    async def gone() -> None:
        while sio.engine.clients:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(gone(), 5)


async def test_websocket_closed_by_the_client(server: tuple[socketwire.Server, str]) -> None:
    sio, url = server
    for _ in range(ROUNDS):
        ws = await _open(url)
        ws.send_close(1000)
        await ws.wait_closed()
        await ws.aclose()
    await _wait_gone(sio)
    assert _server_garbage() == {}, "cycles left by closed connections"


async def test_websocket_dropped(server: tuple[socketwire.Server, str]) -> None:
    sio, url = server
    for _ in range(ROUNDS):
        ws = await _open(url)
        await ws.aclose()
    await _wait_gone(sio)
    assert _server_garbage() == {}, "cycles left by closed connections"


async def test_closed_by_the_server(server: tuple[socketwire.Server, str]) -> None:
    sio, url = server
    for _ in range(ROUNDS):
        ws = await _open(url)
        ws.send_text('42/other,["leave"]')
        assert await ws.recv_text() == "41/other,"
        ws.send_text('42["bye"]')
        await ws.wait_closed()
        await ws.aclose()
    await _wait_gone(sio)
    assert _server_garbage() == {}, "cycles left by closed connections"


async def test_polling_session_closed(server: tuple[socketwire.Server, str]) -> None:
    sio, url = server
    for _ in range(ROUNDS):
        opened = await http_request(url, "GET", "/socket.io/?EIO=4&transport=polling")
        sid = json.loads(opened.body[1:])["sid"]
        target = f"/socket.io/?EIO=4&transport=polling&sid={sid}"
        assert (await http_request(url, "POST", target, body=b"40")).status == 200
        answer = await http_request(url, "GET", target)
        assert answer.body.startswith(b"40{")
        assert (await http_request(url, "POST", target, body=b"1")).status == 200
    await _wait_gone(sio)
    assert _server_garbage() == {}, "cycles left by closed connections"
