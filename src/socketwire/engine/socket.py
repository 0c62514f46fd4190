"""One Engine.IO connection bound to its transport (layer 1, asyncio).

``EngineSocket`` drives a sans-I/O ``EngineSession`` and owns whichever transport
carries it: a parked polling ``GET`` or a WebSocket. It also implements the
server's half of the upgrade (Engine.IO v4 "Upgrade") through ``_Probe``.

Listeners register as everywhere in the library, ``sock.on("message", fn)`` or
``@sock.on("close")``. A message listener runs once per incoming packet, so a
single one is stored as is and called directly; only a second listener brings a
fan-out object in. What the socket needs from its server is the
``EngineServerPort`` of ``socketwire.engine.ports``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from socketwire.core.engineio.errors import EngineErrorCode
from socketwire.core.engineio.message import OutgoingMessage
from socketwire.core.engineio.packet import (
    MESSAGE_PREFIX,
    PING,
    PROBE_PING,
    PROBE_PONG,
    EnginePacketType,
    decode_payload,
    parse_text_packet,
)
from socketwire.core.engineio.session import (
    EngineSession,
    Heartbeat,
    ReadyState,
)
from socketwire.core.engineio.transport import POLLING
from socketwire.core.reasons import DisconnectReason
from socketwire.core.websocket.frames import Opcode
from socketwire.engine.ports import EngineServerPort, EventLane, HttpRequest, WebSocketPort
from socketwire.errors import RemoteProtocolError

log = logging.getLogger("socketwire.engine")

_TEXT = Opcode.TEXT
_BINARY = Opcode.BINARY
_MESSAGE = EnginePacketType.MESSAGE
_MSG_BYTE = MESSAGE_PREFIX[0]


@dataclass(slots=True)
class RequestInfo:
    """What the handshake request said, kept for ``socket.handshake``."""

    headers: Mapping[str, str]
    query: Mapping[str, str]
    address: str
    secure: bool
    url: str
    time: float = field(default_factory=time.time)


MessageListener = Callable[[bytes, bool], object]
CloseListener = Callable[[str, Any], object]
L = TypeVar("L", bound=Callable[..., object])


def _noop_message(data: bytes, binary: bool) -> None:
    return None


def _noop_close(reason: str, description: Any) -> None:
    return None


class _FanOut:
    """Several listeners of one socket event, called in registration order.

    A listener that raises stops the rest, as with a single listener (and as
    Node's EventEmitter does): the error goes to whoever delivered the event.
    """

    __slots__ = ("listeners",)

    def __init__(self, listeners: list[Callable[..., object]]) -> None:
        self.listeners = listeners

    def __call__(self, *args: Any) -> None:
        for fn in tuple(self.listeners):
            fn(*args)


def _added(current: Callable[..., object], idle: Callable[..., object], fn: L) -> Any:
    """The listener slot's value once ``fn`` is registered beside ``current``."""
    if current is idle:
        return fn
    if type(current) is _FanOut:
        current.listeners.append(fn)
        return current
    return _FanOut([current, fn])


def _removed(
    current: Callable[..., object], idle: Callable[..., object], fn: Callable[..., object] | None
) -> Any:
    """The listener slot's value once ``fn`` (every listener: None) is removed."""
    if fn is None or current is fn:
        return idle
    if type(current) is _FanOut:
        rest = [x for x in current.listeners if x is not fn]
        if not rest:
            return idle
        return rest[0] if len(rest) == 1 else _FanOut(rest)
    return current


def _listed(current: Callable[..., object], idle: Callable[..., object]) -> list[Any]:
    if current is idle:
        return []
    if type(current) is _FanOut:
        return list(current.listeners)
    return [current]


class EngineSocket:
    """A server-side Engine.IO connection.

    Events, as Node's engine.io socket: ``message`` calls ``fn(data, binary)``
    (text arrives as UTF-8 ``bytes`` without the Engine.IO type digit, binary as
    ``bytes``), ``close`` calls ``fn(reason, description)`` once. Listeners are
    plain functions called synchronously; start a task for async work.
    """

    __slots__ = (
        "__weakref__",
        "_drain_waiters",
        "_get",
        "_lane",
        "_on_close",
        "_on_message",
        "_probe",
        "_upgrade_timer",
        "id",
        "ref",
        "request",
        "server",
        "session",
        "writer",
        "ws",
    )

    def __init__(
        self, server: EngineServerPort, sid: str, transport: str, request: RequestInfo
    ) -> None:
        self.server = server
        self.id = sid
        # What the heartbeat queues hold: a closed socket is freed at once, not
        # when its ping or pong deadline comes round (up to ping_interval later).
        # One per socket, reused for every deadline.
        self.ref: weakref.ref[EngineSocket] = weakref.ref(self)
        self.session = EngineSession(sid, transport)
        self.request = request
        self.ws: WebSocketPort | None = None
        #: The WebSocket while the session is open on it, else None: the hot
        #: write paths (and a broadcast's, ``engine.fanout``) test one attribute
        #: instead of the transport and state.
        self.writer: WebSocketPort | None = None
        self._drain_waiters: list[asyncio.Future[None]] | None = None
        self._get: HttpRequest | None = None
        self._probe: _Probe | None = None
        self._upgrade_timer: Any = None
        # The listeners: the function itself while there is one, a _FanOut beyond.
        self._on_message: MessageListener = _noop_message
        self._on_close: CloseListener = _noop_close
        # The message listener's fast path for events on "/" (``set_lane``).
        self._lane: EventLane | None = None

    # -- listeners ---------------------------------------------------------------

    @overload
    def on(self, event: str, handler: L) -> L: ...

    @overload
    def on(self, event: str, handler: None = None) -> Callable[[L], L]: ...

    def on(self, event: str, handler: Callable[..., object] | None = None) -> Any:
        """Listen to ``message`` or ``close``; without a handler, return a decorator.

        * ``message``: ``fn(data, binary)`` for every message of the peer;
        * ``close``: ``fn(reason, description)`` once, when the session ends
          (Node's reasons: ``transport close``, ``ping timeout``...).

        Listeners added after the session closed are never called.
        """
        if handler is None:

            def decorator(fn: L) -> L:
                self.on(event, fn)
                return fn

            return decorator
        if event not in ("message", "close"):
            raise ValueError(f"unknown Engine.IO socket event {event!r}")
        if self.session.ready_state is ReadyState.CLOSED:
            # Never called: not kept either (a bound method would keep its owner).
            return handler
        if event == "message":
            self._on_message = _added(self._on_message, _noop_message, handler)
            if self._lane is not None:
                # The lane stands in for one listener only: another one now
                # sees every message the general way.
                self.set_lane(None)
        else:
            self._on_close = _added(self._on_close, _noop_close, handler)
        return handler

    def off(self, event: str, handler: Callable[..., object] | None = None) -> None:
        """Remove one listener of ``event``, or all of them."""
        if event == "message":
            self._on_message = _removed(self._on_message, _noop_message, handler)
            if self._lane is not None:
                self.set_lane(None)
        elif event == "close":
            self._on_close = _removed(self._on_close, _noop_close, handler)
        else:
            raise ValueError(f"unknown Engine.IO socket event {event!r}")

    def listeners(self, event: str) -> list[Callable[..., object]]:
        """The listeners of ``event``, in call order."""
        if event == "message":
            return _listed(self._on_message, _noop_message)
        if event == "close":
            return _listed(self._on_close, _noop_close)
        raise ValueError(f"unknown Engine.IO socket event {event!r}")

    # -- properties --------------------------------------------------------------

    @property
    def transport(self) -> str:
        """The transport in use: ``"polling"`` or ``"websocket"``."""
        return self.session.transport

    @property
    def connected(self) -> bool:
        """Whether the session is open."""
        return self.session.ready_state is ReadyState.OPEN

    @property
    def writable(self) -> bool:
        """Whether a packet written now goes out at once (used for volatile packets)."""
        s = self.session
        if s.ready_state is not ReadyState.OPEN:
            return False
        ws = self.ws
        if ws is not None and s.transport != POLLING:
            return not ws.paused
        return s.get_waiting

    async def drain(self) -> None:
        """Wait until the outgoing buffer has room again (backpressure).

        Over WebSocket: until the socket's write buffer is back under its
        high-water mark; over polling: until a ``GET`` has taken the buffer.
        Returns at once when there is room, or when the connection is closed.
        """
        while self.session.ready_state is ReadyState.OPEN and not self._has_room():
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            if self._drain_waiters is None:
                self._drain_waiters = []
            self._drain_waiters.append(fut)
            await fut

    def _has_room(self) -> bool:
        ws = self.ws
        if ws is not None and self.session.transport != POLLING:
            return not ws.paused
        return not self.session.buffer

    def ws_drained(self) -> None:
        """WebSocketHandler: the write buffer went back under its high-water mark."""
        waiters, self._drain_waiters = self._drain_waiters, None
        for fut in waiters or ():
            if not fut.done():
                fut.set_result(None)

    def _check_polling_buffer(self) -> None:
        if self.session.buffered_bytes > self.server.write_buffer_limit:
            log.info(
                "sid=%s closing slow consumer: polling buffer over %d bytes",
                self.id,
                self.server.write_buffer_limit,
            )
            self.close_now(DisconnectReason.SLOW_CONSUMER)

    # -- sending -----------------------------------------------------------------

    def send(self, data: bytes | str) -> None:
        """Send one message: ``str`` as text, ``bytes`` as binary."""
        if isinstance(data, str):
            self.send_text(data.encode())
        else:
            self._send_packet(bytes(data), True)

    def send_text(self, data: bytes) -> None:
        """Send a text message given as UTF-8 bytes (no type digit)."""
        w = self.writer
        if w is not None:
            w.send_text_message(data)
            return
        self._send_packet(MESSAGE_PREFIX + data, False)

    def send_frames(self, frames: bytes) -> bool:
        """Send ready-made WebSocket frames of Engine.IO message packets (an ack
        built by ``socketwire.core.wire.ack_frame``) when the session is open on
        a WebSocket that takes frames; False otherwise, and nothing was sent."""
        w = self.writer
        return w is not None and w.send_frames(frames)

    def use_websocket(self, ws: WebSocketPort) -> None:
        """The session now runs on ``ws`` (WebSocket-only handshake or upgrade)."""
        self.ws = ws
        self.writer = ws
        if self._lane is not None:
            ws.set_lane(self._lane)

    def set_lane(self, lane: EventLane | None, listener: MessageListener | None = None) -> None:
        """Let the WebSocket give the Socket.IO events on ``/`` of whole reads to
        ``lane(ack_id, data)`` rather than to the message listener (None: stop).

        ``listener`` is the message listener the lane stands in for: it must be
        the only one, and treat such an event exactly as it would the message
        ``42[<id>][...]`` (the Socket.IO server's connection, while its socket
        on ``/`` is connected). Otherwise the lane is not used. Adding or
        removing a message listener drops the lane; so does the end of the
        session.
        """
        if lane is not None and (
            listener != self._on_message or self.session.ready_state is not ReadyState.OPEN
        ):
            lane = None
        self._lane = lane
        w = self.writer
        if w is not None:
            w.set_lane(lane)

    def _send_packet(self, packet: bytes, binary: bool) -> None:
        s = self.session
        if s.ready_state is not ReadyState.OPEN:
            return
        ws = self.ws
        if ws is not None and s.transport != POLLING:
            ws.send(packet, binary)
        else:
            s.enqueue(packet, binary)
            self._flush_get()
            if s.buffered_bytes > self.server.write_buffer_limit:
                self._check_polling_buffer()

    def write_message(self, message: OutgoingMessage) -> None:
        """Send a pre-encoded message (the broadcast path)."""
        w = self.writer
        if w is not None:
            w.send_message(message)
            return
        s = self.session
        if s.ready_state is not ReadyState.OPEN:
            return
        ws = self.ws
        if ws is not None and s.transport != POLLING:
            ws.send_message(message)
        else:
            for data, binary in message.packets:
                s.enqueue(data, binary)
            self._flush_get()
            if s.buffered_bytes > self.server.write_buffer_limit:
                self._check_polling_buffer()

    # -- receiving ---------------------------------------------------------------

    def _on_packet(self, ptype: int, data: bytes, binary: bool) -> None:
        if ptype == _MESSAGE:
            self._on_message(data, binary)
        elif ptype == EnginePacketType.PONG:
            s = self.session
            if s.heartbeat is Heartbeat.WAIT_PONG:
                self.server.schedule_ping(self)
        elif ptype == EnginePacketType.CLOSE:
            self.close_now(DisconnectReason.TRANSPORT_CLOSE, by_peer=True)
        elif ptype in (EnginePacketType.PING, EnginePacketType.UPGRADE, EnginePacketType.OPEN):
            # v4 clients never send ping (the server pings) nor open; an upgrade
            # packet outside an upgrade is out of order: Node ignores these too.
            log.debug("sid=%s ignored Engine.IO packet type %d", self.id, ptype)
        # NOOP: nothing to do.

    def ws_message(self, opcode: int, payload: bytes) -> None:
        """WebSocketHandler: one frame of the upgraded or WebSocket-only transport."""
        if opcode == _TEXT:
            if payload and payload[0] == _MSG_BYTE:
                # The hot path: a Socket.IO packet.
                self._on_message(payload[1:], False)
                return
            try:
                ptype, data = parse_text_packet(payload)
            except RemoteProtocolError:
                log.info("sid=%s invalid Engine.IO packet %r: closing", self.id, payload[:32])
                self.close_now(DisconnectReason.PARSE_ERROR)
                return
            self._on_packet(ptype, data, False)
        else:
            self._on_message(payload, True)

    def ws_closed(self, code: int, reason: str) -> None:
        """WebSocketHandler: the WebSocket transport went away."""
        self.ws = None
        self.writer = None
        self._lane = None
        if reason == DisconnectReason.SLOW_CONSUMER:
            self.close_now(DisconnectReason.SLOW_CONSUMER)
            return
        self.close_now(
            DisconnectReason.TRANSPORT_CLOSE
            if code in (1000, 1001, 1005, 1006, 1012)
            else DisconnectReason.TRANSPORT_ERROR
        )

    # -- polling -----------------------------------------------------------------

    def handle_get(self, req: HttpRequest) -> None:
        """Answer a long-polling GET (called by the engine server)."""
        s = self.session
        if not s.begin_get():
            log.info("sid=%s polling GET overlap: closing", self.id)
            self.server.respond_error(req, EngineErrorCode.BAD_REQUEST)
            self.close_now(DisconnectReason.TRANSPORT_ERROR)
            return
        self._get = req
        req.on_abort(self._get_aborted)
        self._flush_get()

    def _get_aborted(self) -> None:
        # The connection of a parked GET closed: Node's engine.io treats this as a
        # transport error ("poll connection closed prematurely") and closes.
        self._get = None
        self.session.end_get()
        log.info("sid=%s polling connection closed prematurely", self.id)
        self.close_now(DisconnectReason.TRANSPORT_ERROR)

    def _flush_get(self) -> None:
        req = self._get
        if req is None:
            return
        body = self.session.answer_get()
        if body is None:
            return
        self._get = None
        req.on_abort(None)
        self.server.respond_payload(req, body)
        if self.session.ready_state is ReadyState.CLOSED:
            self._finish()
        elif self._drain_waiters is not None:
            self.ws_drained()

    def handle_post(self, req: HttpRequest) -> None:
        """Take the packets of a long-polling POST (called by the engine server)."""
        s = self.session
        if s.post_active:
            self.server.respond_error(req, EngineErrorCode.BAD_REQUEST)
            self.close_now(DisconnectReason.TRANSPORT_ERROR)
            return
        try:
            packets = decode_payload(req.body)
        except Exception as exc:
            log.info("sid=%s malformed polling payload: %s", self.id, exc)
            self.server.respond_error(req, EngineErrorCode.BAD_REQUEST)
            self.close_now(DisconnectReason.PARSE_ERROR)
            return
        s.post_active = True
        # Answer first: a handler that closes the session must not leave the POST open.
        self.server.respond_ok(req)
        try:
            for ptype, data, binary in packets:
                if s.ready_state is not ReadyState.OPEN:
                    break
                self._on_packet(ptype, data, binary)
        finally:
            s.post_active = False

    # -- upgrade -----------------------------------------------------------------

    def start_upgrade(self, req: HttpRequest, headers: list[tuple[str, str]]) -> None:
        """Accept the WebSocket of an upgrade and start its probe."""
        probe = _Probe(self)
        ws = req.accept_websocket(probe, headers)
        if ws is None:
            return
        self.session.begin_upgrade()
        probe.ws = ws
        self._probe = probe
        loop = self.server.loop
        self._upgrade_timer = loop.call_later(self.server.upgrade_timeout, probe.timeout)

    def _probe_done(self, probe: _Probe, ok: bool) -> None:
        if self._probe is not probe:
            return
        self._probe = None
        if self._upgrade_timer is not None:
            self._upgrade_timer.cancel()
            self._upgrade_timer = None
        s = self.session
        if not ok:
            s.upgrade_failed()
            return
        ws = probe.ws
        assert ws is not None
        self.use_websocket(ws)
        ws.set_handler(self)
        # The parked GET (if any) was answered with noop; it is gone now.
        if self._get is not None:
            req, self._get = self._get, None
            req.on_abort(None)
            s.end_get()
            self.server.respond_payload(req, b"6")
        pending = s.take_frames()
        if pending:
            for data, binary in pending:
                ws.send(data, binary)
        self.server.socket_upgraded(self)

    # -- heartbeat ---------------------------------------------------------------

    @staticmethod
    def heartbeat_due_ref(ref: weakref.ref[EngineSocket], deadline: float) -> None:
        """A heartbeat queue reached a deadline of the socket behind ``ref`` (if alive)."""
        sock = ref()
        if sock is not None:
            sock.heartbeat_due(deadline)

    def heartbeat_due(self, deadline: float) -> None:
        """The server's heartbeat queue reached this socket's deadline."""
        s = self.session
        if not s.is_current(deadline):
            return
        if s.heartbeat is Heartbeat.WAIT_PING:
            self._send_packet(PING, False)
            self.server.schedule_pong_deadline(self)
        else:
            log.info("sid=%s ping timeout", self.id)
            self.close_now(DisconnectReason.PING_TIMEOUT)

    # -- closing -----------------------------------------------------------------

    def close(self, reason: str = DisconnectReason.FORCED_CLOSE) -> None:
        """Close from the server side, delivering what is already buffered first."""
        s = self.session
        if s.ready_state is not ReadyState.OPEN:
            return
        if s.transport == POLLING or self.ws is None:
            s.close_polling(reason)
            if self._get is not None:
                self._flush_get()
            else:
                # Node waits up to 30 s for the next GET to carry the close packet;
                # this one is rare, so a plain timer is fine.
                self.server.loop.call_later(30.0, self.close_now, reason)
                self._notify_closed(reason)
            return
        self.close_now(reason)

    def close_now(self, reason: str, *, by_peer: bool = False) -> None:
        """Close at once, dropping what is not yet written (``by_peer``: the
        client asked for it with a ``close`` packet)."""
        s = self.session
        was_open = s.ready_state is not ReadyState.CLOSED
        if not s.close(reason, by_peer=by_peer):
            return
        if self._probe is not None:
            probe, self._probe = self._probe, None
            if probe.ws is not None:
                probe.ws.close(1000, "")
        if self._upgrade_timer is not None:
            self._upgrade_timer.cancel()
            self._upgrade_timer = None
        self.writer = None
        self._lane = None
        ws, self.ws = self.ws, None
        if ws is not None:
            ws.set_lane(None)
            ws.close(1000, "")
        req, self._get = self._get, None
        if req is not None:
            req.on_abort(None)
            self.server.respond_payload(req, s.answer_get() or s.farewell)
        if was_open:
            self._finish()

    def _finish(self) -> None:
        self.ws_drained()
        self.server.socket_closed(self)
        self._notify_closed(self.session.close_reason)

    def _notify_closed(self, reason: str) -> None:
        # Dropping the listeners also breaks the cycles their bound methods make
        # (socket -> listener -> its owner -> socket): a closed connection is
        # freed by reference counting.
        cb, self._on_close = self._on_close, _noop_close
        cb(reason, None)
        self._on_message = _noop_message


class _Probe:
    """The WebSocket of an upgrade in progress, before it carries the session."""

    __slots__ = ("owner", "ws")

    def __init__(self, owner: EngineSocket) -> None:
        self.owner = owner
        self.ws: WebSocketPort | None = None

    def ws_message(self, opcode: int, payload: bytes) -> None:
        owner = self.owner
        s = owner.session
        ws = self.ws
        assert ws is not None
        if opcode == _TEXT:
            if payload == PROBE_PING and s.probe_received():
                ws.send(PROBE_PONG, False)
                # Pause the polling side: answer the parked GET with a noop.
                owner._flush_get()
                return
            if payload == b"5" and s.upgrade_received():
                owner._probe_done(self, True)
                return
        log.info("sid=%s invalid packet during upgrade: closing the probe", owner.id)
        self.fail()

    def ws_closed(self, code: int, reason: str) -> None:
        self.ws = None
        self.owner._probe_done(self, False)

    def ws_drained(self) -> None:
        pass

    def timeout(self) -> None:
        log.info("sid=%s upgrade timed out", self.owner.id)
        self.fail()

    def fail(self) -> None:
        ws, self.ws = self.ws, None
        self.owner._probe_done(self, False)
        if ws is not None:
            ws.close(1000, "")


__all__ = [
    "CloseListener",
    "EngineSocket",
    "MessageListener",
    "RequestInfo",
]
