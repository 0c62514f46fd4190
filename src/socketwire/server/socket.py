"""A client's connection to one namespace (layer 2).

``Socket`` is what connection handlers receive: it emits and receives events,
carries acks both ways, joins rooms, stores ``data`` and knows its ``handshake``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from socketwire.adapters.session_aware import RECOVERABLE_REASONS
from socketwire.core.engineio.message import OutgoingMessage
from socketwire.core.socketio.packet import (
    RESERVED_EVENTS,
    Packet,
    PacketType,
)
from socketwire.errors import Disconnected, LocalProtocolError
from socketwire.server.acks import CallbackAck, FutureAck, PendingAck, TimedCallbackAck
from socketwire.server.listeners import (
    Emitter,
    ack_args,
    ack_reply,
    call,
    call_awaitable,
    spawn,
)

if TYPE_CHECKING:
    from socketwire.server.broadcast_operator import BroadcastOperator
    from socketwire.server.connection import Connection
    from socketwire.server.namespace import Namespace

log = logging.getLogger("socketwire.server")

_EVENT = PacketType.EVENT
_BINARY_EVENT = PacketType.BINARY_EVENT
_ACK = PacketType.ACK
_BINARY_ACK = PacketType.BINARY_ACK
_DISCONNECT = PacketType.DISCONNECT
_NSP_EVENTS = frozenset({"connection", "connect", "disconnect", "disconnecting"})


@dataclass(slots=True)
class Handshake:
    """What the client sent when it connected (Node's ``socket.handshake``)."""

    headers: dict[str, str]
    query: dict[str, str]
    auth: dict[str, Any]
    address: str
    secure: bool
    url: str
    issued: int  # milliseconds since the epoch
    time: str = ""
    xdomain: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "headers": dict(self.headers),
            "time": self.time,
            "address": self.address,
            "xdomain": self.xdomain,
            "secure": self.secure,
            "issued": self.issued,
            "url": self.url,
            "query": dict(self.query),
            "auth": self.auth,
        }


# Return values of handlers that are certainly not awaitable (see _dispatch_event).
_PLAIN_ANSWERS = frozenset({str, int, float, bool, dict, list, bytes})


