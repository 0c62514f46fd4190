"""Client-side CPU per echo: socketwire's client beside the official Node client.

A benchmark, not a test.  It starts Node's socket.io (``tests/js/peer_server.js``,
whose ``echo`` handler acknowledges with its arguments), then for each client
emits ``echo`` N times with up to WINDOW acknowledgements in flight and reports the
client process's CPU time (user + system) per echo, and the wall time per echo:

* socketwire's client, in this process (``time.process_time``), awaiting
  ``emit_with_ack`` (window 1) or with ack callbacks (larger windows);
* ``bench/client_echo.js``: socket.io-client 4.8 in Node (``process.cpuUsage``);
* with ``--floor``, at window 1: a bare asyncio protocol, in this process, that
  speaks only what the echo needs (the WebSocket upgrade, ``40``, then one
  masked frame out and one ack in per echo, its id checked and its JSON
  parsed), no library at all: the least a Python client on this loop pays per
  echo, which says how much of a client's cost is its own code.

The server runs in its own process, so its CPU is not counted.

Usage::

    .venv/bin/python bench/client_echo.py [--n 20000] [--window 1 16] \
        [--transport websocket polling] [--uvloop] [--repeat 3] [--floor]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import select
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

import socketwire.client as swc  # noqa: E402

JS_DIR = ROOT / "tests" / "js"
NODE_ENV = dict(os.environ, NODE_PATH=str(JS_DIR / "node_modules"))
PAYLOAD = {"text": "hello", "n": 42, "list": [1, 2, 3]}


def start_node_server() -> tuple[subprocess.Popen[bytes], int]:
    # No heartbeat during the measurement (as the shared rig does).
    proc = subprocess.Popen(
        [
            "node",
            str(JS_DIR / "peer_server.js"),
            "--ping-interval",
            "300000",
            "--ping-timeout",
            "200000",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=NODE_ENV,
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 15)
    if not ready:
        proc.kill()
        raise SystemExit("the Node server did not start")
    port = json.loads(proc.stdout.readline())["port"]
    return proc, port


async def run_window(client: swc.Client, count: int, window: int) -> None:
    """``count`` echoes, at most ``window`` unacknowledged at a time."""
    if window == 1:
        emit_with_ack = client.emit_with_ack
        for _ in range(count):
            await emit_with_ack("echo", PAYLOAD)
        return
    done = asyncio.get_running_loop().create_future()
    sent = 0
    acked = 0

    def on_ack(*args: Any) -> None:
        nonlocal acked
        acked += 1
        if acked == count:
            done.set_result(None)
        elif sent < count:
            send()

    def send() -> None:
        nonlocal sent
        sent += 1
        client.emit("echo", PAYLOAD, callback=on_ack)

    for _ in range(min(window, count)):
        send()
    await done


async def measure_socketwire(url: str, n: int, window: int, transport: str) -> dict[str, Any]:
    client = swc.Client(url, transports=[transport], force_new=True, reconnection=False)
    await client.connect()
    try:
        await run_window(client, min(2000, n), window)  # warm-up
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        await run_window(client, n, window)
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
    finally:
        await client.disconnect()
    return {
        "client": "socketwire",
        "n": n,
        "window": window,
        "transport": transport,
        "cpu_us_per_echo": cpu / n * 1e6,
        "wall_us_per_echo": wall / n * 1e6,
    }


class _FloorProtocol(asyncio.Protocol):
    """The floor's connection: keeps what arrives, wakes whoever waits for it."""

    def __init__(self) -> None:
        self.received = b""
        self.waiter: asyncio.Future[None] | None = None

    def data_received(self, data: bytes) -> None:
        self.received += data
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self, ready: Callable[[bytes], bool]) -> None:
        loop = asyncio.get_running_loop()
        while not ready(self.received):
            self.waiter = loop.create_future()
            await self.waiter


def _masked_text(payload: bytes) -> bytes:
    # A client's frame must be masked; an all-zero key leaves the payload as is.
    assert len(payload) < 126
    return bytes((0x81, 0x80 | len(payload))) + b"\0\0\0\0" + payload


