"""The Socket.IO server (layer 2).

``Server`` ties the Engine.IO runtime to namespaces: it answers CONNECT packets,
keeps the namespaces and their adapters, serves the client script, and runs the
built-in HTTP server (``run``/``listen``). Options are Node's, in snake_case,
with Node's defaults; durations are in seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import re
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Never, Protocol, TypedDict, overload

from socketwire.adapters.base import Adapter, SocketView
from socketwire.adapters.session_aware import SessionAwareAdapter
from socketwire.core.engineio.transport import Transport
from socketwire.core.reasons import DisconnectReason
from socketwire.core.socketio.parser import Parser, resolve_parser
from socketwire.durations import check_seconds
from socketwire.emit_options import Sent
from socketwire.engine.cors import CorsPolicy
from socketwire.engine.options import (
    CompressionOptions,
    CookieOptions,
    CorsOptions,
    reject_unknown,
)
from socketwire.engine.ports import HttpRequest
from socketwire.engine.process import run_until_signalled
from socketwire.engine.server import ENGINE_OPTIONS, EngineServer, default_generate_id
from socketwire.engine.socket import EngineSocket
from socketwire.engine.ticker import Ticker
from socketwire.ids import random_id
from socketwire.rooms import Rooms
from socketwire.server.broadcast_operator import BroadcastOperator
from socketwire.server.client_files import CLIENT_FILES, ClientFiles, find_client_dist
from socketwire.server.connection import Connection
from socketwire.server.listeners import F, Handler, runner, spawn
from socketwire.server.namespace import Namespace
from socketwire.server.parent_namespace import ParentNamespace
from socketwire.server.socket import Socket

if TYPE_CHECKING:
    from socketwire.asgi import ASGIApp
    from socketwire.asgi.types import ASGIApplication

log = logging.getLogger("socketwire.server")

_NO_CLIENT = b"no such client file on this server\n"

#: Seconds ``run`` gives a graceful shutdown (SIGINT, SIGTERM) before it exits:
#: within the 10 s that ``docker stop`` waits before killing.
GRACEFUL_SHUTDOWN_TIMEOUT = 8.0


class HostedApp(Protocol):
    """An application served beside the server (``socketwire.serve.AsgiHost``)."""

    async def drain(self, timeout: float) -> bool:
        """Wait (at most ``timeout`` seconds) for its requests in flight."""

    async def shutdown(self) -> None:
        """Close what it still serves and run its shutdown."""


class SessionRouting(Protocol):
    """The ``session_routing`` option: nodes of a cluster that serve the
    requests of each other's sessions (``socketwire.nodes.RedisSessionRouter``)."""

    def attach(self, server: Server) -> Callable[[Any], None]:
        """Take over ``server``'s session ids; the app that routes its requests."""

    async def announce(self, name: Any, secure: bool) -> None:
        """Tell the other nodes where this one is (``name``: the bound socket's)."""

    async def close(self) -> None:
        """Leave the other nodes."""


class RecoveryDict(TypedDict, total=False):
    """The ``connection_state_recovery`` option as a dict (seconds)."""

    max_disconnection_duration: float
    skip_middlewares: bool


@dataclass(slots=True)
class RecoveryOptions:
    """``connection_state_recovery`` (Node's defaults: 2 minutes, skip middlewares)."""

    max_disconnection_duration: float = 120.0
    skip_middlewares: bool = True

    @classmethod
    def from_option(cls, option: bool | RecoveryDict | None) -> RecoveryOptions | None:
        if not option:
            return None
        if option is True:
            return cls()
        reject_unknown(
            "connection_state_recovery",
            {k: v for k, v in option.items() if k not in _RECOVERY_KEYS},
            _RECOVERY_KEYS,
        )
        check_seconds(option.get("max_disconnection_duration"), "max_disconnection_duration={}")
        return cls(**option)


_RECOVERY_KEYS = frozenset(RecoveryDict.__annotations__)

