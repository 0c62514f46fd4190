"""The server side of one Engine.IO v4 session (layer 0, sans-I/O).

``EngineSession`` holds what the protocol says about a session and decides what
to do; the asyncio layer (``socketwire.engine.socket``) does the reading, writing
and clock work. No I/O, no clock reads: every input that depends on time takes
``now``.

What it tracks (Engine.IO v4, sections in brackets):

* the transport in use, ``polling`` or ``websocket`` [Transports];
* for polling, the outgoing buffer and whether a ``GET`` is parked, with the rule
  that a session has at most one ``GET`` and one ``POST`` in flight
  [Sending data, Receiving data];
* the heartbeat: the server pings every ``ping_interval`` and expects a pong
  within ``ping_timeout`` [Heartbeat];
* the upgrade from polling to WebSocket: probe, pausing the polling side with a
  ``noop``, and the switch on the ``upgrade`` packet [Upgrade];
* closing from either side, with Node's reason strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum
from typing import Final

from socketwire.core.engineio.packet import (
    CLOSE,
    NOOP,
    SEPARATOR,
    EnginePacketType,
    encode_polling_binary,
)
from socketwire.core.engineio.transport import POLLING, WEBSOCKET
from socketwire.errors import LocalProtocolError


class ReadyState(IntEnum):
    """The session's state: open, closing (flushing its last packets), closed."""

    OPEN = 1
    CLOSING = 2
    CLOSED = 3


class UpgradeState(IntEnum):
    """How far the upgrade of a polling session to WebSocket has gone."""

    NONE = 0
    PROBING = 1  # WebSocket open for this sid, waiting for "2probe"
    PROBED = 2  # "3probe" answered, waiting for "5"
    DONE = 3


class Heartbeat(IntEnum):
    """What the next heartbeat deadline does: send a ping, or give up waiting for the pong."""

    WAIT_PING = 0  # next deadline sends a ping
    WAIT_PONG = 1  # next deadline closes with "ping timeout"


# The buffer of a session with nothing to send: one shared empty tuple, so a
# WebSocket session holds no list of its own; immutable, so that no path can
# ever fill it for every session at once.
_EMPTY: Final[tuple[()]] = ()


