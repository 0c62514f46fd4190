"""The Engine.IO layer on its own, driven by the official engine.io-client.

``EngineServer`` and its sockets take listeners as the rest of the library does
(``on``, usable as a decorator), and the engine listens by itself (``listen``,
``run``) like Node's ``engine.io`` package.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import pytest

from socketwire.core.websocket.frames import Opcode
from socketwire.engine.server import EngineServer
from socketwire.engine.socket import EngineSocket, RequestInfo
from tests.conftest import NODE_MODULES, run_node

JS = Path(__file__).parent / "js"


@pytest.mark.parametrize(
    ("transports", "final"),
    [("websocket", "websocket"), ("polling", "polling"), ("polling,websocket", "websocket")],
)
async def test_engine_echo_with_official_client(transports: str, final: str) -> None:
    closed: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    got: list[tuple[bytes, bool]] = []
    engine = EngineServer()

    @engine.on("connection")
    def connection(sock: EngineSocket) -> None:
        sock.send("welcome")

        @sock.on("message")
        def message(data: bytes, binary: bool) -> None:
            got.append((data, binary))
            if binary:
                sock.send(bytes(reversed(data)))
            else:
                sock.send("echo:" + data.decode())

        @sock.on("close")
        def close(reason: str, description: object) -> None:
            if not closed.done():
                closed.set_result(reason)

    port = await engine.listen(0, "127.0.0.1")
    try:
        lines = await run_node(JS / "engine_echo.js", f"http://127.0.0.1:{port}", transports)
        reason = await asyncio.wait_for(closed, 5)
    finally:
        engine.close()
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


async def test_several_listeners_in_order_and_off() -> None:
    """Every listener of an event runs, in registration order; ``off`` removes one
    (or all), and each connection listener sees each session."""
    engine = EngineServer()
    seen: list[tuple[str, object]] = []
    closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def first(data: bytes, binary: bool) -> None:
        seen.append(("first", data))

    def second(data: bytes, binary: bool) -> None:
        seen.append(("second", data))

    def removed(data: bytes, binary: bool) -> None:
        seen.append(("removed", data))

    @engine.on("connection")
    def connection(sock: EngineSocket) -> None:
        sock.send("welcome")
        # The client closes once it has three messages: two echoes and "welcome".
        sock.on("message", lambda data, binary: sock.send(data if binary else data.decode()))
        sock.on("message", first)
        sock.on("message", removed)
        sock.on("message", second)
        sock.off("message", removed)
        assert sock.listeners("message")[1:] == [first, second]
        sock.on("close", lambda reason, description: seen.append(("close", reason)))
        sock.on("close", lambda reason, description: closed.set_result(None))

    @engine.on("connection")
    def also(sock: EngineSocket) -> None:
        seen.append(("connection", sock.id))

    assert engine.listeners("connection") == [connection, also]
    port = await engine.listen(0, "127.0.0.1")
    try:
        await run_node(JS / "engine_echo.js", f"http://127.0.0.1:{port}", "websocket")
        await asyncio.wait_for(closed, 5)
    finally:
        engine.close()
    assert [name for name, _ in seen] == [
        "connection",
        "first",
        "second",
        "first",
        "second",
        "close",
    ]
    assert seen[1:5] == [
        ("first", b"hello"),
        ("second", b"hello"),
        ("first", b"\x01\x02\x03"),
        ("second", b"\x01\x02\x03"),
    ]
    assert seen[-1] == ("close", "transport close")


def test_socket_listeners_without_a_network() -> None:
    """The listener registry of a socket, driven through its WebSocket handler."""
    engine = EngineServer()
    request = RequestInfo(headers={}, query={}, address="127.0.0.1", secure=False, url="/")
    sock = EngineSocket(engine, "sid", "websocket", request)
    got: list[object] = []

    def one(data: bytes, binary: bool) -> None:
        got.append(("one", data, binary))

    def two(data: bytes, binary: bool) -> None:
        got.append(("two", data, binary))

    assert sock.on("message", one) is one
    sock.ws_message(Opcode.TEXT, b"4a")
    sock.on("message", two)
    sock.ws_message(Opcode.BINARY, b"b")
    sock.off("message", one)
    sock.ws_message(Opcode.TEXT, b"4c")
    sock.off("message")
    sock.ws_message(Opcode.TEXT, b"4d")
    assert got == [
        ("one", b"a", False),
        ("one", b"b", True),
        ("two", b"b", True),
        ("two", b"c", False),
    ]
    assert sock.listeners("message") == []

    reasons: list[str] = []
    sock.on("close", lambda reason, description: reasons.append(reason))
    sock.close_now("forced close")
    sock.close_now("forced close")
    assert reasons == ["forced close"]
    # A closed socket keeps no listener: none would ever be called.
    sock.on("message", one)
    assert sock.listeners("message") == []


def test_unknown_events_are_refused() -> None:
    engine = EngineServer()
    with pytest.raises(ValueError, match="unknown engine event"):
        engine.on("message", print)
    request = RequestInfo(headers={}, query={}, address="127.0.0.1", secure=False, url="/")
    sock = EngineSocket(engine, "sid", "polling", request)
    with pytest.raises(ValueError, match=r"unknown Engine\.IO socket event"):
        sock.on("connection", print)
    with pytest.raises(ValueError, match=r"unknown Engine\.IO socket event"):
        sock.off("drain")


async def test_engine_hooks_register_as_decorators() -> None:
    engine = EngineServer()
    seen: list[str] = []

    @engine.on("initial_headers")
    def initial(headers: list[tuple[str, str]], req: object) -> None:
        headers.append(("X-Initial", "1"))
        seen.append("initial")

    @engine.on("connection")
    def connection(sock: EngineSocket) -> None:
        seen.append("connection")
        sock.on("message", lambda data, binary: sock.close())

    port = await engine.listen(0, "127.0.0.1")
    try:
        await run_node(JS / "engine_echo.js", f"http://127.0.0.1:{port}", "polling")
    finally:
        engine.close()
    assert seen[:2] == ["initial", "connection"]
    engine.off("initial_headers", initial)
    assert engine.listeners("initial_headers") == []


RUN_SCRIPT = """
import logging, sys
from socketwire.engine.server import EngineServer

logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
engine = EngineServer()

@engine.on("connection")
def connection(sock):
    sock.send("welcome")
    sock.on("message", lambda data, binary: sock.send(
        bytes(reversed(data)) if binary else "echo:" + data.decode()))

engine.run(0, "127.0.0.1")
print("stopped", flush=True)
"""


async def test_engine_run_serves_until_sigterm() -> None:
    """``engine.run`` owns its process: it serves until SIGTERM, then returns."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        RUN_SCRIPT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(os.environ, NODE_PATH=str(NODE_MODULES)),
    )
    try:
        assert proc.stderr is not None and proc.stdout is not None
        port = None
        while port is None:
            line = (await asyncio.wait_for(proc.stderr.readline(), 20)).decode()
            assert line, "the engine exited before listening"
            found = re.search(r"engine listening on 127\.0\.0\.1:(\d+)/engine\.io/", line)
            if found:
                port = int(found.group(1))
        lines = await run_node(JS / "engine_echo.js", f"http://127.0.0.1:{port}", "websocket")
        assert {"text": "echo:hello"} in lines and {"binary": [3, 2, 1]} in lines
        proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(proc.communicate(), 20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0
    assert out.decode().split() == ["stopped"]
