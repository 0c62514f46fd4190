"""An ASGI 3 application beside the Socket.IO server on the built-in server (layer 3).

``sio.listen(3000, app=asgi_app)`` serves Socket.IO on the fast path of
``socketwire.serve`` and hands every other request to ``asgi_app`` (FastAPI,
Starlette, Django's ASGI handler...). :class:`AsgiHost` is that application's
host:

* ``http``: the connection streams the request body into the application as it
  arrives (``AsgiHttp``, an ``HttpExchange`` of ``socketwire.serve.connection``)
  and the response goes out as the application sends it: with its
  ``Content-Length``, or chunked. Both directions have backpressure: reading
  pauses while the application leaves more than ``BODY_HIGH_WATER`` bytes
  untaken, and ``send`` waits while the socket's write buffer is full;
* ``websocket``: the application's own WebSocket routes run on the built-in
  server's WebSocket connection (``socketwire.serve.websocket``, the sans-I/O
  protocol of ``socketwire.core.websocket``) through ``AsgiWebSocket``;
* ``lifespan``: :meth:`AsgiHost.startup` before listening (a failure raises
  ``StartupFailed``), :meth:`AsgiHost.shutdown` when the server closes.

``root_path`` mounts the application at a sub-path, as ASGI servers do: the scope
carries it, and its ``path`` always starts with it (a request that arrives
without the prefix, because a proxy removed it, gets it back).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from http import HTTPStatus
from typing import Any, Final
from urllib.parse import unquote

from socketwire.core.engineio.transport import Transport
from socketwire.core.reasons import DisconnectReason
from socketwire.core.websocket.frames import Opcode
from socketwire.errors import StartupFailed
from socketwire.http.response import TEXT_PLAIN
from socketwire.serve.connection import HttpConnection, Request
from socketwire.serve.websocket import WebSocketConnection

__all__ = [
    "BODY_HIGH_WATER",
    "AsgiHost",
    "AsgiHttp",
    "AsgiWebSocket",
]

log = logging.getLogger("socketwire.asgi_host")

Message = dict[str, Any]
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Request-body bytes held for an application that has not taken them before
#: reading pauses (at most one read more arrives meanwhile).
BODY_HIGH_WATER = 256 * 1024

# Incoming WebSocket messages queued for an application before reading pauses.
_WS_QUEUE_HIGH = 64
_WS_QUEUE_LOW = 16

_ASGI: Final = {"version": "3.0", "spec_version": "2.4"}
_STATUS_LINES: Final = {
    s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode("latin-1") for s in HTTPStatus
}
# Statuses whose responses carry no body (RFC 9110 sections 15.2, 15.3.5, 15.4.5).
_NO_BODY_STATUSES: Final = frozenset({204, 304})
_CLOSE_HEADER: Final = b"connection: close\r\n"
_CHUNKED_HEADER: Final = b"transfer-encoding: chunked\r\n"
_LAST_CHUNK: Final = b"0\r\n\r\n"
_DISCONNECT: Final[Message] = {"type": "http.disconnect"}
# The name of the tasks that run WebSocket routes: a graceful shutdown does not
# wait for them (they last as long as their clients), it closes them.
_WEBSOCKET_TASK: Final = "socketwire-asgi-websocket"


def _status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    return line if line is not None else f"HTTP/1.1 {status} \r\n".encode("latin-1")


def _raw_headers(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]


class AsgiHost:
    """Runs an ASGI 3 application beside a Socket.IO server on the built-in server.

    It is the connections' ``ExchangeOpener`` (which requests stream to the
    application) and :meth:`handle_request` takes the requests the connection
    read whole (WebSocket upgrades) that are not the Socket.IO server's.
    ``sio_path`` is the Socket.IO server's path (``/socket.io``): requests under
    it never reach the application.
    """

    def __init__(self, app: AsgiApp, *, sio_path: str = "/socket.io", root_path: str = "") -> None:
        self.app = app
        self.sio_path = "/" + sio_path.strip("/")
        self._sio_prefix = self.sio_path + "/"
        self.root_path = "/" + root_path.strip("/") if root_path.strip("/") else ""
        #: The lifespan state (ASGI ``scope["state"]``): each request gets a copy.
        self.state: dict[str, Any] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.websockets: set[AsgiWebSocket] = set()
        self._lifespan: _Lifespan | None = None
        self.closing = False

    # -- routing -------------------------------------------------------------------------

    def is_socketio(self, path: str) -> bool:
        """Whether ``path`` is the Socket.IO server's (served on the fast path)."""
        return path.startswith(self._sio_prefix) or path == self.sio_path

    def open_exchange(
        self,
        conn: HttpConnection,
        method: str,
        url: str,
        headers: dict[str, str],
        keep_alive: bool,
    ) -> AsgiHttp | None:
        """``ExchangeOpener``: stream every request but the Socket.IO server's."""
        path = url.partition("?")[0]
        if self.is_socketio(path):
            return None
        return AsgiHttp(self, conn, method, url, headers, keep_alive)

    def route(self, handle: Callable[[Request], None]) -> Callable[[Request], None]:
        """The ``app`` of the connections: Socket.IO requests go to ``handle``,
        the others (read whole: WebSocket upgrades) to :meth:`handle_request`."""
        is_socketio = self.is_socketio
        handle_other = self.handle_request

        def router(req: Request) -> None:
            if is_socketio(req.path):
                handle(req)
            else:
                handle_other(req)

        return router

    def handle_request(self, req: Request) -> None:
        """A request read whole that is the application's: a WebSocket handshake,
        or another upgrade (answered as a plain request)."""
        if self.closing:
            req.respond(503, TEXT_PLAIN, b"Service Unavailable")
            return
        if req.is_websocket():
            ws = AsgiWebSocket(self, req)
            self.websockets.add(ws)
            self.spawn(ws.run(), _WEBSOCKET_TASK)
        else:
            self.spawn(_whole_request(self, req))

    def spawn(self, coro: Coroutine[Any, Any, None], name: str | None = None) -> asyncio.Task[None]:
        """Run ``coro`` as a task that :meth:`drain` waits for (WebSockets aside)."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def scope(self, kind: str, req: Request | AsgiHttp, conn: HttpConnection) -> Scope:
        """The ASGI scope of a request (``http`` or ``websocket``)."""
        raw_path, _, query = req.url.partition("?")
        root = self.root_path
        if root and not (raw_path == root or raw_path.startswith(root + "/")):
            raw_path = root + raw_path
        transport = conn.transport
        peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("sockname")
        address, secure = req.remote_address, req.secure
        port = peer[1] if isinstance(peer, tuple) and address == conn.remote_address else 0
        schemes = ("https", "http") if kind == "http" else ("wss", "ws")
        scheme = schemes[0] if secure else schemes[1]
        return {
            "type": kind,
            "asgi": _ASGI,
            "http_version": "1.1",
            "scheme": scheme,
            "method": req.method,
            "path": unquote(raw_path) if "%" in raw_path else raw_path,
            "raw_path": raw_path.encode("latin-1"),
            "root_path": root,
            "query_string": query.encode("latin-1"),
            "headers": _raw_headers(req.headers),
            "client": (address, port) if address else None,
            "server": tuple(sock[:2]) if isinstance(sock, tuple) else None,
            "state": self.state.copy(),
        }

    # -- lifespan ------------------------------------------------------------------------

    async def startup(self) -> None:
        """Run the application's lifespan startup; raises ``StartupFailed`` if it fails.

        An application that does not speak the lifespan protocol (it raises on
        the scope) is served without it, as ASGI servers do.
        """
        lifespan = self._lifespan = _Lifespan(self)
        await lifespan.startup()

    async def drain(self, timeout: float) -> bool:
        """Wait for the HTTP requests in flight to be answered (at most ``timeout``
        seconds; True if they were), refusing new ones with 503 meanwhile."""
        self.closing = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            busy = {t for t in self.tasks if not _is_websocket_task(t)}
            left = deadline - loop.time()
            if not busy:
                return True
            if left <= 0:
                return False
            await asyncio.wait(busy, timeout=left)

    async def shutdown(self) -> None:
        """Close the application's WebSockets (1001, going away), end what is still
        running, then run the lifespan shutdown."""
        self.closing = True
        for ws in list(self.websockets):
            ws.going_away()
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        lifespan, self._lifespan = self._lifespan, None
        if lifespan is not None:
            await lifespan.shutdown()


def _is_websocket_task(task: asyncio.Task[None]) -> bool:
    return task.get_name() == _WEBSOCKET_TASK


class _Lifespan:
    """The ASGI lifespan protocol, run by the host around its serving."""

    def __init__(self, host: AsgiHost) -> None:
        self.host = host
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.answers: asyncio.Queue[Message] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None
        self.supported = True

    async def receive(self) -> Message:
        return await self.inbox.get()

    async def send(self, message: Message) -> None:
        await self.answers.put(message)

    async def run(self) -> None:
        scope: Scope = {"type": "lifespan", "asgi": _ASGI, "state": self.host.state}
        try:
            await self.host.app(scope, self.receive, self.send)
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                raise
            # Before any answer: the application does not do lifespan.
            if self.answers.empty():
                log.info("the ASGI application does not support lifespan (%r)", exc)
                self.supported = False
            else:
                log.exception("the ASGI application's lifespan failed")
        finally:
            await self.answers.put({"type": "lifespan.ended"})

    async def startup(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.run())
        await self.inbox.put({"type": "lifespan.startup"})
        answer = await self.answers.get()
        kind = answer["type"]
        if kind == "lifespan.startup.complete":
            return
        if kind == "lifespan.ended" and not self.supported:
            return
        message = answer.get("message") or "the application's lifespan ended at startup"
        raise StartupFailed(f"ASGI lifespan startup failed: {message}")

    async def shutdown(self) -> None:
        task = self.task
        if task is None or task.done() or not self.supported:
            return
        await self.inbox.put({"type": "lifespan.shutdown"})
        answer = await self.answers.get()
        if answer["type"] == "lifespan.shutdown.failed":
            log.error("ASGI lifespan shutdown failed: %s", answer.get("message", ""))
        if not task.done():
            await asyncio.wait([task], timeout=1.0)
            task.cancel()


class AsgiHttp:
    """One HTTP request of the ASGI application (implements ``HttpExchange``).

    The body arrives through ``feed_body``/``end_body`` and leaves through the
    application's ``receive``; the response is written to the connection as the
    application sends it.
    """

    __slots__ = (
        "_body",
        "_body_done",
        "_chunked",
        "_conn",
        "_drain",
        "_final_sent",
        "_head_only",
        "_held",
        "_host",
        "_keep_alive",
        "_no_body",
        "_start",
        "_started",
        "_waiter",
        "done",
        "gone",
        "headers",
        "method",
        "remote_address",
        "secure",
        "url",
    )

    upgrade: bool = False

    def __init__(
        self,
        host: AsgiHost,
        conn: HttpConnection,
        method: str,
        url: str,
        headers: dict[str, str],
        keep_alive: bool,
    ) -> None:
        self._host = host
        self._conn = conn
        self.method = method
        self.url = url
        self.headers = headers
        self.remote_address, self.secure = conn.client_of(headers)
        self._keep_alive = keep_alive
        self._body: deque[bytes] = deque()
        self._held = 0
        self._body_done = False
        self._final_sent = False
        self._waiter: asyncio.Future[None] | None = None
        self._drain: asyncio.Future[None] | None = None
        self._start: Message | None = None
        self._started = False
        self._chunked = False
        self._head_only = method == "HEAD"
        self._no_body = False
        #: The response is complete.
        self.done = False
        #: The connection is gone.
        self.gone = False

    # -- HttpExchange ---------------------------------------------------------------------

    @property
    def held(self) -> int:
        return self._held

    @property
    def connection(self) -> HttpConnection:
        """The connection the request came on."""
        return self._conn

    @property
    def response_started(self) -> bool:
        return self._started

    def start(self) -> None:
        self._host.spawn(self._run())

    def feed_body(self, chunk: bytes) -> None:
        if self.done:
            return  # answered already: the rest of the body is read and dropped
        self._body.append(chunk)
        self._held += len(chunk)
        if self._held > BODY_HIGH_WATER:
            self._conn.hold_body(True)
        self._wake()

    def end_body(self) -> None:
        self._body_done = True
        self._wake()

    def abort(self) -> None:
        self.gone = True
        self._wake()
        drain, self._drain = self._drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)

    def pause_writing(self) -> None:
        if self._drain is None:
            self._drain = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        drain, self._drain = self._drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- the application ------------------------------------------------------------------

    async def _run(self) -> None:
        host = self._host
        try:
            await host.app(host.scope("http", self, self._conn), self.receive, self.send)
        except Exception:
            log.exception("ASGI application failed on %s %s", self.method, self.url)
            if not self._started and not self.gone:
                self._start = None
                await self._error(500, b"Internal Server Error")
            elif not self.done:
                self._conn.transport.close()
            return
        if not self.done and not self.gone:
            if self._started:
                # The application stopped in the middle of its body: the
                # response cannot be completed, so the connection ends it.
                log.error("ASGI application returned before its response's end: %s", self.url)
                self._conn.transport.close()
            else:
                log.error("ASGI application returned without a response: %s", self.url)
                self._start = None
                await self._error(500, b"Internal Server Error")

    async def _error(self, status: int, text: bytes) -> None:
        await self.send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8")],
            }
        )
        await self.send({"type": "http.response.body", "body": text})

    async def receive(self) -> Message:
        while True:
            if self._body:
                body = self._body
                data = body.popleft() if len(body) == 1 else b"".join(body)
                body.clear()
                self._held = 0
                self._conn.hold_body(False)
                more = not self._body_done
                if not more:
                    self._final_sent = True
                return {"type": "http.request", "body": data, "more_body": more}
            if self.gone or self.done:
                return _DISCONNECT
            if self._body_done and not self._final_sent:
                self._final_sent = True
                return {"type": "http.request", "body": b"", "more_body": False}
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            await waiter

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            if self._start is not None or self._started:
                raise RuntimeError("http.response.start sent twice")
            self._start = message
            return
        if kind != "http.response.body":
            raise RuntimeError(f"unexpected ASGI message {kind!r} on an http scope")
        if self.done:
            raise RuntimeError("http.response.body sent after the response's end")
        if self.gone:
            return
        body: bytes = message.get("body", b"")
        more: bool = message.get("more_body", False)
        transport = self._conn.transport
        if not self._started:
            start = self._start
            if start is None:
                raise RuntimeError("http.response.body sent before http.response.start")
            data = self._head(start, body, more)
        else:
            data = b""
        if body and not self._no_body:
            if self._chunked:
                data += b"%x\r\n%b\r\n" % (len(body), body)
            else:
                data += body
        if not more:
            if self._chunked:
                data += _LAST_CHUNK
            self.done = True
        if data:
            transport.write(data)
        if not more:
            self._wake()
            self._conn.exchange_done(self, self._keep_alive)
            return
        drain = self._drain
        if drain is not None:
            # Backpressure: the peer is slower than the application.
            await drain

    def _head(self, start: Message, body: bytes, more: bool) -> bytes:
        """The response head, with the framing the application left to the server."""
        self._started = True
        status: int = start["status"]
        lines = [_status_line(status)]
        length = False
        for name, value in start.get("headers", ()):
            lowered = bytes(name).lower()
            if lowered == b"content-length":
                length = True
            elif lowered == b"connection" and bytes(value).lower() == b"close":
                self._keep_alive = False
                continue
            elif lowered == b"transfer-encoding":
                continue  # the server frames the body itself
            lines.append(b"%b: %b\r\n" % (name, value))
        self._no_body = self._head_only or status in _NO_BODY_STATUSES or status < 200
        if not self._no_body and not length:
            if more:
                self._chunked = True
                lines.append(_CHUNKED_HEADER)
            else:
                lines.append(b"content-length: %d\r\n" % len(body))
        elif self._head_only and not length and not more:
            lines.append(b"content-length: %d\r\n" % len(body))
        if not self._keep_alive:
            lines.append(_CLOSE_HEADER)
        lines.append(b"\r\n")
        return b"".join(lines)


async def _whole_request(host: AsgiHost, req: Request) -> None:
    """A request read whole (a non-WebSocket upgrade): run the application with
    its body and answer with what it sends, collected."""
    conn_body = [req.body]
    status = 500
    headers: list[tuple[str, str]] = []
    chunks: list[bytes] = []

    async def receive() -> Message:
        if conn_body:
            return {"type": "http.request", "body": conn_body.pop(), "more_body": False}
        if not req.answered:
            # Nothing more will come: wait until cancelled (the server's shutdown).
            await asyncio.get_running_loop().create_future()
        return _DISCONNECT

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            headers.extend(
                (bytes(n).decode("latin-1"), bytes(v).decode("latin-1"))
                for n, v in message.get("headers", ())
                if bytes(n).lower() not in (b"content-length", b"transfer-encoding")
            )
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                req.respond(status, headers, b"".join(chunks))

    conn: HttpConnection = req.connection
    try:
        await host.app(host.scope("http", req, conn), receive, send)
    except Exception:
        log.exception("ASGI application failed on %s %s", req.method, req.url)
    if not req.answered:
        req.respond(500, TEXT_PLAIN, b"Internal Server Error")


class AsgiWebSocket:
    """One WebSocket route of the ASGI application on the built-in server.

    Implements ``engine.ports.WebSocketHandler`` for the built-in
    ``WebSocketConnection`` once the application accepts: messages are queued for
    its ``receive`` (reading pauses past ``_WS_QUEUE_HIGH`` of them) and its
    ``send`` waits while the write buffer is over its high-water mark.
    """

    def __init__(self, host: AsgiHost, req: Request) -> None:
        self.host = host
        self.req: Request | None = req
        self.conn: HttpConnection = req.connection
        self.port: WebSocketConnection | None = None
        self.inbox: deque[Message] = deque([{"type": "websocket.connect"}])
        self.waiter: asyncio.Future[None] | None = None
        self.drain: asyncio.Future[None] | None = None
        self.closed = False
        self.reading_paused = False
        self._response: Message | None = None
        self._refusal: list[bytes] = []

    async def run(self) -> None:
        req = self.req
        assert req is not None
        # The ASGI scope type is spelled as the transport.
        scope = self.host.scope(Transport.WEBSOCKET.value, req, self.conn)
        protocols = req.headers.get("sec-websocket-protocol")
        scope["subprotocols"] = [p.strip() for p in protocols.split(",")] if protocols else []
        scope["extensions"] = {"websocket.http.response": {}}
        try:
            await self.host.app(scope, self.receive, self.send)
        except Exception:
            log.exception("ASGI application failed on WebSocket %s", scope["path"])
            self._end(1011, 500)
        else:
            self._end(1000, 403)
        finally:
            self.host.websockets.discard(self)

    def _end(self, code: int, status: int) -> None:
        """After the application: refuse a handshake it never answered, close an
        open connection."""
        req = self.req
        if req is not None and not req.answered:
            req.respond(status, TEXT_PLAIN, HTTPStatus(status).phrase.encode())
        elif self.port is not None and not self.closed:
            self.port.close(code)

    def going_away(self) -> None:
        """The server is shutting down (close code 1001)."""
        if self.port is not None and not self.closed:
            self.port.close(1001, DisconnectReason.SERVER_SHUTTING_DOWN)

    # -- the application's side ------------------------------------------------------------

    async def receive(self) -> Message:
        while not self.inbox:
            waiter = self.waiter = asyncio.get_running_loop().create_future()
            await waiter
        message = self.inbox.popleft()
        if self.reading_paused and len(self.inbox) <= _WS_QUEUE_LOW:
            self.reading_paused = False
            if self.port is not None and not self.closed:
                self.port.transport.resume_reading()
        return message

    async def send(self, message: Message) -> None:
        kind = message["type"]
        req = self.req
        if kind == "websocket.accept" and req is not None:
            self._accept(req, message)
        elif kind == "websocket.send" and self.port is not None:
            if self.closed:
                return
            text = message.get("text")
            if text is not None:
                self.port.send(text.encode(), False)
            else:
                self.port.send(message.get("bytes") or b"", True)
            if self.port.paused and not self.closed:
                self.drain = asyncio.get_running_loop().create_future()
                await self.drain
        elif kind == "websocket.close":
            if req is not None and not req.answered:
                self.req = None
                req.respond(403, TEXT_PLAIN, b"Forbidden")
                self._closed_by_us(message.get("code", 1000))
            elif self.port is not None and not self.closed:
                self.port.close(message.get("code", 1000), message.get("reason") or "")
        elif kind == "websocket.http.response.start" and req is not None:
            self._response = message
        elif kind == "websocket.http.response.body" and req is not None:
            self._refuse(req, message)
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r} on a websocket scope")

    def _accept(self, req: Request, message: Message) -> None:
        headers = [
            (bytes(n).decode("latin-1"), bytes(v).decode("latin-1"))
            for n, v in message.get("headers", ())
        ]
        subprotocol = message.get("subprotocol")
        if subprotocol:
            headers.append(("Sec-WebSocket-Protocol", subprotocol))
        self.req = None
        port = req.accept_websocket(self, headers)
        if port is None:
            # Not a valid handshake: answered with 400 already.
            self._closed_by_us(1006)
            return
        self.port = port

    def _refuse(self, req: Request, message: Message) -> None:
        start = self._response or {"status": 403, "headers": []}
        self._refusal.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        headers = [
            (bytes(n).decode("latin-1"), bytes(v).decode("latin-1"))
            for n, v in start.get("headers", ())
            if bytes(n).lower() != b"content-length"
        ]
        self.req = None
        req.respond(start["status"], headers, b"".join(self._refusal))
        self._closed_by_us(1000)

    def _closed_by_us(self, code: int) -> None:
        self.closed = True
        self.inbox.append({"type": "websocket.disconnect", "code": code, "reason": ""})
        self._wake()

    def _wake(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- WebSocketHandler -------------------------------------------------------------------

    def ws_message(self, opcode: int, payload: bytes) -> None:
        if opcode == Opcode.TEXT:
            self.inbox.append(
                {"type": "websocket.receive", "text": payload.decode("utf-8", "replace")}
            )
        else:
            self.inbox.append({"type": "websocket.receive", "bytes": payload})
        if not self.reading_paused and len(self.inbox) >= _WS_QUEUE_HIGH:
            self.reading_paused = True
            if self.port is not None:
                self.port.transport.pause_reading()
        self._wake()

    def ws_closed(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.inbox.append({"type": "websocket.disconnect", "code": code, "reason": reason})
        self._wake()
        self.ws_drained()

    def ws_drained(self) -> None:
        drain, self.drain = self.drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)
