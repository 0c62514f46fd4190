"""Resource bounds of the Socket.IO server: what a closed connection leaves behind.

Real sockets on 127.0.0.1 (port 0) and raw Engine.IO exchanges
(``tests/integration/rawclient.py``); waits are bounded (``tests.waits.WAIT``).
"""

from __future__ import annotations

import asyncio
import gc

import socketwire
from socketwire.server.connection import Connection
from tests.conftest import ServerStarter
from tests.integration.rawclient import WebSocketClient
from tests.waits import WAIT

WS = "/socket.io/?EIO=4&transport=websocket"


def live_connections() -> int:
    gc.collect()
    return sum(1 for obj in gc.get_objects() if type(obj) is Connection)


async def wait_until_no_engine_clients(sio: socketwire.Server) -> None:
    async def poll() -> None:
        while sio.engine.clients:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), WAIT)


async def test_closed_connections_are_freed_before_the_connect_timeout(
    start_server: ServerStarter,
) -> None:
    # A connect timeout far longer than the test: the connections must be freed
    # because they closed, not because their deadline passed.
    sio = socketwire.Server(connect_timeout=3600)
    url = await start_server(sio)
    before = live_connections()
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