class EngineSession:
    """Protocol state of one server-side Engine.IO session."""

    __slots__ = (
        "buffer",
        "buffered_bytes",
        "close_reason",
        "deadline",
        "farewell",
        "get_waiting",
        "heartbeat",
        "post_active",
        "ready_state",
        "sid",
        "transport",
        "upgrade",
    )

    def __init__(self, sid: str, transport: str) -> None:
        self.sid = sid
        self.transport = transport
        self.ready_state = ReadyState.OPEN
        self.upgrade = UpgradeState.NONE
        # Outgoing packets not yet written, as (encoded text packet | binary, is_binary).
        # Used by polling always, and by WebSocket while an upgrade is in progress.
        # Empty, it is the shared ``_EMPTY``; otherwise a list of its own.
        self.buffer: list[tuple[bytes, bool]] | tuple[()] = _EMPTY
        self.buffered_bytes = 0
        self.get_waiting = False
        self.post_active = False
        self.heartbeat = Heartbeat.WAIT_PING
        self.deadline = 0.0
        self.close_reason = ""
        # What a parked polling GET gets once the session is closed (see ``close``).
        self.farewell = CLOSE

    # -- heartbeat [Heartbeat] ---------------------------------------------------

    def schedule_ping(self, deadline: float) -> None:
        """Record that the next heartbeat deadline sends a ping."""
        self.heartbeat = Heartbeat.WAIT_PING
        self.deadline = deadline

    def ping_sent(self, deadline: float) -> None:
        """Record that a ping went out and a pong is due by ``deadline``."""
        self.heartbeat = Heartbeat.WAIT_PONG
        self.deadline = deadline

    def is_current(self, deadline: float) -> bool:
        """Whether a queued deadline is still this session's (lazy cancelling)."""
        return self.deadline == deadline and self.ready_state is ReadyState.OPEN

    # -- polling [HTTP long-polling] -------------------------------------------

    def enqueue(self, data: bytes, binary: bool = False) -> None:
        """Buffer one encoded packet (text with its type digit, or binary message)."""
        if self.ready_state is ReadyState.OPEN:
            self._append(data, binary)
            self.buffered_bytes += len(data)

    def _append(self, data: bytes, binary: bool) -> None:
        buffer = self.buffer
        # A non-empty buffer is always the session's own list (an empty one may
        # be the shared tuple): the test costs what an identity test costs.
        if buffer:
            buffer.append((data, binary))
        else:
            self.buffer = [(data, binary)]

    def take_polling_payload(self) -> bytes:
        """Encode and clear the buffer as one polling payload."""
        segments = [encode_polling_binary(d) if b else d for d, b in self.buffer]
        self.buffer = _EMPTY
        self.buffered_bytes = 0
        return SEPARATOR.join(segments)

    def take_frames(self) -> Sequence[tuple[bytes, bool]]:
        """Clear the buffer, returning its packets for WebSocket frames."""
        out = self.buffer
        self.buffer = _EMPTY
        self.buffered_bytes = 0
        return out

    def begin_get(self) -> bool:
        """A polling ``GET`` arrived. Returns False on overlap (400 and close)."""
        if self.get_waiting:
            return False
        self.get_waiting = True
        return True

    def answer_get(self) -> bytes | None:
        """The payload a parked ``GET`` should answer with now, or None to keep waiting.

        During an upgrade the polling side is answered with a ``noop`` so that the
        client can pause it [Upgrade]; once closing, with a ``close`` packet.
        """
        if not self.get_waiting:
            return None
        if self.ready_state is ReadyState.CLOSING:
            # The buffer ends with the close packet (see ``close_polling``).
            self.get_waiting = False
            self.ready_state = ReadyState.CLOSED
            return self.take_polling_payload()
        if self.ready_state is ReadyState.CLOSED:
            self.get_waiting = False
            return self.farewell
        if self.upgrade is UpgradeState.PROBED:
            self.get_waiting = False
            return NOOP
        if self.buffer:
            self.get_waiting = False
            return self.take_polling_payload()
        return None

    def end_get(self) -> None:
        """The parked ``GET`` went away without an answer (client hung up)."""
        self.get_waiting = False

    # -- upgrade [Upgrade] -----------------------------------------------------

    def can_upgrade(self) -> bool:
        return (
            self.ready_state is ReadyState.OPEN
            and self.transport == POLLING
            and self.upgrade is UpgradeState.NONE
        )

    def begin_upgrade(self) -> None:
        if not self.can_upgrade():
            raise LocalProtocolError("session cannot upgrade now")
        self.upgrade = UpgradeState.PROBING

    def probe_received(self) -> bool:
        """``2probe`` on the new WebSocket. Returns whether to answer ``3probe``."""
        if self.upgrade is not UpgradeState.PROBING:
            return False
        self.upgrade = UpgradeState.PROBED
        return True

    def upgrade_received(self) -> bool:
        """``5`` on the new WebSocket: switch transports. False if out of order."""
        if self.upgrade is not UpgradeState.PROBED or self.ready_state is not ReadyState.OPEN:
            return False
        self.upgrade = UpgradeState.DONE
        self.transport = WEBSOCKET
        return True

    def upgrade_failed(self) -> None:
        """The probe WebSocket closed or timed out before ``5``: stay on polling."""
        if self.upgrade in (UpgradeState.PROBING, UpgradeState.PROBED):
            self.upgrade = UpgradeState.NONE

    # -- closing -----------------------------------------------------------------

    def close_polling(self, reason: str) -> None:
        """Server-side close of a polling session: the buffer still goes out,
        followed by a ``close`` packet, with the next ``GET``."""
        if self.ready_state is ReadyState.OPEN:
            self._append(CLOSE, False)
            self.ready_state = ReadyState.CLOSING
            self.close_reason = reason

    def close(self, reason: str, *, by_peer: bool = False) -> bool:
        """Move to CLOSED with ``reason``; returns False if it already was closed.

        ``by_peer``: the client sent a ``close`` packet. A ``GET`` still parked
        then gets a ``noop``, as Node's polling transport answers it: the client
        asked for the close and needs no ``close`` back. Any other close answers
        it with a ``close`` packet.
        """
        if self.ready_state is ReadyState.CLOSED:
            return False
        self.ready_state = ReadyState.CLOSED
        self.farewell = NOOP if by_peer else CLOSE
        self.close_reason = self.close_reason or reason
        self.buffer = _EMPTY
        return True


__all__ = [
    "EnginePacketType",
    "EngineSession",
    "Heartbeat",
    "ReadyState",
    "UpgradeState",
]