class Socket(Emitter):
    """One client connected to one namespace.

    Per-connection state lives in slots; keep your own per-client values in
    ``socket.data``.
    """

    __slots__ = (
        "_acks",
        "_any",
        "_any_out",
        "_auth",
        "_bucket",
        "_handshake",
        "_middlewares",
        "conn",
        "connected",
        "data",
        "id",
        "nsp",
        "pid",
        "recovered",
        "server",
    )

    def __init__(
        self,
        nsp: Namespace,
        conn: Connection,
        sid: str,
        auth: dict[str, Any],
        pid: str | None = None,
    ) -> None:
        super().__init__()
        self.nsp = nsp
        self.server = nsp.server
        self.conn = conn
        self.id = sid
        self._auth = auth
        self._handshake: Handshake | None = None
        limit = nsp.server.event_rate_limit
        self._bucket = RateLimiter(self, *limit) if limit is not None else None
        self.data: Any = {}
        self.connected = False
        self.recovered = False
        self.pid = pid  # private session id (connection state recovery)
        self._acks: dict[int, PendingAck] = {}
        self._any: list[Callable[..., Any]] | None = None
        self._any_out: list[Callable[..., Any]] | None = None
        self._middlewares: list[Callable[..., Any]] | None = None

    def __repr__(self) -> str:
        return f"<Socket id={self.id!r} nsp={self.nsp.name!r} connected={self.connected}>"

    # -- properties -------------------------------------------------------------------

    @property
    def rooms(self) -> set[str]:
        """The rooms this socket is in, including its own id."""
        return set(self.nsp.adapter.socket_rooms(self.id) or ())

    @property
    def handshake(self) -> Handshake:
        """What the client sent when it connected (built on first use)."""
        hs = self._handshake
        if hs is None:
            req = self.conn.engine.request
            issued = req.time
            hs = self._handshake = Handshake(
                headers=req.headers,  # type: ignore[arg-type]
                query=req.query,  # type: ignore[arg-type]
                auth=self._auth,
                address=req.address,
                secure=req.secure,
                url=req.url,
                issued=int(issued * 1000),
                time=time.strftime("%a %b %d %Y %H:%M:%S GMT", time.gmtime(issued)),
                xdomain="origin" in req.headers,
            )
        return hs

    @property
    def disconnected(self) -> bool:
        return not self.connected

    @property
    def writable(self) -> bool:
        """Whether a packet sent now goes out at once (no backpressure)."""
        return self.conn.engine.writable

    async def drain(self) -> None:
        """Wait until this client's outgoing buffer has room again.

        A producer that sends a lot to one client awaits this between sends; a
        client that stops reading for good is closed as a slow consumer once its
        buffer passes ``write_buffer_limit``, which also ends the wait.
        """
        await self.conn.engine.drain()

    @property
    def transport(self) -> str:
        """The Engine.IO transport in use (``polling`` or ``websocket``)."""
        return self.conn.engine.transport

    # -- LocalSocket port (used by the adapter) -------------------------------------

    def deliver(self, message: OutgoingMessage, volatile: bool) -> None:
        engine = self.conn.engine
        if volatile and not engine.writable:
            return
        engine.write_message(message)

    def expect_ack(self, ack_id: int, entry: PendingAck) -> None:
        """Register the ack of a broadcast that reaches this socket."""
        self._acks[ack_id] = entry

    def handshake_dict(self) -> dict[str, Any]:
        return self.handshake.as_dict()

    # -- emitting ----------------------------------------------------------------------

    def emit(self, event: str, *args: Any, callback: Callable[..., Any] | None = None) -> None:
        """Send ``event`` with ``args`` to this client. Needs no ``await``.

        ``callback`` is called with the client's ack arguments.
        """
        self._emit(event, args, callback, False, None)

    def send(self, *args: Any, callback: Callable[..., Any] | None = None) -> None:
        """Emit a ``message`` event (WebSocket-like ``send``)."""
        self._emit("message", args, callback, False, None)

    write = send

    async def emit_with_ack(self, event: str, *args: Any, timeout: float | None = None) -> Any:
        """Emit and wait for the client's ack.

        Returns the single ack argument, a tuple when there are several, or None
        when there are none. Raises ``AckTimeout`` after ``timeout`` seconds and
        ``Disconnected`` if the socket goes away first.
        """
        return await self._emit_with_ack(event, args, False, timeout)

    def _emit_with_ack(
        self, event: str, args: tuple[Any, ...], volatile: bool, timeout: float | None
    ) -> asyncio.Future[Any]:
        if event in RESERVED_EVENTS:
            raise ValueError(f'"{event}" is a reserved event name')
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if not self.connected:
            fut.set_exception(Disconnected("socket is not connected"))
            return fut
        ack_id = self.nsp.next_ack_id()
        self._acks[ack_id] = FutureAck(self._acks, ack_id, fut, timeout, event)
        self._send_event(event, args, ack_id, volatile)
        return fut

    @property
    def volatile(self) -> SocketEmitter:
        """Emit without buffering: dropped if the transport cannot take it now."""
        return SocketEmitter(self, volatile=True)

    def timeout(self, seconds: float) -> SocketEmitter:
        """Emit with an ack deadline: the callback gets ``(err, *args)``."""
        return SocketEmitter(self, timeout=seconds)

    def _emit(
        self,
        event: str,
        args: tuple[Any, ...],
        callback: Callable[..., Any] | None,
        volatile: bool,
        timeout: float | None,
    ) -> None:
        if event in RESERVED_EVENTS:
            raise ValueError(f'"{event}" is a reserved event name')
        if not self.connected:
            return
        ack_id: int | None = None
        if callback is not None:
            ack_id = self.nsp.next_ack_id()
            self._acks[ack_id] = (
                CallbackAck(callback)
                if timeout is None
                else TimedCallbackAck(self._acks, ack_id, callback, timeout)
            )
        self._send_event(event, args, ack_id, volatile)

    def _send_event(
        self, event: str, args: tuple[Any, ...], ack_id: int | None, volatile: bool
    ) -> None:
        nsp = self.nsp
        data = [event, *args]
        text, attachments = nsp.parser.encode_event(nsp.name, data, ack_id)
        if self._any_out is not None:
            self._notify_outgoing(data)
        engine = self.conn.engine
        if volatile and not engine.writable:
            return
        if attachments:
            engine.write_message(OutgoingMessage(text, attachments))
        else:
            engine.send_text(text)

    def send_data(self, data: list[Any]) -> None:
        """Send an EVENT whose data is already assembled (recovered broadcasts)."""
        nsp = self.nsp
        text, attachments = nsp.parser.encode_event(nsp.name, data)
        self.conn.engine.write_message(OutgoingMessage(text, attachments))

    def _send_ack(self, ack_id: int, args: list[Any]) -> None:
        if not self.connected:
            return
        nsp = self.nsp
        try:
            text, attachments = nsp.parser.encode_ack(nsp.name, args, ack_id)
        except LocalProtocolError as exc:
            # A handler's return value that cannot travel: the peer gets no ack.
            log.error("sid=%s ack %d not sent: %s", self.id, ack_id, exc)
            return
        if attachments:
            self.conn.engine.write_message(OutgoingMessage(text, attachments))
        else:
            self.conn.engine.send_text(text)

    def _make_ack(self, ack_id: int) -> Callable[..., None]:
        sent = False

        def ack(*args: Any) -> None:
            nonlocal sent
            if sent:
                return
            sent = True
            self._send_ack(ack_id, list(args))

        return ack

    # -- broadcasting from this socket -------------------------------------------------

    def _operator(self) -> BroadcastOperator:
        from socketwire.server.broadcast_operator import BroadcastOperator

        return BroadcastOperator(self.nsp, except_rooms=frozenset((self.id,)))

    @property
    def broadcast(self) -> BroadcastOperator:
        """Every socket of the namespace but this one."""
        return self._operator()

    def to(self, rooms: str | Iterable[str]) -> BroadcastOperator:
        """The sockets of ``rooms``, this one excepted."""
        return self._operator().to(rooms)

    in_ = to

    def except_(self, rooms: str | Iterable[str]) -> BroadcastOperator:
        return self._operator().except_(rooms)

    # -- rooms ----------------------------------------------------------------------------

    def join(self, rooms: str | Iterable[str]) -> None:
        """Join one room or several."""
        self.nsp.adapter.add_all(self.id, (rooms,) if isinstance(rooms, str) else rooms)

    def leave(self, room: str) -> None:
        self.nsp.adapter.delete(self.id, room)

    # -- receiving ------------------------------------------------------------------------

    def handle_packet(self, packet: Packet) -> None:
        ptype = packet.type
        if ptype == _EVENT or ptype == _BINARY_EVENT:
            if self._bucket is not None and not self._bucket.take(packet.data[0]):
                return
            # (``_on_event`` inlined: this is once per incoming event.)
            if self._middlewares is not None:
                self._run_middlewares(packet.data, packet.id)
            else:
                self._dispatch_event(packet.data, packet.id)
        elif ptype == _ACK or ptype == _BINARY_ACK:
            entry = self._acks.pop(packet.id, None)  # type: ignore[arg-type]
            if entry is None:
                log.info("sid=%s ack %s matches no pending emit: ignored", self.id, packet.id)
                return
            entry.resolve(packet.data)
        elif ptype == _DISCONNECT:
            self.handle_close("client namespace disconnect")
        else:
            log.info("sid=%s unexpected packet type %s: closing", self.id, ptype)
            self.conn.close_on_error("parse error")

    def _dispatch_event(self, data: list[Any], ack_id: int | None) -> None:
        event = data[0]
        nsp = self.nsp
        if self._any is not None:
            self._run_any(event, tuple(data[1:]))
        shared = nsp._listeners.get(event)
        if shared is not None and event in _NSP_EVENTS:
            # Namespace-level "connection"/"connect" handlers are the server's
            # own: a client event of that name never reaches them.
            shared = None
        if not self._listeners and shared is not None and len(shared) == 1 and shared[0].plain:
            # The common case, kept short: one sync namespace-level handler whose
            # return value is the ack.
            try:
                result = shared[0].fn(self, *data[1:])
            except Exception:
                log.exception("handler for %r failed (sid=%s nsp=%s)", event, self.id, nsp.name)
                return
            if ack_id is not None:
                # The usual answers first: a failing ``hasattr`` (the awaitable
                # check) costs more than the rest of this branch.
                t = type(result)
                if t is tuple:
                    self._send_ack(ack_id, list(result))
                elif result is None:
                    self._send_ack(ack_id, [])
                elif t in _PLAIN_ANSWERS or not hasattr(t, "__await__"):
                    self._send_ack(ack_id, [result])
                else:
                    call_awaitable(result, ack_reply(self._make_ack(ack_id)), (event, self))
            return
        own = self._take(event) if self._listeners else None
        if own is None and shared is None:
            return
        # The ack callable exists only for handlers that ask for it; a handler's
        # return value acks directly. The first handler answers; an ack is sent once.
        ack: Callable[..., None] | None = None
        pending = ack_id is not None
        for listeners, args in ((own, tuple(data[1:])), (shared, (self, *data[1:]))):
            if listeners is None:
                continue
            for listener in listeners if len(listeners) == 1 else list(listeners):
                if listener.is_async or listener.wants_ack:
                    if ack is None and pending:
                        ack = self._make_ack(ack_id)  # type: ignore[arg-type]
                    reply = ack_reply(ack) if pending and not listener.wants_ack else None
                    call(listener, args, ack if pending else None, reply, (event, self))
                    pending = False
                    continue
                try:
                    result = listener.fn(*args)
                except Exception:
                    log.exception("handler for %r failed (sid=%s nsp=%s)", event, self.id, nsp.name)
                    pending = False
                    continue
                if pending:
                    pending = False
                    if inspect.isawaitable(result):
                        call_awaitable(result, ack_reply(self._make_ack(ack_id)), (event, self))  # type: ignore[arg-type]
                    else:
                        self._send_ack(ack_id, ack_args(result))  # type: ignore[arg-type]

    # -- catch-all listeners ------------------------------------------------------------

    def on_any(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        """Call ``handler(event, *args)`` for every incoming event."""
        if self._any is None:
            self._any = []
        self._any.append(handler)
        return handler

    def prepend_any(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        if self._any is None:
            self._any = []
        self._any.insert(0, handler)
        return handler

    def off_any(self, handler: Callable[..., Any] | None = None) -> None:
        if handler is None or self._any is None:
            self._any = None
            return
        self._any = [h for h in self._any if h is not handler] or None

    def on_any_outgoing(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        """Call ``handler(event, *args)`` for every event sent to this client
        (its own emits and the broadcasts that reach it)."""
        if self._any_out is None:
            self._any_out = []
            self.nsp.outgoing_listeners += 1
        self._any_out.append(handler)
        return handler

    def prepend_any_outgoing(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        self.on_any_outgoing(handler)
        assert self._any_out is not None
        self._any_out.insert(0, self._any_out.pop())
        return handler

    def off_any_outgoing(self, handler: Callable[..., Any] | None = None) -> None:
        if self._any_out is None:
            return
        if handler is not None:
            self._any_out = [h for h in self._any_out if h is not handler]
        if handler is None or not self._any_out:
            self._any_out = None
            self.nsp.outgoing_listeners -= 1

    def notify_outgoing_broadcast(self, data: list[Any]) -> None:
        if self._any_out is not None:
            self._notify_outgoing(data)

    def _notify_outgoing(self, data: list[Any]) -> None:
        for fn in list(self._any_out or ()):
            try:
                fn(*data)
            except Exception:
                log.exception("outgoing catch-all listener failed (sid=%s)", self.id)

    # -- per-packet middlewares ----------------------------------------------------------

    def use(self, fn: Callable[[list[Any]], Any]) -> Callable[[list[Any]], Any]:
        """Add a middleware run on every incoming event before its handlers.

        ``fn([event, *args])`` may be sync or async and may change the list in
        place; raising stops the packet and the exception goes to the socket's
        ``error`` handlers.
        """
        if self._middlewares is None:
            self._middlewares = []
        self._middlewares.append(fn)
        return fn

    def _run_middlewares(self, data: list[Any], ack_id: int | None) -> None:
        mws = self._middlewares or []
        for i, fn in enumerate(mws):
            try:
                result = fn(data)
            except Exception as exc:
                self._on_error(exc)
                return
            if inspect.isawaitable(result):
                spawn(self._finish_middlewares(result, mws[i + 1 :], data, ack_id))
                return
        if self.connected:
            self._dispatch_event(data, ack_id)

    async def _finish_middlewares(
        self, first: Any, rest: list[Callable[..., Any]], data: list[Any], ack_id: int | None
    ) -> None:
        try:
            await first
            for fn in rest:
                result = fn(data)
                if inspect.isawaitable(result):
                    await result
        except Exception as exc:
            self._on_error(exc)
            return
        if self.connected:
            self._dispatch_event(data, ack_id)

    def _on_error(self, exc: BaseException) -> None:
        if self._listeners.get("error"):
            self._emit_local("error", exc, where=f"error sid={self.id}")
        else:
            log.info("sid=%s middleware refused a packet: %r", self.id, exc)

    def _run_any(self, event: Any, args: tuple[Any, ...]) -> None:
        for fn in list(self._any or ()):
            try:
                fn(event, *args)
            except Exception:
                log.exception("catch-all listener failed (sid=%s)", self.id)

    # -- disconnecting -------------------------------------------------------------------

    def disconnect(self, close: bool = False) -> Socket:
        """Disconnect from this namespace; with ``close=True`` close the whole
        connection (every namespace of this client)."""
        if not self.connected:
            return self
        if close:
            self.conn.disconnect_all()
        else:
            self._send_packet(Packet(_DISCONNECT, self.nsp.name))
            self.handle_close("server namespace disconnect")
        return self

    def _send_packet(self, packet: Packet) -> None:
        text, attachments = self.nsp.parser.encode(packet)
        self.conn.engine.write_message(OutgoingMessage(text, attachments))

    def handle_close(self, reason: str) -> None:
        if not self.connected:
            return
        if "disconnecting" in self._listeners:
            self._emit_local("disconnecting", reason, where=f"disconnecting sid={self.id}")
        self.nsp.dispatch_socket_event("disconnecting", self, reason)
        nsp = self.nsp
        if self.pid is not None and reason in RECOVERABLE_REASONS:
            rooms = list(nsp.adapter.socket_rooms(self.id) or ())
            nsp.adapter.persist_session(self.id, self.pid, rooms, self.data)
        nsp.adapter.delete_all(self.id)
        nsp.remove_socket(self)
        self.conn.remove_socket(self)
        self.connected = False
        if self._any_out is not None:
            self.off_any_outgoing()
        acks, self._acks = self._acks, {}
        for entry in acks.values():
            entry.drop(reason)
        if "disconnect" in self._listeners:
            self._emit_local("disconnect", reason, where=f"disconnect sid={self.id}")
        self.nsp.dispatch_socket_event("disconnect", self, reason)


class RateLimiter:
    """A token bucket on a socket's incoming events (``event_rate_limit``).

    ``events`` per ``interval`` seconds, with bursts up to ``events``. Over the
    limit, the server's ``on_rate_limit(socket, event)`` decides: return
    ``"drop"`` (the default), ``"disconnect"``, or ``"allow"``; it may also emit
    a warning to the client itself.
    """

    __slots__ = ("_last", "_rate", "_socket", "_tokens", "capacity")

    def __init__(self, socket: Socket, events: int, interval: float) -> None:
        self._socket = socket
        self.capacity = float(events)
        self._rate = events / interval
        self._tokens = float(events)
        self._last = time.monotonic()

    def take(self, event: Any) -> bool:
        now = time.monotonic()
        tokens = min(self.capacity, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            return True
        self._tokens = tokens
        socket = self._socket
        decide = socket.server.on_rate_limit
        action: Any = "drop"
        if decide is not None:
            try:
                action = decide(socket, event) or "drop"
            except Exception:
                log.exception("on_rate_limit failed (sid=%s)", socket.id)
        if action == "allow":
            return True
        if action == "disconnect":
            log.info("sid=%s over the event rate limit: disconnecting", socket.id)
            socket.disconnect()
        else:
            log.info("sid=%s over the event rate limit: %r dropped", socket.id, event)
        return False


class SocketEmitter:
    """``socket.volatile`` / ``socket.timeout(s)``: one emit with flags."""

    __slots__ = ("_socket", "_timeout", "_volatile")

    def __init__(
        self, socket: Socket, volatile: bool = False, timeout: float | None = None
    ) -> None:
        self._socket = socket
        self._volatile = volatile
        self._timeout = timeout

    @property
    def volatile(self) -> SocketEmitter:
        return SocketEmitter(self._socket, True, self._timeout)

    def timeout(self, seconds: float) -> SocketEmitter:
        return SocketEmitter(self._socket, self._volatile, seconds)

    def emit(self, event: str, *args: Any, callback: Callable[..., Any] | None = None) -> None:
        """Emit with these flags; with a timeout, ``callback(err, *args)``."""
        self._socket._emit(event, args, callback, self._volatile, self._timeout)

    def send(self, *args: Any, callback: Callable[..., Any] | None = None) -> None:
        self.emit("message", *args, callback=callback)

    async def emit_with_ack(self, event: str, *args: Any) -> Any:
        """Emit and await the ack (``AckTimeout`` after the timeout, if one is set)."""
        return await self._socket._emit_with_ack(event, args, self._volatile, self._timeout)
