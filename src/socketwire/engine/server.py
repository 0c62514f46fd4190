"""The Engine.IO v4 server runtime (layer 1, asyncio).

``EngineServer`` answers the requests that a front door routes to the Engine.IO
path: the handshake, polling ``GET``/``POST`` and WebSocket upgrades, with the
errors Node's engine.io gives (``{"code": N, "message": ...}`` with HTTP 400 or
403). It owns the heartbeat of every session through two constant-delay queues,
so there is one clock callback per queue, not one timer per connection.

It is usable on its own, like Node's ``engine.io`` package::

    engine = EngineServer()

    @engine.on("connection")
    def connection(sock):
        sock.on("message", lambda data, binary: sock.send(data if binary else data.decode()))

    engine.run(3000)          # or: await engine.listen(3000) inside a running loop

Listeners register with ``on`` (a decorator without a handler) for every event
of the server and of its sockets. The server implements the ``EngineServerPort``
of ``socketwire.engine.ports``, all that its sockets ask of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import weakref
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Never, TypeVar, overload

import orjson

from socketwire.core.engineio.errors import EngineErrorCode
from socketwire.core.engineio.session import (
    UpgradeState,
)
from socketwire.core.engineio.transport import POLLING, WEBSOCKET
from socketwire.core.reasons import DisconnectReason
from socketwire.durations import check_seconds
from socketwire.engine.cors import CorsPolicy
from socketwire.engine.options import CompressionOptions, CookieOptions, CorsOptions, reject_unknown
from socketwire.engine.ports import HttpRequest
from socketwire.engine.process import run_until_signalled
from socketwire.engine.socket import EngineSocket, RequestInfo
from socketwire.engine.ticker import Ticker
from socketwire.errors import ConnectionRefused
from socketwire.ids import random_id

log = logging.getLogger("socketwire.engine")

# The handshake's "upgrades" list of a polling session that may upgrade.
_UPGRADE_TO_WEBSOCKET = orjson.dumps([WEBSOCKET])

_TEXT_PLAIN = [("Content-Type", "text/plain; charset=UTF-8")]
_OK_HEADERS = [("Content-Type", "text/html")]


class _Refused:
    """WebSocketHandler of a WebSocket that is closed as soon as it is open."""

    __slots__ = ()

    def ws_message(self, opcode: int, payload: bytes) -> None:
        pass

    def ws_closed(self, code: int, reason: str) -> None:
        pass

    def ws_drained(self) -> None:
        pass


_REFUSED = _Refused()
_UPGRADING = (UpgradeState.PROBING, UpgradeState.PROBED)
# Events of the server (those of its sockets are EngineSocket's).
_HOOK_EVENTS = ("connection_error", "initial_headers", "headers")
EVENTS = ("connection", *_HOOK_EVENTS)

F = TypeVar("F", bound=Callable[..., object])

#: The keyword options of ``EngineServer`` (also passed through by ``Server``).
ENGINE_OPTIONS: frozenset[str] = frozenset(
    {
        "ping_interval",
        "ping_timeout",
        "upgrade_timeout",
        "max_http_buffer_size",
        "transports",
        "allow_upgrades",
        "cors",
        "allow_request",
        "cookie",
        "http_compression",
        "generate_id",
        "write_buffer_limit",
        "max_connections",
        "max_handshake_rate",
    }
)


def default_generate_id(req: HttpRequest | None = None) -> str:
    """A session id: 15 bytes of cryptographic randomness, 20 URL-safe characters."""
    return random_id()


@dataclass(slots=True)
class ConnectionErrorInfo:
    """What a ``connection_error`` listener gets (Node's error object)."""

    req: HttpRequest
    code: int
    message: str
    context: dict[str, Any]


class EngineServer:
    """Engine.IO v4 server: sessions, transports, heartbeat and upgrades.

    Durations are in seconds (Node's defaults: ``ping_interval=25``,
    ``ping_timeout=20``, ``upgrade_timeout=10``); ``max_http_buffer_size`` bounds a
    polling body and a WebSocket message (default 1e6 bytes, as Node).

    Every new session is announced to the ``connection`` listeners (see ``on``).
    """

    def __init__(
        self,
        *,
        ping_interval: float = 25.0,
        ping_timeout: float = 20.0,
        upgrade_timeout: float = 10.0,
        max_http_buffer_size: int = 1_000_000,
        transports: Sequence[str] = (POLLING, WEBSOCKET),
        allow_upgrades: bool = True,
        cors: bool | CorsOptions | CorsPolicy | None = None,
        allow_request: Callable[[HttpRequest], Any] | None = None,
        cookie: bool | CookieOptions = False,
        http_compression: bool | CompressionOptions = True,
        generate_id: Callable[[HttpRequest], str] = default_generate_id,
        write_buffer_limit: int = 4 * 1024 * 1024,
        max_connections: int | None = None,
        max_handshake_rate: tuple[int, float] | None = None,
        **unknown: Never,
    ) -> None:
        # ``Never``: mypy refuses any other keyword; at run time, the nearest name.
        reject_unknown(type(self).__name__, unknown, ENGINE_OPTIONS)
        check_seconds(ping_interval, "ping_interval={}")
        check_seconds(ping_timeout, "ping_timeout={}")
        check_seconds(upgrade_timeout, "upgrade_timeout={}")
        for t in transports:
            if t not in (POLLING, WEBSOCKET):
                raise ValueError(f"unknown transport {t!r}")
        self.ping_interval = float(ping_interval)
        self.ping_timeout = float(ping_timeout)
        self.upgrade_timeout = float(upgrade_timeout)
        self.max_http_buffer_size = int(max_http_buffer_size)
        self.transports = tuple(transports)
        self.allow_upgrades = allow_upgrades
        self.cors = CorsPolicy.from_option(cors)
        self.allow_request = allow_request
        self.cookie = self._cookie_option(cookie)
        compression: CompressionOptions | None = (
            {} if http_compression is True else http_compression or None
        )
        self.compression_threshold: int | None = (
            None if compression is None else int(compression.get("threshold", 1024))
        )
        self.generate_id = generate_id
        self.clients: dict[str, EngineSocket] = {}
        # Bytes a connection may have waiting to be written before it is closed
        # as a slow consumer (not a Node option: Node's buffers are unbounded).
        self.write_buffer_limit = int(write_buffer_limit)
        self.max_connections = max_connections
        self.max_handshake_rate = max_handshake_rate
        self._rate_window_start = 0.0
        self._rate_count = 0
        self._pending_handshakes = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pings: Ticker[weakref.ref[EngineSocket]] = Ticker(
            self.ping_interval, EngineSocket.heartbeat_due_ref
        )
        self._pongs: Ticker[weakref.ref[EngineSocket]] = Ticker(
            self.ping_timeout, EngineSocket.heartbeat_due_ref
        )
        self._open_tail = orjson.dumps(
            {
                "pingInterval": int(self.ping_interval * 1000),
                "pingTimeout": int(self.ping_timeout * 1000),
                "maxPayload": self.max_http_buffer_size,
            }
        )[1:]
        self._tasks: set[asyncio.Task[None]] = set()
        # Kept apart: ``_hooks`` empty keeps every response free of hook lookups.
        self._connection_listeners: list[Callable[[EngineSocket], object]] = []
        self._hooks: dict[str, list[Callable[..., Any]]] = {}
        self._servers: list[asyncio.Server] = []

    @staticmethod
    def _cookie_option(cookie: bool | CookieOptions) -> dict[str, Any] | None:
        if not cookie:
            return None
        base: dict[str, Any] = {"name": "io", "path": "/", "http_only": True, "same_site": "lax"}
        if isinstance(cookie, dict):
            base.update(cookie)
        return base

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the sessions run on (the running one, once known)."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    @property
    def clients_count(self) -> int:
        """How many sessions are open."""
        return len(self.clients)

    # -- request entry point -------------------------------------------------------

    def handle_request(self, req: HttpRequest) -> None:
        """Answer one request to the Engine.IO path (never raises)."""
        try:
            if self._loop is None:
                self._loop = asyncio.get_running_loop()
            if req.method == "OPTIONS" and self.cors is not None and not req.is_websocket():
                req.respond(204, self.cors.headers("OPTIONS", req.headers), b"")
                return
            if (
                self.cors is not None
                and req.is_websocket()
                and not self.cors.allows(req.headers.get("origin"))
            ):
                # Browsers open cross-origin WebSockets freely: apply the CORS
                # origin policy to them too (cross-site WebSocket hijacking).
                return self.respond_error(req, EngineErrorCode.FORBIDDEN, "Origin not allowed")
            query = req.query
            transport = query.get("transport")
            if transport not in self.transports:
                return self.respond_error(req, EngineErrorCode.UNKNOWN_TRANSPORT)
            sid = query.get("sid")
            if sid is not None:
                return self._handle_existing(req, sid, transport)
            if query.get("EIO") != "4":
                return self.respond_error(req, EngineErrorCode.UNSUPPORTED_PROTOCOL_VERSION)
            if req.method != "GET":
                return self.respond_error(req, EngineErrorCode.BAD_HANDSHAKE_METHOD)
            if (transport == WEBSOCKET) != req.is_websocket():
                return self.respond_error(req, EngineErrorCode.BAD_REQUEST)
            if self._over_capacity():
                return self._respond_busy(req)
            if self.allow_request is not None:
                # Counted from now: max_connections holds while the check runs.
                self._pending_handshakes += 1
                self._spawn(self._handshake_checked(req, transport))
                return
            self._handshake(req, transport)
        except Exception:
            log.exception("unexpected error while answering %s %s", req.method, req.path)
            with contextlib.suppress(Exception):
                self.respond_error(req, EngineErrorCode.BAD_REQUEST)

    def _spawn(self, coro: Any) -> None:
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handshake_checked(self, req: HttpRequest, transport: str) -> None:
        try:
            allowed = await self._allowed(req)
        finally:
            self._pending_handshakes -= 1
        if allowed:
            self._handshake(req, transport)

    async def _allowed(self, req: HttpRequest) -> bool:
        """Run ``allow_request``; answers 403 itself when it refuses."""
        assert self.allow_request is not None
        try:
            result = self.allow_request(req)
            if inspect.isawaitable(result):
                result = await result
        except ConnectionRefused as exc:
            self.respond_error(req, EngineErrorCode.FORBIDDEN, exc.message)
            return False
        except Exception:
            log.exception("allow_request raised; refusing the handshake")
            self.respond_error(req, EngineErrorCode.FORBIDDEN)
            return False
        if not result:
            self.respond_error(req, EngineErrorCode.FORBIDDEN)
            return False
        return True

    def _handle_existing(self, req: HttpRequest, sid: str, transport: str) -> None:
        client = self.clients.get(sid)
        if client is None:
            return self.respond_error(req, EngineErrorCode.UNKNOWN_SID, context={"sid": sid})
        if req.is_websocket():
            if transport == WEBSOCKET and self.allow_upgrades and client.session.can_upgrade():
                client.start_upgrade(req, self._extra_headers(req))
                return
            # Node's engine.io completes the handshake of such a WebSocket (a
            # second one for an upgraded or upgrading session, or one that cannot
            # carry it) and then closes it: clients see a close, not an HTTP error,
            # and the session's own transport goes on untouched.
            log.info(
                "sid=%s WebSocket refused (transport=%s, session on %s%s): closing it",
                sid,
                transport,
                client.transport,
                ", upgrading" if client.session.upgrade in _UPGRADING else "",
            )
            ws = req.accept_websocket(_REFUSED, self._extra_headers(req))
            if ws is not None:
                ws.close(1000, "")
            return
        if transport != client.transport or client.transport != POLLING:
            context = {
                "name": "TRANSPORT_MISMATCH",
                "transport": transport,
                "previousTransport": client.transport,
            }
            return self.respond_error(req, EngineErrorCode.BAD_REQUEST, context=context)
        if req.method == "GET":
            client.handle_get(req)
        elif req.method == "POST":
            client.handle_post(req)
        else:
            self.respond_error(req, EngineErrorCode.BAD_REQUEST)

    def _handshake(self, req: HttpRequest, transport: str) -> None:
        sid = self.generate_id(req)
        while sid in self.clients:
            sid = self.generate_id(req)
        info = RequestInfo(
            headers=req.headers,
            query=req.query,
            address=req.remote_address,
            secure=req.secure,
            url=req.url,
        )
        sock = EngineSocket(self, sid, transport, info)
        upgrades = (
            _UPGRADE_TO_WEBSOCKET
            if transport == POLLING and self.allow_upgrades and WEBSOCKET in self.transports
            else b"[]"
        )
        # Engine.IO v4 "Handshake": the open packet and its JSON payload.
        open_packet = (
            b'0{"sid":"' + sid.encode() + b'","upgrades":' + upgrades + b"," + self._open_tail
        )
        headers = self._extra_headers(req, initial=True)
        if self.cookie is not None:
            headers.append(("Set-Cookie", self._cookie_header(sid)))
        if transport == WEBSOCKET:
            ws = req.accept_websocket(sock, headers)
            if ws is None:
                return
            sock.use_websocket(ws)
            ws.send(open_packet, False)
        else:
            req.respond(200, _TEXT_PLAIN + headers, open_packet)
        self.clients[sid] = sock
        self.schedule_ping(sock)
        listeners = self._connection_listeners
        for fn in listeners if len(listeners) < 2 else list(listeners):
            try:
                fn(sock)
            except Exception:
                log.exception("connection listener failed for sid=%s", sid)
                sock.close_now(DisconnectReason.TRANSPORT_ERROR)
                return

    def _cookie_header(self, sid: str) -> str:
        c = self.cookie
        assert c is not None
        parts = [f"{c['name']}={sid}"]
        if c.get("path"):
            parts.append(f"Path={c['path']}")
        if c.get("domain"):
            parts.append(f"Domain={c['domain']}")
        if c.get("max_age") is not None:
            parts.append(f"Max-Age={int(c['max_age'])}")
        if c.get("http_only"):
            parts.append("HttpOnly")
        if c.get("secure"):
            parts.append("Secure")
        if c.get("same_site"):
            parts.append(f"SameSite={str(c['same_site']).capitalize()}")
        return "; ".join(parts)

    def _extra_headers(self, req: HttpRequest, initial: bool = False) -> list[tuple[str, str]]:
        headers = [] if self.cors is None else self.cors.headers(req.method, req.headers)
        hooks = self._hooks
        if hooks:
            # Node's "initial_headers" (handshake) and "headers" (every response):
            # listeners may append to or change the list.
            if initial:
                self._run_hooks("initial_headers", headers, req)
            self._run_hooks("headers", headers, req)
        return headers

    # -- listeners (Node's engine events) -------------------------------------------------

    @overload
    def on(self, event: str, handler: F) -> F: ...

    @overload
    def on(self, event: str, handler: None = None) -> Callable[[F], F]: ...

    def on(self, event: str, handler: Callable[..., object] | None = None) -> Any:
        """Listen to an engine event, as Node's ``engine.on``; without a handler,
        return a decorator (``@engine.on("connection")``).

        * ``connection``: ``fn(socket)`` for each new session (an ``EngineSocket``;
          a listener that raises closes it);
        * ``connection_error``: ``fn(error)`` with ``error.req``, ``error.code``,
          ``error.message`` and ``error.context`` for each refused request;
        * ``initial_headers``: ``fn(headers, req)`` before the handshake response;
        * ``headers``: ``fn(headers, req)`` before every response.

        ``headers`` is a list of ``(name, value)`` pairs to change in place.
        Listeners are plain functions, called synchronously.
        """
        if event not in EVENTS:
            raise ValueError(f"unknown engine event {event!r}")
        if handler is None:

            def decorator(fn: F) -> F:
                self.on(event, fn)
                return fn

            return decorator
        if event == "connection":
            self._connection_listeners.append(handler)
        else:
            self._hooks.setdefault(event, []).append(handler)
        return handler

    def off(self, event: str, handler: Callable[..., object] | None = None) -> None:
        """Remove one listener of ``event``, or all of them."""
        if event not in EVENTS:
            raise ValueError(f"unknown engine event {event!r}")
        found: list[Any] | None = (
            self._connection_listeners if event == "connection" else self._hooks.get(event)
        )
        if not found:
            return
        found[:] = [] if handler is None else [fn for fn in found if fn is not handler]
        if not found and event != "connection":
            del self._hooks[event]

    def listeners(self, event: str) -> list[Callable[..., object]]:
        """The listeners of ``event``, in call order."""
        if event not in EVENTS:
            raise ValueError(f"unknown engine event {event!r}")
        if event == "connection":
            return list(self._connection_listeners)
        return list(self._hooks.get(event, ()))

    def _run_hooks(self, event: str, *args: Any) -> None:
        for fn in self._hooks.get(event, ()):
            try:
                fn(*args)
            except Exception:
                log.exception("engine %s listener failed", event)

    # -- responses (EngineServerPort) ------------------------------------------------

    def respond_error(
        self,
        req: HttpRequest,
        code: EngineErrorCode,
        message: str | None = None,
        context: dict[str, Any] | None = None,
    ) -> None:
        """Refuse ``req`` with Node's ``{"code", "message"}`` body (HTTP 403 or 400)."""
        status = code.status
        text = message or code.message
        body = orjson.dumps({"code": code, "message": text})
        log.info("refused %s %s: %s", req.method, req.path, body.decode())
        if "connection_error" in self._hooks:
            self._run_hooks("connection_error", ConnectionErrorInfo(req, code, text, context or {}))
        req.respond(status, [("Content-Type", "application/json"), *self._extra_headers(req)], body)

    def _over_capacity(self) -> bool:
        """Whether a new session must be refused (``max_connections``, ``max_handshake_rate``)."""
        if (
            self.max_connections is not None
            and len(self.clients) + self._pending_handshakes >= self.max_connections
        ):
            return True
        rate = self.max_handshake_rate
        if rate is not None:
            limit, window = rate
            now = self.loop.time()
            if now - self._rate_window_start >= window:
                self._rate_window_start = now
                self._rate_count = 0
            if self._rate_count >= limit:
                return True
            self._rate_count += 1
        return False

    def _respond_busy(self, req: HttpRequest) -> None:
        log.warning("refused a handshake from %s: server at capacity", req.remote_address)
        busy = EngineErrorCode.SERVER_BUSY
        body = orjson.dumps({"code": busy, "message": busy.message})
        headers = [("Content-Type", "application/json"), ("Retry-After", "1")]
        req.respond(busy.status, headers + self._extra_headers(req), body)

    def respond_ok(self, req: HttpRequest) -> None:
        """Answer a polling ``POST`` (``200 ok``)."""
        req.respond(200, _OK_HEADERS + self._extra_headers(req), b"ok")

    def respond_payload(self, req: HttpRequest, body: bytes) -> None:
        """Answer a polling ``GET`` with ``body``, compressed past the threshold."""
        headers = _TEXT_PLAIN + self._extra_headers(req)
        threshold = self.compression_threshold
        if threshold is not None and len(body) >= threshold:
            accept = req.headers.get("accept-encoding", "")
            if "gzip" in accept:
                co = zlib.compressobj(wbits=31)
                body = co.compress(body) + co.flush()
                headers.append(("Content-Encoding", "gzip"))
            elif "deflate" in accept:
                body = zlib.compress(body)
                headers.append(("Content-Encoding", "deflate"))
        req.respond(200, headers, body)

    # -- heartbeat (Engine.IO v4 "Heartbeat"; EngineServerPort) ---------------------

    def schedule_ping(self, sock: EngineSocket) -> None:
        """Queue the next ping of ``sock``, ``ping_interval`` from now."""
        sock.session.schedule_ping(self._pings.push(self.loop, sock.ref))

    def schedule_pong_deadline(self, sock: EngineSocket) -> None:
        """Queue the deadline of the pong of ``sock``, ``ping_timeout`` from now."""
        sock.session.ping_sent(self._pongs.push(self.loop, sock.ref))

    # -- bookkeeping (EngineServerPort) ------------------------------------------------

    def socket_closed(self, sock: EngineSocket) -> None:
        """Forget a closed session."""
        if self.clients.get(sock.id) is sock:
            del self.clients[sock.id]

    def socket_upgraded(self, sock: EngineSocket) -> None:
        """A session moved to WebSocket."""
        log.debug("sid=%s upgraded to websocket", sock.id)

    # -- running on its own ------------------------------------------------------------

    async def listen(
        self, port: int = 3000, host: str = "0.0.0.0", *, path: str = "/engine.io", **kwargs: Any
    ) -> int:
        """Serve this engine alone with the built-in server, inside a running loop.

        Requests under ``path`` reach the engine, others get 404 (as Node's
        ``engine.io.listen``). Returns the bound port (useful with ``port=0``).
        Keyword arguments: the built-in server's time limits in seconds
        (``http_head_timeout``, ``http_body_timeout``, ``keep_alive_timeout``),
        then anything ``loop.create_server`` takes (``ssl=``...). ``close``
        stops listening.
        """
        # The built-in server is a front door above this layer: imported when used,
        # never when the engine is.
        from socketwire.serve import listen_engine

        server = await listen_engine(self, port, host, path=path, **kwargs)
        self._servers.append(server)
        bound: int = server.sockets[0].getsockname()[1]
        log.info("engine listening on %s:%d%s/", host, bound, "/" + path.strip("/"))
        return bound

    def run(
        self,
        port: int = 3000,
        host: str = "0.0.0.0",
        *,
        path: str = "/engine.io",
        use_uvloop: bool = True,
        **kwargs: Any,
    ) -> None:
        """Serve until interrupted (Ctrl-C or SIGTERM); blocks. Uses uvloop when
        installed and settles the cycle collector once listening, as ``Server.run``.
        Keyword arguments go to ``listen``."""

        async def start() -> None:
            await self.listen(port, host, path=path, **kwargs)

        async def stop() -> None:
            servers = list(self._servers)
            self.close()
            for server in servers:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(server.wait_closed(), 1.0)

        run_until_signalled(start, stop, use_uvloop=use_uvloop)

    def close(self) -> None:
        """Close every session, stop the heartbeat and stop listening (``listen``)."""
        for sock in list(self.clients.values()):
            sock.close_now(DisconnectReason.FORCED_SERVER_CLOSE)
        self._pings.cancel()
        self._pongs.cancel()
        servers, self._servers = self._servers, []
        for server in servers:
            server.close()


__all__ = ["ENGINE_OPTIONS", "EVENTS", "ConnectionErrorInfo", "EngineServer", "default_generate_id"]
