"""The server's commonest traffic, read and answered in one step: layer 0, sans-I/O.

Most of what a Socket.IO server receives is events on the main namespace, each
in one small masked WebSocket text frame: ``42["name",...]`` or, when the client
waits for an answer, ``42<id>["name",...]``; the answer is the ack ``43<id>[...]``.
The general path reads such a frame in four layers (WebSocket frame, Engine.IO
packet, Socket.IO packet, JSON), each with its own call and objects.

:func:`scan_events` does all of it at once for a whole read: it returns the
events of the read, flat (``[ack_id, data, ack_id, data, ...]``, ``ack_id`` None
when the client asked for no ack), when the read is nothing but whole frames of
such events, and None otherwise, in which case the caller gives the same bytes
to the general path, which then decides everything (and gives the exact error
for anything wrong). Nothing that the general path would refuse or read
differently is accepted here: every check of RFC 6455 (FIN, RSV bits, masking,
the message size limit, UTF-8), of Engine.IO and of socket.io-parser's
``isPayloadValid`` is made, and what needs more (an id longer than 18 digits, a
64-bit frame length, JSON that orjson refuses, a payload that may nest deeper
than ``MAX_DEPTH``) is left to the general path. The caller only scans when its
WebSocket reader holds no partial frame or fragment.

:func:`ack_frame` is the other end: the whole unmasked frame of an ack on
``/``, built in one allocation from the ack id and the JSON of its arguments.

Both are compiled in ``socketwire._speedups`` when it was built (unless
``SOCKETWIRE_NO_SPEEDUPS`` is set); the pure-Python versions below decide exactly
the same and are what the tests compare the compiled ones against.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, Final

import orjson

from socketwire.core.socketio.packet import MAX_DEPTH, RESERVED_EVENTS
from socketwire.core.websocket.frames import ZERO_MASK, Opcode, encode_frame, xor_unchecked
from socketwire.core.websocket.protocol import Scanner

__all__ = ["COMPILED", "MAX_ID_DIGITS", "ack_frame", "scan_events"]

#: The longest ack id read here: ids up to ``10**18 - 1`` fit in 63 bits; longer
#: ones (allowed up to 4,000 digits) take the general decoder.
MAX_ID_DIGITS: Final = 18
# socket.io-parser's "Format" of an EVENT on "/" in an Engine.IO message.
_EVENT_HEAD: Final = b"42"
# A payload shorter than this cannot nest MAX_DEPTH + 1 levels (packet.py's screen).
_DEPTH_SCREEN: Final = 2 * MAX_DEPTH + 1
_MAX_ACK_ID: Final = 2**63 - 1

_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError

Events = list[Any]


def _event(payload: bytes, validate_utf8: bool) -> tuple[int | None, list[Any]] | None:
    """The ``(ack_id, data)`` of one unmasked frame payload, or None."""
    if len(payload) < 3 or not payload.startswith(_EVENT_HEAD):
        return None
    k = payload.find(b"[", 2)
    if k < 0 or k - 2 > MAX_ID_DIGITS:
        return None
    ack_id: int | None = None
    if k > 2:
        head = payload[2:k]
        if not head.isdigit():
            return None
        ack_id = int(head)
    body = payload[k:]
    if validate_utf8 and not body.isascii():
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if len(payload) - 1 > _DEPTH_SCREEN and body.count(b"[") + body.count(b"{") > MAX_DEPTH:
        return None
    try:
        data = _loads(body)
    except _JSONDecodeError:
        return None
    if type(data) is not list or not data:
        return None
    name = data[0]
    t = type(name)
    if (t is str and name not in RESERVED_EVENTS) or t is int:
        return ack_id, data
    return None


def _scan_events_python(
    data: bytes, max_message_size: int, validate_utf8: bool = True, /
) -> Events | None:
    """``scan_events`` in Python."""
    n = len(data)
    if not n:
        return None
    pos = 0
    out: Events = []
    while pos < n:
        # RFC 6455 section 5.2: FIN, no RSV bit, text opcode; masked (5.1).
        if n - pos < 2 or data[pos] != 0x81:
            return None
        b1 = data[pos + 1]
        if not b1 & 0x80:
            return None
        length = b1 & 0x7F
        hp = pos + 2
        if length == 127:
            return None
        if length == 126:
            if n - hp < 2:
                return None
            length = (data[hp] << 8) | data[hp + 1]
            hp += 2
        stop = hp + 4 + length
        if length > max_message_size or stop > n:
            return None
        payload = data[hp + 4 : stop]
        mask = data[hp : hp + 4]
        if mask != ZERO_MASK:
            payload = xor_unchecked(payload, mask)
        event = _event(payload, validate_utf8)
        if event is None:
            return None
        out += event
        pos = stop
    return out


def _ack_frame_python(ack_id: int, body: bytes) -> bytes | None:
    """``ack_frame`` in Python."""
    if type(ack_id) is not int or not 0 <= ack_id <= _MAX_ACK_ID:
        return None
    return encode_frame(Opcode.TEXT, b"43%d%b" % (ack_id, body))


def _compiled() -> tuple[Scanner[Events], Callable[[int, bytes], bytes | None]] | None:
    if os.environ.get("SOCKETWIRE_NO_SPEEDUPS"):
        return None
    try:
        from socketwire._speedups import ack_frame as c_ack_frame
        from socketwire._speedups import scan_events as c_scan_events
    except ImportError:
        return None
    # The compiled scan takes orjson's ``loads`` and the reserved names first.
    return functools.partial(c_scan_events, _loads, RESERVED_EVENTS), c_ack_frame


_chosen = _compiled()
#: Whether the compiled versions are in use.
COMPILED: Final = _chosen is not None

#: ``scan_events(data, max_message_size, validate_utf8=True)``: the events of a
#: read of whole frames, flat ``[ack_id, data, ...]``, or None (see the module's
#: docstring). A frame's payload over ``max_message_size`` bytes gives None (the
#: general path fails the connection with 1009).
scan_events: Final[Scanner[Events]] = _chosen[0] if _chosen is not None else _scan_events_python

#: ``ack_frame(ack_id, body)``: the WebSocket frame of the Engine.IO message
#: ``43<ack_id><body>`` (an ack on ``/`` whose arguments are the JSON ``body``),
#: or None for an id outside ``0 .. 2**63 - 1`` (the general encoder takes those).
ack_frame: Final[Callable[[int, bytes], bytes | None]] = (
    _chosen[1] if _chosen is not None else _ack_frame_python
)
