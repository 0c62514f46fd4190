"""Fixtures of the cluster tests: a real redis-server, socketwire servers on it, and
Node's socket.io with the official Redis adapter as a cluster member.

One redis-server runs for the whole session on a free port of 127.0.0.1; each
test gets its own channel ``key`` so that tests never see each other's servers.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster

import socketwire
from socketwire.adapters.redis import create_adapter
from socketwire.adapters.sharded import create_sharded_adapter
from socketwire.client import Client
from tests.waits import scaled

from .redis_cluster import RedisClusterProcesses

ROOT = Path(__file__).resolve().parents[2]
JS_DIR = ROOT / "tests" / "js"
NODE_MODULES = JS_DIR / "node_modules"
CLUSTER_PEER = JS_DIR / "cluster_peer.js"
TIMEOUT = scaled(10.0)  # Redis round trips across several servers


class RedisServer:
    """``redis-server`` in a subprocess, without persistence."""

    def __init__(self) -> None:
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.dir = tempfile.mkdtemp(prefix="socketwire-redis-")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self, port: int = 0) -> None:
        """Start on ``port``, or on a free port when 0."""
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError("redis-server is not installed (scripts/bootstrap.sh installs it)")
        os.makedirs(self.dir, exist_ok=True)
        wanted = port
        for _ in range(5):
            port = wanted
            if not port:
                # A free port from the kernel, handed to redis-server (which has no port 0).
                with socket.socket() as s:
                    s.bind(("127.0.0.1", 0))
                    port = s.getsockname()[1]
            proc = subprocess.Popen(
                [
                    exe,
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    self.dir,
                    "--loglevel",
                    "notice",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            assert proc.stdout is not None
            # Block on its log until it says it is ready (or exits: port taken).
            for raw in proc.stdout:
                if b"Ready to accept connections" in raw:
                    self.port, self.proc = port, proc
                    return
            proc.wait()
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def key() -> str:
    """A channel prefix of this test only."""
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    """A plain client of the test Redis (to publish raw messages, count subscribers)."""
    client = Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


ClusterStarter = Callable[..., Awaitable[tuple[socketwire.Server, str]]]


@pytest.fixture
async def cluster_server(redis_server: RedisServer, key: str) -> AsyncIterator[ClusterStarter]:
    """``sio, url = await cluster_server(setup=None, **server_options)``: a socketwire
    server with the Redis adapter (this test's key), listening on 127.0.0.1:0."""
    started: list[socketwire.Server] = []

    async def start(
        setup: Callable[[socketwire.Server], None] | None = None,
        adapter_options: dict[str, Any] | None = None,
        **options: Any,
    ) -> tuple[socketwire.Server, str]:
        adapter = create_adapter(
            redis_server.url, key=key, requests_timeout=3.0, **(adapter_options or {})
        )
        sio = socketwire.Server(adapter=adapter, **options)
        if setup is not None:
            setup(sio)
        port = await sio.listen(0, "127.0.0.1")
        started.append(sio)
        return sio, f"http://127.0.0.1:{port}"

    yield start
    for sio in started:
        await sio.close()


class NodeClusterPeer:
    """``node tests/js/cluster_peer.js``: socket.io + @socket.io/redis-adapter."""

    def __init__(self, redis_port: int, key: str, *flags: str) -> None:
        self.args = ["--redis-port", str(redis_port), "--key", key, *flags]
        self.proc: asyncio.subprocess.Process | None = None
        self.url = ""
        self._next = 0
        self._calls: dict[int, asyncio.Future[Any]] = {}
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        env = dict(os.environ, NODE_PATH=str(NODE_MODULES))
        self.proc = await asyncio.create_subprocess_exec(
            "node",
            str(CLUSTER_PEER),
            *self.args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), 20)
        if not line:
            raise RuntimeError("the Node cluster peer did not start")
        self.url = f"http://127.0.0.1:{json.loads(line)['port']}"
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for line in self.proc.stdout:
            msg = json.loads(line)
            if "id" in msg:
                fut = self._calls.pop(msg["id"])
                if "error" in msg:
                    fut.set_exception(RuntimeError(msg["error"]))
                else:
                    fut.set_result(msg["result"])
            else:
                self.events.put_nowait(msg)

    async def call(self, op: str, **fields: Any) -> Any:
        assert self.proc is not None and self.proc.stdin is not None
        self._next += 1
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._calls[self._next] = fut
        self.proc.stdin.write(json.dumps({"id": self._next, "op": op, **fields}).encode() + b"\n")
        await self.proc.stdin.drain()
        return await asyncio.wait_for(fut, TIMEOUT)

    async def next_event(self, name: str) -> dict[str, Any]:
        while True:
            msg = await asyncio.wait_for(self.events.get(), TIMEOUT)
            if msg.get("event") == name:
                return msg

    async def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        if self._reader is not None:
            self._reader.cancel()


