"""The hostile mix of the soak test: abusive connections beside the healthy clients.

Run by ``soak/soak.py --hostile`` (or alone: ``python soak/hostile.py --url
http://127.0.0.1:PORT --seconds 600``). Four loops run together for the whole
run, each bounded in the connections it holds at once:

* **slowloris**: connections that send a request head one byte every few
  seconds and never finish it (the server must time them out);
* **pipelining**: a polling session whose ``GET`` is parked, followed on the
  same keep-alive connection by pipelined ``POST`` requests with 100 KB bodies
  (the server must stop reading, not buffer them all);
* **duplicate CONNECT**: WebSocket sessions that send two CONNECT packets for
  ``/slow`` (a namespace whose middleware takes a while) and then hang up
  (no socket may outlive its connection);
* **churn**: WebSocket sessions that connect to ``/`` and close at once.

Every ``--report`` seconds it prints one JSON line of counters on stdout; the
orchestrator keeps the last one for its summary.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import random
import sys
import time
from collections import Counter
from urllib.parse import urlsplit

WS_TARGET = "/socket.io/?EIO=4&transport=websocket"
POLL_TARGET = "/socket.io/?EIO=4&transport=polling"


def masked_text(payload: bytes) -> bytes:
    """One client text frame (RFC 6455 section 5.3: clients mask every frame)."""
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    n = len(payload)
    head = bytes([0x81, 0x80 | n]) if n < 126 else bytes([0x81, 0xFE]) + n.to_bytes(2, "big")
    return head + mask + body


class Mix:
    def __init__(self, host: str, port: int, deadline: float) -> None:
        self.host = host
        self.port = port
        self.deadline = deadline
        self.counts: Counter[str] = Counter()

    def running(self) -> bool:
        return time.monotonic() < self.deadline

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.wait_for(asyncio.open_connection(self.host, self.port), 10)

    async def websocket(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await self.open()
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET {WS_TARGET} HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(head.split(b"\r\n", 1)[0].decode(errors="replace"))
        return reader, writer

    # -- the four loops ---------------------------------------------------------------------

    async def slowloris(self, slot: int) -> None:
        while self.running():
            try:
                reader, writer = await self.open()
            except (OSError, TimeoutError):
                self.counts["slowloris connect failures"] += 1
                await asyncio.sleep(1)
                continue
            self.counts["slowloris opened"] += 1
            head = f"GET {POLL_TARGET} HTTP/1.1\r\nHost: x\r\nX-Slow-{slot}: ".encode()
            closed_by_server = False
            try:
                for i in range(100_000):
                    if not self.running():
                        break
                    writer.write(head[i : i + 1] if i < len(head) else b"a")
                    await writer.drain()
                    try:
                        # Anything from the server (an error answer, or the end of
                        # the connection) means it gave up on this request head.
                        await asyncio.wait_for(reader.read(1024), 3.0 + random.random())
                    except TimeoutError:
                        continue
                    closed_by_server = True
                    break
            except OSError:
                closed_by_server = True
            finally:
                writer.close()
            if closed_by_server:
                self.counts["slowloris closed by the server"] += 1

    async def pipelining(self) -> None:
        body = b"4" + b"x" * 100_000
        while self.running():
            try:
                reader, writer = await self.open()
                writer.write(f"GET {POLL_TARGET} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                await writer.drain()
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                open_packet = await asyncio.wait_for(reader.readexactly(length), 10)
                sid = json.loads(open_packet[1:])["sid"]
                target = f"{POLL_TARGET}&sid={sid}"
                # The GET parks; 200 POSTs of 100 KB follow it on the same connection.
                writer.write(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                post = (
                    f"POST {target} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n".encode()
                ) + body
                for _ in range(200):
                    writer.write(post)
                    if writer.transport.get_write_buffer_size() > 4 << 20:
                        self.counts["pipelining writes held back by the server"] += 1
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(writer.drain(), 2)
                        break
                self.counts["pipelining rounds"] += 1
                writer.close()
            except (OSError, TimeoutError, ValueError, IndexError, asyncio.IncompleteReadError):
                self.counts["pipelining errors"] += 1
                await asyncio.sleep(0.5)

    async def duplicate_connect(self) -> None:
        while self.running():
            try:
                reader, writer = await self.websocket()
                await asyncio.wait_for(reader.read(1024), 10)  # the open packet
                writer.write(masked_text(b"40/slow,") + masked_text(b"40/slow,"))
                await writer.drain()
                self.counts["duplicate CONNECTs sent"] += 1
                await asyncio.sleep(0.05)
                writer.close()
            except (OSError, TimeoutError, ConnectionError):
                self.counts["duplicate CONNECT errors"] += 1
                await asyncio.sleep(0.5)

    async def churn(self) -> None:
        while self.running():
            try:
                reader, writer = await self.websocket()
                await asyncio.wait_for(reader.read(1024), 10)
                writer.write(masked_text(b"40"))
                await writer.drain()
                await asyncio.wait_for(reader.read(1024), 10)  # the CONNECT answer
                self.counts["churn connections"] += 1
                writer.close()
            except (OSError, TimeoutError, ConnectionError):
                self.counts["churn errors"] += 1
                await asyncio.sleep(0.5)

    async def report(self, every: float) -> None:
        while self.running():
            await asyncio.sleep(every)
            print(json.dumps({"hostile": dict(self.counts)}), flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--slowloris", type=int, default=200, help="connections held at once")
    parser.add_argument("--report", type=float, default=10.0)
    args = parser.parse_args()
    parts = urlsplit(args.url)
    mix = Mix(parts.hostname or "127.0.0.1", parts.port or 80, time.monotonic() + args.seconds)
    loops = [mix.slowloris(i) for i in range(args.slowloris)]
    loops += [mix.pipelining(), mix.duplicate_connect(), mix.churn(), mix.churn()]
    loops.append(mix.report(args.report))
    await asyncio.gather(*loops)
    print(json.dumps({"hostile": dict(mix.counts), "final": True}), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
