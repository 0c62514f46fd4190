"""A socketwire app mounted in another ASGI app: adapters started from the host's lifespan.

Starlette and FastAPI run no lifespan of mounted apps. Two uvicorn processes
serve ``tests/cluster/mounted_app.py`` on one Redis; the host's lifespan runs
``async with sio.lifespan()``, so both servers are in the cluster before any
Socket.IO request, and they agree on ``fetch_sockets`` from the first request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

import socketwire
from socketwire.adapters.redis import RedisAdapter, create_adapter
from socketwire.client import Client
from tests.cluster.conftest import TIMEOUT, RedisServer

ROOT = Path(__file__).resolve().parents[2]


@asynccontextmanager
async def mounted_server(redis_url: str, key: str) -> AsyncIterator[str]:
    """One process serving the host app; yields its base URL."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.cluster.mounted_app",
        redis_url,
        key,
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env=env,
    )
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)
        assert line, "the mounted app did not start"
        yield f"http://127.0.0.1:{int(line)}"
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), TIMEOUT)


async def get_json(url: str, path: str) -> object:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    data = await asyncio.wait_for(reader.read(), TIMEOUT)
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    return json.loads(body)


async def test_mounted_apps_agree_on_fetch_sockets_from_the_first_request(
    redis_server: RedisServer, key: str
) -> None:
    async with (
        mounted_server(redis_server.url, key) as a,
        mounted_server(redis_server.url, key) as b,
    ):
        client = Client(a, path="/ws/socket.io", transports=["websocket"], force_new=True)
        await asyncio.wait_for(client.connect(), TIMEOUT)
        try:
            # b's first request of any kind: its adapter was started by the lifespan.
            assert await get_json(b, "/sockets") == [client.id]
            assert await get_json(a, "/sockets") == [client.id]
        finally:
            await client.disconnect()


async def test_lifespan_starts_and_stops_the_adapters(redis_server: RedisServer, key: str) -> None:
    sio = socketwire.Server(adapter=create_adapter(redis_server.url, key=key))
    adapter = sio.of("/").adapter
    assert isinstance(adapter, RedisAdapter)
    assert not adapter.ready
    async with sio.lifespan() as entered:
        assert entered is sio
        assert adapter.ready
    assert not adapter.ready


async def test_cluster_operation_before_the_adapter_started_warns(
    redis_server: RedisServer, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="socketwire.adapters.redis")
    factory = create_adapter(redis_server.url, key=key)
    sio = socketwire.Server(adapter=factory)
    # Created before any loop ran, never listened, no lifespan: not in the cluster.
    assert await sio.fetch_sockets() == []
    await sio.fetch_sockets()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "nsp=/: fetchSockets ran before the cluster adapter started, so the other servers "
        "neither see nor answer it. Start the adapters first: `await sio.listen()`, the "
        "ASGI lifespan, or `async with sio.lifespan():` (FastAPI: lifespan=sio.lifespan) "
        "when the app is mounted in another one"
    ]
    await sio.close()
    # The adapter never subscribed, so closing it left the bus to its owner: this test.
    await getattr(factory, "bus").close()  # noqa: B009 - set on the factory, untyped
