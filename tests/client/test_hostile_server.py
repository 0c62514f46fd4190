"""The client against a hostile or broken server: every failure bounded and fast.

Each server here is a raw ``asyncio.start_server`` on 127.0.0.1 answering bytes
written by hand: an endless poll body, a head that never ends, a WebSocket that
closes (or announces a 1 TB frame) before the open packet, handshakes with
nonsensical values.  The connect timeout is 30 s: a failure must come long
before it, with the real cause in a :class:`TransportError`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from collections.abc import Awaitable, Callable

import orjson
import pytest

from socketwire.client import TransportError
from socketwire.client.http import MAX_HEAD, MAX_HEADER_LINES, MAX_STALL

from .conftest import ClientFactory
from .helpers import WAIT
from .peers import SocketwirePeer

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
CONNECT_TIMEOUT = 30.0
_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class RawServer:
    """A TCP server on port 0 running ``handler``; counts the bytes it wrote."""

    def __init__(
        self,
        handler: Callable[[RawServer, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
    ) -> None:
        self.handler = handler
        self.sent = 0
        self.server: asyncio.Server | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> str:
        async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await self.handler(self, reader, writer)
            except (ConnectionError, EOFError, asyncio.CancelledError):
                pass
            finally:
                writer.close()

        def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            # A plain callback: every accepted connection is known at once, so
            # the exit closes each, started or not.
            self.writers.append(writer)
            self.tasks.add(asyncio.get_running_loop().create_task(run(reader, writer)))

        self.server = await asyncio.start_server(accepted, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for writer in self.writers:
            writer.close()
        await asyncio.gather(*(w.wait_closed() for w in self.writers), return_exceptions=True)

    async def write(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        self.sent += len(data)
        await writer.drain()


async def read_head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


def handshake(**fields: object) -> bytes:
    info: dict[str, object] = {
        "sid": "abc",
        "upgrades": [],
        "pingInterval": 25000,
        "pingTimeout": 20000,
        "maxPayload": 1000000,
    }
    info.update(fields)
    return b"0" + orjson.dumps({k: v for k, v in info.items() if v is not ...})


def ok_response(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


async def connect_fails(
    make_client: ClientFactory, url: str, **options: object
) -> tuple[TransportError, float]:
    client = make_client(url, reconnection=False, timeout=CONNECT_TIMEOUT, **options)
    start = time.monotonic()
    with pytest.raises(TransportError) as info:
        await asyncio.wait_for(client.connect(), WAIT)
    elapsed = time.monotonic() - start
    await asyncio.wait_for(client.io.wait_closed(), WAIT)
    return info.value, elapsed


# -- item: poll response bodies and heads are bounded --------------------------------------


async def test_endless_chunked_poll_body_is_bounded(make_client: ClientFactory) -> None:
    limit = 1 << 20
    chunk = b"%x\r\n%s\r\n" % (65536, b"x" * 65536)

    async def serve(
        srv: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await read_head(reader)
        await srv.write(writer, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        while True:
            await srv.write(writer, chunk)

    srv = RawServer(serve)
    async with srv as url:
        err, elapsed = await connect_fails(
            make_client, url, transports=["polling"], max_message_size=limit
        )
    assert err.reason == "xhr poll error"
    assert str(err) == f"xhr poll error: response body exceeds {limit} bytes"
    # The client stopped reading soon after the limit (socket buffers aside).
    assert srv.sent < limit + 16 * 1024 * 1024
    assert elapsed < WAIT


async def test_endless_response_head_is_bounded(make_client: ClientFactory) -> None:
    async def serve(
        srv: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await read_head(reader)
        await srv.write(writer, b"HTTP/1.1 200 OK\r\nX-Big: ")
        while True:
            await srv.write(writer, b"a" * 65536)

    srv = RawServer(serve)
    async with srv as url:
        err, elapsed = await connect_fails(make_client, url, transports=["polling"])
    assert str(err) == f"xhr poll error: response head exceeds {MAX_HEAD} bytes"
    assert srv.sent < MAX_HEAD + 16 * 1024 * 1024
    assert elapsed < WAIT


async def test_endless_trailer_is_bounded(make_client: ClientFactory) -> None:
    # Found by the client-http fuzz target: trailer fields (after the last chunk)
    # were merged into the headers, unbounded, and httptools holds an unfinished
    # one in memory; a trailer that never ended was read for ever.
    async def serve(
        srv: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await read_head(reader)
        await srv.write(
            writer,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n40\r\n0\r\nX-T: ",
        )
        while True:
            await srv.write(writer, b"a" * 65536)

    srv = RawServer(serve)
    async with srv as url:
        err, elapsed = await connect_fails(make_client, url, transports=["polling"])
    assert str(err) == f"xhr poll error: response framing or trailers exceed {MAX_STALL} bytes"
    assert srv.sent < MAX_STALL + 16 * 1024 * 1024
    assert elapsed < WAIT


async def test_trailers_are_not_headers(make_client: ClientFactory) -> None:
    # Trailer fields are read and dropped (RFC 9110, 6.5.1), and bounded like a
    # head: more than MAX_HEAD bytes of them fail the poll.
    trailers = b"".join(b"X-%d: %s\r\n" % (i, b"t" * 1000) for i in range(70))

    async def serve(
        srv: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await read_head(reader)
        body = handshake()
        await srv.write(
            writer,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"%x\r\n%s\r\n0\r\n%s\r\n" % (len(body), body, trailers),
        )
        await reader.read()

    async with RawServer(serve) as url:
        err, _ = await connect_fails(make_client, url, transports=["polling"])
    assert str(err) == f"xhr poll error: response trailers exceed {MAX_HEAD} bytes"


async def test_too_many_header_lines(make_client: ClientFactory) -> None:
    lines = b"".join(b"X-%d: y\r\n" % i for i in range(MAX_HEADER_LINES + 1))

    async def serve(
        srv: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await read_head(reader)
        await srv.write(writer, b"HTTP/1.1 200 OK\r\n" + lines + b"Content-Length: 0\r\n\r\n")
        await reader.read()

    async with RawServer(serve) as url:
        err, _ = await connect_fails(make_client, url, transports=["polling"])
    assert str(err) == (
        f"xhr poll error: response head has more than {MAX_HEADER_LINES} header lines"
    )


# -- item: a WebSocket failing before the open packet fails fast -----------------------------


def accept_key(head: bytes) -> bytes:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-key":
            digest = hashlib.sha1(value.strip() + _WS_GUID).digest()
            return base64.b64encode(digest)
    raise AssertionError("no key")


def ws_server(after_101: bytes) -> RawServer:
    async def serve(
        srv: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        head = await read_head(reader)
        await srv.write(
            writer,
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept_key(head) + b"\r\n\r\n" + after_101,
        )
        await reader.read()

    return RawServer(serve)


@pytest.mark.parametrize("timeout", [CONNECT_TIMEOUT, None])
async def test_websocket_closed_before_open_packet(
    make_client: ClientFactory, timeout: float | None
) -> None:
    # A close frame, code 1008, reason "go away" (RFC 6455 section 5.5.1).
    close = b"\x88\x09\x03\xf0go away"
    async with ws_server(close) as url:
        client = make_client(url, reconnection=False, timeout=timeout, transports=["websocket"])
        start = time.monotonic()
        with pytest.raises(TransportError) as info:
            await asyncio.wait_for(client.connect(), WAIT)
        await asyncio.wait_for(client.io.wait_closed(), WAIT)
    err = info.value
    assert err.reason == "websocket error"
    assert str(err) == "websocket error: websocket connection closed (code 1008: go away)"
    assert time.monotonic() - start < WAIT


async def test_websocket_terabyte_frame_before_open_packet(make_client: ClientFactory) -> None:
    # A text frame whose 64-bit length announces 1 TB (RFC 6455 section 5.2).
    header = b"\x81\x7f" + (1 << 40).to_bytes(8, "big")
    async with ws_server(header) as url:
        err, elapsed = await connect_fails(make_client, url, transports=["websocket"])
    assert err.reason == "websocket error"
    assert str(err).startswith("websocket error: websocket connection closed (code 1009: ")
    assert elapsed < WAIT


# -- item: nonsensical handshakes --------------------------------------------------------


Answer = Callable[[RawServer, asyncio.StreamWriter, bytes], Awaitable[None]]


async def answer_at_once(srv: RawServer, writer: asyncio.StreamWriter, response: bytes) -> None:
    await srv.write(writer, response)


def polling_server(
    open_packet: bytes,
    probes: list[bytes] | None = None,
    first: Answer = answer_at_once,
    post: Answer = answer_at_once,
) -> RawServer:
    """Answers the first poll with ``open_packet`` (written by ``first``), the second
    with a Socket.IO connect, POSTs with ``ok`` (written by ``post``); holds later
    polls; records WebSocket probes."""
    gets = 0

    async def serve(
        srv: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        nonlocal gets
        while True:
            head = await read_head(reader)
            if b"transport=websocket" in head:
                if probes is not None:
                    probes.append(head)
                return
            if head.startswith(b"POST"):
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                await post(srv, writer, ok_response(b"ok"))
                continue
            gets += 1
            if gets == 1:
                await first(srv, writer, ok_response(open_packet))
            elif gets == 2:
                await srv.write(writer, ok_response(b'40{"sid":"s1"}'))
            else:
                # Later polls: held open (a quiet server).
                await asyncio.Event().wait()

    return RawServer(serve)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"pingInterval": 0}, "pingInterval must be a positive number up to 86400000"),
        ({"pingInterval": -5}, "pingInterval must be a positive number up to 86400000"),
        ({"pingInterval": "soon"}, "pingInterval must be a positive number up to 86400000"),
        ({"pingTimeout": ...}, "pingTimeout must be a positive number up to 86400000"),
        ({"sid": ...}, "sid must be a non-empty string"),
        ({"sid": 5}, "sid must be a non-empty string"),
        ({"maxPayload": 1e30}, "maxPayload must be a positive number up to 4294967296"),
        ({"upgrades": "websocket"}, "upgrades must be a list of strings"),
    ],
)
async def test_nonsensical_handshake(
    make_client: ClientFactory, fields: dict[str, object], message: str
) -> None:
    async with polling_server(handshake(**fields)) as url:
        err, elapsed = await connect_fails(make_client, url, transports=["polling"])
    assert str(err) == f"parse error: invalid handshake: {message}"
    assert elapsed < WAIT


async def test_repeated_upgrades_open_one_probe(make_client: ClientFactory) -> None:
    probes: list[bytes] = []
    opened = handshake(upgrades=["websocket"] * 1000 + ["carrier-pigeon"])
    async with polling_server(opened, probes) as url:
        client = make_client(url, reconnection=False, timeout=CONNECT_TIMEOUT)
        await asyncio.wait_for(client.connect(), WAIT)
        engine = client.io.engine
        assert engine is not None and engine.upgrades == ["websocket"]
        # Wait for the one probe to reach the server, then let any others arrive.
        async with asyncio.timeout(WAIT):
            while not probes:
                await asyncio.sleep(0)
        for _ in range(100):
            await asyncio.sleep(0)
        await client.disconnect()
        await asyncio.wait_for(client.io.wait_closed(), WAIT)
    assert len(probes) == 1


# -- found by the client-http fuzz target (fuzz/RESULTS.md) ---------------------------------


async def connects(make_client: ClientFactory, server: RawServer) -> None:
    """The client connects through ``server`` over polling, then disconnects."""
    async with server as url:
        client = make_client(
            url, reconnection=False, timeout=CONNECT_TIMEOUT, transports=["polling"]
        )
        await asyncio.wait_for(client.connect(), WAIT)
        assert client.connected
        await client.disconnect()
        await asyncio.wait_for(client.io.wait_closed(), WAIT)


async def test_bytes_after_a_poll_answer_are_not_the_next_answer(
    make_client: ClientFactory,
) -> None:
    # The open packet's response and the start of one nobody asked for, in one
    # write: the stray response used to be parsed into the state cleared for the
    # next poll on that connection, whose answer then carried its header and
    # body bytes ("4stale" before the CONNECT packet: a parse error).
    stray = b"HTTP/1.1 200 OK\r\nX-Stale: 1\r\nContent-Length: 100\r\n\r\n4stale"

    async def first(srv: RawServer, writer: asyncio.StreamWriter, response: bytes) -> None:
        await srv.write(writer, response + stray)

    await connects(make_client, polling_server(handshake(), first=first))


async def test_head_at_the_limit_with_its_blank_line_split(make_client: ClientFactory) -> None:
    # A head of exactly MAX_HEAD bytes, its final CRLF CRLF cut in two by the
    # reads: it used to be refused as too large (the blank line was searched for
    # within the last read only), and accepted when it arrived in one piece.
    async def first(srv: RawServer, writer: asyncio.StreamWriter, response: bytes) -> None:
        head, _, body = response.partition(b"\r\n\r\n")
        pad = MAX_HEAD - len(head) - len(b"\r\nX-Pad: \r\n\r\n")
        padded = head + b"\r\nX-Pad: " + b"p" * pad + b"\r\n\r\n"
        assert len(padded) == MAX_HEAD
        await srv.write(writer, padded[:-2])
        await asyncio.sleep(0.05)  # the client reads the head without its last CRLF
        await srv.write(writer, padded[-2:] + body)

    await connects(make_client, polling_server(handshake(), first=first))


async def test_empty_line_after_a_post_answer_keeps_the_connection(
    make_client: ClientFactory,
) -> None:
    # An empty line after a response is ignored when it comes in the same read
    # (httptools skips it); arriving alone, between requests, it used to drop
    # the connection, so that the next POST opened a new one.
    async def post(srv: RawServer, writer: asyncio.StreamWriter, response: bytes) -> None:
        await srv.write(writer, response)
        await asyncio.sleep(0.05)
        await srv.write(writer, b"\r\n")

    server = polling_server(handshake(), post=post)
    async with server as url:
        client = make_client(
            url, reconnection=False, timeout=CONNECT_TIMEOUT, transports=["polling"]
        )
        await asyncio.wait_for(client.connect(), WAIT)
        for i in range(3):
            await asyncio.sleep(0.1)  # the empty line arrives while no POST is in flight
            client.emit("x", i)
        await asyncio.sleep(0.1)
        # One connection for the polls, one for every POST.
        assert len(server.writers) == 2
        await client.disconnect()
        await asyncio.wait_for(client.io.wait_closed(), WAIT)


async def test_poll_answered_with_101(make_client: ClientFactory) -> None:
    # httptools stops a 101 with HttpParserUpgrade, which is not an
    # HttpParserError: it used to escape data_received, to the event loop's
    # exception handler ("Fatal error: protocol.data_received() call failed").
    loop = asyncio.get_running_loop()
    reported: list[dict[str, object]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))

    async def serve(
        srv: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await read_head(reader)
        await srv.write(
            writer,
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\n\r\n\x81\x05hello",
        )
        await reader.read()

    try:
        async with RawServer(serve) as url:
            err, elapsed = await connect_fails(make_client, url, transports=["polling"])
    finally:
        loop.set_exception_handler(previous)
    assert str(err) == "xhr poll error: 101"
    assert elapsed < WAIT
    assert reported == []


# -- a healthy server still works with the limits -------------------------------------------


@pytest.mark.parametrize("transport", ["polling", "websocket"])
async def test_healthy_server_with_limits(make_client: ClientFactory, transport: str) -> None:
    peer = SocketwirePeer()
    await peer.start()
    try:
        client = make_client(peer.url, reconnection=False, transports=[transport])
        await asyncio.wait_for(client.connect(), WAIT)
        big = "x" * 200_000
        assert await client.emit_with_ack("echo", big, timeout=WAIT) == big
        await client.disconnect()
    finally:
        await peer.stop()
