"""Memory of a server subprocess under one abusive connection, read from /proc.

A real ``socketwire.Server`` runs in its own process (``python -c``, port 0);
the test attacks it over 127.0.0.1 and reads the server's ``VmRSS`` from
``/proc/<pid>/status``. The bounds are far below what the unbounded behaviour
costs (hundreds of MiB) and far above the allocator's noise.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.rawclient import http_request, parse_head
from tests.waits import WAIT

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")

POLLING = "/socket.io/?EIO=4&transport=polling"
SERVER = (
    "import asyncio, socketwire\n"
    "async def main():\n"
    "    port = await socketwire.Server().listen(0, '127.0.0.1')\n"
    "    print(port, flush=True)\n"
    "    await asyncio.Event().wait()\n"
    "asyncio.run(main())\n"
)
MIB = 1024 * 1024
# What one connection may add to the server's resident memory.
BOUND = 64 * MIB


def rss(pid: int) -> int:
    """Resident memory of ``pid`` in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@contextlib.asynccontextmanager
async def server() -> AsyncIterator[tuple[int, str]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SERVER, stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    try:
        port = int(await asyncio.wait_for(proc.stdout.readline(), WAIT))
        url = f"http://127.0.0.1:{port}"
        # Warm up: a round trip, so start-up allocations are counted before.
        assert (await http_request(url, "GET", POLLING)).status == 200
        yield proc.pid, url
    finally:
        proc.kill()
        await proc.wait()


async def write_until_refused(writer: asyncio.StreamWriter, data: bytes, total: int) -> int:
    """Write ``data`` repeatedly up to ``total`` bytes; stop when the server stops
    reading (a drain that does not finish within the wait bound) or closes."""
    sent = 0
    while sent < total:
        try:
            writer.write(data)
            sent += len(data)
            await asyncio.wait_for(writer.drain(), 1.0)
        except (TimeoutError, ConnectionError):
            break
    return sent


async def test_pipelined_posts_behind_a_parked_get_stay_bounded() -> None:
    async with server() as (pid, url):
        before = rss(pid)
        handshake = await http_request(url, "GET", POLLING)
        sid = handshake.body.split(b'"sid":"')[1].split(b'"')[0].decode()
        _, port = url.rsplit(":", 1)
        reader, writer = await asyncio.open_connection("127.0.0.1", int(port))
        body = b"x" * 900_000
        post = (
            f"POST {POLLING}&sid={sid} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        try:
            writer.write(f"GET {POLLING}&sid={sid} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            # 1,000 pipelined 900 KB POSTs offered (900 MB).
            sent = await write_until_refused(writer, post, 1000 * len(post))
            grown = rss(pid) - before
            assert grown < BOUND, f"server grew {grown / MIB:.0f} MiB ({sent / MIB:.0f} MiB sent)"
            assert sent < 1000 * len(post)
        finally:
            writer.close()
        # The server still answers.
        assert (await http_request(url, "GET", POLLING)).status == 200
        del reader


async def test_endless_header_value_stays_bounded() -> None:
    async with server() as (pid, url):
        before = rss(pid)
        _, port = url.rsplit(":", 1)
        reader, writer = await asyncio.open_connection("127.0.0.1", int(port))
        # Read while writing: the answer comes before the close.
        answer = asyncio.ensure_future(reader.readuntil(b"\r\n\r\n"))
        try:
            writer.write(f"GET {POLLING} HTTP/1.1\r\nHost: x\r\nX-Big: ".encode())
            # 128 MiB of one header value offered.
            sent = await write_until_refused(writer, b"a" * 65536, 128 * MIB)
            grown = rss(pid) - before
            assert grown < BOUND, f"server grew {grown / MIB:.0f} MiB ({sent / MIB:.0f} MiB sent)"
            head = await asyncio.wait_for(answer, WAIT)
            assert parse_head(head[:-4])[0] == 431
        finally:
            answer.cancel()
            writer.close()
        assert (await http_request(url, "GET", POLLING)).status == 200
