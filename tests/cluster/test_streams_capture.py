"""The byte vectors of ``tests/core/test_cluster_stream_format.py``, captured again
from Node's ``@socket.io/redis-streams-adapter`` on the test Redis: if a Node
upgrade changed what it writes, this test says so."""

from __future__ import annotations

import asyncio
import json
import os

from tests.core.test_cluster_stream_format import ENTRIES, EPHEMERAL, HASHES, SESSION

from .conftest import JS_DIR, NODE_MODULES, TIMEOUT, RedisServer


async def test_node_writes_the_vectors(redis_server: RedisServer, key: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        "node",
        str(JS_DIR / "streams_capture.js"),
        "--redis-port",
        str(redis_server.port),
        "--key",
        key,
        stdout=asyncio.subprocess.PIPE,
        env=dict(os.environ, NODE_PATH=str(NODE_MODULES)),
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 2 * TIMEOUT)
    assert proc.returncode == 0
    captured = json.loads(out)
    assert [fields for _, fields in captured["entries"]] == [fields for fields, _, _ in ENTRIES]
    assert captured["session"] == SESSION
    assert bytes.fromhex(captured["ephemeral"]) == EPHEMERAL
    assert captured["hashes"] == HASHES
