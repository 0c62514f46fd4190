"""A client's connection to one namespace (layer 2).

``Socket`` is what connection handlers receive: it emits and receives events,
carries acks both ways, joins rooms, stores ``data`` and knows its ``handshake``.
The listener registry, the catch-all listeners, the emit API and the way
handlers are called and answer acks are shared with the client
(:mod:`socketwire.listeners`, :mod:`socketwire.emit_options`,
:mod:`socketwire.handlers`, :mod:`socketwire.acks`); this module adds what only
a server socket does.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import attrgetter
from typing import TYPE_CHECKING, Any, ClassVar

import orjson

from socketwire.acks import CallbackAck, ErrorFirstAck, FutureAck, PendingAck
from socketwire.adapters.session_aware import RECOVERABLE_REASONS
from socketwire.core.engineio.message import OutgoingMessage
from socketwire.core.reasons import DisconnectReason
from socketwire.core.socketio.packet import (
    RESERVED_EVENTS,
    Packet,
    PacketType,
)
from socketwire.core.wire import ack_frame
from socketwire.emit_options import EmitMethods
from socketwire.engine.fanout import send_all
from socketwire.errors import Disconnected, LocalProtocolError
from socketwire.handlers import Handler, Runner
from socketwire.listeners import SocketListeners
from socketwire.rooms import Room, Rooms, room_name, room_names
from socketwire.server.listeners import runner, spawn
from socketwire.server.rate_limit import EventRateLimit
from socketwire.signatures import check_call

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
_call = runner.call
_dumps = orjson.dumps
# What socket.data holds until it is first read or assigned (None is a value).
_NO_DATA: Any = object()
_NSP_EVENTS = frozenset({"connection", "connect", "disconnect", "disconnecting"})

#: Why ``on("*")`` is refused: a catch-all that is never called would fail silently.
CATCH_ALL_HINT = (
    '"*" is an ordinary event name in socketwire, not a catch-all: use '
    "socket.on_any(fn) in a connection handler, fn(event, *args) then sees every "
    "event of that socket"
)

_PACKET_MIDDLEWARE_HINT = (
    "a packet middleware gets the packet alone, without Node's next: return to let it "
    'through, raise to stop it (the exception goes to the socket\'s "error" handlers)'
)


def without_trailing(handler: Handler, keep: int) -> Handler:
    """``handler`` called with its first ``keep`` positional arguments only, for a
    handler that leaves out an argument the event carries (the disconnect reason)."""

    def call(*args: Any, **kwargs: Any) -> Any:
        return handler(*args[:keep], **kwargs)

    return call


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
        """The handshake as Node's ``socket.handshake`` object (a dict)."""
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