NodeStarter = Callable[..., Awaitable[NodeClusterPeer]]


@pytest.fixture
async def node_server(redis_server: RedisServer, key: str) -> AsyncIterator[NodeStarter]:
    """``peer = await node_server(*flags)``: a Node cluster member on this test's key."""
    peers: list[NodeClusterPeer] = []

    async def start(*flags: str) -> NodeClusterPeer:
        peer = NodeClusterPeer(redis_server.port, key, *flags)
        await peer.start()
        peers.append(peer)
        return peer

    yield start
    for peer in peers:
        await peer.stop()


@pytest.fixture(scope="module")
def redis_cluster() -> Iterator[RedisClusterProcesses]:
    """A Redis Cluster of six processes (three masters, three replicas), one per
    test module: each test uses its own channel prefix (``key``)."""
    cluster = RedisClusterProcesses()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def cluster_client(cluster: RedisClusterProcesses) -> RedisCluster:
    """A redis-py cluster client that knows every node (any may be down later)."""
    return RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", p) for p in cluster.ports])


@pytest.fixture
async def sharded_server(
    redis_cluster: RedisClusterProcesses, key: str
) -> AsyncIterator[ClusterStarter]:
    """``sio, url = await sharded_server(setup=None, mode="dynamic", **server_options)``:
    a socketwire server with the sharded adapter (prefix: this test's key)."""
    started: list[tuple[socketwire.Server, RedisCluster]] = []

    async def start(
        setup: Callable[[socketwire.Server], None] | None = None,
        mode: str = "dynamic",
        **options: Any,
    ) -> tuple[socketwire.Server, str]:
        client = cluster_client(redis_cluster)
        adapter = create_sharded_adapter(
            client, channel_prefix=key, subscription_mode=mode, requests_timeout=3.0
        )
        sio = socketwire.Server(adapter=adapter, **options)
        if setup is not None:
            setup(sio)
        started.append((sio, client))
        port = await sio.listen(0, "127.0.0.1")
        return sio, f"http://127.0.0.1:{port}"

    yield start
    for sio, client in started:
        await sio.close()
        await client.aclose()


@pytest.fixture
async def sharded_node(
    redis_cluster: RedisClusterProcesses, key: str
) -> AsyncIterator[NodeStarter]:
    """``peer = await sharded_node(mode)``: Node's socket.io with
    ``createShardedAdapter`` on the Redis Cluster (prefix: this test's key)."""
    peers: list[NodeClusterPeer] = []

    async def start(mode: str = "dynamic") -> NodeClusterPeer:
        ports = ",".join(str(p) for p in redis_cluster.ports)
        peer = NodeClusterPeer(0, key, "--sharded", mode, "--cluster-ports", ports)
        await peer.start()
        peers.append(peer)
        return peer

    yield start
    for peer in peers:
        await peer.stop()


ClientFactory = Callable[..., Awaitable[Client]]


@pytest.fixture
async def connect() -> AsyncIterator[ClientFactory]:
    """``client = await connect(url, **options)``: a connected client, closed afterwards."""
    clients: list[Client] = []

    async def make(url: str, **options: Any) -> Client:
        options.setdefault("transports", ["websocket"])
        options.setdefault("reconnection", False)
        client = Client(url, **options)
        clients.append(client)
        await asyncio.wait_for(client.connect(), TIMEOUT)
        return client

    yield make
    for client in clients:
        await client.disconnect()
