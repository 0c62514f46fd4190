"""Interest routing: what each server of a Redis cluster receives and spends, in
Node's pattern mode and in interest mode, in one run.

A benchmark, not a test. For each mode it starts NODES socketwire servers
(separate processes) on one redis-server of its own, with the Redis adapter in
that mode. ROOMS rooms are spread over the servers, each holding an equal share:
CLIENTS raw WebSocket clients per server (in this process) join the server's
rooms through their auth (a middleware joins them, so in interest mode they are
subscribed before the CONNECT is answered). A publisher process then sends
single-room broadcasts to random rooms at RATE per second for SECONDS seconds,
as an emitter does (``PUBLISH`` on the room's channel, pipelined every 10 ms).

Reported per server: messages and bytes its subscriber connection received from
Redis per second (the bus's counters) and its CPU seconds per second (user +
system, from ``/proc``), both over the publisher's sending time; and the CPU of
redis-server. With N servers, interest mode should receive about 1/N of the
messages per server. The clients' connection time (TCP connect to the CONNECT
answer, all clients at once) shows what subscribing each socket's own room
costs, and the SUBSCRIBE commands sent show the batching.

Usage::

    .venv/bin/python bench/interest_routing.py [--nodes 4] [--rooms 400] [--clients 100]
        [--rate 2000] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
MODES = ("pattern", "interest")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


# -- a server of the cluster (a subprocess) ------------------------------------------------


async def serve(redis_url: str, key: str, mode: str) -> None:
    """One socketwire server: prints its port, answers "stats" on stdin, ends at EOF."""
    sys.path.insert(0, str(ROOT / "src"))
    import socketwire
    from socketwire.adapters.redis import RedisAdapter, create_adapter
    from socketwire.adapters.redis_bus import RedisBus

    sio = socketwire.Server(
        adapter=create_adapter(redis_url, key=key, subscription_mode=mode),
        ping_interval=300,
        ping_timeout=200,
    )

    @sio.use
    def join(sock: socketwire.Socket) -> None:
        sock.join(sock.handshake.auth.get("rooms", []))

    port = await sio.listen(0, "127.0.0.1")
    adapter = sio.of("/").adapter
    assert isinstance(adapter, RedisAdapter) and isinstance(adapter.bus, RedisBus)
    bus = adapter.bus
    print(json.dumps({"port": port}), flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        if line.strip() == b"stats":
            subs = adapter.room_subscriptions
            stats = {
                "messages": bus.received_messages,
                "bytes": bus.received_bytes,
                "subscribes": subs.subscribe_commands if subs is not None else 0,
                "rooms": len(adapter.rooms),
            }
            print(json.dumps(stats), flush=True)
    await sio.close()


# -- the publisher (a subprocess) ---------------------------------------------------------


def publish(redis_url: str, key: str, rooms: int, rate: int, seconds: float) -> None:
    """Single-room broadcasts to random rooms, at ``rate`` per second, as an emitter."""
    sys.path.insert(0, str(ROOT / "src"))
    import redis

    from socketwire.core.cluster.redis_format import encode_emitter_broadcast

    client = redis.Redis.from_url(redis_url)
    rng = random.Random(7)
    pad = "x" * 64
    sent = 0
    start = time.monotonic()
    while (elapsed := time.monotonic() - start) < seconds:
        due = int(elapsed * rate) - sent
        if due > 0:
            pipe = client.pipeline(transaction=False)
            for _ in range(due):
                room = f"room-{rng.randrange(rooms)}"
                payload = encode_emitter_broadcast(
                    "/", ["tick", {"n": sent, "d": pad}], [room], [], {}
                )
                pipe.publish(f"{key}#/#{room}#", payload)
                sent += 1
            pipe.execute()
        time.sleep(0.01)
    elapsed = time.monotonic() - start
    client.close()
    print(json.dumps({"sent": sent, "seconds": elapsed}), flush=True)


# -- clients (in the driver's process) -----------------------------------------------------


class RawClient(asyncio.Protocol):
    """A WebSocket Socket.IO client that connects with an auth and counts events."""

    def __init__(self, auth: bytes) -> None:
        self.auth = auth
        self.buffer = bytearray()
        self.upgraded = False
        self.events = 0
        self.started = time.monotonic()
        self.connected: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def send_text(self, text: bytes) -> None:
        mask = os.urandom(4)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(text))
        if len(text) < 126:
            head = bytes([0x81, 0x80 | len(text)])
        else:
            head = bytes([0x81, 0x80 | 126]) + len(text).to_bytes(2, "big")
        assert self.transport is not None
        self.transport.write(head + mask + body)

    def data_received(self, data: bytes) -> None:
        buf = self.buffer
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            del buf[: end + 4]
            self.upgraded = True
            self.send_text(b"40" + self.auth)
        offset = 0
        while len(buf) - offset >= 2:
            length = buf[offset + 1] & 0x7F
            head = 2
            if length == 126:
                if len(buf) - offset < 4:
                    break
                length = int.from_bytes(buf[offset + 2 : offset + 4], "big")
                head = 4
            elif length == 127:
                if len(buf) - offset < 10:
                    break
                length = int.from_bytes(buf[offset + 2 : offset + 10], "big")
                head = 10
            if len(buf) - offset < head + length:
                break
            payload = bytes(buf[offset + head : offset + head + length])
            offset += head + length
            if payload.startswith(b"42"):
                self.events += 1
            elif payload.startswith(b"40") and not self.connected.done():
                self.connected.set_result(time.monotonic() - self.started)
            elif payload == b"2":
                self.send_text(b"3")
        del buf[:offset]


async def open_client(port: int, rooms: list[str]) -> RawClient:
    loop = asyncio.get_running_loop()
    auth = json.dumps({"rooms": rooms}, separators=(",", ":")).encode()
    _, client = await loop.create_connection(lambda: RawClient(auth), "127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    assert client.transport is not None
    client.transport.write(
        (
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    await asyncio.wait_for(client.connected, 60)
    return client


# -- the driver -----------------------------------------------------------------------------


class Node:
    """A server subprocess, driven over its stdin."""

    def __init__(self, proc: asyncio.subprocess.Process, port: int) -> None:
        self.proc = proc
        self.port = port

    @classmethod
    async def start(cls, redis_url: str, key: str, mode: str) -> Node:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "node",
            "--redis",
            redis_url,
            "--key",
            key,
            "--mode",
            mode,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        return cls(proc, int(json.loads(line)["port"]))

    async def stats(self) -> dict[str, int]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(b"stats\n")
        await self.proc.stdin.drain()
        result: dict[str, int] = json.loads(await asyncio.wait_for(self.proc.stdout.readline(), 30))
        return result

    async def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 15)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


def start_redis(directory: str) -> tuple[subprocess.Popen[bytes], str]:
    exe = shutil.which("redis-server")
    if exe is None:
        sys.exit("redis-server is not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=directory,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert proc.stdout is not None
    for raw in proc.stdout:
        if b"Ready to accept connections" in raw:
            return proc, f"redis://127.0.0.1:{port}"
    sys.exit("redis-server did not start")


def redis_memory(redis_url: str) -> int:
    """Redis's ``used_memory``, in bytes."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        return int(client.info("memory")["used_memory"])
    finally:
        client.close()


