"""A namespace: a communication channel multiplexed over each connection (layer 2).

It keeps its sockets, its adapter (rooms and broadcasts), its middlewares, and
the listeners that apply to every socket of the namespace: ``connection``,
``disconnect`` and any event, called as ``fn(socket, *args)``. It implements the
``NamespacePort`` that its adapter sees (``socketwire.adapters.ports``).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, cast, overload

from socketwire.adapters.base import Adapter, SocketView
from socketwire.adapters.ports import LocalSocket
from socketwire.core.engineio.message import OutgoingMessage
from socketwire.core.socketio.packet import RESERVED_EVENTS
from socketwire.core.socketio.parser import DEFAULT_PARSER
from socketwire.durations import check_seconds
from socketwire.emit_options import Sent
from socketwire.errors import ConnectionRefused
from socketwire.rooms import Rooms, room_names
from socketwire.server.broadcast_operator import BroadcastOperator
from socketwire.server.listeners import Emitter, F, Handler, spawn
from socketwire.server.socket import CATCH_ALL_HINT, Socket, deliver_all, without_trailing
from socketwire.signatures import check_call

if TYPE_CHECKING:
    from socketwire.server.connection import Connection
    from socketwire.server.server import Server

log = logging.getLogger("socketwire.server")

Middleware = Callable[[Socket], Any]

#: What a client is told when a middleware fails with anything but
#: ``ConnectionRefused``: the exception's text is the server's business.
MIDDLEWARE_FAILED = "Internal server error"

_CONNECT_HINT = (
    "socketwire passes the Socket alone: socket.id is its id, socket.handshake holds "
    "the headers, query and auth (python-socketio's (sid, environ, auth) does not "
    "apply); raise socketwire.ConnectionRefused(message, data) to refuse"
)
_MIDDLEWARE_HINT = (
    "a middleware gets the Socket alone, without Node's next: return (or finish the "
    "coroutine) to accept, raise socketwire.ConnectionRefused(message, data) to refuse"
)


class Namespace(Emitter):
    """The sockets connected under one name (``/``, ``/chat``...)."""

    def __init__(self, server: Server, name: str) -> None:
        super().__init__()
        self.server = server
        self.name = name
        self.sockets: dict[str, Socket] = {}
        self._middlewares: list[Middleware] = []
        self.parent: Namespace | None = None
        self.parser = server.parser
        # Acks of this namespace built as whole WebSocket frames in one step
        # (``Socket.send_ack``): the default parser's JSON text on "/".
        self.framed_acks = name == "/" and self.parser is DEFAULT_PARSER
        self._ack_ids = 0
        self._server_side: dict[str, list[Callable[..., Any]]] = {}
        # Sockets of this namespace with outgoing catch-all listeners: while 0, a
        # broadcast skips asking each recipient.
        self.outgoing_listeners = 0
        self.adapter: Adapter = server.adapter_factory(self)
        self.adapter_ready = False
        self.adapter_init: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<Namespace {self.name!r} sockets={len(self.sockets)}>"

    @property
    def has_outgoing_listeners(self) -> bool:
        """NamespacePort: whether some socket has outgoing catch-all listeners."""
        return self.outgoing_listeners > 0

    @property
    def local_sockets(self) -> Mapping[str, LocalSocket]:
        """NamespacePort: this server's sockets of the namespace, by id."""
        return cast("Mapping[str, LocalSocket]", self.sockets)

    @property
    def max_disconnection_duration(self) -> float | None:
        """NamespacePort: how long sessions are kept for recovery (None: no recovery)."""
        recovery = self.server.recovery
        return recovery.max_disconnection_duration if recovery is not None else None

    def deliver(self, targets: list[LocalSocket], message: OutgoingMessage, volatile: bool) -> None:
        """Write a broadcast's message to each of ``targets`` (the adapter's port)."""
        deliver_all(cast("list[Socket]", targets), message, volatile)

    def next_ack_id(self) -> int:
        """NamespacePort: a new ack id for an emit or a broadcast."""
        # One counter per namespace, as Node's ``nsp._ids``: socket emits and
        # broadcasts with acks never share an id on a socket.
        n = self._ack_ids
        self._ack_ids = n + 1
        return n

    # -- handlers ----------------------------------------------------------------------

    def _prepare(self, event: str, handler: Handler) -> Handler | None:
        """Check a handler against the way this namespace calls it (``Emitter``)."""
        if event == "*":
            raise ValueError(CATCH_ALL_HINT)
        where = f'"{event}" handler of namespace "{self.name}"'
        if event in ("connection", "connect"):
            check_call(handler, where, "fn(socket)", (1,), hint=_CONNECT_HINT)
            return None
        if event in ("disconnect", "disconnecting"):
            # fn(socket) is accepted: python-socketio's disconnect(sid) habit.
            taken = check_call(handler, where, "fn(socket, reason)", (2, 1))
            return without_trailing(handler, 1) if taken == 1 else None
        check_call(
            handler,
            where,
            "fn(socket, *args)",
            range(1, 256),
            ack=True,
            hint="its first argument is the Socket that sent the event",
        )
        return None

    def event(self, handler: F) -> F:
        """``@nsp.event``: register a handler for the event named as the function
        (python-socketio's decorator); ``def connect(socket)`` handles connections."""
        self.on(handler.__name__, handler)
        return handler

    # -- middlewares ---------------------------------------------------------------------

    def use(self, fn: Middleware) -> Middleware:
        """Add a middleware run at each connection to this namespace, in order.

        ``fn(socket)`` may be sync or async; raising ``ConnectionRefused(message,
        data)`` refuses the connection with a CONNECT_ERROR carrying them. Any other
        exception is a failure of the server: logged at ERROR with its traceback,
        and the client is refused with a generic message (``MIDDLEWARE_FAILED``).
        A middleware that cannot be called as ``fn(socket)`` is refused here.
        """
        check_call(
            fn, f'middleware of namespace "{self.name}"', "fn(socket)", (1,), hint=_MIDDLEWARE_HINT
        )
        self._middlewares.append(fn)
        return fn

    # -- connecting ------------------------------------------------------------------

    def add_connection(self, conn: Connection, auth: dict[str, Any]) -> None:
        """A client of ``conn`` asks to join (its CONNECT packet's ``auth``):
        recover its session or create a socket, then run the middlewares."""
        recovery = self.server.recovery
        if recovery is not None:
            pid, offset = auth.get("pid"), auth.get("offset")
            # A client that received no broadcast has no offset to send (the
            # official client then sends the pid alone): the adapter resolves it
            # from where the session started (socket.io#5538).
            if isinstance(pid, str) and (offset is None or isinstance(offset, str)):
                spawn(self._add_recovering(conn, auth, pid, offset))
                return
        pid = self.server.new_socket_id() if recovery is not None else None
        self._check(Socket(self, conn, self.server.new_socket_id(), auth, pid), None)

    async def _add_recovering(
        self, conn: Connection, auth: dict[str, Any], pid: str, offset: str | None
    ) -> None:
        """Connection state recovery: the client sent ``{pid, offset}``."""
        session = None
        try:
            session = await self.adapter.restore_session(pid, offset)
        except Exception:
            log.exception("restoring session failed on %s", self.name)
        if not conn.engine.connected:
            return
        if session is None:
            socket = Socket(
                self, conn, self.server.new_socket_id(), auth, self.server.new_socket_id()
            )
            self._check(socket, None)
            return
        socket = Socket(self, conn, session.sid, auth, session.pid)
        socket.data = session.data
        socket.recovered = True
        assert self.server.recovery is not None
        if self.server.recovery.skip_middlewares:
            self._do_connect(socket, session)
        else:
            self._check(socket, session)

    def _check(self, socket: Socket, session: Any) -> None:
        """Run the middlewares in order (synchronously until one is async), then connect."""
        for i, fn in enumerate(self._middlewares):
            try:
                result = fn(socket)
            except Exception as exc:
                self._refuse(socket, exc, fn)
                return
            if inspect.isawaitable(result):
                spawn(self._finish_middlewares(socket, session, result, i + 1))
                return
        self._do_connect(socket, session)

    async def _finish_middlewares(
        self, socket: Socket, session: Any, pending: Any, start: int
    ) -> None:
        fn: Middleware = self._middlewares[start - 1]
        try:
            await pending
            for fn in self._middlewares[start:]:
                result = fn(socket)
                if inspect.isawaitable(result):
                    await result
        except Exception as exc:
            self._refuse(socket, exc, fn)
            return
        if socket.conn.engine.connected:
            self._do_connect(socket, session)

    def _refuse(self, socket: Socket, exc: Exception, fn: Middleware) -> None:
        if isinstance(exc, ConnectionRefused):
            # The application's own refusal: its message and data are for the client.
            log.log(
                self.server.connection_log_level,
                "%s: connection refused by middleware %s: %s",
                socket,
                _name(fn),
                exc.message,
            )
            payload = exc.payload()
        else:
            # A failure, not a decision: its text may hold anything (paths, SQL,
            # secrets), so the client gets a generic message and the log the rest.
            log.error(
                "%s: middleware %s failed; connection refused with %r",
                socket,
                _name(fn),
                MIDDLEWARE_FAILED,
                exc_info=exc,
            )
            payload = {"message": MIDDLEWARE_FAILED}
        socket.conn.refuse(self.name, payload)

    def _do_connect(self, socket: Socket, session: Any = None) -> None:
        if not socket.conn.engine.connected:
            # The connection closed while the CONNECT was being answered (an
            # awaited adapter or middleware): joining now would leave a socket
            # that nothing ever closes.
            return
        ready = self.adapter.connecting(socket.id)
        if ready is not None:
            spawn(self._connect_when_ready(socket, session, ready))
            return
        self._join(socket, session)

    async def _connect_when_ready(self, socket: Socket, session: Any, ready: Any) -> None:
        """The adapter prepares for the socket first (``Adapter.connecting``)."""
        try:
            await ready
        except Exception:
            log.exception("%s: the adapter failed to prepare the connection", socket)
        if not socket.conn.engine.connected:
            self.adapter.delete_all(socket.id)
            return
        self._join(socket, session)

    def _join(self, socket: Socket, session: Any) -> None:
        sid = socket.id
        self.sockets[sid] = socket
        socket.connected = True
        if session is not None:
            self.adapter.add_all(sid, [sid, *session.rooms])
        else:
            self.adapter.add_all(sid, (sid,))
        payload = {"sid": sid}
        if socket.pid is not None:
            payload["pid"] = socket.pid
            # Before the missed broadcasts go out: an adapter may complete them here.
            self.adapter.start_session(sid, session)
        socket.conn.accept(socket, payload)
        if session is not None:
            # Socket.IO 4.6 connection state recovery: the broadcasts it missed,
            # in order, each once (their offset is still their last argument).
            for data in session.missed:
                socket.send_data(data)
        level = self.server.connection_log_level
        if log.isEnabledFor(level):
            log.log(
                level,
                "%s: connected (%s from %s%s)",
                socket,
                socket.transport,
                socket.conn.engine.request.address,
                ", recovered" if socket.recovered else "",
            )
        listeners = self._listeners
        if "connection" in listeners:
            self._emit_local("connection", socket, where=socket)
        if "connect" in listeners:
            self._emit_local("connect", socket, where=socket)

    def remove_socket(self, socket: Socket) -> None:
        """``socket`` left the namespace."""
        self.sockets.pop(socket.id, None)
        if not self.sockets and self.parent is not None:
            self.server.child_namespace_emptied(self)

    def dispatch_socket_event(self, event: str, socket: Socket, *args: Any) -> None:
        """Call the namespace's listeners of a socket's ``disconnecting`` or
        ``disconnect`` as ``fn(socket, *args)``."""
        if event in self._listeners:
            self._emit_local(event, socket, *args, where=socket)

    # -- broadcasting -------------------------------------------------------------------

    def _operator(self) -> BroadcastOperator:
        return BroadcastOperator(self)

    def emit(
        self, event: str, *args: Any, callback: Callable[[Any, list[Any]], Any] | None = None
    ) -> Sent:
        """Send ``event`` to every socket of the namespace (see ``BroadcastOperator.emit``)."""
        return self._operator().emit(event, *args, callback=callback)

    def send(self, *args: Any) -> Sent:
        """Send a ``message`` event to the namespace (``write`` is the same)."""
        return self._operator().emit("message", *args)

    write = send

    def to(self, rooms: Rooms) -> BroadcastOperator:
        """A broadcast to the sockets in ``rooms`` (``in_`` is the same)."""
        return BroadcastOperator(self, rooms=room_names(rooms))

    in_ = to

    def except_(self, rooms: Rooms) -> BroadcastOperator:
        """A broadcast to every socket but those in ``rooms``."""
        return self._operator().except_(rooms)

    @property
    def volatile(self) -> BroadcastOperator:
        """A broadcast that skips the clients that cannot take it now."""
        return self._operator().volatile

    @property
    def local(self) -> BroadcastOperator:
        """A broadcast to this server's sockets only (not the cluster)."""
        return self._operator().local

    def timeout(self, seconds: float) -> BroadcastOperator:
        """A broadcast whose acks wait ``seconds`` at most."""
        return self._operator().timeout(seconds)

    async def fetch_sockets(self) -> list[SocketView]:
        """Every socket of the namespace, on every server (``SocketView``)."""
        return await self._operator().fetch_sockets()

    # -- server-side emit (between the servers of a cluster) ---------------------------

    @overload
    def on_server_side_emit(self, event: str, handler: F) -> F: ...

    @overload
    def on_server_side_emit(self, event: str, handler: None = None) -> Callable[[F], F]: ...

    def on_server_side_emit(self, event: str, handler: Handler | None = None) -> Any:
        """Handle events that other servers send with ``server_side_emit``;
        without a handler, return a decorator (``@nsp.on_server_side_emit("ev")``).

        ``handler(*args)``; with an ack requested, its return value is the answer.
        """
        if handler is None:

            def decorator(fn: F) -> F:
                self.on_server_side_emit(event, fn)
                return fn

            return decorator
        self._server_side.setdefault(event, []).append(handler)
        return handler

    def server_side_emit(self, event: str, *args: Any) -> None:
        """Send an event to the other servers of the cluster (not to this one)."""
        if event in RESERVED_EVENTS:
            raise ValueError(f'"{event}" is a reserved event name')
        spawn(self.adapter.server_side_emit([event, *args]))

    async def server_side_emit_with_ack(
        self, event: str, *args: Any, timeout: float | None = None
    ) -> list[Any]:
        """Send an event to the other servers and await one answer from each.

        With a single server there is nobody to answer: the result is ``[]``.
        """
        if event in RESERVED_EVENTS:
            raise ValueError(f'"{event}" is a reserved event name')
        check_seconds(timeout, "server_side_emit_with_ack(..., timeout={})")
        result: list[Any] = await self.adapter.server_side_emit_with_ack([event, *args], timeout)
        return result

    def dispatch_server_side_emit(self, data: list[Any]) -> Any:
        """NamespacePort: an event from another server (``[event, *args]``): call
        its handlers; the first one's result is the answer."""
        answer = None
        for i, fn in enumerate(list(self._server_side.get(data[0], ()))):
            try:
                result = fn(*data[1:])
            except Exception:
                log.exception("server-side event handler for %r failed", data[0])
                continue
            if i == 0:
                answer = result
        return answer

    def sockets_join(self, rooms: Rooms) -> None:
        """Make every socket of the namespace join ``rooms``."""
        self._operator().sockets_join(rooms)

    def sockets_leave(self, rooms: Rooms) -> None:
        """Make every socket of the namespace leave ``rooms``."""
        self._operator().sockets_leave(rooms)

    def disconnect_sockets(self, close: bool = False) -> None:
        """Disconnect every socket of the namespace (``close``: their connections too)."""
        self._operator().disconnect_sockets(close)


def _name(fn: Any) -> str:
    return str(getattr(fn, "__qualname__", fn))


__all__ = [
    "MIDDLEWARE_FAILED",
    "Middleware",
    "Namespace",
]
