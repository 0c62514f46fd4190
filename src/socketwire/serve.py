"""The built-in HTTP/1.1 + WebSocket server (layer 3, asyncio).

One ``asyncio.Protocol`` per TCP connection: ``httptools`` parses request heads,
requests are answered one at a time in order (HTTP/1.1 keep-alive), and a
WebSocket upgrade switches the connection to the sans-I/O ``FrameReader``. The
Engine.IO runtime sees only the ports of ``socketwire.engine.ports``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
from collections.abc import Callable
from http import HTTPStatus
from types import MappingProxyType
from typing import Any, Final, cast
from urllib.parse import parse_qsl

import httptools

from socketwire.core.engineio.session import REASON_SLOW_CONSUMER as SLOW_CONSUMER
from socketwire.core.websocket import handshake as ws_handshake
from socketwire.core.websocket.frames import (
    FrameReader,
    Opcode,
    decode_close_payload,
    encode_close_payload,
    encode_frame,
)
from socketwire.engine.ports import WebSocketHandler
from socketwire.engine.server import EngineServer
from socketwire.errors import RemoteProtocolError, WebSocketProtocolError

log = logging.getLogger("socketwire.http")

_REASONS = {s.value: s.phrase for s in HTTPStatus}
_TEXT = Opcode.TEXT
_BINARY = Opcode.BINARY
_PING = Opcode.PING
_CLOSE = Opcode.CLOSE

# The largest request head accepted (request line + headers).
MAX_HEAD_SIZE = 64 * 1024


_SHARED_VALUES = frozenset(
    {
        "accept",
        "accept-encoding",
        "accept-language",
        "cache-control",
        "connection",
        "host",
        "origin",
        "pragma",
        "sec-websocket-extensions",
        "sec-websocket-version",
        "upgrade",
        "user-agent",
    }
)


# Recent handshake queries and their parsed form.  Most clients of a server send
# the same handshake query (``EIO=4&transport=websocket``, plus the same
# application parameters), so a WebSocket handshake usually parses nothing.
# Queries naming a session (``sid``) or busting caches (Engine.IO's ``t``) are
# unique per request and are not kept.
_QUERY_CACHE: dict[str, dict[str, str]] = {}
_QUERY_CACHE_SIZE = 256
_QUERY_CACHE_MAX_LEN = 512


def parse_query(raw: str) -> dict[str, str]:
    """Query parameters, the last value of a repeated name winning.

    Short names and values are interned: every session keeps its handshake query.
    The result is the caller's own dict.
    """
    if not raw:
        return {}
    cached = _QUERY_CACHE.get(raw)
    if cached is not None:
        return cached.copy()
    if "%" in raw or "+" in raw:
        pairs = parse_qsl(raw, keep_blank_values=True)
    else:
        pairs = [(k, v) for k, _, v in (p.partition("=") for p in raw.split("&") if p)]
    query = {sys.intern(k): (sys.intern(v) if len(v) < 16 else v) for k, v in pairs}
    if len(raw) <= _QUERY_CACHE_MAX_LEN and "sid" not in query and "t" not in query:
        if len(_QUERY_CACHE) >= _QUERY_CACHE_SIZE:
            _QUERY_CACHE.clear()
        _QUERY_CACHE[raw] = query.copy()
    return query


@functools.lru_cache(maxsize=512)
def _header_name(raw: bytes) -> str:
    return sys.intern(raw.decode("latin-1").lower())


class Request:
    """One parsed HTTP request (implements ``engine.ports.HttpRequest``)."""

    __slots__ = (
        "_abort_cb",
        "_conn",
        "_query",
        "_raw_query",
        "answered",
        "body",
        "headers",
        "keep_alive",
        "method",
        "path",
        "remote_address",
        "secure",
        "upgrade",
        "url",
    )

    def __init__(
        self, conn: HttpConnection, method: str, url: str, headers: dict[str, str]
    ) -> None:
        self._conn = conn
        self.method = method
        self.url = url
        path, _, query = url.partition("?")
        self.path = path
        self._raw_query = query
        self._query: dict[str, str] | None = None
        self.headers = headers
        self.body = b""
        self.remote_address = conn.remote_address
        self.secure = False
        self.upgrade = False
        self.keep_alive = True
        self.answered = False
        self._abort_cb: Callable[[], None] | None = None

    @property
    def query(self) -> dict[str, str]:
        q = self._query
        if q is None:
            q = self._query = parse_query(self._raw_query)
        return q

    def is_websocket(self) -> bool:
        return self.upgrade and self.headers.get("upgrade", "").lower() == "websocket"

    def on_abort(self, callback: Callable[[], None] | None) -> None:
        self._abort_cb = callback

    def respond(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        if self.answered:
            return
        self.answered = True
        self._abort_cb = None
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
            # RFC 6455 section 4.2.2: name the version we speak.
            headers = [("Content-Type", "text/plain"), ("Sec-WebSocket-Version", "13")]
            self.respond(400, headers, str(exc).encode())
            return None
        self.answered = True
        return self._conn.switch_to_websocket(ws_handshake.server_response(key, headers), handler)


# Stand-ins for the per-request containers between requests: shared, and
# immutable, so that a write that skipped ``on_message_begin`` raises instead of
# reaching every connection. Typed as the containers they stand in for: no write
# reaches them (``on_message_begin`` swaps in a fresh dict and list before any
# header or body; a request is queued in a fresh list, see ``on_message_complete``).
_NO_HEADERS: Final = cast("dict[str, str]", MappingProxyType({}))
_NO_BODY: Final = cast("list[bytes]", ())
_NO_PENDING: Final = cast("list[Request]", ())

# Batched writes up to this size are joined into one system call.
_CORK_JOIN_MAX = 64 * 1024


class WebSocketConnection:
    """A server-side WebSocket on a connection (implements ``WebSocketPort``)."""

    __slots__ = ("_closed", "_conn", "_cork", "_limit", "_reader", "handler", "paused", "transport")

    def __init__(
        self, conn: HttpConnection, handler: WebSocketHandler, max_message_size: int
    ) -> None:
        self._conn = conn
        self.transport = conn.transport
        self.handler = handler
        # RFC 6455 section 8.1: a text message that is not UTF-8 fails the connection (1007).
        self._reader = FrameReader(max_message_size=max_message_size)
        self._closed = False
        # While a batch of messages is handled, writes are collected and sent
        # with one system call (acks to several pipelined emits, say).
        self._cork: list[bytes] | None = None
        # Set while the transport's buffer is over its high-water mark; only then
        # is the buffer measured against the cap (nothing to pay otherwise).
        self.paused = False
        self._limit = conn.write_buffer_limit

    def set_handler(self, handler: WebSocketHandler) -> None:
        self.handler = handler

    def buffered(self) -> int:
        return self.transport.get_write_buffer_size()

    framed = True

    def send(self, data: bytes, binary: bool) -> None:
        self.write(encode_frame(_BINARY if binary else _TEXT, data))

    def write(self, data: bytes) -> None:
        cork = self._cork
        if cork is not None:
            cork.append(data)
        elif not self._closed:
            if self.paused and self.transport.get_write_buffer_size() + len(data) > self._limit:
                self._overflow()
                return
            self.transport.write(data)

    def _overflow(self) -> None:
        log.info(
            "closing slow consumer %s: write buffer over %d bytes",
            self._conn.remote_address,
            self._limit,
        )
        # Drop what is queued: the peer is not reading it anyway.
        self.transport.abort()
        if not self._closed:
            self._closed = True
            self.handler.ws_closed(1008, SLOW_CONSUMER)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if not self._closed:
            self.handler.ws_drained()

    def _uncork(self) -> None:
        cork, self._cork = self._cork, None
        if not cork or self._closed:
            return
        if len(cork) == 1 or sum(map(len, cork)) <= _CORK_JOIN_MAX:
            self.write(cork[0] if len(cork) == 1 else b"".join(cork))
        else:
            # A big batch goes piece by piece through the checked path, so a peer
            # that does not read is still held to the cap.
            for data in cork:
                self.write(data)
                if self._closed:
                    return

    def feed(self, data: bytes) -> None:
        try:
            messages = self._reader.feed(data)
        except WebSocketProtocolError as exc:
            log.info("WebSocket protocol error from %s: %s", self._conn.remote_address, exc.reason)
            self.close(exc.code, exc.reason[:120])
            return
        try:
            if len(messages) > 1:
                self._cork = []
                try:
                    self._handle(messages)
                finally:
                    self._uncork()
            elif messages:
                opcode, payload = messages[0]
                if opcode == _TEXT or opcode == _BINARY:
                    # One data message per read (the common case): no batch to walk.
                    self.handler.ws_message(opcode, payload)
                else:
                    self._handle(messages)
        except Exception:
            # Never let a handler's failure escape into the event loop's protocol
            # machinery: log it and fail this connection only (1011).
            log.exception("internal error on a WebSocket from %s", self._conn.remote_address)
            self.close(1011, "internal error")

    def _handle(self, messages: list[tuple[int, bytes]]) -> None:
        handler = self.handler
        for opcode, payload in messages:
            if opcode == _TEXT or opcode == _BINARY:
                handler.ws_message(opcode, payload)
                if self._closed:
                    return
                handler = self.handler
            elif opcode == _PING:
                self.write(encode_frame(Opcode.PONG, payload))
            elif opcode == _CLOSE:
                try:
                    code, _reason = decode_close_payload(payload)
                except WebSocketProtocolError as exc:
                    self.close(exc.code, "")
                    return
                # RFC 6455 section 5.5.1: answer with a close frame, then end TCP.
                self.close(1000 if code == 1005 else code, "")
                return

    def close(self, code: int = 1000, reason: str = "") -> None:
        if self._closed:
            return
        self._uncork()
        self._closed = True
        transport = self.transport
        if not transport.is_closing():
            transport.write(encode_frame(_CLOSE, encode_close_payload(code, reason)))
            transport.close()
        self.handler.ws_closed(code, reason)

    def connection_lost(self) -> None:
        if not self._closed:
            self._closed = True
            self.handler.ws_closed(1006, "")


class HttpConnection(asyncio.Protocol):
    """One TCP connection of the built-in server."""

    __slots__ = (
        "_body",
        "_body_size",
        "_current",
        "_head_size",
        "_headers",
        "_parser",
        "_pending",
        "_upgrade_rest",
        "_upgrade_sync",
        "_url",
        "app",
        "max_body_size",
        "remote_address",
        "transport",
        "write_buffer_limit",
        "ws",
    )

    def __init__(
        self,
        app: Callable[[Request], None],
        max_body_size: int,
        write_buffer_limit: int = 4 * 1024 * 1024,
    ) -> None:
        self.app = app
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
        self._body: list[bytes] = _NO_BODY
        self._body_size = 0
        self._head_size = 0
        self._current: Request | None = None
        self._pending: list[Request] = _NO_PENDING
        self._upgrade_rest = b""
        self._upgrade_sync = False
        self.remote_address = ""

    # -- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.remote_address = peer[0] if peer else ""

    def data_received(self, data: bytes) -> None:
        ws = self.ws
        if ws is not None:
            ws.feed(data)
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            rest = data[exc.args[0] :]
            self._upgrade(rest)
        except httptools.HttpParserError as exc:
            # httptools wraps exceptions raised in callbacks (our size limits).
            cause = exc.__context__ if isinstance(exc.__context__, _TooLarge) else exc
            if isinstance(cause, _TooLarge):
                log.info("request from %s too large: %s", self.remote_address, cause)
                self._fail(cause.status, str(cause))
            else:
                log.info("malformed HTTP request from %s: %s", self.remote_address, exc)
                self._fail(400, "Bad Request")

    def pause_writing(self) -> None:
        if self.ws is not None:
            self.ws.pause_writing()

    def resume_writing(self) -> None:
        if self.ws is not None:
            self.ws.resume_writing()

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
        self._pending = _NO_PENDING
        if req is not None and not req.answered and req._abort_cb is not None:
            cb, req._abort_cb = req._abort_cb, None
            req.answered = True
            cb()

    # -- httptools callbacks ---------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}
        self._body = []
        self._body_size = 0
        self._head_size = 0

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_size += len(url)
        if self._head_size > MAX_HEAD_SIZE:
            raise _TooLarge(414, "URI Too Long")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value)
        if self._head_size > MAX_HEAD_SIZE:
            raise _TooLarge(431, "Request Header Fields Too Large")
        # Header names, and the values that repeat from client to client, are
        # interned: every connection keeps its handshake headers.
        key = _header_name(name)
        val = value.decode("latin-1")
        if key in _SHARED_VALUES and len(val) < 256:
            val = sys.intern(val)
        old = self._headers.get(key)
        if old is not None:
            val = old + ("; " if key == "cookie" else ", ") + val
        self._headers[key] = val

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > self.max_body_size:
            raise _TooLarge(413, "Payload Too Large")
        self._body.append(body)

    def on_message_complete(self) -> None:
        parser = self._parser
        req = Request(
            self,
            parser.get_method().decode("ascii", "replace"),
            self._url.decode("latin-1"),
            self._headers,
        )
        body = self._body
        if body:
            req.body = body[0] if len(body) == 1 else b"".join(body)
        req.upgrade = parser.should_upgrade()
        req.keep_alive = parser.should_keep_alive()
        # An upgrade is dispatched from data_received once httptools signals it.
        if self._current is None and not req.upgrade:
            self._dispatch(req)
        elif self._pending is _NO_PENDING:
            self._pending = [req]
        else:
            self._pending.append(req)

    # -- dispatching ----------------------------------------------------------------

    def _dispatch(self, req: Request) -> None:
        self._current = req
        try:
            self.app(req)
        except Exception:
            log.exception("request handler failed for %s %s", req.method, req.path)
            if not req.answered:
                req.respond(500, [("Content-Type", "text/plain")], b"Internal Server Error")

    def _upgrade(self, rest: bytes) -> None:
        if not self._pending or self._current is not None:
            self._fail(400, "Bad Request")
            return
        req = self._pending.pop()
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
            ws._uncork()
            rest, self._upgrade_rest = self._upgrade_rest, b""
            if rest:
                ws.feed(rest)
        elif not req.answered:
            # Answered later (an asynchronous ``allow_request``): hold the bytes.
            self.transport.pause_reading()

    def switch_to_websocket(
        self, response: bytes, handler: WebSocketHandler
    ) -> WebSocketConnection:
        ws = WebSocketConnection(self, handler, self.max_body_size)
        self.ws = ws
        self._current = None
        # Nothing of the HTTP request is kept for the connection's lifetime.
        self._parser = None  # type: ignore[assignment]
        self._headers = _NO_HEADERS
        self._body = _NO_BODY
        self._pending = _NO_PENDING
        self._url = b""
        if self._upgrade_sync:
            # Accepted synchronously: the 101 response and whatever the handler
            # writes first (the Engine.IO open packet) leave in one system call;
            # ``_upgrade`` uncorks.
            ws._cork = [response]
        else:
            self.transport.write(response)
            # Accepted asynchronously: resume on the next loop turn, after the
            # caller has written its first frames.
            asyncio.get_running_loop().call_soon(self._resume_websocket)
        return ws

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
        head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}\r\n"]
        for name, value in headers:
            head.append(f"{name}: {value}\r\n")
        head.append(f"Content-Length: {len(body)}\r\n")
        if not keep_alive:
            head.append("Connection: close\r\n")
        head.append("\r\n")
        transport.write("".join(head).encode("latin-1") + body)
        if not keep_alive:
            transport.close()
            return
        if self._current is req:
            self._current = None
            while self._pending and self._current is None and not self._pending[0].upgrade:
                self._dispatch(self._pending.pop(0))

    def _fail(self, status: int, message: str) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            body = message.encode()
            transport.write(
                f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\nContent-Type: text/plain\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            transport.close()


class _TooLarge(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def make_protocol_factory(
    app: Callable[[Any], None], max_body_size: int, write_buffer_limit: int = 4 * 1024 * 1024
) -> Callable[[], Any]:
    """The factory that ``loop.create_server`` takes."""

    def factory() -> HttpConnection:
        return HttpConnection(app, max_body_size, write_buffer_limit)

    return factory


async def listen(
    app: Callable[[Any], None],
    port: int,
    host: str,
    *,
    max_body_size: int,
    write_buffer_limit: int = 4 * 1024 * 1024,
    **kwargs: Any,
) -> asyncio.Server:
    """Serve ``app`` (called with each ``Request``) on ``host:port``."""
    kwargs.setdefault("backlog", 4096)
    loop = asyncio.get_running_loop()
    factory = make_protocol_factory(app, max_body_size, write_buffer_limit)
    return await loop.create_server(factory, host, port, **kwargs)


async def listen_engine(
    engine: EngineServer,
    port: int,
    host: str = "127.0.0.1",
    *,
    path: str = "/engine.io",
    **kwargs: Any,
) -> asyncio.Server:
    """Serve a bare Engine.IO server (no Socket.IO), like Node's ``engine.io.listen``.

    Requests under ``path`` go to the engine; anything else gets 404.
    """
    prefix = "/" + path.strip("/") + "/"

    def app(req: Request) -> None:
        if req.path.startswith(prefix) or req.path == prefix[:-1]:
            engine.handle_request(req)
        else:
            req.respond(404, [("Content-Type", "text/plain")], b"Not Found")

    return await listen(
        app,
        port,
        host,
        max_body_size=engine.max_http_buffer_size,
        write_buffer_limit=engine.write_buffer_limit,
        **kwargs,
    )
