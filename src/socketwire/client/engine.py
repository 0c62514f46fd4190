"""The client side of one Engine.IO v4 connection (asyncio).

``EngineClient`` opens the first transport (polling or WebSocket), reads the
handshake, answers the server's pings and declares the connection dead when no
ping came within ``pingInterval + pingTimeout`` ("ping timeout"), buffers outgoing
packets while the transport is busy, and upgrades from polling to WebSocket exactly
as Engine.IO v4 "Upgrade" says: open the WebSocket with the session id, send
``2probe``, wait for ``3probe``, pause polling (no request in flight any more), send
``5`` and flush the buffer over the WebSocket.

Its owner (the :class:`~socketwire.client.manager.Manager`) sets the callbacks
``on_open``, ``on_message(data, is_binary)``, ``on_ping``, ``on_error(err)``,
``on_close(reason, description)``, ``on_upgrading(transport_name)`` (the probe
succeeded, polling is being paused) and ``on_upgrade(transport_name)``.  Close
reasons are those of the JavaScript client: "forced close", "transport close",
"transport error", "ping timeout".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any, Final

import orjson

from socketwire.client.errors import HandshakeRefused, TransportError
from socketwire.client.transports import (
    EngineTransport,
    TransportOptions,
    WebSocketTransport,
    create_transport,
)
from socketwire.client.websocket import PacketLane, WebSocketHandshakeError
from socketwire.core.engineio.packet import (
    MESSAGE_PREFIX,
    PONG,
    PROBE_PING,
    EnginePacketType,
)
from socketwire.core.engineio.transport import POLLING, WEBSOCKET
from socketwire.core.reasons import DisconnectReason

__all__ = ["EngineClient"]

log = logging.getLogger("socketwire.client")

PROTOCOL: Final = "4"

_OPEN = EnginePacketType.OPEN
_PING = EnginePacketType.PING
_PONG = EnginePacketType.PONG
_MESSAGE = EnginePacketType.MESSAGE
_UPGRADE_PACKET: Final = b"5"


def _nothing() -> None:
    return None


def _ignore_message(data: bytes, binary: bool) -> None:
    return None


def _ignore_error(err: BaseException) -> None:
    return None


def _ignore_close(reason: str, description: Any) -> None:
    return None


def _ignore_upgrade(name: str) -> None:
    return None


class _Probe:
    """A WebSocket being tried while polling carries the session."""

    __slots__ = ("failed", "transport")

    def __init__(self, transport: EngineTransport) -> None:
        self.transport = transport
        self.failed = False


class EngineClient:
    """One Engine.IO v4 connection from the client side."""

    __slots__ = (
        "_close_pending",
        "_direct",
        "_direct_text",
        "_lane",
        "_loop",
        "_old_transports",
        "_ping_deadline",
        "_ping_timer",
        "_prev_len",
        "_probe",
        "id",
        "max_message_size",
        "max_payload",
        "on_close",
        "on_error",
        "on_message",
        "on_open",
        "on_ping",
        "on_upgrade",
        "on_upgrading",
        "opts",
        "ping_interval",
        "ping_timeout",
        "query",
        "ready_state",
        "transport",
        "transports",
        "upgrade",
        "upgrades",
        "upgrading",
        "write_buffer",
    )

    def __init__(
        self,
        opts: TransportOptions,
        *,
        query: dict[str, str] | None = None,
        transports: Sequence[str] = (POLLING, WEBSOCKET),
        upgrade: bool = True,
        max_message_size: int = 100 * 1024 * 1024,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self.opts = opts
        self.query = dict(query or {})
        self.transports = tuple(transports)
        self.upgrade = upgrade
        self.max_message_size = max_message_size
        self.id: str | None = None
        self.ready_state = "closed"  # opening, open, closing, closed
        self.transport: EngineTransport | None = None
        self.write_buffer: list[tuple[bytes, bool]] = []
        self._prev_len = 0
        self.upgrades: list[str] = []
        self.upgrading = False
        self.ping_interval = -1
        self.ping_timeout = -1
        self.max_payload = -1
        self._ping_timer: asyncio.TimerHandle | None = None
        self._ping_deadline = float("inf")
        self._probe: _Probe | None = None
        self._close_pending = False
        # The open WebSocket transport while messages may skip the write buffer.
        self._direct: WebSocketTransport | None = None
        # Its WebSocket's ``send_message``: the text messages of ``write_text``
        # go there straight (the transport would only pass them on).
        self._direct_text: Callable[[bytes], None] | None = None
        # What ``set_lane`` was given: in use while there is a direct transport.
        self._lane: PacketLane | None = None
        self._old_transports: list[EngineTransport] = []
        self.on_open: Callable[[], None] = _nothing
        self.on_message: Callable[[bytes, bool], None] = _ignore_message
        self.on_ping: Callable[[], None] = _nothing
        self.on_error: Callable[[BaseException], None] = _ignore_error
        self.on_close: Callable[[str, Any], None] = _ignore_close
        self.on_upgrading: Callable[[str], None] = _ignore_upgrade
        self.on_upgrade: Callable[[str], None] = _ignore_upgrade

    # -- opening -------------------------------------------------------------------------

    @property
    def transport_name(self) -> str | None:
        """The transport carrying the session now (``polling`` or ``websocket``)."""
        t = self.transport
        return t.name if t is not None else None

    def open(self) -> None:
        """Start connecting with the first transport of ``transports``."""
        if not self.transports:
            self._loop.call_soon(self._fail_open, TransportError("No transports available"))
            return
        self.ready_state = "opening"
        transport = self._create_transport(self.transports[0])
        self._set_transport(transport)
        transport.open()

    def _fail_open(self, err: TransportError) -> None:
        self.on_error(err)

    def _create_transport(self, name: str) -> EngineTransport:
        query = dict(self.query)
        query["EIO"] = PROTOCOL
        query["transport"] = name
        if self.id:
            query["sid"] = self.id
        transport = create_transport(name, self.opts, query, self.max_message_size)
        self._old_transports.append(transport)
        return transport

    def _set_transport(self, transport: EngineTransport) -> None:
        old = self.transport
        if old is not None:
            old.detach()
        self.transport = transport
        self._update_direct()
        transport.on_drain = self._on_drain
        transport.on_packet = self._on_packet
        transport.on_error = self._on_transport_error
        transport.on_close = self._on_transport_close

    def _on_transport_close(self, description: Any) -> None:
        transport = self.transport
        if self.ready_state == "opening" and transport is not None:
            # Ended before the open packet (Engine.IO v4, "Handshake"): the open
            # failed, and says so now rather than at the connect timeout.
            reason = "websocket error" if transport.name == WEBSOCKET else "xhr poll error"
            self._on_transport_error(reason, description)
            return
        self._on_close(DisconnectReason.TRANSPORT_CLOSE, description)

    def _on_transport_error(self, reason: str, description: Any, context: Any = None) -> None:
        err = TransportError(reason, description, context)
        if self.ready_state == "opening":
            err = _refusal(reason, description, context) or err
        log.debug("engine %s transport error: %s", self.id, err)
        self.on_error(err)
        self._on_close(DisconnectReason.TRANSPORT_ERROR, err)

    # -- receiving -------------------------------------------------------------------------

    def _on_packet(self, ptype: int, data: bytes, binary: bool) -> None:
        state = self.ready_state
        if state != "opening" and state != "open" and state != "closing":
            return
        if ptype == _MESSAGE:
            self.on_message(data, binary)
        elif ptype == _PING:
            # Engine.IO v4 "Heartbeat": answer every ping with a pong.
            self._send_packets([(PONG, False)])
            self.on_ping()
            self._reset_ping_timeout()
        elif ptype == _OPEN:
            self._on_handshake(data)
        # PONG, UPGRADE, NOOP: nothing to do on the session's own transport.

    def _on_handshake(self, data: bytes) -> None:
        try:
            sid, upgrades, ping_interval, ping_timeout, max_payload = _parse_handshake(data)
        except ValueError as exc:
            self._on_transport_error(DisconnectReason.PARSE_ERROR, f"invalid handshake: {exc}")
            return
        self.id = sid
        transport = self.transport
        if transport is not None:
            transport.query["sid"] = sid
        # Each known name once, in the server's order: a handshake listing a name
        # many times must not open many probes (Engine.IO v4, "Upgrade").
        self.upgrades = [u for u in dict.fromkeys(upgrades) if u in self.transports]
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.max_payload = max_payload
        self._on_open()
        if self.ready_state == "closed":
            return
        self._reset_ping_timeout()

    def _update_direct(self) -> None:
        """Allow the direct write path only on an open WebSocket carrying the session."""
        transport = self.transport
        self._set_direct(
            transport
            if isinstance(transport, WebSocketTransport)
            and self.ready_state == "open"
            and not self.upgrading
            else None
        )

    def _set_direct(self, direct: WebSocketTransport | None) -> None:
        """The direct transport, if any, is also the only one the lane is given to."""
        old = self._direct
        self._direct = direct
        self._direct_text = None if direct is None else direct.text_sender()
        if old is not None and old is not direct:
            old.set_lane(None)
        if direct is not None:
            direct.set_lane(self._lane)

    def set_lane(self, lane: PacketLane | None) -> None:
        """Give the Socket.IO events and acks on ``/`` of whole reads to ``lane``
        rather than to ``on_message`` (None: stop).

        ``lane`` must treat each packet exactly as ``on_message`` would the
        message (the manager's, while its socket on ``/`` is connected). It is
        used while the session is open on a WebSocket, the same condition as the
        direct write path (an upgrade to WebSocket starts it, the end of the
        session drops it), and it is the transport's: pings, other packets and
        anything unusual still come through ``on_message``.
        """
        self._lane = lane
        direct = self._direct
        if direct is not None:
            direct.set_lane(lane)

    def _on_open(self) -> None:
        self.ready_state = "open"
        self._update_direct()
        self.on_open()
        self.flush()
        transport = self.transport
        if (
            self.ready_state == "open"
            and self.upgrade
            and transport is not None
            and transport.name == POLLING
        ):
            for name in self.upgrades:
                if name != POLLING:
                    self._start_probe(name)

    # -- heartbeat -------------------------------------------------------------------------

    def _reset_ping_timeout(self) -> None:
        if self._ping_timer is not None:
            self._ping_timer.cancel()
        delay = (self.ping_interval + self.ping_timeout) / 1000
        self._ping_deadline = self._loop.time() + delay
        self._ping_timer = self._loop.call_later(
            delay, self._on_close, DisconnectReason.PING_TIMEOUT
        )

    def has_ping_expired(self) -> bool:
        """Whether the ping deadline passed unnoticed (a throttled timer): then close soon."""
        if not self._ping_deadline:
            return True
        expired = self._loop.time() > self._ping_deadline
        if expired:
            self._ping_deadline = 0.0
            self._loop.call_soon(self._on_close, DisconnectReason.PING_TIMEOUT)
        return expired

    # -- upgrade (Engine.IO v4 "Upgrade") --------------------------------------------------------

    def _start_probe(self, name: str) -> None:
        transport = self._create_transport(name)
        probe = _Probe(transport)
        self._probe = probe

        def on_open() -> None:
            if probe.failed:
                return
            transport.send([(PROBE_PING, False)])

        def on_packet(ptype: int, data: bytes, binary: bool) -> None:
            if probe.failed:
                return
            transport.on_packet = _ignore_packet_cb
            if ptype == _PONG and data == b"probe" and not binary:
                self.upgrading = True
                self.on_upgrading(transport.name)
                current = self.transport
                if current is None:
                    return
                current.pause(on_paused)
            else:
                fail("probe error")

        def on_paused() -> None:
            if probe.failed or self.ready_state == "closed":
                return
            self._probe = None
            old = self.transport
            # "5" first, while the probe's drain is not yet the engine's: the
            # engine's accounting only ever covers its own buffer.
            transport.send([(_UPGRADE_PACKET, False)])
            self._set_transport(transport)
            if old is not None:
                old.close()
            self.upgrading = False
            self._update_direct()
            self.on_upgrade(transport.name)
            self.flush()
            self._after_upgrade()

        def fail(reason: str, description: Any = None) -> None:
            if probe.failed:
                return
            probe.failed = True
            self._probe = None
            transport.close()
            log.debug("engine %s upgrade failed: %s %s", self.id, reason, description or "")
            if self.upgrading:
                # Paused for nothing: carry on with the transport we have.
                self.upgrading = False
            self._after_upgrade()

        def on_error(reason: str, description: Any, context: Any) -> None:
            fail(reason, description)

        def on_close(description: Any) -> None:
            fail("transport closed", description)

        transport.on_open = on_open
        transport.on_packet = on_packet
        transport.on_error = on_error
        transport.on_close = on_close
        transport.open()

    def _abort_probe(self) -> None:
        probe, self._probe = self._probe, None
        if probe is not None and not probe.failed:
            probe.failed = True
            probe.transport.close()

    def _after_upgrade(self) -> None:
        """An upgrade finished (or failed): a ``close`` waiting for it goes on now."""
        if self._close_pending and not self.write_buffer:
            self._close_pending = False
            self._close_now()

    # -- sending ---------------------------------------------------------------------------

    def write_text(self, text: bytes) -> None:
        """Send one Engine.IO message of UTF-8 ``text`` (without the ``"4"``): what
        ``write([(text, False)])`` does, straight to an open WebSocket's frame."""
        send = self._direct_text
        if send is not None and not self.write_buffer:
            send(text)
            return
        self.write(((text, False),))

    def write(self, messages: Sequence[tuple[bytes, bool]]) -> None:
        """Send Engine.IO messages: ``(text without the "4", False)`` or ``(bytes, True)``."""
        direct = self._direct
        if direct is not None and not self.write_buffer:
            # WebSocket, nothing queued before: straight to the socket.
            direct.send_messages(messages)
            return
        state = self.ready_state
        if state == "closing" or state == "closed":
            return
        buffer = self.write_buffer
        for data, binary in messages:
            buffer.append((data, True) if binary else (MESSAGE_PREFIX + data, False))
        self.flush()

    def _send_packets(self, packets: list[tuple[bytes, bool]]) -> None:
        state = self.ready_state
        if state == "closing" or state == "closed":
            return
        self.write_buffer.extend(packets)
        self.flush()

    @property
    def writable(self) -> bool:
        """Whether a volatile packet written now would go out rather than wait."""
        t = self.transport
        return (
            self.ready_state == "open"
            and not self.upgrading
            and t is not None
            and t.volatile_writable
        )

    def flush(self) -> None:
        """Hand buffered packets to the transport when it can take them."""
        transport = self.transport
        if (
            self.ready_state != "closed"
            and transport is not None
            and transport.writable
            and not self.upgrading
            and self.write_buffer
        ):
            packets = self._writable_packets(transport)
            self._prev_len = len(packets)
            transport.send(packets)

    def _writable_packets(self, transport: EngineTransport) -> list[tuple[bytes, bool]]:
        """Polling: as many packets as fit in ``maxPayload`` (at least one)."""
        buffer = self.write_buffer
        if not self.max_payload or transport.name != POLLING or len(buffer) == 1:
            return list(buffer)
        size = 1  # the first packet's type
        for i, (data, binary) in enumerate(buffer):
            size += (len(data) + 2) // 3 * 4 + 1 if binary else len(data)
            if i > 0 and size > self.max_payload:
                return buffer[:i]
            size += 2  # separator and the next packet's type
        return list(buffer)

    def _on_drain(self) -> None:
        del self.write_buffer[: self._prev_len]
        self._prev_len = 0
        if self.write_buffer:
            self.flush()
        elif self._close_pending and not self.upgrading:
            self._close_pending = False
            self._close_now()

    # -- closing ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close from the client: what is buffered goes out first, then the ``close`` packet."""
        state = self.ready_state
        if state != "opening" and state != "open":
            return
        self.ready_state = "closing"
        self._set_direct(None)
        if self.write_buffer or self.upgrading:
            # After the drain / the upgrade (see _on_drain and _after_upgrade).
            self._close_pending = True
            return
        self._close_now()

    def _close_now(self) -> None:
        self._on_close(DisconnectReason.FORCED_CLOSE)

    def _on_close(self, reason: str, description: Any = None) -> None:
        state = self.ready_state
        if state != "opening" and state != "open" and state != "closing":
            return
        log.debug("engine %s closed: %s", self.id, reason)
        if self._ping_timer is not None:
            self._ping_timer.cancel()
            self._ping_timer = None
        self._abort_probe()
        transport = self.transport
        if transport is not None:
            transport.detach()
            transport.close()
        self.ready_state = "closed"
        self._lane = None
        self._set_direct(None)
        self.id = None
        self._close_pending = False
        on_close = self.on_close
        self.on_open = _nothing
        self.on_message = _ignore_message
        self.on_ping = _nothing
        self.on_error = _ignore_error
        self.on_close = _ignore_close
        self.on_upgrade = _ignore_upgrade
        self.on_upgrading = _ignore_upgrade
        on_close(reason, description)
        self.write_buffer = []
        self._prev_len = 0

    async def wait_closed(self) -> None:
        """Wait until every transport this connection used has released its sockets."""
        for transport in list(self._old_transports):
            with contextlib.suppress(Exception):
                await transport.wait_closed()


def _ignore_packet_cb(ptype: int, data: bytes, binary: bool) -> None:
    return None


# The largest maxPayload and heartbeat interval taken from a handshake: beyond
# these a value is nonsense (Node's default maxPayload is 1e6, its intervals
# are seconds), and an absurd value would disable the client's own bounds.
MAX_HANDSHAKE_PAYLOAD = 1 << 32
MAX_HANDSHAKE_INTERVAL_MS = 86_400_000


def _positive_int(info: dict[str, Any], key: str, limit: int) -> int:
    value = info.get(key)
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not 0 < value <= limit
        or value != value
    ):
        raise ValueError(f"{key} must be a positive number up to {limit}")
    return int(value)


