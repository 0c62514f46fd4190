"""The Engine.IO layer on its own, driven by the official engine.io-client."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from socketwire.engine.server import EngineServer
from socketwire.engine.socket import EngineSocket
from socketwire.serve import listen_engine
from tests.conftest import run_node

JS = Path(__file__).parent / "js"


@pytest.mark.parametrize(
    ("transports", "final"),
    [("websocket", "websocket"), ("polling", "polling"), ("polling,websocket", "websocket")],
)
async def test_engine_echo_with_official_client(transports: str, final: str) -> None:
    closed: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    got: list[tuple[bytes, bool]] = []

    def on_connection(sock: EngineSocket) -> None:
        sock.send("welcome")

        def on_message(data: bytes, binary: bool) -> None:
            got.append((data, binary))
            if binary:
                sock.send(bytes(reversed(data)))
            else:
                sock.send("echo:" + data.decode())

        def on_close(reason: str, description: object) -> None:
            if not closed.done():
                closed.set_result(reason)

        sock.on_message = on_message
        sock.on_close = on_close

    engine = EngineServer(on_connection=on_connection)
    server = await listen_engine(engine, 0, "127.0.0.1")
    port = server.sockets[0].getsockname()[1]
    try:
        lines = await run_node(JS / "engine_echo.js", f"http://127.0.0.1:{port}", transports)
        reason = await asyncio.wait_for(closed, 5)
    finally:
        engine.close()
        server.close()
    assert lines[0]["open"]
    messages = [x for x in lines if "text" in x or "binary" in x]
    assert {"text": "welcome"} in messages
    assert {"text": "echo:hello"} in messages
    assert {"binary": [3, 2, 1]} in messages
    assert got == [(b"hello", False), (b"\x01\x02\x03", True)]
    assert {"transport": final} in lines
    if transports == "polling,websocket":
        assert {"upgrade": "websocket"} in lines
    assert reason == "transport close"
    assert lines[-1] == {"close": "forced close"}
    assert engine.clients == {}