class Socket(SocketListeners, EmitMethods):
    """One client connected to one namespace.

    Per-connection state lives in slots; keep your own per-client values in
    ``socket.data``.
    """

    __slots__ = (
        "_acks",
        "_auth",
        "_bucket",
        "_data",
        "_engine",
        "_handshake",
        "_middlewares",
        "conn",
        "connected",
        "id",
        "nsp",
        "pid",
        "recovered",
        "server",
    )

    runner: ClassVar[Runner] = runner

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
        # The connection's engine, for life: a broadcast reads each recipient's
        # writer through it, one object less to visit per recipient than
        # through ``conn`` (sockets of one room lie far apart in memory).
        self._engine = conn.engine
        self.id = sid
        # Most clients send no auth: keep nothing for them (the handshake makes
        # its own empty dict when asked).
        self._auth = auth or None
        self._handshake: Handshake | None = None
        limit = nsp.server.event_rate_limit
        self._bucket = EventRateLimit(*limit, nsp.server) if limit is not None else None
        # socket.data and the pending acks are made on first use: most sockets
        # never use one or both, and an empty dict costs 64 bytes for as long
        # as the socket lives.
        self._data: Any = _NO_DATA
        self.connected = False
        self.recovered = False
        self.pid = pid  # private session id (connection state recovery)
        self._acks: dict[int, PendingAck] | None = None
        self._middlewares: list[Callable[..., Any]] | None = None

    def __repr__(self) -> str:
        return f"<Socket id={self.id!r} nsp={self.nsp.name!r} connected={self.connected}>"

    def __str__(self) -> str:
        # The prefix of every log line about this socket.
        return f"sid={self.id} nsp={self.nsp.name}"

    def _prepare(self, event: str, handler: Handler) -> Handler | None:
        """Check a handler of this socket against the way it is called (``Emitter``)."""
        if event == "*":
            raise ValueError(CATCH_ALL_HINT)
        if event in ("disconnect", "disconnecting"):
            where = f'"{event}" handler of a socket'
            taken = check_call(handler, where, "fn(reason)", (1, 0))
            return without_trailing(handler, 0) if taken == 0 else None
        if event == "error":
            check_call(handler, '"error" handler of a socket', "fn(exception)", (1,))
        # Other events carry what the client sends: any count may be right.
        return None

    # -- properties -------------------------------------------------------------------

    @property
    def rooms(self) -> set[str]:
        """The rooms this socket is in, including its own id."""
        return set(self.nsp.adapter.socket_rooms(self.id) or ())

    @property
    def pending_acks(self) -> int:
        """How many emits of this socket still wait for the client's ack."""
        acks = self._acks
        return 0 if acks is None else len(acks)

    @property
    def data(self) -> Any:
        """Your own values for this client (Node's ``socket.data``): an empty
        dict until you store something in it or assign it another value."""
        data = self._data
        if data is _NO_DATA:
            data = self._data = {}
        return data

    @data.setter
    def data(self, value: Any) -> None:
        self._data = value

    @property
    def handshake(self) -> Handshake:
        """What the client sent when it connected (built on first use)."""
        hs = self._handshake
        if hs is None:
            req = self._engine.request
            issued = req.time
            hs = self._handshake = Handshake(
                headers=req.headers,  # type: ignore[arg-type]
                # The session's query is shared and read-only (``shared_query``):
                # the handshake gets its own dict, as in Node.
                query=dict(req.query),
                auth={} if self._auth is None else self._auth,
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
        """Whether this socket is no longer connected."""
        return not self.connected

    @property
    def writable(self) -> bool:
        """Whether a packet sent now goes out at once (no backpressure)."""
        return self._engine.writable

    async def drain(self) -> None:
        """Wait until this client's outgoing buffer has room again.

        A producer that sends a lot to one client awaits this between sends; a
        client that stops reading for good is closed as a slow consumer once its
        buffer passes ``write_buffer_limit``, which also ends the wait.
        """
        await self._engine.drain()

    @property
    def transport(self) -> str:
        """The Engine.IO transport in use (``polling`` or ``websocket``)."""
        return self._engine.transport

    # -- LocalSocket port (used by the adapter) -------------------------------------

    def deliver(self, message: OutgoingMessage, volatile: bool) -> None:
        """Write an encoded message to the connection (volatile: only if writable)."""
        engine = self._engine
        if volatile and not engine.writable:
            return
        engine.write_message(message)

    def expect_ack(self, ack_id: int, entry: PendingAck) -> None:
        """Register the ack of a broadcast that reaches this socket."""
        self._ack_table()[ack_id] = entry

    def _ack_table(self) -> dict[int, PendingAck]:
        acks = self._acks
        if acks is None:
            acks = self._acks = {}
        return acks

    def handshake_dict(self) -> dict[str, Any]:
        """The handshake as a dict (``Handshake.as_dict``)."""
        return self.handshake.as_dict()

    # -- emitting ----------------------------------------------------------------------

    # (``emit``, ``send``, ``emit_with_ack``, ``volatile``, ``timeout``: EmitMethods,
    # over the two methods below.)

    def emit_flagged_with_ack(
        self, event: str, args: tuple[Any, ...], volatile: bool, timeout: float | None
    ) -> asyncio.Future[Any]:
        """``emit_with_ack`` with its flags spelled out (the ``EmitPort`` of
        ``socketwire.emit_options``)."""
        if event in RESERVED_EVENTS:
            raise ValueError(f'"{event}" is a reserved event name')
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if not self.connected:
            fut.set_exception(Disconnected("socket is not connected"))
            return fut
        ack_id = self.nsp.next_ack_id()
        acks = self._ack_table()
        acks[ack_id] = FutureAck(acks, ack_id, fut, timeout, event)
        self._send_event(event, args, ack_id, volatile)
        return fut

    def emit_flagged(
        self,
        event: str,
        args: tuple[Any, ...],
        callback: Callable[..., Any] | None,
        volatile: bool,
        timeout: float | None,
    ) -> None:
        """``emit`` with its flags spelled out (the ``EmitPort`` of
        ``socketwire.emit_options``)."""
        if event in RESERVED_EVENTS:
            raise ValueError(f'"{event}" is a reserved event name')
        if not self.connected:
            return
        ack_id: int | None = None
        if callback is not None:
            ack_id = self.nsp.next_ack_id()
            acks = self._ack_table()
            acks[ack_id] = (
                CallbackAck(callback, log)
                if timeout is None
                else ErrorFirstAck(acks, ack_id, callback, timeout, log, report_drop=False)
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
        engine = self._engine
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
        self._engine.write_message(OutgoingMessage(text, attachments))

    def send_ack(self, ack_id: int, args: list[Any]) -> None:
        """Answer the client's ``ack_id`` (the AckSink port of the handlers)."""
        if not self.connected:
            return
        nsp = self.nsp
        if nsp.framed_acks and type(args) is list:
            # What encode_ack would write, framed at once (core.wire): JSON
            # without binary, an id of at most 63 bits, on a WebSocket that
            # takes frames. Anything else goes the general way below.
            try:
                body = _dumps(args)
            except TypeError:
                pass
            else:
                frame = ack_frame(ack_id, body)
                if frame is not None and self._engine.send_frames(frame):
                    return
        try:
            text, attachments = nsp.parser.encode_ack(nsp.name, args, ack_id)
        except LocalProtocolError as exc:
            # A handler's return value that cannot travel: the peer gets no ack.
            log.error(
                "%s: ack %d not sent, the handler's answer cannot be sent: %s", self, ack_id, exc
            )
            return
        if attachments:
            self._engine.write_message(OutgoingMessage(text, attachments))
        else:
            self._engine.send_text(text)

    # -- broadcasting from this socket -------------------------------------------------

    def _operator(self) -> BroadcastOperator:
        from socketwire.server.broadcast_operator import BroadcastOperator

        return BroadcastOperator(self.nsp, except_rooms=frozenset((self.id,)))

    @property
    def broadcast(self) -> BroadcastOperator:
        """Every socket of the namespace but this one."""
        return self._operator()

    def to(self, rooms: Rooms) -> BroadcastOperator:
        """The sockets of ``rooms``, this one excepted."""
        return self._operator().to(rooms)

    in_ = to

    def except_(self, rooms: Rooms) -> BroadcastOperator:
        """Broadcast to everyone but this socket and the sockets in ``rooms``."""
        return self._operator().except_(rooms)

    # -- rooms ----------------------------------------------------------------------------

    def join(self, rooms: Rooms) -> None:
        """Join one room or several."""
        self.nsp.adapter.add_all(self.id, room_names(rooms))

    def leave(self, room: Room) -> None:
        """Leave one room (a room this socket is not in is ignored)."""
        self.nsp.adapter.delete(self.id, room_name(room))

    # -- receiving ------------------------------------------------------------------------

    def handle_packet(self, packet: Packet) -> None:
        """Handle one Socket.IO packet of this socket (called by its connection)."""
        ptype = packet.type
        if ptype == _EVENT or ptype == _BINARY_EVENT:
            self.handle_event(packet.id, packet.data)
        elif ptype == _ACK or ptype == _BINARY_ACK:
            acks = self._acks
            entry = None if acks is None else acks.pop(packet.id, None)  # type: ignore[arg-type]
            if entry is None:
                log.info("%s: ack %s matches no pending emit: ignored", self, packet.id)
                return
            entry.resolve(packet.data)
        elif ptype == _DISCONNECT:
            self.handle_close(DisconnectReason.CLIENT_NAMESPACE_DISCONNECT)
        else:
            log.info("%s: unexpected packet type %s: closing", self, ptype)
            self.conn.close_on_error(DisconnectReason.PARSE_ERROR)

    def handle_event(self, ack_id: int | None, data: list[Any]) -> None:
        """One EVENT of the client, ``data = [name, *args]``: the connection's
        ``handle_packet``, and the lane its WebSocket calls directly
        (``EngineSocket.set_lane``)."""
        if self._bucket is not None and not self._bucket.allow(self, data[0]):
            return
        if self._middlewares is not None:
            self._run_middlewares(data, ack_id)
        else:
            self._dispatch_event(data, ack_id)

    def _dispatch_event(self, data: list[Any], ack_id: int | None) -> None:
        event = data[0]
        if self._any is not None:
            self._notify_any(data)
        shared = self.nsp._listeners.get(event)
        if shared is not None and event in _NSP_EVENTS:
            # Namespace-level "connection"/"connect" handlers are the server's
            # own: a client event of that name never reaches them.
            shared = None
        if self._listeners:
            own = self._take(event)
            if own is not None:
                # The socket's own handlers first; the first handler answers.
                ack_id = runner.dispatch(own, event, tuple(data[1:]), ack_id, self, self)
        if shared is not None:
            if len(shared) == 1:  # the common case, one frame shorter
                _call(shared[0], event, (self, *data[1:]), ack_id, self, self)
            else:
                runner.dispatch(shared, event, (self, *data[1:]), ack_id, self, self)

    # -- catch-all listeners (SocketListeners) ---------------------------------------

    def _watch_outgoing(self, watched: bool) -> None:
        # The namespace's count tells broadcasts whether to look for listeners.
        self.nsp.outgoing_listeners += 1 if watched else -1

    def notify_outgoing_broadcast(self, data: list[Any]) -> None:
        """Tell the outgoing catch-all listeners of a broadcast this socket receives."""
        if self._any_out is not None:
            self._notify_outgoing(data)

    # -- per-packet middlewares ----------------------------------------------------------

    def use(self, fn: Callable[[list[Any]], Any]) -> Callable[[list[Any]], Any]:
        """Add a middleware run on every incoming event before its handlers.

        ``fn([event, *args])`` may be sync or async and may change the list in
        place; raising stops the packet and the exception goes to the socket's
        ``error`` handlers.
        """
        check_call(
            fn, "packet middleware of a socket", "fn(packet)", (1,), hint=_PACKET_MIDDLEWARE_HINT
        )
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
            self._emit_local("error", exc, where=self)
        else:
            log.info("%s: a packet middleware refused a packet: %r", self, exc)

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
            self.handle_close(DisconnectReason.SERVER_NAMESPACE_DISCONNECT)
        return self

    def _send_packet(self, packet: Packet) -> None:
        text, attachments = self.nsp.parser.encode(packet)
        self._engine.write_message(OutgoingMessage(text, attachments))

    def handle_close(self, reason: str) -> None:
        """Leave the namespace for ``reason`` (called when the socket or its connection closes)."""
        if not self.connected:
            return
        if "disconnecting" in self._listeners:
            self._emit_local("disconnecting", reason, where=self)
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
        acks, self._acks = self._acks, None
        if acks:
            for entry in acks.values():
                entry.drop(reason)
        level = self.server.connection_log_level
        if log.isEnabledFor(level):
            log.log(level, "%s: disconnected (%s)", self, reason)
        if "disconnect" in self._listeners:
            self._emit_local("disconnect", reason, where=self)
        self.nsp.dispatch_socket_event("disconnect", self, reason)


# Each socket's WebSocket writer (None on polling), read without a Python frame.
_writer_of = attrgetter("_engine.writer")
# Below this many recipients the plain loop costs no more than the fan-out's set-up.
_FANOUT_MIN = 4


def deliver_all(sockets: list[Socket], message: OutgoingMessage, volatile: bool) -> None:
    """Write a broadcast's message to every socket of ``sockets``.

    The frames go straight to the descriptors of the sockets whose WebSocket
    offers one (``socketwire.engine.fanout``), in one loop; the others (polling,
    TLS, a connection that is busy, closing, or holding back writes) and a
    volatile broadcast (which asks each transport whether it can take it now)
    take ``Socket.deliver``.
    """
    if volatile or len(sockets) < _FANOUT_MIN:
        for sock in sockets:
            sock.deliver(message, volatile)
        return
    writers = list(map(_writer_of, sockets))
    data = message.frames
    rest = send_all(writers, data)
    for k in range(0, len(rest), 2):
        i = rest[k]
        sent = rest[k + 1]
        if sent:
            # Cut short by a full kernel buffer: the rest of the frames first.
            writers[i].write_rest(data, sent)
        else:
            sockets[i].deliver(message, False)


__all__ = [
    "CATCH_ALL_HINT",
    "Handshake",
    "Socket",
    "deliver_all",
    "without_trailing",
]
