"""The built-in HTTP server's bounds on request heads, and ``Expect: 100-continue``.

A real ``socketwire.Server`` on 127.0.0.1 (port 0) and raw sockets: each test
asserts the exact answer (status line, closed connection), the log line, and
that a healthy client still completes a handshake afterwards.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import time
from pathlib import Path

import pytest

import socketwire
from socketwire.serve.connection import MAX_HEAD_SIZE, MAX_HEADER_COUNT
from tests.conftest import ServerStarter
from tests.integration.rawclient import host_port, http_request, parse_head, send_raw
from tests.waits import WAIT

POLLING = "/socket.io/?EIO=4&transport=polling"


async def assert_healthy(url: str) -> None:
    resp = await http_request(url, "GET", POLLING)
    assert resp.status == 200 and resp.body.startswith(b"0{"), resp


def status_of(answer: bytes) -> int:
    head, sep, _ = answer.partition(b"\r\n\r\n")
    assert sep, answer[:200]
    return parse_head(head)[0]


async def test_streamed_header_value_is_refused_as_it_arrives(
    start_server: ServerStarter, caplog: pytest.LogCaptureFixture
) -> None:
    """A header value that never ends is refused once the head passes the limit,
    not after it is complete: the server closes while the client is still sending."""
    caplog.set_level(logging.INFO, "socketwire.http")
    url = await start_server(socketwire.Server())
    host, port = host_port(url)
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"GET " + POLLING.encode() + b" HTTP/1.1\r\nHost: x\r\nX-Big: ")
    chunk = b"a" * 16384
    sent = 0
    cpu = time.process_time()
    answer = b""

    async def read_all() -> bytes:
        parts = []
        while part := await reader.read(65536):
            parts.append(part)
        return b"".join(parts)

    reading = asyncio.ensure_future(read_all())
    try:
        # Up to 128 MiB offered; the server must stop us long before.
        while sent < 128 * 1024 * 1024 and not reading.done():
            writer.write(chunk)
            sent += len(chunk)
            try:
                await asyncio.wait_for(writer.drain(), WAIT)
            except ConnectionError:
                break
        answer = await asyncio.wait_for(reading, WAIT)
    finally:
        reading.cancel()
        writer.close()
    assert status_of(answer) == 431
    # Refused within one read (256 KiB) past the limit, plus what the socket
    # buffers held in flight.
    assert sent < 16 * MAX_HEAD_SIZE + 8 * 1024 * 1024, sent
    # Linear work: nowhere near the tens of seconds a quadratic head costs.
    assert time.process_time() - cpu < 5
    assert "request head from 127.0.0.1 too large" in caplog.text
    await assert_healthy(url)


async def test_too_many_header_lines_is_431(
    start_server: ServerStarter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "socketwire.http")
    url = await start_server(socketwire.Server())
    lines = b"".join(b"a: b\r\n" for _ in range(MAX_HEADER_COUNT + 1))
    answer = await send_raw(
        url, b"GET " + POLLING.encode() + b" HTTP/1.1\r\nHost: x\r\n" + lines + b"\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"), answer[:100]
    assert b"Connection: close" in answer
    assert "too large: Request Header Fields Too Large" in caplog.text
    # 60,000 tiny repeated lines (the head limit alone let them through).
    many = b"".join(b"a:b\r\n" for _ in range(60_000))
    answer = await send_raw(url, b"GET " + POLLING.encode() + b" HTTP/1.1\r\n" + many + b"\r\n")
    assert status_of(answer) == 431
    await assert_healthy(url)


async def test_header_lines_up_to_the_limit_are_accepted(start_server: ServerStarter) -> None:
    url = await start_server(socketwire.Server())
    # Host and Connection, then as many more as make the limit exactly.
    lines = b"".join(b"x-h%d: v\r\n" % i for i in range(MAX_HEADER_COUNT - 2))
    answer = await send_raw(
        url,
        b"GET "
        + POLLING.encode()
        + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        + lines
        + b"\r\n",
    )
    assert status_of(answer) == 200, answer[:100]


async def test_expect_100_continue_is_answered_before_the_body(
    start_server: ServerStarter,
) -> None:
    url = await start_server(socketwire.Server())
    host, port = host_port(url)
    reader, writer = await asyncio.open_connection(host, port)
    try:
        body = b'4["x"]'
        writer.write(
            b"POST /socket.io/?EIO=4&transport=polling&sid=nope HTTP/1.1\r\nHost: x\r\n"
            b"Expect: 100-continue\r\nContent-Type: text/plain\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
        )
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(body)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
        # The final answer follows (an unknown sid: 400), on the same connection.
        assert parse_head(head[:-4])[0] == 400
    finally:
        writer.close()
    await assert_healthy(url)


async def test_expect_100_continue_with_a_body_over_the_limit_is_413_at_once(
    start_server: ServerStarter,
) -> None:
    url = await start_server(socketwire.Server(max_http_buffer_size=1000))
    answer = await send_raw(
        url,
        b"POST " + POLLING.encode() + b"&sid=x HTTP/1.1\r\nHost: x\r\n"
        b"Expect: 100-continue\r\nContent-Length: 100000\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:100]
    assert b"100 Continue" not in answer


async def test_unknown_expectation_is_417(start_server: ServerStarter) -> None:
    url = await start_server(socketwire.Server())
    answer = await send_raw(
        url, b"GET " + POLLING.encode() + b" HTTP/1.1\r\nHost: x\r\nExpect: magic\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 417 Expectation Failed\r\n"), answer[:100]
    await assert_healthy(url)


async def test_pipelined_requests_behind_a_parked_get_pause_reading(
    start_server: ServerStarter,
) -> None:
    """Requests queued behind a parked polling GET stop the server reading the
    connection (the client's writes block); all are answered, in order, once
    the GET is."""
    url = await start_server(socketwire.Server())
    handshake = await http_request(url, "GET", POLLING)
    sid = handshake.body.split(b'"sid":"')[1].split(b'"')[0].decode()
    host, port = host_port(url)
    reader, writer = await asyncio.open_connection(host, port)
    body = b"x" * 65536
    post = (
        b"POST " + POLLING.encode() + b"&sid=unknown HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    )
    try:
        writer.write(
            b"GET %s&sid=%s HTTP/1.1\r\nHost: x\r\n\r\n" % (POLLING.encode(), sid.encode())
        )
        sent = 0
        blocked = False
        # Without a bound the server reads all 64 MiB at once; with it, the
        # writes block once the queue (1 MiB) and the socket buffers are full.
        while sent < 64 * 1024 * 1024:
            writer.write(post)
            sent += len(post)
            try:
                await asyncio.wait_for(writer.drain(), 1.0)
            except TimeoutError:
                blocked = True
                break
        assert blocked, f"{sent} bytes accepted while a GET was parked"
        count = sent // len(post)
        assert sent < 48 * 1024 * 1024
        # A healthy client meanwhile; its close packet answers the parked GET.
        close = await http_request(url, "POST", f"{POLLING}&sid={sid}", body="1")
        assert close.status == 200
        statuses: list[int] = []

        async def read_answers() -> None:
            while len(statuses) < count + 1:
                head = await reader.readuntil(b"\r\n\r\n")
                status, headers = parse_head(head[:-4])
                await reader.readexactly(int(headers["content-length"]))
                statuses.append(status)

        await asyncio.wait_for(read_answers(), WAIT * 4)
        assert statuses == [200] + [400] * count
    finally:
        writer.close()
    await assert_healthy(url)


# -- time limits ------------------------------------------------------------------------


async def listen_with(sio: socketwire.Server, **options: float) -> str:
    port = await sio.listen(0, "127.0.0.1", **options)
    return f"http://127.0.0.1:{port}"


async def read_until_closed(reader: asyncio.StreamReader) -> bytes:
    async def run() -> bytes:
        parts = []
        while part := await reader.read(65536):
            parts.append(part)
        return b"".join(parts)

    return await asyncio.wait_for(run(), WAIT)


async def test_unfinished_head_times_out_with_408(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "socketwire.http")
    sio = socketwire.Server()
    try:
        url = await listen_with(sio, http_head_timeout=0.3)
        host, port = host_port(url)
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"GET " + POLLING.encode() + b" HTTP/1.1\r\nHost: x\r\n")
        answer = await read_until_closed(reader)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), answer[:100]
        assert "request head from 127.0.0.1 timed out" in caplog.text
        # A connection that never sends a byte is under the same limit.
        reader, writer = await asyncio.open_connection(host, port)
        assert status_of(await read_until_closed(reader)) == 408
        writer.close()
        await assert_healthy(url)
    finally:
        await sio.close()


async def test_unfinished_body_times_out_with_408(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "socketwire.http")
    sio = socketwire.Server()
    try:
        url = await listen_with(sio, http_body_timeout=0.3)
        host, port = host_port(url)
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(
            b"POST " + POLLING.encode() + b"&sid=x HTTP/1.1\r\nHost: x\r\n"
            b"Content-Length: 100\r\n\r\n" + b"4" * 10
        )
        answer = await read_until_closed(reader)
        writer.close()
        assert status_of(answer) == 408
        assert "request body from 127.0.0.1 timed out" in caplog.text
        await assert_healthy(url)
    finally:
        await sio.close()


async def test_idle_keep_alive_connection_is_closed_but_a_parked_get_is_not() -> None:
    sio = socketwire.Server(ping_interval=1.0, ping_timeout=5.0)
    try:
        url = await listen_with(sio, keep_alive_timeout=0.3)
        host, port = host_port(url)
        # One request answered, then nothing: closed after the idle limit.
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"GET " + POLLING.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = await read_until_closed(reader)
        writer.close()
        assert status_of(answer) == 200
        sid = answer.split(b'"sid":"')[1].split(b'"')[0]
        # A GET parked for longer than the idle limit (until the 1 s ping) is
        # answered, not cut.
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"GET %s&sid=%s HTTP/1.1\r\nHost: x\r\n\r\n" % (POLLING.encode(), sid))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
        status, headers = parse_head(head[:-4])
        assert status == 200
        assert await reader.readexactly(int(headers["content-length"])) == b"2"
        writer.close()
    finally:
        await sio.close()


async def test_keep_alive_connection_of_a_closed_server_is_not_served() -> None:
    """A request on a keep-alive connection accepted before ``close`` gets 503 and
    the connection ends: a new server on the same port gets the client's next try
    (a browser reuses such connections; it would otherwise shake hands with the
    closed server)."""
    sio = socketwire.Server()
    port = await sio.listen(0, "127.0.0.1")
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = b"GET " + POLLING.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    try:
        writer.write(request)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
        status, headers = parse_head(head[:-4])
        assert status == 200
        await reader.readexactly(int(headers["content-length"]))
        await sio.close()
        writer.write(request)
        answer = await read_until_closed(reader)
        assert status_of(answer) == 503
        assert b"Connection: close" in answer and answer.endswith(b"Server closed"), answer
    finally:
        writer.close()
        await sio.close()


# -- descriptors ------------------------------------------------------------------------


async def test_accept_failures_are_logged_once_and_serving_resumes() -> None:
    script = Path(__file__).with_name("emfile_server.py")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        "8",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=str(Path(__file__).parents[2]),
    )
    assert proc.stdout is not None and proc.stderr is not None
    held: list[asyncio.StreamWriter] = []
    try:
        port = int(await asyncio.wait_for(proc.stdout.readline(), WAIT))
        url = f"http://127.0.0.1:{port}"
        # More connections than the server has descriptors: the kernel's backlog
        # takes them, the server's accept() fails.
        for _ in range(20):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            held.append(writer)
        line = await asyncio.wait_for(proc.stderr.readline(), WAIT)
        assert line.startswith(b"cannot accept connections: [Errno 24]"), line
        for writer in held:
            writer.close()
        held.clear()
        # Descriptors are back: the server accepts again (asyncio retries after 1 s).
        await assert_healthy(url)
        assert proc.returncode is None
    finally:
        for writer in held:
            writer.close()
        proc.kill()
        await proc.wait()
    rest = await proc.stderr.read()
    # One line for the burst, nothing else (no traceback per failed accept).
    assert b"cannot accept" not in rest and b"Traceback" not in rest, rest[:500]


async def test_run_raises_the_soft_descriptor_limit_to_the_hard_one() -> None:
    code = (
        "import resource\n"
        "from socketwire.engine.process import raise_nofile_limit\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))\n"
        "raise_nofile_limit()\n"
        "print(resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard))\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(proc.communicate(), WAIT)
    assert out.strip() == b"True"


async def test_run_takes_the_time_limits() -> None:
    """``Server.run(..., http_head_timeout=...)`` reaches the built-in server
    (the default, 60 s, is far past the bound of the wait)."""
    code = (
        "import logging, socketwire\n"
        "logging.basicConfig(level=logging.INFO, format='%(message)s')\n"
        "socketwire.Server().run(0, '127.0.0.1', use_uvloop=False, http_head_timeout=0.2)\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stderr=asyncio.subprocess.PIPE
    )
    assert proc.stderr is not None
    try:
        line = b""
        while b"listening on" not in line:
            line = await asyncio.wait_for(proc.stderr.readline(), WAIT)
            assert line, "the server exited before listening"
        port = int(line.split(b"127.0.0.1:")[1].split(b"/")[0])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET " + POLLING.encode() + b" HTTP/1.1\r\nHost: x\r\n")
        answer = await read_until_closed(reader)
        assert status_of(answer) == 408
        writer.close()
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), WAIT)


def live_http_connections() -> int:
    from socketwire.serve.connection import HttpConnection

    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o) is HttpConnection)


async def test_closed_connections_are_not_held_by_the_time_limit_queues(
    start_server: ServerStarter,
) -> None:
    """A time limit's queue keeps its entry until the deadline (a minute for a
    head): it must not keep the closed connection alive until then."""
    url = await start_server(socketwire.Server())
    before = live_http_connections()
    for _ in range(200):
        # Each request arms the head limit, then the keep-alive limit; the
        # client hangs up at once.
        resp = await http_request(url, "GET", "/not-here")
        assert resp.status == 404
    async with asyncio.timeout(WAIT):
        while live_http_connections() > before + 5:
            await asyncio.sleep(0.05)  # the server sees the closes on its next turns
    await assert_healthy(url)