def _parse_handshake(data: bytes) -> tuple[str, list[str], int, int, int]:
    """Validate the open packet's JSON (Engine.IO v4, "Handshake").

    Returns ``(sid, upgrades, pingInterval, pingTimeout, maxPayload)`` (``maxPayload``
    0 when absent); raises ``ValueError`` naming the first nonsensical field.
    """
    try:
        info = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(info, dict):
        raise ValueError("not a JSON object")
    sid = info.get("sid")
    if not isinstance(sid, str) or not sid:
        raise ValueError("sid must be a non-empty string")
    upgrades = info.get("upgrades")
    if upgrades is None:
        upgrades = []
    if not isinstance(upgrades, list) or not all(isinstance(u, str) for u in upgrades):
        raise ValueError("upgrades must be a list of strings")
    ping_interval = _positive_int(info, "pingInterval", MAX_HANDSHAKE_INTERVAL_MS)
    ping_timeout = _positive_int(info, "pingTimeout", MAX_HANDSHAKE_INTERVAL_MS)
    max_payload = 0
    if info.get("maxPayload") is not None:
        max_payload = _positive_int(info, "maxPayload", MAX_HANDSHAKE_PAYLOAD)
    return sid, upgrades, ping_interval, ping_timeout, max_payload


def _refusal(reason: str, description: Any, context: Any) -> HandshakeRefused | None:
    """The error of a transport that failed its first request: the session's handshake.

    A server that refuses a handshake (Engine.IO v4 "Handshake": 400 for a bad
    request; Node also uses 403) says why in its error object; any other failure
    stays a plain :class:`TransportError`.
    """
    if isinstance(description, WebSocketHandshakeError):
        return HandshakeRefused.from_response(
            reason, description, description.status, description.body
        )
    if type(description) is int and type(context) is bytes:
        return HandshakeRefused.from_response(reason, description, description, context)
    return None
