"""socketwire's browser client, run by Node 20, against socketwire's server and Node's socket.io.

``scenario.mjs`` loads the packaged client (``src/socketwire/static``) with
Node's fetch and the ``ws`` package as the WebSocket; each of its steps prints
one JSON line. The peers are those of ``tests/client/peers.py``: the same
handlers on both servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.client.peers import NODE_MODULES, NodePeer, SocketwirePeer
from tests.conftest import run_node
from tests.waits import WAIT

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")

SCENARIO = Path(__file__).parent / "scenario.mjs"
STEPS = ["connect", "acks", "binary", "namespaces", "rooms", "catchall", "reasons", "retries"]
Peer = NodePeer | SocketwirePeer


def make_peer(kind: str, *, recovery: bool = False, fast_pings: bool = False) -> Peer:
    if kind == "node":
        flags = ["--recovery"] if recovery else []
        if fast_pings:
            flags += ["--ping-interval", "300", "--ping-timeout", "200"]
        return NodePeer(*flags)
    options: dict[str, Any] = {}
    if recovery:
        options["connection_state_recovery"] = {"max_disconnection_duration": 60}
    if fast_pings:
        options.update(ping_interval=0.3, ping_timeout=0.2)
    return SocketwirePeer(**options)


@pytest.fixture(params=["socketwire", "node"])
def peer_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@contextlib.asynccontextmanager
async def started(peer: Peer) -> AsyncIterator[Peer]:
    """The peer, listening, for the ``async with`` block."""
    await peer.start()
    try:
        yield peer
    finally:
        await peer.stop()


def failures(lines: list[Any], steps: list[str]) -> list[Any]:
    """The steps that did not print ``ok`` (with their error), [] when all passed."""
    done = {x["step"]: x for x in lines if isinstance(x, dict) and "step" in x}
    return [
        done.get(s, {"step": s, "error": "not run"}) for s in steps if "ok" not in done.get(s, {})
    ]


@pytest.mark.parametrize("mode", ["polling", "websocket", "upgrade"])
async def test_scenario(peer_kind: str, mode: str) -> None:
    async with started(make_peer(peer_kind)) as peer:
        lines = await run_node(SCENARIO, peer.url, mode, "esm", timeout=6 * WAIT)
        assert failures(lines, STEPS) == []


async def test_classic_script(peer_kind: str) -> None:
    """socket.io.js, the readable classic script, defines the global ``io``."""
    async with started(make_peer(peer_kind)) as peer:
        steps = ["connect", "acks", "binary"]
        lines = await run_node(SCENARIO, peer.url, "upgrade", "classic", *steps, timeout=6 * WAIT)
        assert failures(lines, steps) == []


@pytest.mark.parametrize("mode", ["polling", "upgrade"])
async def test_msgpack_build(peer_kind: str, mode: str) -> None:
    """socket.io.msgpack.min.js against servers speaking socket.io-msgpack-parser."""
    server: Peer = (
        NodePeer("--msgpack") if peer_kind == "node" else SocketwirePeer(parser="msgpack")
    )
    async with started(server) as peer:
        steps = ["connect", "acks", "binary", "namespaces", "rooms", "retries"]
        lines = await run_node(SCENARIO, peer.url, mode, "msgpack", *steps, timeout=6 * WAIT)
        assert failures(lines, steps) == []


@pytest.mark.parametrize("mode", ["polling", "upgrade"])
async def test_polling_writes_are_split_at_max_payload(peer_kind: str, mode: str) -> None:
    server: Peer = (
        NodePeer("--max-http-buffer-size", "2000")
        if peer_kind == "node"
        else SocketwirePeer(max_http_buffer_size=2000)
    )
    async with started(server) as peer:
        lines = await run_node(SCENARIO, peer.url, mode, "esm", "maxpayload", timeout=3 * WAIT)
        assert failures(lines, ["maxpayload"]) == []


@pytest.mark.parametrize("mode", ["polling", "websocket"])
async def test_recovery(peer_kind: str, mode: str) -> None:
    async with started(make_peer(peer_kind, recovery=True)) as peer:
        lines = await run_node(SCENARIO, peer.url, mode, "esm", "recovery", timeout=3 * WAIT)
        assert failures(lines, ["recovery"]) == []


@pytest.mark.parametrize("mode", ["polling", "websocket"])
async def test_ping_timeout(peer_kind: str, mode: str) -> None:
    async with started(make_peer(peer_kind, fast_pings=True)) as peer:
        lines = await run_node(SCENARIO, peer.url, mode, "esm", "pingtimeout", timeout=3 * WAIT)
        assert failures(lines, ["pingtimeout"]) == []


@pytest.mark.parametrize("mode", ["polling", "websocket"])
async def test_reconnects_after_server_restart(peer_kind: str, mode: str) -> None:
    peer = make_peer(peer_kind)
    await peer.start()
    env = dict(os.environ, NODE_PATH=str(NODE_MODULES))
    proc = await asyncio.create_subprocess_exec(
        "node", str(SCENARIO), peer.url, mode, "esm", "restart",
        stdout=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    lines: list[Any] = []
    try:
        while True:
            raw = await asyncio.wait_for(proc.stdout.readline(), 3 * WAIT)
            if not raw:
                break
            line = json.loads(raw)
            lines.append(line)
            if line == {"ready": "restart"}:
                port = peer.port
                await peer.stop()
                await peer.start(port)
        await asyncio.wait_for(proc.wait(), WAIT)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await peer.stop()
    assert failures(lines, ["restart"]) == []
