"""Server CPU per delivered broadcast message: ``--workers 2`` against one process.

A benchmark, not a test. It starts ``python -m socketwire`` on a small app three
ways (one process; ``--workers 1``; ``--workers 2``), connects N WebSocket
clients (raw sockets in this process: a handshake, a CONNECT, then only counting
frames), asks one of them to broadcast COUNT events to everyone, and reads the
CPU time (user + system, from ``/proc``) of every server process (the
supervisor and its workers) spent between the request and the last frame
received. With two workers half the clients are on the worker that does not
broadcast: each broadcast crosses the workers' bus once and is encoded again
there, which is what this measures.

With ``--node``, the anchor runs beside it: socket.io 4.8 on Node with the same
handler, in one process (``node-1``) and as a primary with two workers
(``node-2``: ``@socket.io/sticky`` hands the connections round robin,
``@socket.io/cluster-adapter`` carries the broadcasts through the primary);
``bench/node/cluster_broadcast.js``, its packages installed with ``npm ci`` in
``bench/node``.

Usage::

    .venv/bin/python bench/workers_broadcast.py [--clients 1000] [--count 500] [--repeat 3] [--node]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

APP = """
import asyncio
import socketwire

sio = socketwire.Server(ping_interval=300, ping_timeout=200)


@sio.on("fanout")
async def fanout(socket, count, size):
    d = "x" * size
    for i in range(count):
        sio.emit("tick", {"i": i, "d": d})
        await asyncio.sleep(0)
    return count
"""

SERVING = re.compile(rb"serving \S+ on http://([\d.]+):(\d+)")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and its descendants, from /proc."""
    total = 0.0
    stack = [pid]
    while stack:
        p = stack.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / CLK_TCK
        for task in Path(f"/proc/{p}/task").iterdir():
            children = (task / "children").read_text().split()
            stack.extend(int(c) for c in children)
    return total


class Counter(asyncio.Protocol):
    """A raw WebSocket client that counts the server's text frames."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.upgraded = False
        self.frames = 0
        self.target = 0
        self.reached: asyncio.Future[None] | None = None
        self.connected = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.acks: asyncio.Queue[bytes] = asyncio.Queue()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send_text(self, text: bytes) -> None:
        mask = os.urandom(4)
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(text))
        assert len(text) < 126
        assert self.transport is not None
        self.transport.write(bytes([0x81, 0x80 | len(text)]) + mask + payload)

    def data_received(self, data: bytes) -> None:
        buf = self.buffer
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            del buf[: end + 4]
            self.upgraded = True
            self.send_text(b"40")
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
            if payload.startswith(b"40"):
                if not self.connected.done():
                    self.connected.set_result(None)
            elif payload.startswith(b"43"):
                self.acks.put_nowait(payload)
            elif payload.startswith(b"42"):
                self.frames += 1
                reached = self.reached
                if reached is not None and self.frames >= self.target and not reached.done():
                    reached.set_result(None)
            elif payload == b"2":
                self.send_text(b"3")
        del buf[:offset]


async def connect(host: str, port: int) -> Counter:
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(Counter, host, port)
    key = base64.b64encode(os.urandom(16)).decode()
    assert client.transport is not None
    client.transport.write(
        (
            f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {host}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    try:
        await asyncio.wait_for(client.connected, 5)
    except TimeoutError:
        client.transport.close()
        raise
    return client


def command(mode: str) -> list[str]:
    """The command line that starts the server of ``mode``."""
    if mode.startswith("node-"):
        workers = "0" if mode == "node-1" else "2"
        return ["node", str(ROOT / "bench" / "node" / "cluster_broadcast.js"), "--workers", workers]
    args = ["--workers", "1"] if mode == "workers-1" else []
    if mode == "workers-2":
        args = ["--workers", "2"]
    level = "warning" if mode == "single" else "info"
    return [
        sys.executable,
        "-m",
        "socketwire",
        "app:sio",
        "--port",
        "0",
        "--log-level",
        level,
        *args,
    ]


RETRIES = [0]


async def connect_retrying(host: str, port: int) -> Counter:
    """``connect``, again after 5 s without an answer: behind ``@socket.io/sticky``
    some WebSocket connections never get their CONNECT answered (counted in
    ``RETRIES`` and printed)."""
    while True:
        try:
            return await connect(host, port)
        except TimeoutError:
            RETRIES[0] += 1


async def measure(mode: str, clients: int, count: int, size: int, directory: str) -> float:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    proc = await asyncio.create_subprocess_exec(
        *command(mode),
        cwd=directory,
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    try:
        if mode == "single":
            # The one process logs nothing at "warning": find its port in /proc.
            host, port = "127.0.0.1", await _port_of(proc.pid)
        else:
            while True:
                line = await asyncio.wait_for(proc.stderr.readline(), 30)
                found = SERVING.search(line)
                if found:
                    host, port = found.group(1).decode(), int(found.group(2))
                    break
        sockets = [await connect_retrying(host, port) for _ in range(clients)]
        loop = asyncio.get_running_loop()
        for s in sockets:
            s.target = count
            s.reached = loop.create_future()
        before = tree_cpu(proc.pid)
        sockets[0].send_text(f'420["fanout",{count},{size}]'.encode())
        await asyncio.wait_for(asyncio.gather(*(s.reached for s in sockets if s.reached)), 300)
        await asyncio.wait_for(sockets[0].acks.get(), 30)
        used = tree_cpu(proc.pid) - before
        for s in sockets:
            if s.transport is not None:
                s.transport.close()
        return used / (clients * count) * 1e6
    finally:
        proc.terminate()
        await proc.wait()


async def _port_of(pid: int) -> int:
    # The first listening TCP socket of the process, from /proc/net/tcp.
    for _ in range(300):
        inodes = set()
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            parts = line.split()
            if parts[3] == "0A" and parts[9] in inodes:
                return int(parts[1].split(":")[1], 16)
        await asyncio.sleep(0.1)
    raise SystemExit("the server did not listen")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--size", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--node", action="store_true", help="socket.io on Node beside it")
    opts = parser.parse_args()
    directory = tempfile.mkdtemp()
    Path(directory, "app.py").write_text(APP)
    results: dict[str, list[float]] = {"single": [], "workers-1": [], "workers-2": []}
    if opts.node:
        results.update({"node-1": [], "node-2": []})
    for rep in range(opts.repeat):
        for mode in results:
            started = time.monotonic()
            value = await measure(mode, opts.clients, opts.count, opts.size, directory)
            results[mode].append(value)
            print(
                f"rep {rep + 1} {mode:9} {value:6.2f} us/delivered message "
                f"({time.monotonic() - started:.1f} s)",
                flush=True,
            )
    medians = {mode: statistics.median(values) for mode, values in results.items()}
    print(f"clients={opts.clients} count={opts.count} size={opts.size} repeat={opts.repeat}")
    print(f"connections retried after 5 s without an answer: {RETRIES[0]}")
    for mode, value in medians.items():
        print(f"  {mode:9} median {value:6.2f} us per delivered message")
    print(f"  workers-2 / single    = {medians['workers-2'] / medians['single']:.3f}")
    print(f"  workers-2 / workers-1 = {medians['workers-2'] / medians['workers-1']:.3f}")
    if opts.node:
        print(f"  node-2 / node-1       = {medians['node-2'] / medians['node-1']:.3f}")
        print(f"  workers-2 / node-2    = {medians['workers-2'] / medians['node-2']:.3f}")


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