async def measure_floor(port: int, n: int) -> dict[str, Any]:
    """Window 1 with no client library: one frame out, one ack in, per echo."""
    loop = asyncio.get_running_loop()
    transport, conn = await loop.create_connection(_FloorProtocol, "127.0.0.1", port)
    transport.write(
        b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    await conn.wait(lambda got: b'"sid"' in got)
    conn.received = b""
    transport.write(_masked_text(b"40"))
    await conn.wait(lambda got: b"40{" in got)
    conn.received = b""
    payload = json.dumps(PAYLOAD, separators=(",", ":")).encode()

    async def run(first: int, count: int) -> None:
        for ack_id in range(first, first + count):
            transport.write(_masked_text(b'42%d["echo",%s]' % (ack_id, payload)))
            waiter = conn.waiter = loop.create_future()
            await waiter
            # One unmasked frame of "43<id>[...]" (short: a 2-byte header).
            data, conn.received = conn.received, b""
            start = data.index(b"[")
            if int(data[4:start]) != ack_id:
                raise SystemExit(f"floor: unexpected answer {data!r}")
            json.loads(data[start:])

    try:
        await run(0, min(2000, n))  # warm-up
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        await run(n, n)
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
    finally:
        transport.close()
    return {
        "client": "floor (bare protocol)",
        "n": n,
        "window": 1,
        "transport": "websocket",
        "cpu_us_per_echo": cpu / n * 1e6,
        "wall_us_per_echo": wall / n * 1e6,
    }


def measure_node(url: str, n: int, window: int, transport: str) -> dict[str, Any]:
    out = subprocess.run(
        ["node", str(ROOT / "bench" / "client_echo.js"), url, str(n), str(window), transport],
        capture_output=True,
        text=True,
        env=NODE_ENV,
        timeout=600,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run_async(coro: Coroutine[Any, Any, dict[str, Any]], use_uvloop: bool) -> dict[str, Any]:
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if use_uvloop:
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20000, help="echoes per measurement")
    parser.add_argument("--window", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--transport", nargs="+", default=["websocket"])
    parser.add_argument("--uvloop", action="store_true", help="run socketwire's client on uvloop")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions (median reported)")
    parser.add_argument(
        "--floor", action="store_true", help="also the bare protocol client, at window 1"
    )
    args = parser.parse_args()

    proc, port = start_node_server()
    url = f"http://127.0.0.1:{port}"
    rows: list[dict[str, Any]] = []
    try:
        for transport in args.transport:
            n = args.n if transport == "websocket" else max(1000, args.n // 10)
            for window in args.window:
                # Repetitions interleaved (A, B, A, B...): drift hits both clients alike.
                samples: dict[str, list[dict[str, Any]]] = {"socketwire": [], "node": []}
                floor = args.floor and window == 1 and transport == "websocket"
                if floor:
                    samples["floor"] = []
                for _ in range(args.repeat):
                    samples["socketwire"].append(
                        run_async(measure_socketwire(url, n, window, transport), args.uvloop)
                    )
                    samples["node"].append(measure_node(url, n, window, transport))
                    if floor:
                        samples["floor"].append(run_async(measure_floor(port, n), args.uvloop))
                for name, runs in samples.items():
                    row = dict(runs[0])
                    for metric in ("cpu_us_per_echo", "wall_us_per_echo"):
                        row[metric] = statistics.median(r[metric] for r in runs)
                    if name == "socketwire" and args.uvloop:
                        row["client"] = "socketwire (uvloop)"
                    rows.append(row)
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        proc.kill()
        proc.wait()

    print(f"server: socket.io 4.8 on Node ({url}); median of {args.repeat} runs")
    print(
        f"{'client':<24}{'transport':<11}{'window':>7}{'n':>8}{'CPU us/echo':>13}{'wall us/echo':>14}"
    )
    for row in rows:
        print(
            f"{row['client']:<24}{row['transport']:<11}{row['window']:>7}{row['n']:>8}"
            f"{row['cpu_us_per_echo']:>13.1f}{row['wall_us_per_echo']:>14.1f}"
        )


if __name__ == "__main__":
    main()
