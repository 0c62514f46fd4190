"""A minimal asyncio HTTP/1.1 client for the polling transport (httptools parses responses).

``HttpConnection`` is one keep-alive TCP (or TLS) connection carrying one request at
a time.  ``HttpChannel`` is a lane of requests that reuses its connection while the
server keeps it alive and opens a new one when needed: the polling transport uses
one channel for its ``GET`` and one for its ``POST``, so at most one of each is in
flight (Engine.IO v4, "HTTP long-polling").

Only what Engine.IO needs: ``Content-Length`` or chunked or close-delimited
response bodies (trailer fields read and dropped), no redirects, no compression,
no cookies.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl as ssl_module
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

import httptools

__all__ = [
    "HttpChannel",
    "HttpConnection",
    "HttpResponse",
    "ResponseTooLarge",
    "open_connection",
]

# A kept-alive connection idle for longer than this is not reused: servers close
# idle connections (Node after 5 s), and a request written just as the server
# closes would be lost.
MAX_IDLE = 4.0

# A response head (status line and header fields) larger than this, or with more
# header lines, fails the request: Engine.IO servers send a handful of short
# headers, and the parser's cost grows with what it is fed (Node's own limit on
# a head is 16 KiB).
MAX_HEAD = 64 * 1024
MAX_HEADER_LINES = 100

# After the head, bytes that bring the parser no further (no body, no chunk
# boundary, no complete trailer field) for longer than this fail the request:
# httptools holds an unfinished trailer field in memory, and a chunk extension
# or a trailer that never ends would otherwise be read for ever.  Trailer fields
# are not merged into the headers (RFC 9110, 6.5.1); together they may take
# MAX_HEAD bytes.
MAX_STALL = 2 * MAX_HEAD

# The default bound on a response body (a poll response carries one payload).
DEFAULT_MAX_BODY = 100_000_000


class ResponseTooLarge(ConnectionError):
    """A response head or body went over its limit; the connection is dropped."""


class _Unsolicited(Exception):
    """A response began while no request waits for one (raised to stop the parser)."""


@dataclass(slots=True)
class HttpResponse:
    """A complete response: status, lower-case header names, body."""

    status: int
    headers: dict[str, str]
    body: bytes


class HttpConnection(asyncio.Protocol):
    """One HTTP/1.1 connection; ``request`` sends a request and returns its response."""

    __slots__ = (
        "_body",
        "_body_size",
        "_closed",
        "_framed",
        "_head_done",
        "_head_size",
        "_header_lines",
        "_headers",
        "_host",
        "_idle_since",
        "_loop",
        "_max_body",
        "_parser",
        "_received",
        "_stall",
        "_trailer_size",
        "_transport",
        "_waiter",
        "closed_event",
    )

    def __init__(
        self, loop: asyncio.AbstractEventLoop, host: str, max_body: int = DEFAULT_MAX_BODY
    ) -> None:
        self._loop = loop
        self._host = host
        self._max_body = max_body
        self._body_size = 0
        self._head_size = 0
        self._header_lines = 0
        self._stall = 0
        self._trailer_size = 0
        self._transport: asyncio.Transport | None = None
        self._parser: httptools.HttpResponseParser | None = None
        self._waiter: asyncio.Future[HttpResponse] | None = None
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._framed = False
        self._head_done = False
        self._received = False
        self._closed = False
        self._idle_since = loop.time()
        self.closed_event = asyncio.Event()

    # -- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's do not subclass asyncio.Transport).
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        if parser is None:
            if not data.strip(b"\r\n"):
                # Empty lines after a response: ignored, as the parser ignores
                # them when they come in the same read (RFC 9112, 2.2), so that
                # the connection is kept or not whatever the cut of the reads.
                return
            # Bytes nobody asked for: the connection is out of step, drop it.
            self.close()
            return
        self._received = True
        rest = b""
        if self._head_done:
            self._stall += len(data)
        else:
            # Count the head's bytes before the parser sees them: a server that
            # never ends its head costs at most MAX_HEAD bytes.  The parser gets
            # only what still fits; the rest of this read follows once the head
            # has ended within it.  (Exact wherever the reads are cut, even with
            # the blank line that ends the head split between two reads.)
            room = MAX_HEAD - self._head_size
            if len(data) > room:
                data, rest = data[:room], data[room:]
            self._head_size += len(data)
        if not self._feed(parser, data):
            return
        if rest:
            if self._parser is not parser:
                # The whole response fitted in the head's room: the rest of the
                # read answers nothing (as bytes arriving between requests).
                self.close()
                return
            if not self._head_done:
                self._too_large(f"response head exceeds {MAX_HEAD} bytes")
                return
            self._stall += len(rest)
            if not self._feed(parser, rest):
                return
        if self._parser is parser and self._stall > MAX_STALL:
            self._too_large(f"response framing or trailers exceed {MAX_STALL} bytes")

    def _feed(self, parser: httptools.HttpResponseParser, data: bytes) -> bool:
        """Parse ``data``; False when the response failed (the connection is closing)."""
        try:
            parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            # A callback raised: httptools chains the callback's exception.
            cause = exc.__context__
            if isinstance(cause, ResponseTooLarge):
                self._too_large(str(cause))
            elif isinstance(cause, _Unsolicited):
                self.close()
            else:
                self._fail(ConnectionError(f"invalid HTTP response: {exc}"))
                self.close()
            return False
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"invalid HTTP response: {exc}"))
            self.close()
            return False
        except httptools.HttpParserUpgrade:
            # A 101 answer: what follows is another protocol, never an answer to
            # a poll.  httptools stops with this error (not an HttpParserError)
            # after delivering the 101 itself, so the waiter may have it already.
            self._fail(ConnectionError("invalid HTTP response: unexpected protocol switch"))
            self.close()
            return False
        return True

    def _too_large(self, message: str) -> None:
        self._fail(ResponseTooLarge(message))
        self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._transport = None
        self.closed_event.set()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            parser = self._parser
            if parser is not None and self._head_done and not self._framed:
                # A body delimited by the end of the connection.
                self._complete(parser.get_status_code())
            else:
                self._fail(exc or ConnectionError("connection closed before the response"))

    # -- httptools callbacks -----------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._waiter is None:
            # A response right after the one just delivered, in the same read:
            # nobody asked for it. Parsed, it would land in the state cleared for
            # the next request (its headers and body prefixed to the next answer,
            # its head not counted against MAX_HEAD); the connection is out of
            # step, as for bytes arriving between requests (data_received).
            raise _Unsolicited("response nobody asked for")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_lines += 1
        if self._header_lines > MAX_HEADER_LINES:
            raise ResponseTooLarge(f"response head has more than {MAX_HEADER_LINES} header lines")
        if self._head_done:
            # A trailer field (after a chunked body): counted, not kept.
            self._stall = 0
            self._trailer_size += len(name) + len(value)
            if self._trailer_size > MAX_HEAD:
                raise ResponseTooLarge(f"response trailers exceed {MAX_HEAD} bytes")
            return
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        previous = self._headers.get(key)
        self._headers[key] = text if previous is None else f"{previous}, {text}"

    def on_headers_complete(self) -> None:
        self._head_done = True
        headers = self._headers
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        self._framed = chunked or "content-length" in headers

    def on_chunk_header(self) -> None:
        self._stall = 0

    def on_chunk_complete(self) -> None:
        self._stall = 0

    def on_body(self, body: bytes) -> None:
        self._stall = 0
        self._body_size += len(body)
        if self._body_size > self._max_body:
            raise ResponseTooLarge(f"response body exceeds {self._max_body} bytes")
        self._body.append(body)

    def on_message_complete(self) -> None:
        parser = self._parser
        assert parser is not None
        keep_alive = parser.should_keep_alive()
        self._complete(parser.get_status_code())
        if not keep_alive:
            self.close()

    # -- helpers -----------------------------------------------------------------------

    def _complete(self, status: int) -> None:
        waiter = self._waiter
        response = HttpResponse(status, self._headers, b"".join(self._body))
        self._reset()
        if waiter is not None and not waiter.done():
            waiter.set_result(response)

    def _fail(self, exc: BaseException) -> None:
        waiter = self._waiter
        self._reset()
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def _reset(self) -> None:
        self._parser = None
        self._waiter = None
        self._headers = {}
        self._body = []
        self._body_size = 0
        self._head_size = 0
        self._header_lines = 0
        self._stall = 0
        self._trailer_size = 0
        self._framed = False
        self._head_done = False
        self._idle_since = self._loop.time()

    # -- public --------------------------------------------------------------------------

    @property
    def reusable(self) -> bool:
        """Open, idle, and not idle for so long that the server may be closing it."""
        return (
            not self._closed
            and self._waiter is None
            and self._loop.time() - self._idle_since < MAX_IDLE
        )

    async def request(
        self,
        method: str,
        target: str,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes | None = None,
    ) -> HttpResponse:
        """Send one request and wait for the whole response."""
        transport = self._transport
        if self._closed or transport is None:
            raise ConnectionError("connection closed")
        if self._waiter is not None:
            raise RuntimeError("a request is already in flight on this connection")
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self._host}"]
        lines.extend(f"{name}: {value}" for name, value in headers)
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        waiter: asyncio.Future[HttpResponse] = self._loop.create_future()
        self._waiter = waiter
        self._received = False
        self._parser = httptools.HttpResponseParser(self)
        transport.write(head + body if body else head)
        try:
            return await waiter
        except asyncio.CancelledError:
            # The response will never be read: the connection is out of step.
            self.close()
            raise

    @property
    def received_any(self) -> bool:
        """Whether any byte of the current (or last) response arrived."""
        return self._received

    def close(self) -> None:
        """Close the connection (a pending request fails)."""
        transport = self._transport
        if transport is not None:
            transport.close()
        elif not self._closed:
            self._closed = True
            self.closed_event.set()


async def open_connection(
    host: str,
    port: int,
    *,
    host_header: str,
    ssl: ssl_module.SSLContext | None = None,
    timeout: float | None = None,
    max_body: int = DEFAULT_MAX_BODY,
) -> HttpConnection:
    """Open an :class:`HttpConnection` to ``host:port`` (TLS when ``ssl`` is given).

    A response body larger than ``max_body`` bytes fails with :class:`ResponseTooLarge`.
    """
    loop = asyncio.get_running_loop()
    conn = HttpConnection(loop, host_header, max_body)
    coro = loop.create_connection(
        lambda: conn, host, port, ssl=ssl, server_hostname=host if ssl is not None else None
    )
    if timeout is None:
        await coro
    else:
        async with asyncio.timeout(timeout):
            await coro
    return conn


class HttpChannel:
    """Requests sent one after another over a reused keep-alive connection."""

    __slots__ = (
        "_busy",
        "_closing",
        "_conn",
        "_host",
        "_host_header",
        "_max_body",
        "_port",
        "_ssl",
        "_timeout",
    )

    def __init__(
        self,
        host: str,
        port: int,
        *,
        host_header: str,
        ssl: ssl_module.SSLContext | None = None,
        connect_timeout: float | None = None,
        max_body: int = DEFAULT_MAX_BODY,
    ) -> None:
        self._host = host
        self._max_body = max_body
        self._port = port
        self._host_header = host_header
        self._ssl = ssl
        self._timeout = connect_timeout
        self._conn: HttpConnection | None = None
        self._closing: list[HttpConnection] = []
        self._busy = False

    async def request(
        self,
        method: str,
        target: str,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes | None = None,
    ) -> HttpResponse:
        """Send a request, reusing the connection when possible.

        A request on a reused connection that closes before any byte of the answer
        is sent again once on a new connection (the server closed an idle one).
        One request at a time: a second one while one is in flight is an error.
        """
        if self._busy:
            raise RuntimeError("a request is already in flight on this channel")
        self._busy = True
        try:
            return await self._request(method, target, list(headers), body)
        finally:
            self._busy = False

    async def _request(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes | None
    ) -> HttpResponse:
        conn = self._conn
        if conn is not None and conn.reusable:
            try:
                return await conn.request(method, target, headers, body)
            except ConnectionError:
                if conn.received_any:
                    raise
                self._retire(conn)
        elif conn is not None:
            self._retire(conn)
        self._conn = conn = await open_connection(
            self._host,
            self._port,
            host_header=self._host_header,
            ssl=self._ssl,
            timeout=self._timeout,
            max_body=self._max_body,
        )
        return await conn.request(method, target, headers, body)

    def _retire(self, conn: HttpConnection) -> None:
        if self._conn is conn:
            self._conn = None
        conn.close()
        self._closing.append(conn)

    @property
    def busy(self) -> bool:
        """Whether a request is in flight."""
        return self._busy

    def close(self) -> None:
        """Close the current connection, if any (a request in flight fails)."""
        conn = self._conn
        if conn is not None:
            self._retire(conn)

    async def wait_closed(self) -> None:
        """Wait until the connections closed by :meth:`close` are gone."""
        closing, self._closing = self._closing, []
        for conn in closing:
            with contextlib.suppress(Exception):
                await conn.closed_event.wait()
