"""``socketwire.nodes`` in one process: node ids, the table in a real Redis,
and what a node answers when an owner cannot be reached (two in-process
servers on the test's redis-server)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from redis.asyncio import Redis

import socketwire
from socketwire.nodes import NodeAddress, RedisSessionRouter, new_node_id, node_of, valid_node_id
from socketwire.serve.forward import FORWARDED_HEADER
from tests.cluster.conftest import RedisServer
from tests.test_cli import env
from tests.waits import scaled

from .test_nodes import http


def test_node_ids() -> None:
    for _ in range(20):
        node = new_node_id()
        assert valid_node_id(node) and not node.isdigit()
    assert node_of("n1a2b.Zx-9_") == "n1a2b"
    assert node_of("3.abc") is None  # digits name a worker of --workers
    assert node_of("plain") is None and node_of("bad!.x") is None
    assert not valid_node_id("x" * 41) and not valid_node_id("")


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="node_id"):
        RedisSessionRouter(node_id="12")
    with pytest.raises(ValueError, match="http://HOST:PORT"):
        RedisSessionRouter(advertise="tcp://10.0.0.1:3000")
    with pytest.raises(ValueError, match="ttl"):
        RedisSessionRouter(ttl=0)
    address = NodeAddress("https://node.example")
    assert (address.host, address.port, address.secure) == ("node.example", 443, True)


async def test_the_table_and_unreachable_owners(redis_server: RedisServer, key: str) -> None:
    redis = Redis.from_url(redis_server.url)
    routing = RedisSessionRouter(redis, key=key, node_id="here", ttl=30)
    sio = socketwire.Server(session_routing=routing)
    try:
        port = await sio.listen(0, "127.0.0.1")
        url = f"http://127.0.0.1:{port}"
        # Announced at its bound address, with a time to live.
        assert await redis.get(f"{key}-nodes:here") == url.encode()
        assert 0 < await redis.pttl(f"{key}-nodes:here") <= 30_000
        # Its sessions are named after it.
        status, body = await http(url, "GET", "/socket.io/?EIO=4&transport=polling")
        assert status == 200 and node_of(json.loads(body[1:])["sid"]) == "here"
        # A node the table does not know, and one that does not answer.
        await redis.set(f"{key}-nodes:dead", "http://127.0.0.1:1")
        for owner in ("nowhere", "dead", "dead"):
            query = f"/socket.io/?EIO=4&transport=polling&sid={owner}.abc"
            status, body = await http(url, "GET", query)
            assert status == 400 and b"Session ID unknown" in body
        stats = routing.stats()
        assert stats["node"] == "here" and stats["gone"] == 3 and stats["forwarded"] == 3
        # A request forwarded once already is never forwarded again.
        host, port_text = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port_text))
        writer.write(
            f"GET /socket.io/?EIO=4&transport=polling&sid=dead.abc HTTP/1.1\r\nHost: x\r\n"
            f"{FORWARDED_HEADER}: other\r\nConnection: close\r\n\r\n".encode()
        )
        answer = await asyncio.wait_for(reader.read(), scaled(5))
        writer.close()
        assert answer.startswith(b"HTTP/1.1 400") and b"Session ID unknown" in answer
        assert routing.stats()["forwarded"] == 3
    finally:
        await sio.close()
    # A node that stops leaves the table.
    assert await redis.get(f"{key}-nodes:here") is None
    await redis.aclose()


def test_the_command_line_checks_the_node_options(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("import socketwire\nsio = socketwire.Server()\n")
    for args, message in (
        (["--node-id", "42", "--session-routing", "redis://x"], "not all digits"),
        (["--node-id", "a"], "need --session-routing"),
        (["--session-routing", "redis://x", "--advertise-url", "ftp://x"], "--advertise-url"),
        (["--workers", "2", "--session-routing", "redis://x"], "without --workers"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "socketwire", "app:sio", "--port", "0", *args],
            cwd=tmp_path,
            env=env(),
            capture_output=True,
            text=True,
            timeout=scaled(30),
            check=False,
        )
        assert done.returncode == 2, done.stderr
        assert message in done.stderr