async def measure(
    mode: str, redis_pid: int, redis_url: str, args: argparse.Namespace
) -> dict[str, Any]:
    key = f"bench-{mode}-{os.getpid()}"
    memory_before = redis_memory(redis_url)
    nodes = [await Node.start(redis_url, key, mode) for _ in range(args.nodes)]
    share = args.rooms // args.nodes
    clients: list[RawClient] = []
    try:
        # Node i holds rooms [i * share, (i + 1) * share), dealt to its clients.
        plans = []
        for i, node in enumerate(nodes):
            mine = [f"room-{r}" for r in range(i * share, (i + 1) * share)]
            for j in range(args.clients):
                plans.append((node.port, mine[j :: args.clients]))
        began = time.monotonic()
        clients = list(await asyncio.gather(*(open_client(p, rooms) for p, rooms in plans)))
        connect_wall = time.monotonic() - began
        latencies = sorted(c.connected.result() for c in clients)
        # One at a time (no batching): what one connection waits for.
        alone = []
        for j in range(args.sequential):
            client = await open_client(nodes[0].port, [f"solo-{j}"])
            alone.append(client.connected.result())
            clients.append(client)
        memory = redis_memory(redis_url) - memory_before

        before = [await n.stats() for n in nodes]
        cpu_before = [cpu_seconds(n.proc.pid) for n in nodes]
        redis_before = cpu_seconds(redis_pid)
        publisher = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "publish",
            "--redis",
            redis_url,
            "--key",
            key,
            "--rooms",
            str(share * args.nodes),
            "--rate",
            str(args.rate),
            "--seconds",
            str(args.seconds),
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await publisher.communicate()
        report = json.loads(out)

        async def delivered() -> None:
            while sum(c.events for c in clients) < report["sent"]:
                await asyncio.sleep(0.05)

        with contextlib.suppress(TimeoutError):  # reported as delivered < sent
            await asyncio.wait_for(delivered(), 60)
        cpu_after = [cpu_seconds(n.proc.pid) for n in nodes]
        redis_after = cpu_seconds(redis_pid)
        after = [await n.stats() for n in nodes]
        seconds = report["seconds"]
        per_node = [
            {
                "messages_per_s": (a["messages"] - b["messages"]) / seconds,
                "kbytes_per_s": (a["bytes"] - b["bytes"]) / seconds / 1000,
                "cpu_per_s": (ca - cb) / seconds,
                "rooms": a["rooms"],
                "subscribes": a["subscribes"],
            }
            for a, b, ca, cb in zip(after, before, cpu_after, cpu_before, strict=True)
        ]
        return {
            "mode": mode,
            "sent": report["sent"],
            "seconds": seconds,
            "delivered": sum(c.events for c in clients),
            "nodes": per_node,
            "redis_cpu_per_s": (redis_after - redis_before) / seconds,
            "redis_memory_kb": memory / 1024,
            "connect": {
                "clients": len(clients),
                "wall_s": connect_wall,
                "median_ms": statistics.median(latencies) * 1000,
                "p95_ms": latencies[int(len(latencies) * 0.95) - 1] * 1000,
                "one_at_a_time": len(alone),
                "one_at_a_time_median_ms": statistics.median(alone) * 1000 if alone else 0.0,
            },
        }
    finally:
        for c in clients:
            if c.transport is not None:
                c.transport.close()
        for n in nodes:
            await n.stop()


