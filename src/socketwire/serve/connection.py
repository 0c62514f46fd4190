"""One TCP connection of the built-in server, while it speaks HTTP/1.1 (layer 3, asyncio).

:class:`HttpConnection` is the ``asyncio.Protocol`` of a connection: ``httptools``
parses request heads (a strict body-less ``GET`` that arrives whole on an idle
connection is read in one compiled step instead, ``socketwire.http.head``),
requests are answered one at a time in order (HTTP/1.1 keep-alive), and an
accepted WebSocket upgrade hands the connection to a ``WebSocketConnection``
(``socketwire.serve.websocket``). :class:`Request` follows the rules shared
with the ASGI front door (``socketwire.http``).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable
from types import MappingProxyType
from typing import Final, Protocol, cast

import httptools

from socketwire.core.websocket import handshake as ws_handshake
from socketwire.engine.ports import WebSocketHandler
from socketwire.engine.ticker import Ticker
from socketwire.errors import RemoteProtocolError
from socketwire.http import request as http_request
from socketwire.http.head import Head, head_scanner
from socketwire.http.request import BodyBuffer, RequestTooLarge, add_header, dispatch
from socketwire.http.response import error_response, response_head
from socketwire.serve.proxy import ProxyHeaders
from socketwire.serve.websocket import WebSocketConnection

__all__ = [
    "MAX_HEADER_COUNT",
    "MAX_HEAD_SIZE",
    "MAX_PIPELINED_BYTES",
    "MAX_PIPELINED_REQUESTS",
    "ExchangeOpener",
    "HttpConnection",
    "HttpExchange",
    "HttpTimeouts",
    "Request",
]

log = logging.getLogger("socketwire.http")

# The largest request head accepted (request line + headers).
MAX_HEAD_SIZE = 64 * 1024

# The most header lines one request may carry. Node's http accepts 2,000 (and
# drops the rest silently); a Socket.IO client sends about a dozen, and browsers
# behind proxies rarely more than 50, so 100 leaves room while keeping the cost
# of a head of many tiny lines small. Over it: 431.
MAX_HEADER_COUNT = 100

# What one keep-alive connection may have queued behind the request being
# answered (a parked polling GET, say) before the server stops reading it, as
# Node's http does: a count, and the bytes of the queued bodies. Reading resumes
# once the queue is empty. What arrives in the read that crosses a limit is
# still parsed, so the queue holds at most one read (256 KiB) more.
MAX_PIPELINED_REQUESTS = 16
MAX_PIPELINED_BYTES = 1024 * 1024

# Time limits of the HTTP layer (seconds), as Node's headersTimeout,
# requestTimeout and keepAliveTimeout.
HTTP_HEAD_TIMEOUT = 60.0
HTTP_BODY_TIMEOUT = 300.0
KEEP_ALIVE_TIMEOUT = 5.0

_CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"

# The compiled reader of the commonest head, within the same limits (None when
# not built: every head goes to httptools).
_scan_head: Final = head_scanner(MAX_HEAD_SIZE, MAX_HEADER_COUNT)


class Request(http_request.Request):
    """One parsed HTTP request (implements ``engine.ports.HttpRequest``)."""

    __slots__ = ("_conn", "keep_alive", "upgrade")

    def __init__(
        self, conn: HttpConnection, method: str, url: str, headers: dict[str, str]
    ) -> None:
        path, _, query = url.partition("?")
        if conn.trusts_proxy:
            address, secure = conn.client_of(headers)
        else:
            address, secure = conn.remote_address, conn.secure
        super().__init__(method, path, query, url, headers, address, secure)
        self._conn = conn
        self.upgrade = False
        self.keep_alive = True

    @property
    def connection(self) -> HttpConnection:
        """The connection the request came on."""
        return self._conn

    def is_websocket(self) -> bool:
        return self.upgrade and self.headers.get("upgrade", "").lower() == "websocket"

    def _send_response(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self._conn.write_response(self, status, headers, body)

    def accept_websocket(
        self, handler: WebSocketHandler, headers: list[tuple[str, str]]
    ) -> WebSocketConnection | None:
        if self.answered:
            return None
        try:
            key = ws_handshake.check_request(self.method, self.headers)
        except RemoteProtocolError as exc:
            log.info("bad WebSocket handshake from %s: %s", self.remote_address, exc)
            self.refuse_websocket(str(exc).encode())
            return None
        self.answered = True
        return self._conn.switch_to_websocket(ws_handshake.server_response(key, headers), handler)


class HttpExchange(Protocol):
    """A request whose body is streamed to an application instead of read whole
    (the ASGI host's requests, ``socketwire.serve.asgi_host``).

    The connection feeds it the body as it arrives and starts it when its turn
    comes (requests are answered in order); the exchange writes its response to
    ``conn.transport`` itself and calls ``conn.exchange_done`` at its end.
    """

    #: Always False: an upgrade request is never streamed (the pipelining queue reads it).
    upgrade: bool

    @property
    def held(self) -> int:
        """Body bytes received and not yet taken by the application."""

    @property
    def response_started(self) -> bool:
        """Whether the response head has been written."""

    def start(self) -> None:
        """Its turn to be answered: run the application."""

    def feed_body(self, chunk: bytes) -> None:
        """The next piece of the request body."""

    def end_body(self) -> None:
        """The request body is complete."""

    def abort(self) -> None:
        """The connection is gone."""

    def pause_writing(self) -> None:
        """The transport's write buffer went over its high-water mark."""

    def resume_writing(self) -> None:
        """The write buffer drained."""


class ExchangeOpener(Protocol):
    """Decides, once a request head is complete, whether its body is streamed."""

    def open_exchange(
        self,
        conn: HttpConnection,
        method: str,
        url: str,
        headers: dict[str, str],
        keep_alive: bool,
    ) -> HttpExchange | None:
        """An exchange for the request, or None to read it whole and hand it to
        the connection's ``app`` (the Socket.IO fast path)."""


_ConnRef = weakref.ReferenceType["HttpConnection"]


class HttpTimeouts:
    """The time limits shared by every connection of one listening server.

    One deadline queue per limit (each has a constant delay), each driven by one
    loop callback (``engine.ticker.Ticker``): arming a limit is an append, not a
    timer object per connection per request. A connection remembers the one
    deadline that applies to it now; an entry whose deadline is no longer the
    connection's is stale and ignored when it expires (lazy cancelling).

    * ``head``: from the first byte of a request (or from the connection's
      start) until its head is complete; then 408 and close.
    * ``body``: from the end of the head until the body is complete; 408, close.
    * ``idle``: a keep-alive connection with nothing to answer and no request
      begun; closed silently. A request being answered (a parked polling GET)
      and an upgraded WebSocket are not idle: no limit runs for them.
    """

    __slots__ = ("body", "head", "idle", "loop")

    def __init__(
        self,
        head: float = HTTP_HEAD_TIMEOUT,
        body: float = HTTP_BODY_TIMEOUT,
        idle: float = KEEP_ALIVE_TIMEOUT,
    ) -> None:
        for name, value in (("head", head), ("body", body), ("idle", idle)):
            if not value > 0:
                raise ValueError(f"{name} timeout must be positive, got {value!r}")
        # The queues hold connections weakly: an entry stays until its deadline
        # (lazy cancelling), and must not keep a closed connection alive that
        # long (a minute of churn would otherwise hold a minute of connections).
        self.head: Ticker[_ConnRef] = Ticker(head, _head_expired)
        self.body: Ticker[_ConnRef] = Ticker(body, _body_expired)
        self.idle: Ticker[_ConnRef] = Ticker(idle, _idle_expired)
        # The loop of the connections, known at the first one (the queues'
        # callbacks run on it). Kept here because on Python 3.11 each
        # ``asyncio.get_running_loop()`` costs a ``getpid`` system call.
        self.loop: asyncio.AbstractEventLoop | None = None


def _head_expired(ref: _ConnRef, deadline: float) -> None:
    conn = ref()
    if conn is not None:
        conn.deadline_expired(deadline, 408, "request head")


def _body_expired(ref: _ConnRef, deadline: float) -> None:
    conn = ref()
    if conn is not None:
        conn.deadline_expired(deadline, 408, "request body")


def _idle_expired(ref: _ConnRef, deadline: float) -> None:
    conn = ref()
    if conn is not None:
        conn.deadline_expired(deadline, 0, "keep-alive")


# Stand-ins for the per-request containers between requests: shared, and
# immutable, so that a write that skipped ``on_message_begin`` raises instead of
# reaching every connection. Typed as the containers they stand in for: no write
# reaches them (``on_message_begin`` swaps in a fresh dict before any header; a
# request is queued in a fresh list, see ``on_message_complete``).
_NO_HEADERS: Final = cast("dict[str, str]", MappingProxyType({}))
_NO_BODY = BodyBuffer(0)
_NO_PENDING: Final = cast("list[Request | HttpExchange]", ())


class HttpConnection(asyncio.Protocol):
    """One TCP connection of the built-in server."""

    __slots__ = (
        "__weakref__",
        "_active",
        "_at_message_start",
        "_body",
        "_body_held",
        "_current",
        "_deadline",
        "_head_armed",
        "_head_bytes",
        "_head_size",
        "_header_count",
        "_headers",
        "_in_head",
        "_loop",
        "_parser",
        "_paused",
        "_pending",
        "_pending_bytes",
        "_ref",
        "_stream",
        "_stream_queued",
        "_timeouts",
        "_upgrade_rest",
        "_upgrade_sync",
        "_url",
        "app",
        "exchanges",
        "max_body_size",
        "proxy",
        "remote_address",
        "secure",
        "transport",
        "trusts_proxy",
        "write_buffer_limit",
        "ws",
    )

    def __init__(
        self,
        app: Callable[[Request], None],
        max_body_size: int,
        write_buffer_limit: int = 4 * 1024 * 1024,
        timeouts: HttpTimeouts | None = None,
        *,
        exchanges: ExchangeOpener | None = None,
        proxy: ProxyHeaders | None = None,
    ) -> None:
        self.app = app
        # Requests that ``exchanges`` claims stream their bodies (an ASGI app
        # beside the Socket.IO server); the others are read whole, as before.
        self.exchanges = exchanges
        self.proxy = proxy
        # The exchange whose body is being received, and whether it still waits
        # behind earlier requests (its body then counts as pipelined bytes).
        self._stream: HttpExchange | None = None
        self._stream_queued = False
        # The exchange being answered (``_current`` is it, or a ``Request``).
        self._active: HttpExchange | None = None
        # Reading paused for an exchange whose application is not taking its body.
        self._body_held = False
        self.secure = False
        self.trusts_proxy = False
        # None (a connection made by hand, in tests and fuzzing): no time limits.
        self._timeouts = timeouts
        # What the time-limit queues hold (see ``HttpTimeouts``).
        self._ref: _ConnRef = weakref.ref(self)
        # The deadline that applies now (0: none); see ``HttpTimeouts``.
        self._deadline = 0.0
        # The head limit armed at connect still runs for the first request.
        self._head_armed = False
        self._loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self.max_body_size = max_body_size
        self.write_buffer_limit = write_buffer_limit
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.ws: WebSocketConnection | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        # Every request begins with ``on_message_begin``, which gives it fresh
        # containers; until then (and after an upgrade) the shared empty ones
        # stand in, so an idle WebSocket keeps no per-connection garbage for
        # the cycle collector to walk.
        self._headers: dict[str, str] = _NO_HEADERS
        self._body = _NO_BODY
        self._head_size = 0
        # Raw bytes of the unfinished head (``data_received``); ``_head_size``
        # counts its URL and header fields exactly once they are parsed.
        self._head_bytes = 0
        self._header_count = 0
        # True while a request head is being received: bytes that arrive then
        # are counted before httptools sees them (see ``data_received``).
        self._in_head = False
        # True while httptools is between two messages (no head or body of a
        # request under way): only then may a read begin with a new head.
        self._at_message_start = True
        self._current: Request | HttpExchange | None = None
        self._pending: list[Request | HttpExchange] = _NO_PENDING
        self._pending_bytes = 0
        self._paused = False
        self._upgrade_rest = b""
        self._upgrade_sync = False
        self.remote_address = ""

    # -- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        # A Unix socket's peer name is an empty string (or None): no address.
        self.remote_address = peer[0] if isinstance(peer, tuple) else ""
        self.secure = transport.get_extra_info("sslcontext") is not None
        proxy = self.proxy
        self.trusts_proxy = proxy is not None and proxy.trusts(self.remote_address)
        timeouts = self._timeouts
        if timeouts is not None:
            loop = timeouts.loop
            if loop is None:
                loop = timeouts.loop = asyncio.get_running_loop()
            self._loop = loop
            # Until its first request has a complete head, a connection is under
            # the head limit (a client that connects and says nothing is closed).
            self._deadline = timeouts.head.push(self._loop, self._ref)
            self._head_armed = True

    def data_received(self, data: bytes) -> None:
        ws = self.ws
        if ws is not None:
            ws.feed(data)
            return
        if (
            _scan_head is not None
            and self._at_message_start
            and self._current is None
            and not self._pending
        ):
            head = _scan_head(data)
            if head is not None:
                self._head_scanned(data, head)
                return
        self._feed(data)

    def _feed(self, data: bytes) -> None:
        if self._in_head:
            # httptools only reports a header once it is complete, and grows a
            # partial header by concatenation (quadratic in its length), so the
            # bytes of an unfinished head are counted here, as they arrive. The
            # chunk in which a head begins is not counted (part of it may belong
            # to the previous request's body): a head is refused at most one
            # read (256 KiB) past the limit, before its cost grows further.
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_SIZE:
                log.info("request head from %s too large", self.remote_address)
                self._fail(431, "Request Header Fields Too Large")
                return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            rest = data[exc.args[0] :]
            self._upgrade(rest)
        except httptools.HttpParserError as exc:
            # httptools wraps exceptions raised in callbacks (our size limits).
            cause = exc.__context__
            if isinstance(cause, RequestTooLarge):
                log.info("request from %s too large: %s", self.remote_address, cause)
                self._fail(cause.status, str(cause))
            else:
                log.info("malformed HTTP request from %s: %s", self.remote_address, exc)
                self._fail(400, "Bad Request")

    def pause_writing(self) -> None:
        if self.ws is not None:
            self.ws.pause_writing()
        elif self._active is not None:
            self._active.pause_writing()

    def resume_writing(self) -> None:
        if self.ws is not None:
            self.ws.resume_writing()
        elif self._active is not None:
            self._active.resume_writing()

    def client_of(self, headers: dict[str, str]) -> tuple[str, bool]:
        """The client's address and whether its connection is TLS: the peer's,
        or what a trusted proxy says in ``X-Forwarded-For``/``-Proto``."""
        proxy = self.proxy
        if proxy is None or not self.trusts_proxy:
            return self.remote_address, self.secure
        return (
            proxy.client_address(self.remote_address, headers.get("x-forwarded-for")),
            proxy.is_secure(headers.get("x-forwarded-proto"), self.secure),
        )

    def connection_lost(self, exc: Exception | None) -> None:
        # The references back to this object (the WebSocket's, the parser's
        # callbacks, a request's) are dropped here, so that the connection is
        # freed by reference counting, not left to the cycle collector.
        self._parser = None  # type: ignore[assignment]
        ws = self.ws
        if ws is not None:
            self.ws = None
            ws.connection_lost()
            return
        req = self._current
        self._current = None
        self._active = None
        pending, self._pending = self._pending, _NO_PENDING
        if req is not None:
            req.abort()
        for queued in pending:
            if not isinstance(queued, Request):
                queued.abort()
        self._stream = None

    # -- httptools callbacks ---------------------------------------------------------

    def on_message_begin(self) -> None:
        self._at_message_start = False
        self._url = b""
        self._headers = {}
        self._body = BodyBuffer(self.max_body_size)
        self._head_size = 0
        self._header_count = 0
        self._head_bytes = 0
        if not self._in_head:
            self._in_head = True
            timeouts = self._timeouts
            if self._head_armed:
                # The connection's first request: its head is due by the limit
                # armed at connect (a second entry would only sit in the queue).
                self._head_armed = False
            elif timeouts is not None and self._current is None:
                self._deadline = timeouts.head.push(self._loop, self._ref)

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_size += len(url)
        if self._head_size > MAX_HEAD_SIZE:
            raise RequestTooLarge(414, "URI Too Long")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value)
        if self._head_size > MAX_HEAD_SIZE:
            raise RequestTooLarge(431, "Request Header Fields Too Large")
        self._header_count += 1
        if self._header_count > MAX_HEADER_COUNT:
            raise RequestTooLarge(431, "Request Header Fields Too Large")
        add_header(self._headers, name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        first = self._current is None
        timeouts = self._timeouts
        headers = self._headers
        if (
            timeouts is not None
            and first
            and ("content-length" in headers or "transfer-encoding" in headers)
        ):
            self._deadline = timeouts.body.push(self._loop, self._ref)
        else:
            # No body follows a head without either header (RFC 9112 section
            # 6.3), as for every WebSocket handshake: the request is complete
            # now, and an entry in the body queue would stay there for minutes.
            self._deadline = 0.0
        opener = self.exchanges
        stream = None
        # An upgrade is never streamed: it is read whole and dispatched to ``app``.
        if opener is not None and "upgrade" not in headers:
            parser = self._parser
            stream = opener.open_exchange(
                self,
                parser.get_method().decode("ascii", "replace"),
                self._url.decode("latin-1"),
                headers,
                parser.should_keep_alive(),
            )
        expect = headers.get("expect")
        if expect is not None:
            self._expect(expect, stream is None)
        if stream is None:
            return
        self._stream = stream
        if first and not self._pending:
            self._current = self._active = stream
            stream.start()
        else:
            # Behind a request being answered: its body waits, as pipelined bytes.
            self._stream_queued = True
            if self._pending is _NO_PENDING:
                self._pending = [stream]
            else:
                self._pending.append(stream)

    def _expect(self, expect: str, limited: bool) -> None:
        """Answer ``Expect: 100-continue`` (RFC 9110 section 10.1.1).

        A body over ``max_body_size`` is refused at once (413, then closed) rather
        than read (when ``limited``: a streamed body has no limit here). Otherwise ``100 Continue`` is sent when this request is the next
        to be answered; behind a parked request an interim answer would be read as
        the earlier request's, so the client's own wait (a second or so in curl
        and Node) sends the body instead.
        """
        if expect.lower() != "100-continue":
            # The only expectation defined; others are refused (417).
            raise RequestTooLarge(417, "Expectation Failed")
        length = self._headers.get("content-length", "")
        if limited and length.isdigit() and int(length) > self.max_body_size:
            raise RequestTooLarge(413, "Payload Too Large")
        if self._current is None and not self._pending:
            self.transport.write(_CONTINUE)

    def on_body(self, body: bytes) -> None:
        stream = self._stream
        if stream is None:
            self._body.add(body)  # 413 over max_body_size
            return
        stream.feed_body(body)
        if self._stream_queued:
            self._pending_bytes += len(body)
            if not self._paused and self._pending_bytes >= MAX_PIPELINED_BYTES:
                self._paused = True
                self.transport.pause_reading()

    def on_message_complete(self) -> None:
        self._at_message_start = True
        # Being answered or queued: no limit until the answers are written.
        self._deadline = 0.0
        stream = self._stream
        if stream is not None:
            self._stream = None
            self._stream_queued = False
            stream.end_body()
            timeouts = self._timeouts
            if timeouts is not None and self._current is None and not self._pending:
                # Answered before its body ended: the connection is idle now.
                self._deadline = timeouts.idle.push(self._loop, self._ref)
            return
        parser = self._parser
        req = Request(
            self,
            parser.get_method().decode("ascii", "replace"),
            self._url.decode("latin-1"),
            self._headers,
        )
        req.body = self._body.take()
        req.upgrade = parser.should_upgrade()
        req.keep_alive = parser.should_keep_alive()
        # An upgrade is dispatched from data_received once httptools signals it.
        if self._current is None and not req.upgrade:
            self._dispatch(req)
        else:
            if self._pending is _NO_PENDING:
                self._pending = [req]
            else:
                self._pending.append(req)
            self._pending_bytes += len(req.body)
            if not self._paused and (
                len(self._pending) >= MAX_PIPELINED_REQUESTS
                or self._pending_bytes >= MAX_PIPELINED_BYTES
            ):
                self._paused = True
                self.transport.pause_reading()

    # -- the compiled reading ----------------------------------------------------------

    def _head_scanned(self, data: bytes, head: Head) -> None:
        """A whole body-less request read by ``_scan_head`` on an idle connection:
        what the httptools callbacks would have done, in one step."""
        method, url, headers, end, keep_alive, upgrade = head
        # The connection's first head arrived by the limit armed at connect; a
        # later one began and ended in this read: no head limit to arm, and the
        # idle limit no longer applies.
        self._head_armed = False
        self._deadline = 0.0
        if upgrade:
            req = Request(self, method, url, headers)
            req.keep_alive = keep_alive
            req.upgrade = True
            self._dispatch_upgrade(req, data[end:])
            return
        opener = self.exchanges
        stream = None
        if opener is not None:
            stream = opener.open_exchange(self, method, url, headers, keep_alive)
        if stream is None:
            req = Request(self, method, url, headers)
            req.keep_alive = keep_alive
            self._dispatch(req)
        else:
            # Streamed to an application: it starts, and its body is complete.
            self._current = self._active = stream
            stream.start()
            stream.end_body()
            timeouts = self._timeouts
            if timeouts is not None and self._current is None and not self._pending:
                # Answered at once: the connection is idle now.
                self._deadline = timeouts.idle.push(self._loop, self._ref)
        if end == len(data):
            return
        rest = data[end:]
        if keep_alive:
            # Pipelined bytes: the next request, read the general way.
            self._feed(rest)
        elif rest.strip(b"\r\n"):
            # As httptools: nothing may follow a request that closes the
            # connection (empty lines between messages are tolerated).
            log.info(
                "malformed HTTP request from %s: data after Connection: close", self.remote_address
            )
            self._fail(400, "Bad Request")

    # -- dispatching ----------------------------------------------------------------

    def _dispatch(self, req: Request | HttpExchange) -> None:
        self._current = req
        if isinstance(req, Request):
            dispatch(self.app, req)
        else:
            self._active = req
            req.start()

    def _upgrade(self, rest: bytes) -> None:
        req = self._pending[-1] if self._pending and self._current is None else None
        if not isinstance(req, Request):
            self._fail(400, "Bad Request")
            return
        self._pending.pop()
        self._pending_bytes -= len(req.body)
        self._dispatch_upgrade(req, rest)

    def _dispatch_upgrade(self, req: Request, rest: bytes) -> None:
        # Bytes after the head belong to the WebSocket; they are handled once the
        # request is accepted, after the first frames the server writes.
        self._upgrade_rest = rest
        self._upgrade_sync = True
        try:
            self._dispatch(req)
        finally:
            self._upgrade_sync = False
        ws = self.ws
        if ws is not None:
            ws.uncork()
            rest, self._upgrade_rest = self._upgrade_rest, b""
            if rest:
                ws.feed(rest)
        elif not req.answered:
            # Answered later (an asynchronous ``allow_request``): hold the bytes.
            self.transport.pause_reading()

    def switch_to_websocket(
        self, response: bytes, handler: WebSocketHandler
    ) -> WebSocketConnection:
        ws = WebSocketConnection(
            self.transport,
            self.remote_address,
            handler,
            max_message_size=self.max_body_size,
            write_buffer_limit=self.write_buffer_limit,
        )
        self.ws = ws
        # The transport's reads go to the WebSocket itself from now on: no
        # call through this object per read, which is then freed.
        self.transport.set_protocol(ws)
        self._current = None
        self._deadline = 0.0
        # Nothing of the HTTP request is kept for the connection's lifetime.
        self._parser = None  # type: ignore[assignment]
        self._headers = _NO_HEADERS
        self._body = _NO_BODY
        self._pending = _NO_PENDING
        self._pending_bytes = 0
        self._url = b""
        if self._upgrade_sync:
            # Accepted synchronously: the 101 response and whatever the handler
            # writes first (the Engine.IO open packet) leave in one system call;
            # ``_upgrade`` uncorks.
            ws.cork(response)
        else:
            self.transport.write(response)
            # Accepted asynchronously: resume on the next loop turn, after the
            # caller has written its first frames.
            asyncio.get_running_loop().call_soon(self._resume_websocket)
        return ws

    def hand_over(self, req: Request, protocol: asyncio.Protocol) -> bytes:
        """Give the connection of an upgrade request, answered by nobody here, to
        ``protocol`` (which relays it elsewhere: ``socketwire.serve.forward``).

        Returns the bytes received after the request's head, which are
        ``protocol``'s now; reading stays paused until the caller resumes it.
        """
        req.answered = True
        rest, self._upgrade_rest = self._upgrade_rest, b""
        self._current = None
        self._deadline = 0.0
        self._parser = None  # type: ignore[assignment]
        self._headers = _NO_HEADERS
        self._body = _NO_BODY
        self._pending = _NO_PENDING
        self._pending_bytes = 0
        self.transport.set_protocol(protocol)
        return rest

    def _resume_websocket(self) -> None:
        ws = self.ws
        if ws is None or self.transport.is_closing():
            return
        rest, self._upgrade_rest = self._upgrade_rest, b""
        self.transport.resume_reading()
        if rest:
            ws.feed(rest)

    def write_response(
        self, req: Request, status: int, headers: list[tuple[str, str]], body: bytes
    ) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        keep_alive = req.keep_alive and not req.upgrade
        transport.write(response_head(status, headers, len(body), keep_alive) + body)
        self._answered(req, keep_alive)

    def exchange_done(self, exchange: HttpExchange, keep_alive: bool) -> None:
        """An exchange wrote the end of its response: answer the next request.

        A body the application left unread is still read (and dropped) to its
        end before the next request, so the connection stays usable.
        """
        if self._active is exchange:
            self._active = None
        if self._body_held:
            self.hold_body(False)
        self._answered(exchange, keep_alive)

    def hold_body(self, hold: bool) -> None:
        """Pause (or resume) reading while a streamed body waits for its application."""
        if hold == self._body_held:
            return
        self._body_held = hold
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if hold:
            transport.pause_reading()
        elif not self._paused and self.ws is None:
            transport.resume_reading()

    def _answered(self, req: Request | HttpExchange, keep_alive: bool) -> None:
        transport = self.transport
        if not keep_alive:
            transport.close()
            return
        if self._current is req:
            self._current = None
            while self._pending and self._current is None and not self._pending[0].upgrade:
                queued = self._pending.pop(0)
                if isinstance(queued, Request):
                    self._pending_bytes -= len(queued.body)
                else:
                    self._pending_bytes -= queued.held
                    if queued is self._stream:
                        self._stream_queued = False
                self._dispatch(queued)
            if self._paused and not self._pending and self.ws is None:
                self._paused = False
                if not self._body_held:
                    transport.resume_reading()
            timeouts = self._timeouts
            # A body still arriving (answered before it was read) keeps its limit.
            if (
                timeouts is not None
                and self._current is None
                and not self._pending
                and self._stream is None
            ):
                ticker = timeouts.head if self._in_head else timeouts.idle
                self._deadline = ticker.push(self._loop, self._ref)

    def deadline_expired(self, deadline: float, status: int, what: str) -> None:
        """A time limit ran out (``HttpTimeouts``): close unless it was stale."""
        transport = self.transport
        if (
            deadline != self._deadline
            or self.ws is not None
            or transport is None
            or transport.is_closing()
        ):
            return
        self._deadline = 0.0
        active = self._active
        if status and active is not None and active.response_started:
            # Too late for a 408: the application's answer has begun.
            log.info("%s from %s timed out", what, self.remote_address)
            transport.close()
        elif status:
            log.info("%s from %s timed out", what, self.remote_address)
            self._fail(status, "Request Timeout")
        else:
            log.debug("%s connection from %s closed when idle", what, self.remote_address)
            transport.close()

    def _fail(self, status: int, message: str) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(error_response(status, message))
            transport.close()
