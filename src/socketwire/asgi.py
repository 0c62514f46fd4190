"""The ASGI front door (layer 3).

``ASGIApp`` serves a ``socketwire.Server`` from any ASGI 3 server (uvicorn,
granian, hypercorn...) instead of the built-in one of ``socketwire.serve``::

    sio = socketwire.Server()
    app = socketwire.asgi.ASGIApp(sio, other_asgi_app=my_web_app)
    # uvicorn module:app

HTTP requests and WebSocket connections become the ports of
``socketwire.engine.ports``, kept by the rules shared with the built-in server
(``socketwire.http``); the Engine.IO runtime answers them exactly as it answers
the built-in server. The ASGI server runs the WebSocket protocol and frames the
messages itself, so the port hands it the packets of each message, which one
writer task per connection passes to the ASGI ``send`` in order.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from socketwire.core.engineio.message import OutgoingMessage
from socketwire.core.engineio.packet import MESSAGE_PREFIX
from socketwire.core.engineio.session import REASON_SLOW_CONSUMER
from socketwire.core.websocket.frames import Opcode
from socketwire.engine.ports import WebSocketHandler
from socketwire.http import request as http_request
from socketwire.http.request import (
    BodyBuffer,
    RequestTooLarge,
    check_declared_length,
    collect_headers,
    dispatch,
)
from socketwire.http.response import TEXT_PLAIN, asgi_headers
from socketwire.server.server import Server

log = logging.getLogger("socketwire.asgi")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApplication = Callable[[Scope, Receive, Send], Awaitable[None]]

# Bytes queued for a WebSocket before it counts as paused (backpressure), and the
# level under which it is drained again (as asyncio's transports: a quarter).
HIGH_WATER = 64 * 1024
LOW_WATER = HIGH_WATER // 4

_TEXT = Opcode.TEXT
_BINARY = Opcode.BINARY
_NO_BODY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class _Request(http_request.Request):
    """One HTTP request or WebSocket handshake (implements ``engine.ports.HttpRequest``)."""

    __slots__ = (
        "_accept_headers",
        "_app",
        "_port",
        "_response",
        "_send",
        "_waiter",
        "_websocket",
    )

    def __init__(self, app: ASGIApp, scope: Scope, path: str, send: Send, websocket: bool) -> None:
        raw_query: bytes = scope.get("query_string") or b""
        query = raw_query.decode("latin-1")
        raw_path: bytes | None = scope.get("raw_path")
        target = raw_path.decode("latin-1") if raw_path else scope["path"]
        client = scope.get("client")
        super().__init__(
            "GET" if websocket else scope["method"],
            path,
            query,
            target + "?" + query if query else target,
            collect_headers(scope.get("headers") or ()),
            client[0] if client else "",
            scope.get("scheme") in ("https", "wss"),
        )
        self._app = app
        self._send = send
        self._websocket = websocket
        self._response: tuple[int, list[tuple[str, str]], bytes] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._port: _WebSocket | None = None
        self._accept_headers: list[tuple[str, str]] = []

    def is_websocket(self) -> bool:
        return self._websocket

    def _send_response(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self._response = (status, headers, body)
        self._wake()

    def accept_websocket(
        self, handler: WebSocketHandler, headers: list[tuple[str, str]]
    ) -> _WebSocket | None:
        if self.answered:
            return None
        if not self._websocket:
            self.refuse_websocket(b"not a WebSocket handshake")
            return None
        self.answered = True
        app = self._app
        port = _WebSocket(
            handler, self._send, app.write_buffer_limit, app.max_message_size, self.remote_address
        )
        self._port = port
        self._accept_headers = headers
        self._wake()
        return port

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def abort(self) -> None:
        """The client went away before the answer: wake the waiting front door too."""
        if not self.answered:
            self._wake()
            super().abort()


class _WebSocket:
    """An accepted ASGI WebSocket (implements ``engine.ports.WebSocketPort``).

    The send methods queue whole messages; one writer task passes them to the
    ASGI ``send`` in order, and ends with the close message when ``close`` was
    called.
    """

    __slots__ = (
        "_buffered",
        "_close",
        "_closed",
        "_limit",
        "_max_message",
        "_queue",
        "_send",
        "_wake",
        "_writer",
        "handler",
        "paused",
        "remote_address",
    )

    def __init__(
        self,
        handler: WebSocketHandler,
        send: Send,
        limit: int,
        max_message: int,
        remote_address: str,
    ) -> None:
        self.handler = handler
        self._send = send
        self._limit = limit
        self._max_message = max_message
        self.remote_address = remote_address
        self._queue: deque[tuple[bytes, bool]] = deque()
        self._buffered = 0
        self.paused = False
        self._closed = False
        # (code, reason) of the close message the writer sends after the queue.
        self._close: tuple[int, str] | None = None
        self._wake: asyncio.Future[None] | None = None
        self._writer: asyncio.Task[None] | None = None

    # -- WebSocketPort ---------------------------------------------------------------

    def set_handler(self, handler: WebSocketHandler) -> None:
        self.handler = handler

    def buffered(self) -> int:
        return self._buffered

    def send(self, data: bytes, binary: bool) -> None:
        if self._closed:
            return
        n = len(data)
        if self.paused and self._buffered + n > self._limit:
            self._overflow()
            return
        self._queue.append((data, binary))
        self._buffered += n
        if self._buffered > HIGH_WATER:
            self.paused = True
        wake = self._wake
        if wake is not None:
            self._wake = None
            if not wake.done():
                wake.set_result(None)

    def send_message(self, message: OutgoingMessage) -> None:
        # The ASGI server frames each message itself: the packets, in order.
        for data, binary in message.packets:
            self.send(data, binary)

    def send_text_message(self, text: bytes) -> None:
        self.send(MESSAGE_PREFIX + text, False)

    def close(self, code: int = 1000, reason: str = "") -> None:
        if self._closed:
            return
        self._closed = True
        self._close = (code, reason)
        self._wake_writer()
        self.handler.ws_closed(code, reason)

    # -- internals ---------------------------------------------------------------------

    def _wake_writer(self) -> None:
        wake, self._wake = self._wake, None
        if wake is not None and not wake.done():
            wake.set_result(None)

    def _overflow(self) -> None:
        log.info(
            "closing slow consumer %s: more than %d bytes queued", self.remote_address, self._limit
        )
        # Drop what is queued: the peer is not reading it anyway. The writer sends
        # the close message once the message it is sending (if any) is taken.
        self._queue.clear()
        self._buffered = 0
        self._closed = True
        self._close = (1008, REASON_SLOW_CONSUMER)
        self._wake_writer()
        self.handler.ws_closed(1008, REASON_SLOW_CONSUMER)

    def start(self) -> None:
        """Start the writer (after ``websocket.accept`` went out)."""
        self._writer = asyncio.get_running_loop().create_task(self._write_loop())

    async def _write_loop(self) -> None:
        queue = self._queue
        send = self._send
        loop = asyncio.get_running_loop()
        try:
            while True:
                while queue:
                    data, binary = queue.popleft()
                    self._buffered -= len(data)
                    if binary:
                        await send({"type": "websocket.send", "bytes": data})
                    else:
                        await send({"type": "websocket.send", "text": data.decode()})
                    if self.paused and self._buffered <= LOW_WATER:
                        self.paused = False
                        if not self._closed:
                            self.handler.ws_drained()
                close = self._close
                if close is not None:
                    await send({"type": "websocket.close", "code": close[0], "reason": close[1]})
                    return
                wake = self._wake = loop.create_future()
                await wake
        except Exception as exc:
            # The connection is gone (the reader hears ``websocket.disconnect`` too).
            log.debug("WebSocket send to %s failed: %r", self.remote_address, exc)
            self._writer = None
            self._lost(1006)

    async def run(self, receive: Receive) -> None:
        """Feed the handler until ``websocket.disconnect``."""
        code = 1006
        try:
            while True:
                message = await receive()
                kind = message["type"]
                if kind == "websocket.receive":
                    if self._closed:
                        continue
                    text = message.get("text")
                    if text is not None:
                        opcode = _TEXT
                        payload = text.encode()
                    else:
                        opcode = _BINARY
                        payload = message.get("bytes") or b""
                    if len(payload) > self._max_message:
                        log.info("message too big from %s: closing", self.remote_address)
                        self.close(1009, "message too big")
                        continue
                    try:
                        self.handler.ws_message(opcode, payload)
                    except Exception:
                        log.exception("WebSocket handler failed for %s", self.remote_address)
                        self.close(1011, "internal error")
                elif kind == "websocket.disconnect":
                    code = message.get("code") or 1005
                    return
        finally:
            self._lost(code)

    def _lost(self, code: int) -> None:
        writer, self._writer = self._writer, None
        if writer is not None and not writer.done():
            writer.cancel()
        self._wake = None
        if not self._closed:
            self._closed = True
            self._queue.clear()
            self._buffered = 0
            self.handler.ws_closed(code, "")


class ASGIApp:
    """A ``socketwire.Server`` as an ASGI 3 application.

    ``ASGIApp(sio, other_asgi_app=None)``:

    * ``http`` and ``websocket`` requests under the server's path (``/socket.io``)
      go to the Engine.IO runtime, as do the client bundle files; anything else
      goes to ``other_asgi_app`` when given (with ``receive``/``send`` untouched),
      else to ``sio.fallback``, else gets 404;
    * request bodies are read up to ``max_http_buffer_size`` (413 beyond); a
      long-polling ``GET`` waits for its answer while ``http.disconnect`` aborts it;
    * a WebSocket is accepted with the engine's headers, and a refused one gets
      the engine's HTTP answer (the ``websocket.http.response`` extension) or a
      plain ``websocket.close``;
    * ``lifespan``: startup initialises the namespaces' adapters, shutdown
      awaits ``sio.close()``; with ``other_asgi_app``, its own lifespan runs too
      (after socketwire's startup, before socketwire's shutdown).

    Outgoing WebSocket messages are queued per connection: over ``HIGH_WATER``
    (64 KiB) queued bytes the connection reports backpressure (``paused``), and
    over the engine's ``write_buffer_limit`` it is closed as a slow consumer.
    """

    def __init__(self, sio: Server, other_asgi_app: ASGIApplication | None = None) -> None:
        self.sio = sio
        self.other_asgi_app = other_asgi_app
        self.max_message_size = sio.engine.max_http_buffer_size
        self.write_buffer_limit = sio.engine.write_buffer_limit
        self._path = sio.path
        self._prefix = sio.path + "/"
        self._started = False
        self._starting: asyncio.Future[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(scope, receive, send)
        elif self.other_asgi_app is not None:
            await self.other_asgi_app(scope, receive, send)
        else:
            raise RuntimeError(f"unsupported ASGI scope type {kind!r}")

    # -- routing -----------------------------------------------------------------------

    def _local_path(self, scope: Scope) -> str:
        path: str = scope["path"]
        root: str = scope.get("root_path") or ""
        if root and path.startswith(root):
            path = path[len(root) :] or "/"
        return path

    def _ours(self, path: str) -> bool:
        return path.startswith(self._prefix) or path == self._path

    def _dispatch(self, req: _Request) -> None:
        dispatch(self.sio.handle_request, req)

    # -- http --------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = self._local_path(scope)
        if self.other_asgi_app is not None and not self._ours(path):
            await self.other_asgi_app(scope, receive, send)
            return
        if not self._started:
            await self.startup()
        req = _Request(self, scope, path, send, False)
        headers = req.headers
        if req.method not in _NO_BODY_METHODS or (
            "content-length" in headers or "transfer-encoding" in headers
        ):
            try:
                body = await self._read_body(headers, receive)
            except RequestTooLarge as exc:
                log.info("request body from %s too large", req.remote_address)
                await self._send_response(send, exc.status, TEXT_PLAIN, str(exc).encode())
                return
            if body is None:
                return  # the client went away
            req.body = body
        self._dispatch(req)
        if not req.answered:
            await self._wait_answer(req, receive)
        response = req._response
        if response is not None:
            await self._send_response(send, *response)

    async def _read_body(self, headers: dict[str, str], receive: Receive) -> bytes | None:
        """The whole body, or None if the client went away (``RequestTooLarge`` over
        the limit)."""
        check_declared_length(headers, self.max_message_size)
        body = BodyBuffer(self.max_message_size)
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "http.request":
                chunk: bytes = message.get("body") or b""
                if chunk:
                    body.add(chunk)
                if not message.get("more_body", False):
                    return body.take()
            elif kind == "http.disconnect":
                return None

    async def _wait_answer(self, req: _Request, receive: Receive) -> None:
        """Wait for a parked request's answer, aborting it on ``http.disconnect``."""
        loop = asyncio.get_running_loop()
        waiter = req._waiter = loop.create_future()
        watcher = loop.create_task(_watch_disconnect(req, receive))
        try:
            await waiter
        finally:
            req._waiter = None
            if not watcher.done():
                watcher.cancel()
            # Cancelled (the ASGI server is shutting down): the client is gone.
            req.abort()

    @staticmethod
    async def _send_response(
        send: Send, status: int, headers: list[tuple[str, str]], body: bytes
    ) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": asgi_headers(headers, len(body)),
            }
        )
        await send({"type": "http.response.body", "body": body})

    # -- websocket ---------------------------------------------------------------------

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = self._local_path(scope)
        if self.other_asgi_app is not None and not self._ours(path):
            await self.other_asgi_app(scope, receive, send)
            return
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        if not self._started:
            await self.startup()
        req = _Request(self, scope, path, send, True)
        self._dispatch(req)
        if not req.answered:
            # An asynchronous ``allow_request``: the engine answers later.
            waiter = req._waiter = asyncio.get_running_loop().create_future()
            await waiter
        port = req._port
        if port is None:
            response = req._response
            if response is not None:
                await self._refuse(scope, send, *response)
            return
        headers = [
            (n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in req._accept_headers
        ]
        del req
        try:
            await send({"type": "websocket.accept", "headers": headers})
        except Exception as exc:
            log.debug("WebSocket accept failed: %r", exc)
            port._lost(1006)
            return
        port.start()
        await port.run(receive)

    @staticmethod
    async def _refuse(
        scope: Scope, send: Send, status: int, headers: list[tuple[str, str]], body: bytes
    ) -> None:
        extensions = scope.get("extensions") or {}
        if "websocket.http.response" in extensions:
            await send(
                {
                    "type": "websocket.http.response.start",
                    "status": status,
                    "headers": asgi_headers(headers, len(body)),
                }
            )
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            # The ASGI server answers 403.
            await send({"type": "websocket.close", "code": 1008})

    # -- lifespan ----------------------------------------------------------------------

    async def startup(self) -> None:
        """Initialise the adapters of namespaces created before the loop ran.

        Run by ``lifespan.startup``, or by the first request when the ASGI
        server runs no lifespan protocol.
        """
        if self._started:
            return
        starting = self._starting
        if starting is not None:
            await asyncio.shield(starting)
            return
        starting = self._starting = asyncio.get_running_loop().create_future()
        try:
            await self.sio.init_adapters()
            self._started = True
            starting.set_result(None)
        except BaseException as exc:
            starting.set_exception(exc)
            # Retrieved here so that a failure nobody waits for is not reported.
            starting.exception()
            raise
        finally:
            self._starting = None

    async def shutdown(self) -> None:
        """Disconnect every client (``sio.close()``)."""
        await self.sio.close()

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        other = self.other_asgi_app
        if other is None:
            await self._own_lifespan(receive, send, False)
            return
        relay = _LifespanRelay(self, receive, send)
        try:
            await other(scope, relay.receive, relay.send)
        except Exception:
            if relay.failed:
                return  # socketwire's own startup failed and said so
            if relay.answered:
                raise
            log.debug("the other ASGI app does not do lifespan", exc_info=True)
        if not relay.answered:
            # The other app does not speak lifespan: socketwire answers alone.
            await self._own_lifespan(receive, send, relay.started)

    async def _own_lifespan(self, receive: Receive, send: Send, started: bool) -> None:
        if started:
            await send({"type": "lifespan.startup.complete"})
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    log.exception("startup failed")
                    await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif kind == "lifespan.shutdown":
                try:
                    await self.shutdown()
                except Exception as exc:
                    log.exception("shutdown failed")
                    await send({"type": "lifespan.shutdown.failed", "message": repr(exc)})
                    return
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _watch_disconnect(req: _Request, receive: Receive) -> None:
    while not req.answered:
        message = await receive()
        if message["type"] == "http.disconnect":
            req.abort()
            return


class _LifespanRelay:
    """Runs socketwire's startup/shutdown around another app's lifespan protocol."""

    __slots__ = ("_app", "_receive", "_send", "answered", "failed", "started")

    def __init__(self, app: ASGIApp, receive: Receive, send: Send) -> None:
        self._app = app
        self._receive = receive
        self._send = send
        self.started = False  # socketwire's startup ran
        self.answered = False  # the other app sent a lifespan message
        self.failed = False  # socketwire's startup failed

    async def receive(self) -> Message:
        message = await self._receive()
        kind = message["type"]
        if kind == "lifespan.startup" and not self.started:
            try:
                await self._app.startup()
            except Exception as exc:
                log.exception("startup failed")
                self.failed = self.answered = True
                await self._send({"type": "lifespan.startup.failed", "message": repr(exc)})
                raise
            self.started = True
        elif kind == "lifespan.shutdown":
            try:
                await self._app.shutdown()
            except Exception:
                log.exception("shutdown failed")
        return message

    async def send(self, message: Message) -> None:
        self.answered = True
        await self._send(message)


__all__ = ["HIGH_WATER", "LOW_WATER", "ASGIApp"]