def print_table(results: list[dict[str, Any]]) -> None:
    print()
    print(
        f"{'mode':<9} {'server':>6} {'msgs/s':>9} {'KB/s':>9} {'CPU s/s':>8} {'rooms':>6} {'SUBSCRIBEs':>10}"
    )
    for r in results:
        for i, n in enumerate(r["nodes"], 1):
            print(
                f"{r['mode']:<9} {i:>6} {n['messages_per_s']:>9.1f} {n['kbytes_per_s']:>9.1f} "
                f"{n['cpu_per_s']:>8.3f} {n['rooms']:>6} {n['subscribes']:>10}"
            )
        mean = statistics.mean(n["messages_per_s"] for n in r["nodes"])
        cpu = statistics.mean(n["cpu_per_s"] for n in r["nodes"])
        print(f"{r['mode']:<9} {'mean':>6} {mean:>9.1f} {'':>9} {cpu:>8.3f}")
        print(f"{r['mode']:<9} {'redis':>6} {'':>9} {'':>9} {r['redis_cpu_per_s']:>8.3f}")
    print()
    for r in results:
        c = r["connect"]
        print(
            f"{r['mode']:<9} sent {r['sent']} in {r['seconds']:.1f} s, delivered {r['delivered']}; "
            f"connect {c['clients']} clients at once: {c['wall_s']:.2f} s, "
            f"median {c['median_ms']:.1f} ms, p95 {c['p95_ms']:.1f} ms; "
            f"{c['one_at_a_time']} one at a time: median {c['one_at_a_time_median_ms']:.2f} ms; "
            f"redis memory with the servers and clients: +{r['redis_memory_kb']:.0f} KiB"
        )


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="interest-bench-") as directory:
        redis_proc, redis_url = start_redis(directory)
        try:
            results = [await measure(m, redis_proc.pid, redis_url, args) for m in MODES]
        finally:
            redis_proc.terminate()
            redis_proc.wait()
    print_table(results)
    print()
    print(json.dumps(results))


def cli() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="command")
    node = sub.add_parser("node")
    pub = sub.add_parser("publish")
    for p in (node, pub):
        p.add_argument("--redis", required=True)
        p.add_argument("--key", required=True)
    node.add_argument("--mode", required=True, choices=MODES)
    pub.add_argument("--rooms", type=int, required=True)
    for p in (parser, pub):
        p.add_argument("--rate", type=int, default=2000)
        p.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--rooms", type=int, default=400)
    parser.add_argument("--clients", type=int, default=100, help="clients per server")
    parser.add_argument(
        "--sequential", type=int, default=50, help="clients then connected one at a time"
    )
    args = parser.parse_args()
    if args.command == "node":
        asyncio.run(serve(args.redis, args.key, args.mode))
    elif args.command == "publish":
        publish(args.redis, args.key, args.rooms, args.rate, args.seconds)
    else:
        asyncio.run(main(args))


if __name__ == "__main__":
    cli()
