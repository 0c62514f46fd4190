"""The ASGI application: routing, request bodies, answers, lifespan (layer 3).

``ASGIApp`` turns each ASGI ``http`` and ``websocket`` scope into an
``ASGIRequest`` for the Engine.IO runtime, reads request bodies to the limit,
sends the answers, and hands an accepted WebSocket to its ``ASGIWebSocket``.
"""

from __future__ import annotations

import asyncio
import logging

from socketwire.asgi.request import ASGIRequest
from socketwire.asgi.types import ASGIApplication, Message, Receive, Scope, Send
from socketwire.http.request import (
    BodyBuffer,
    RequestTooLarge,
    check_declared_length,
    dispatch,
)
from socketwire.http.response import TEXT_PLAIN, asgi_headers
from socketwire.server.server import Server

__all__ = ["ASGIApp"]

log = logging.getLogger("socketwire.asgi")

_NO_BODY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


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
        self._limits = (self.write_buffer_limit, self.max_message_size)
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

    def _dispatch(self, req: ASGIRequest) -> None:
        dispatch(self.sio.handle_request, req)

    # -- http --------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = self._local_path(scope)
        if self.other_asgi_app is not None and not self._ours(path):
            await self.other_asgi_app(scope, receive, send)
            return
        if not self._started:
            await self.startup()
        req = ASGIRequest(scope, path, send, False, self._limits)
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
        response = req.response
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

    async def _wait_answer(self, req: ASGIRequest, receive: Receive) -> None:
        """Wait for a parked request's answer, aborting it on ``http.disconnect``."""
        loop = asyncio.get_running_loop()
        waiter = req.waiter = loop.create_future()
        watcher = loop.create_task(_watch_disconnect(req, receive))
        try:
            await waiter
        finally:
            req.waiter = None
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
        req = ASGIRequest(scope, path, send, True, self._limits)
        self._dispatch(req)
        if not req.answered:
            # An asynchronous ``allow_request``: the engine answers later.
            waiter = req.waiter = asyncio.get_running_loop().create_future()
            await waiter
        port = req.port
        if port is None:
            response = req.response
            if response is not None:
                await self._refuse(scope, send, *response)
            return
        headers = [
            (n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in req.accept_headers
        ]
        del req
        try:
            await send({"type": "websocket.accept", "headers": headers})
        except Exception as exc:
            log.debug("WebSocket accept failed: %r", exc)
            port.lost(1006)
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


async def _watch_disconnect(req: ASGIRequest, receive: Receive) -> None:
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