#: The keyword options of ``Server``.
SERVER_OPTIONS: frozenset[str] = ENGINE_OPTIONS | {
    "path",
    "serve_client",
    "connect_timeout",
    "adapter",
    "fallback",
    "parser",
    "cleanup_empty_child_namespaces",
    "connection_state_recovery",
    "event_rate_limit",
    "on_rate_limit",
    "log_connections",
    "session_routing",
}

#: Who may be named by ``to=`` and ``skip_sid=`` (python-socketio's emit keywords).
Target = str | int | Socket | Sequence[str | int | Socket]


def _rooms_of(target: Target) -> list[str | int]:
    # A python-socketio handler's first argument is a sid; here it is the Socket:
    # either names the socket's own room.
    items: Sequence[str | int | Socket] = (
        target if isinstance(target, (list, tuple)) else [target]  # type: ignore[list-item]
    )
    return [x.id if isinstance(x, Socket) else x for x in items]


class Server:
    """A Socket.IO v5 server.

    ::

        sio = socketwire.Server(cors={"origin": "*"})

        @sio.on("connection")
        def on_connection(socket):
            socket.emit("hello", "world")

        sio.run(3000)

    Engine.IO options (``ping_interval``, ``ping_timeout``, ``upgrade_timeout``,
    ``max_http_buffer_size``, ``transports``, ``allow_upgrades``, ``cors``,
    ``allow_request``, ``cookie``, ``http_compression``, ``generate_id``,
    ``write_buffer_limit``, ``max_connections``, ``max_handshake_rate``) are
    passed to its ``EngineServer``. An unknown option is a ``TypeError`` naming
    the nearest valid one (``pingInterval``: "did you mean ping_interval?").

    ``log_connections=True`` logs each connection and disconnection (with its
    reason) at INFO instead of DEBUG.

    ``session_routing`` (``socketwire.nodes.RedisSessionRouter``) lets the
    nodes of a Redis cluster behind a load balancer without sticky sessions
    serve each other's polling requests and upgrades, on the built-in server.
    """

    def __init__(
        self,
        *,
        path: str = "/socket.io",
        serve_client: bool = True,
        connect_timeout: float = 45.0,
        adapter: Callable[[Namespace], Adapter] | type[Adapter] = Adapter,
        fallback: Callable[[HttpRequest], None] | None = None,
        parser: Parser | str | None = None,
        cleanup_empty_child_namespaces: bool = False,
        connection_state_recovery: bool | RecoveryDict | None = None,
        event_rate_limit: tuple[int, float] | None = None,
        on_rate_limit: Callable[[Socket, str], Any] | None = None,
        log_connections: bool = False,
        session_routing: SessionRouting | None = None,
        ping_interval: float = 25.0,
        ping_timeout: float = 20.0,
        upgrade_timeout: float = 10.0,
        max_http_buffer_size: int = 1_000_000,
        transports: Sequence[str] = (Transport.POLLING, Transport.WEBSOCKET),
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
        reject_unknown(type(self).__name__, unknown, SERVER_OPTIONS)
        check_seconds(connect_timeout, "connect_timeout={}")
        self.parser: Parser = resolve_parser(parser)
        self.path = "/" + path.strip("/")
        self._engine_prefix = self.path + "/"
        self.serve_client = serve_client
        self.connect_timeout = float(connect_timeout)
        self.recovery = RecoveryOptions.from_option(connection_state_recovery)
        if self.recovery is not None and adapter is Adapter:
            duration = self.recovery.max_disconnection_duration

            def session_aware(nsp: Namespace) -> Adapter:
                return SessionAwareAdapter(nsp, duration)

            adapter = session_aware
        # Called with each new namespace (Namespace builds its adapter with it).
        self.adapter_factory: Callable[[Namespace], Adapter] = adapter
        self.fallback = fallback
        #: The level of the connection and disconnection lines (``log_connections``).
        self.connection_log_level = logging.INFO if log_connections else logging.DEBUG
        #: Sessions of the other nodes of a cluster, reached from this one.
        self.session_routing = session_routing
        self.engine = EngineServer(
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            upgrade_timeout=upgrade_timeout,
            max_http_buffer_size=max_http_buffer_size,
            transports=transports,
            allow_upgrades=allow_upgrades,
            cors=cors,
            allow_request=allow_request,
            cookie=cookie,
            http_compression=http_compression,
            generate_id=generate_id,
            write_buffer_limit=write_buffer_limit,
            max_connections=max_connections,
            max_handshake_rate=max_handshake_rate,
        )
        self.engine.on("connection", self._on_engine_connection)
        self._nsps: dict[str, Namespace] = {}
        self._parents: list[ParentNamespace] = []
        # Flood control: (events, per seconds) for each socket's incoming events.
        self.event_rate_limit = event_rate_limit
        self.on_rate_limit = on_rate_limit
        self.cleanup_empty_child_namespaces = cleanup_empty_child_namespaces
        # Weak entries: a closed connection must not stay alive for the rest of
        # its ``connect_timeout`` just because its deadline is still queued.
        self._connect_timer: Ticker[weakref.ref[Connection]] = Ticker(
            self.connect_timeout, Connection.connect_timeout_due_ref
        )
        self._servers: list[asyncio.Server] = []
        # ASGI apps served beside this server by ``listen(app=...)``.
        self._hosted: list[HostedApp] = []
        self._client_files = ClientFiles()
        self._client_missing_logged: set[str] = set()
        self.sockets = self.of("/")

    # -- namespaces ----------------------------------------------------------------------

    def of(self, name: str | re.Pattern[str] | Callable[[str, dict[str, Any]], Any]) -> Namespace:
        """The namespace ``name`` (created on first use).

        A compiled regex or a predicate ``fn(name, auth) -> bool`` (sync or async)
        declares dynamic namespaces: a ``ParentNamespace`` whose children are
        created when clients connect to matching names.
        """
        if not isinstance(name, str):
            parent = ParentNamespace(self, name)
            self._parents.append(parent)
            return parent
        if not name.startswith("/"):
            name = "/" + name
        nsp = self._nsps.get(name)
        if nsp is None:
            nsp = self._nsps[name] = Namespace(self, name)
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                # No loop yet: ``listen`` initialises every adapter.
                pass
            else:
                # ``listen`` (or the ASGI lifespan) waits for this task.
                nsp.adapter_init = spawn(nsp.adapter.init())
                nsp.adapter_ready = True
        return nsp

    @property
    def namespaces(self) -> dict[str, Namespace]:
        """The namespaces by name (a copy)."""
        return dict(self._nsps)

    def new_socket_id(self) -> str:
        """A new Socket.IO socket id (also a private session id for recovery)."""
        return random_id()

    def handle_connect(self, conn: Connection, name: str, auth: Any) -> None:
        """A CONNECT packet of ``conn`` for the namespace ``name`` (Socket.IO v5
        "Connection to a namespace"): join it, create it (dynamic namespaces), or
        refuse."""
        auth = auth if isinstance(auth, dict) else {}
        nsp = self._nsps.get(name)
        if nsp is not None:
            nsp.add_connection(conn, auth)
        elif self._parents:
            spawn(self._connect_dynamic(conn, name, auth))
        else:
            self._refuse_unknown(conn, name)

    async def _connect_dynamic(self, conn: Connection, name: str, auth: dict[str, Any]) -> None:
        for parent in list(self._parents):
            try:
                ok = await parent.matches(name, auth)
            except Exception:
                log.exception("dynamic namespace check failed for %s", name)
                ok = False
            if not ok:
                continue
            if not conn.engine.connected:
                return
            # A static namespace (or a child created meanwhile) wins.
            nsp = self._nsps.get(name)
            if nsp is None:
                nsp = self._nsps[name] = parent.create_child(name)
                await nsp.adapter.init()
                nsp.adapter_ready = True
            nsp.add_connection(conn, auth)
            return
        self._refuse_unknown(conn, name)

    def _refuse_unknown(self, conn: Connection, name: str) -> None:
        log.info("sid=%s CONNECT to unknown namespace %s", conn.engine.id, name)
        conn.refuse(name, {"message": "Invalid namespace"})

    def child_namespace_emptied(self, nsp: Namespace) -> None:
        """The last socket of a dynamic namespace's child left (removed when
        ``cleanup_empty_child_namespaces``)."""
        if not self.cleanup_empty_child_namespaces or nsp.parent is None:
            return
        parent = nsp.parent
        if isinstance(parent, ParentNamespace):
            parent.children.discard(nsp)
        if self._nsps.get(nsp.name) is nsp:
            del self._nsps[nsp.name]
        spawn(nsp.adapter.close())

    def _on_engine_connection(self, engine: EngineSocket) -> None:
        conn = Connection(self, engine)
        conn.deadline = self._connect_timer.push(self.engine.loop, weakref.ref(conn))

    # -- main-namespace shortcuts --------------------------------------------------------

    @overload
    def on(self, event: str, handler: F) -> F: ...

    @overload
    def on(self, event: str, handler: None = None) -> Callable[[F], F]: ...

    def on(self, event: str, handler: Callable[..., Any] | None = None) -> Any:
        """``@sio.on("connection")`` or ``@sio.on("event")`` on the main namespace."""
        return self.sockets.on(event, handler)

    def once(self, event: str, handler: Callable[..., Any] | None = None) -> Any:
        """Register a one-time handler on the main namespace (also a decorator)."""
        return self.sockets.once(event, handler)

    def off(self, event: str | None = None, handler: Callable[..., Any] | None = None) -> None:
        """Remove a handler of the main namespace (every handler of ``event``, or all)."""
        self.sockets.off(event, handler)

    @overload
    def event(self, handler: F) -> F: ...

    @overload
    def event(self, handler: None = None, *, namespace: str | None = None) -> Callable[[F], F]: ...

    def event(self, handler: Handler | None = None, *, namespace: str | None = None) -> Any:
        """Register a handler for the event named as the function, as python-socketio's
        ``@sio.event`` (``@sio.event(namespace="/chat")`` for another namespace).

        The handler is called as any handler of a namespace: ``fn(socket, *args)``,
        and ``def connect(socket)`` for connections.
        """
        nsp = self.sockets if namespace is None else self.of(namespace)
        return nsp.event if handler is None else nsp.event(handler)

    def use(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """A middleware of the main namespace."""
        return self.sockets.use(fn)

    def emit(
        self,
        event: str,
        *args: Any,
        to: Target | None = None,
        room: Target | None = None,
        skip_sid: Target | None = None,
        namespace: str | None = None,
        callback: Callable[[Any, list[Any]], Any] | None = None,
    ) -> Sent:
        """Send ``event`` to every socket of the main namespace; awaiting the result
        completes at once.

        The keywords are python-socketio's, for code that comes from it: ``to``
        (or ``room``) is a room, a socket id, a ``Socket`` or a list of them;
        ``skip_sid`` leaves sockets or rooms out; ``namespace`` names another
        namespace; ``callback(err, responses)`` collects one ack per client (see
        ``BroadcastOperator.emit``). ``sio.to(room).except_(sid).emit(...)`` is
        the same in socketwire's own words.
        """
        nsp = self.sockets if namespace is None else self.of(namespace)
        if to is None and room is None and skip_sid is None:
            return nsp.emit(event, *args, callback=callback)
        op = nsp.to([]) if to is None else nsp.to(_rooms_of(to))
        if room is not None:
            op = op.to(_rooms_of(room))
        if skip_sid is not None:
            op = op.except_(_rooms_of(skip_sid))
        return op.emit(event, *args, callback=callback)

    def send(
        self,
        *args: Any,
        to: Target | None = None,
        room: Target | None = None,
        skip_sid: Target | None = None,
        namespace: str | None = None,
    ) -> Sent:
        """Emit a ``message`` event (same keywords as :meth:`emit`)."""
        return self.emit("message", *args, to=to, room=room, skip_sid=skip_sid, namespace=namespace)

    write = send

    def to(self, rooms: Rooms) -> BroadcastOperator:
        """A broadcast to the sockets in ``rooms`` (``in_`` is the same)."""
        return self.sockets.to(rooms)

    in_ = to

    def except_(self, rooms: Rooms) -> BroadcastOperator:
        """A broadcast to every socket but those in ``rooms``."""
        return self.sockets.except_(rooms)

    @property
    def volatile(self) -> BroadcastOperator:
        """A broadcast that skips the clients that cannot take it now."""
        return self.sockets.volatile

    @property
    def local(self) -> BroadcastOperator:
        """A broadcast to this server's sockets only (not the cluster)."""
        return self.sockets.local

    def timeout(self, seconds: float) -> BroadcastOperator:
        """A broadcast whose acks wait ``seconds`` at most."""
        return self.sockets.timeout(seconds)

    async def fetch_sockets(self) -> list[SocketView]:
        """Every socket of the main namespace, on every server (``SocketView``)."""
        return await self.sockets.fetch_sockets()

    def sockets_join(self, rooms: Rooms) -> None:
        """Make every socket of the main namespace join ``rooms``."""
        self.sockets.sockets_join(rooms)

    def server_side_emit(self, event: str, *args: Any) -> None:
        """Send an event to the other servers of the cluster (main namespace)."""
        self.sockets.server_side_emit(event, *args)

    async def server_side_emit_with_ack(
        self, event: str, *args: Any, timeout: float | None = None
    ) -> list[Any]:
        """Send an event to the other servers and await their answers (one each)."""
        return await self.sockets.server_side_emit_with_ack(event, *args, timeout=timeout)

    @overload
    def on_server_side_emit(self, event: str, handler: F) -> F: ...

    @overload
    def on_server_side_emit(self, event: str, handler: None = None) -> Callable[[F], F]: ...

    def on_server_side_emit(self, event: str, handler: Handler | None = None) -> Any:
        """Handle ``event`` sent by the other servers of the cluster (main
        namespace); without a handler, return a decorator."""
        return self.sockets.on_server_side_emit(event, handler)

    def sockets_leave(self, rooms: Rooms) -> None:
        """Make every socket of the main namespace leave ``rooms``."""
        self.sockets.sockets_leave(rooms)

    def disconnect_sockets(self, close: bool = False) -> None:
        """Disconnect every socket of the main namespace (``close``: their connections too)."""
        self.sockets.disconnect_sockets(close)

    def asgi_app(self, other_asgi_app: ASGIApplication | None = None) -> ASGIApp:
        """This server as an ASGI 3 application (``socketwire.asgi.ASGIApp``),
        for uvicorn, granian or any ASGI server.

        Mounted under another framework's router (Starlette's ``Mount``, FastAPI's
        ``app.mount``), the app gets no lifespan events: start the adapters from
        the host application's lifespan with :meth:`lifespan`.
        """
        # A front door above this layer: imported when asked for, never with the server.
        from socketwire.asgi import ASGIApp

        return ASGIApp(self, other_asgi_app)

    # -- HTTP front door ------------------------------------------------------------------

    def handle_request(self, req: HttpRequest) -> None:
        """Route one HTTP request: Engine.IO, the client script, or the fallback."""
        path = req.path
        if path.startswith(self._engine_prefix):
            rest = path[len(self._engine_prefix) :]
            if rest and self.serve_client and rest in CLIENT_FILES:
                self._serve_client_file(req, rest)
                return
            self.engine.handle_request(req)
            return
        if path == self.path:
            self.engine.handle_request(req)
            return
        if self.fallback is not None:
            self.fallback(req)
            return
        req.respond(404, [("Content-Type", "text/plain")], b"Not Found")

    def _serve_client_file(self, req: HttpRequest, name: str) -> None:
        if req.method not in ("GET", "HEAD"):
            req.respond(405, [("Allow", "GET, HEAD")], b"")
            return
        if not self._client_files.serve(req, name):
            self._client_missing(name, find_client_dist())
            req.respond(404, [("Content-Type", "text/plain")], _NO_CLIENT)

    def _client_missing(self, name: str, dist: Path | None) -> None:
        # Once per server and file: a page that loads the script on every visit
        # must not flood the log.
        if name in self._client_missing_logged:
            return
        self._client_missing_logged.add(name)
        where = f"not in SOCKETWIRE_CLIENT_DIST={dist}" if dist is not None else "not packaged"
        log.warning(
            "GET %s/%s: 404, %s",
            self.path,
            name,
            where,
        )

    # -- running ---------------------------------------------------------------------------

    async def listen(
        self,
        port: int = 3000,
        host: str = "0.0.0.0",
        *,
        app: Any = None,
        **kwargs: Any,
    ) -> int:
        """Start the built-in server on ``host:port`` inside a running loop.

        Returns the bound port (useful with ``port=0``; 0 on a Unix socket).
        ``app``: an ASGI 3 application served on the same port for every request
        outside this server's path (its lifespan startup runs first: a failure
        raises ``socketwire.errors.StartupFailed``; ``close`` runs its shutdown),
        mounted at ``root_path=`` when given. Other keyword arguments: the built-in
        server's time limits in seconds (``http_head_timeout=60``,
        ``http_body_timeout=300``, ``keep_alive_timeout=5``), ``uds=`` (a Unix
        socket path), ``proxy_headers=True`` with ``forwarded_allow_ips=``, then
        anything ``loop.create_server`` takes (``ssl=`` for HTTPS, ``sock=``,
        ``backlog=``...).
        """
        # The built-in server is a front door above this layer: imported when used.
        from socketwire.serve import AsgiHost, listen

        await self.init_adapters()
        root_path = str(kwargs.pop("root_path", ""))
        if app is not None:
            hosted = AsgiHost(app, sio_path=self.path, root_path=root_path)
            await hosted.startup()
            self._hosted.append(hosted)
            kwargs["asgi_host"] = hosted
        handler: Callable[[Any], None] = self.handle_request
        routing = self.session_routing
        if routing is not None:
            handler = routing.attach(self)
        try:
            server = await listen(
                handler,
                port,
                host,
                max_body_size=self.engine.max_http_buffer_size,
                write_buffer_limit=self.engine.write_buffer_limit,
                **kwargs,
            )
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise AddressInUse(host, port) from exc
        self._servers.append(server)
        name = server.sockets[0].getsockname()
        if routing is not None:
            await routing.announce(name, kwargs.get("ssl") is not None)
        if not isinstance(name, tuple):  # a Unix socket: its path
            log.info("listening on unix:%s%s/", name, self.path)
            return 0
        bound: int = name[1]
        log.info("listening on %s:%d%s/", name[0], bound, self.path)
        return bound

    @contextlib.asynccontextmanager
    async def lifespan(self, app: object = None) -> AsyncIterator[Server]:
        """Start the adapters on entry, ``close()`` on exit: for a host application
        whose lifespan a mounted socketwire app never sees.

        Starlette and FastAPI run no lifespan of mounted apps, so an adapter
        (Redis, say) would start only at the process's first Socket.IO request,
        and cluster operations before it would miss this server. Give the host
        app's lifespan to this method; ``app`` is ignored, so that it fits
        FastAPI's ``lifespan=`` as it is::

            app = FastAPI(lifespan=sio.lifespan)
            app.mount("/ws", sio.asgi_app())

        or inside a lifespan of your own: ``async with sio.lifespan(): yield``.
        """
        await self.init_adapters()
        try:
            yield self
        finally:
            await self.close()

    async def init_adapters(self) -> None:
        """Initialise the adapters of namespaces declared before the loop ran
        (``listen`` and the ASGI lifespan call this)."""
        for nsp in list(self._nsps.values()):
            if nsp.adapter_init is not None:
                task, nsp.adapter_init = nsp.adapter_init, None
                await task
            if not nsp.adapter_ready:
                await nsp.adapter.init()
                nsp.adapter_ready = True

    @property
    def port(self) -> int | None:
        """The port of the first listening socket, once ``listen`` has run."""
        if not self._servers:
            return None
        port: int = self._servers[0].sockets[0].getsockname()[1]
        return port

    def run(
        self,
        port: int = 3000,
        host: str = "0.0.0.0",
        *,
        use_uvloop: bool = True,
        timeout_graceful_shutdown: float = GRACEFUL_SHUTDOWN_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        """Serve until interrupted (Ctrl-C or SIGTERM); blocks. Uses uvloop when installed.

        Keyword arguments go to ``listen`` (``app=`` an ASGI app on the same port,
        time limits, ``ssl=``...). On SIGINT or SIGTERM the server stops
        gracefully (``shutdown``) within ``timeout_graceful_shutdown`` seconds.

        ``run`` owns the process, so it also settles the cycle collector for a
        long-running server once listening: the objects of start-up (modules,
        handlers) are collected once and frozen out of later collections, and
        young collections run less often (see ``socketwire.engine.process``).
        """

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RuntimeError(
                "Server.run() starts and owns an event loop, and one is already running "
                f"here: use `await sio.listen({port})` inside it instead"
            )
        # The front door's banner and the run's own lines: imported when used.
        from socketwire.serve.banner import announce, ensure_console_logging

        ensure_console_logging()

        async def start() -> None:
            bound = await self.listen(port, host, **kwargs)
            announce(
                host,
                bound,
                self.path + "/",
                ssl=kwargs.get("ssl") is not None,
                uds=kwargs.get("uds"),
            )

        async def stop() -> None:
            await self.shutdown(timeout_graceful_shutdown)

        try:
            run_until_signalled(
                start, stop, use_uvloop=use_uvloop, stop_timeout=timeout_graceful_shutdown
            )
        except AddressInUse as exc:
            # ``run`` owns the process: one line and exit status 1, as uvicorn does.
            raise SystemExit(f"error: {exc}") from None

    async def shutdown(self, timeout: float = GRACEFUL_SHUTDOWN_TIMEOUT) -> None:
        """Stop gracefully within ``timeout`` seconds.

        Stop accepting connections; let the event handlers in flight finish and
        send their acknowledgements, and the hosted ASGI app answer its requests
        in flight (for most of ``timeout``); then ``close``: clients are told to
        reconnect (reason ``server shutting down``) and the ASGI app's lifespan
        shutdown runs. The handlers waited for are those of every server of the
        process.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        for server in self._servers:
            server.close()
        # What is left after the drain is for close() and the lifespan shutdown.
        drain = max(0.0, timeout - min(1.0, timeout / 4))
        waits = [runner.wait_idle(drain), *(h.drain(drain) for h in self._hosted)]
        if not all(await asyncio.gather(*waits)):
            log.warning("shutting down with handlers or requests still running")
        try:
            async with asyncio.timeout_at(deadline):
                await self.close()
        except TimeoutError:
            log.warning("graceful shutdown timed out after %.1fs", timeout)

    async def close(self) -> None:
        """Disconnect every client (reason ``server shutting down``), stop listening,
        and run the lifespan shutdown of an ASGI app given to ``listen``."""
        for nsp in list(self._nsps.values()):
            for socket in list(nsp.sockets.values()):
                socket.handle_close(DisconnectReason.SERVER_SHUTTING_DOWN)
            with contextlib.suppress(Exception):
                await nsp.adapter.close()
        if self.session_routing is not None:
            with contextlib.suppress(Exception):
                await self.session_routing.close()
        self.engine.close()
        self._connect_timer.cancel()
        servers, self._servers = self._servers, []
        for server in servers:
            server.close()
        for server in servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1.0)
        hosted, self._hosted = self._hosted, []
        for app in hosted:
            await app.shutdown()


class AddressInUse(OSError):
    """``listen`` could not bind: another program listens on that port."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(
            errno.EADDRINUSE,
            f"cannot listen on {host}:{port}: the address is already in use (another "
            "server runs there; stop it or choose another port, port=0 picks a free one)",
        )
        self.host = host
        self.port = port

    def __str__(self) -> str:
        return str(self.strerror)


__all__ = [
    "GRACEFUL_SHUTDOWN_TIMEOUT",
    "SERVER_OPTIONS",
    "AddressInUse",
    "HostedApp",
    "RecoveryDict",
    "RecoveryOptions",
    "Server",
    "SessionRouting",
    "Target",
    "find_client_dist",
]
