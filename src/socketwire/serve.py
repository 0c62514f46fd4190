"""The built-in HTTP/1.1 + WebSocket server (layer 3, asyncio).

One ``asyncio.Protocol`` per TCP connection: ``httptools`` parses request heads,
requests are answered one at a time in order (HTTP/1.1 keep-alive), and a
WebSocket upgrade hands the connection to the sans-I/O ``WebSocketProtocol`` of
``socketwire.core.websocket.protocol``, which reads the frames and answers the
control frames; this module only moves its bytes. Requests follow the rules
shared with the ASGI front door (``socketwire.http``); the Engine.IO runtime sees
only the ports of ``socketwire.engine.ports``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import httptools

from socketwire.core.engineio.message import OutgoingMessage, frame_text_message
from socketwire.core.engineio.session import REASON_SLOW_CONSUMER as SLOW_CONSUMER
from socketwire.core.websocket import handshake as ws_handshake
from socketwire.core.websocket.frames import Opcode
from socketwire.core.websocket.protocol import WebSocketProtocol, WebSocketState
from socketwire.engine.ports import WebSocketHandler
from socketwire.engine.server import EngineServer
from socketwire.errors import RemoteProtocolError
from socketwire.http import request as http_request
from socketwire.http.request import BodyBuffer, RequestTooLarge, add_header, dispatch
from socketwire.http.response import error_response, response_head

log = logging.getLogger("socketwire.http")

_BINARY = Opcode.BINARY
_CLOSE = Opcode.CLOSE
_OPEN = WebSocketState.OPEN

# The largest request head accepted (request line + headers).
MAX_HEAD_SIZE = 64 * 1024


class Request(http_request.Request):
    """One parsed HTTP request (implements ``engine.ports.HttpRequest``)."""

    __slots__ = ("_conn", "keep_alive", "upgrade")

    def __init__(
        self, conn: HttpConnection, method: str, url: str, headers: dict[str, str]
    ) -> None:
        path, _, query = url.partition("?")
        super().__init__(method, path, query, url, headers, conn.remote_address, False)
        self._conn = conn
        self.upgrade = False
        self.keep_alive = True

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


# Stand-ins for the per-request containers between requests (never mutated).
_NO_HEADERS: dict[str, str] = {}
_NO_BODY = BodyBuffer(0)
_NO_PENDING: list[Request] = []

# Batched writes up to this size are joined into one system call.
_CORK_JOIN_MAX = 64 * 1024


class WebSocketConnection:
    """A server-side WebSocket on a connection (implements ``WebSocketPort``).

    Its ``WebSocketProtocol`` reads the frames, answers pings and the closing
    handshake; this class writes what the protocol and the engine give it,
    reports messages and the end to the handler, and holds a peer that does not
    read to the write-buffer cap.
    """

    __slots__ = (
        "_closed",
        "_conn",
        "_cork",
        "_limit",
        "_protocol",
        "handler",
        "paused",
        "transport",
    )

    def __init__(
        self, conn: HttpConnection, handler: WebSocketHandler, max_message_size: int
    ) -> None:
        self._conn = conn
        self.transport = conn.transport
        self.handler = handler
        self._protocol = WebSocketProtocol(client_side=False, max_message_size=max_message_size)
        # Set once the connection is closing: nothing more is written or reported.
        self._closed = False
        # While a batch of messages is handled, writes are collected and sent
        # with one system call (acks to several pipelined emits, say).
        self._cork: list[bytes] | None = None
        # Set while the transport's buffer is over its high-water mark; only then
        # is the buffer measured against the cap (nothing to pay otherwise).
        self.paused = False
        self._limit = conn.write_buffer_limit

    # -- WebSocketPort -------------------------------------------------------------------

    def set_handler(self, handler: WebSocketHandler) -> None:
        self.handler = handler

    def buffered(self) -> int:
        return self.transport.get_write_buffer_size()

    def send(self, data: bytes, binary: bool) -> None:
        if self._closed:
            return
        protocol = self._protocol
        if binary:
            protocol.send_binary(data)
        else:
            protocol.send_text(data)
        self._write(protocol.data_to_send())

    # Server frames are unmasked (RFC 6455 section 5.1), so an Engine.IO message is
    # framed once, by the engine's core, and the same bytes go to every recipient:
    # the two hot paths below write them as they are. ``_closed`` is set as soon as
    # the protocol leaves OPEN, so nothing follows a close frame (section 5.5.1).
    # Both inline ``_write``: a call less per message.

    def send_message(self, message: OutgoingMessage) -> None:
        data = message.frames
        cork = self._cork
        if cork is not None:
            cork.append(data)
        elif not self._closed:
            if self.paused and self.transport.get_write_buffer_size() + len(data) > self._limit:
                self._overflow()
                return
            self.transport.write(data)

    def send_text_message(self, text: bytes) -> None:
        data = frame_text_message(text)
        cork = self._cork
        if cork is not None:
            cork.append(data)
        elif not self._closed:
            if self.paused and self.transport.get_write_buffer_size() + len(data) > self._limit:
                self._overflow()
                return
            self.transport.write(data)

    def close(self, code: int = 1000, reason: str = "") -> None:
        if self._closed:
            return
        self._uncork()
        protocol = self._protocol
        # Raises LocalProtocolError for a code or reason that cannot be sent,
        # before anything changed.
        protocol.close(code, reason)
        self._closed = True
        transport = self.transport
        if not transport.is_closing():
            transport.write(protocol.data_to_send())
            # The server ends the TCP connection right after its close frame
            # (RFC 6455 section 7.1.1 gives the server that end) rather than hold
            # the socket for a peer's answer that changes nothing.
            transport.close()
        self.handler.ws_closed(code, reason)

    # -- writing ---------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
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
            self._write(cork[0] if len(cork) == 1 else b"".join(cork))
        else:
            # A big batch goes piece by piece through the checked path, so a peer
            # that does not read is still held to the cap.
            for data in cork:
                self._write(data)
                if self._closed:
                    return

    # -- reading ---------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Bytes from the peer (the protocol never raises for what they hold)."""
        events = self._protocol.receive_data(data)
        if not events:
            return
        try:
            if len(events) == 1:
                opcode, payload = events[0]
                if opcode <= _BINARY:
                    # One data message per read (the common case): no batch to walk.
                    self.handler.ws_message(opcode, payload)
                    return
            self._handle(events)
        except Exception:
            # Never let a handler's failure escape into the event loop's protocol
            # machinery: log it and fail this connection only (1011).
            log.exception("internal error on a WebSocket from %s", self._conn.remote_address)
            self.close(1011, "internal error")

    def _handle(self, events: list[tuple[int, bytes]]) -> None:
        if events[-1][0] == _CLOSE:
            self._closing(events)
            return
        # Several events: the replies they cause leave in one write.
        self._cork = []
        try:
            handler = self.handler
            for opcode, payload in events:
                if opcode <= _BINARY:
                    handler.ws_message(opcode, payload)
                    if self._closed:
                        return
                    handler = self.handler
            # Pongs the protocol queued for pings (RFC 6455 section 5.5.2).
            out = self._protocol.data_to_send()
            if out:
                self._write(out)
        finally:
            self._uncork()

    def _closing(self, events: list[tuple[int, bytes]]) -> None:
        """The events end with the peer's close frame, or a violation that failed
        the connection: the protocol has queued our close frame."""
        self._uncork()
        self._closed = True
        error = self._protocol.error
        if error is not None:
            log.info(
                "WebSocket protocol error from %s: %s", self._conn.remote_address, error.reason
            )
        # The messages that came before the close are still the peer's (a last
        # Engine.IO close packet, say); nothing written in reply can follow the
        # close frame (section 5.5.1), so it is dropped.
        try:
            for opcode, payload in events:
                if opcode <= _BINARY:
                    self.handler.ws_message(opcode, payload)
        finally:
            self._end_closing()

    def _end_closing(self) -> None:
        protocol = self._protocol
        error = protocol.error
        transport = self.transport
        if not transport.is_closing():
            out = protocol.data_to_send()
            if out:
                transport.write(out)
            # Section 7.1.1: the server ends the TCP connection once the closing
            # handshake is done; section 7.1.7: at once when failing it.
            if protocol.should_end_transport:
                transport.close()
        code = protocol.close_code
        self.handler.ws_closed(
            1006 if code is None else code, error.reason[:120] if error is not None else ""
        )

    def connection_lost(self) -> None:
        protocol = self._protocol
        protocol.receive_eof()
        if not self._closed:
            self._closed = True
            code = protocol.close_code
            self.handler.ws_closed(1006 if code is None else code, "")


class HttpConnection(asyncio.Protocol):
    """One TCP connection of the built-in server."""

    __slots__ = (
        "_body",
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
        self._body = _NO_BODY
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
        if req is not None:
            req.abort()

    # -- httptools callbacks ---------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}
        self._body = BodyBuffer(self.max_body_size)
        self._head_size = 0

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_size += len(url)
        if self._head_size > MAX_HEAD_SIZE:
            raise RequestTooLarge(414, "URI Too Long")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value)
        if self._head_size > MAX_HEAD_SIZE:
            raise RequestTooLarge(431, "Request Header Fields Too Large")
        add_header(self._headers, name, value)

    def on_body(self, body: bytes) -> None:
        self._body.add(body)  # 413 over max_body_size

    def on_message_complete(self) -> None:
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
        elif self._pending is _NO_PENDING:
            self._pending = [req]
        else:
            self._pending.append(req)

    # -- dispatching ----------------------------------------------------------------

    def _dispatch(self, req: Request) -> None:
        self._current = req
        dispatch(self.app, req)

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
        transport.write(response_head(status, headers, len(body), keep_alive) + body)
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
            transport.write(error_response(status, message))
            transport.close()


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
