"""The commonest traffic of both sides, read and written in one step: layer 0, sans-I/O.

Most of what a Socket.IO server receives is events on the main namespace, each
in one small masked WebSocket text frame: ``42["name",...]`` or, when the client
waits for an answer, ``42<id>["name",...]``; the answer is the ack ``43<id>[...]``.
A client receives the same two packets the other way round, in unmasked frames:
the server's events and the acks of its own emits.
The general path reads such a frame in four layers (WebSocket frame, Engine.IO
packet, Socket.IO packet, JSON), each with its own call and objects.

:func:`scan_events` (the server's) does all of it at once for a whole read: it
returns the events of the read, flat (``[ack_id, data, ack_id, data, ...]``,
``ack_id`` None when the client asked for no ack), when the read is nothing but
whole frames of such events, and None otherwise, in which case the caller gives
the same bytes to the general path, which then decides everything (and gives the
exact error for anything wrong). Nothing that the general path would refuse or
read differently is accepted here: every check of RFC 6455 (FIN, RSV bits,
masking, the message size limit, UTF-8), of Engine.IO and of socket.io-parser's
``isPayloadValid`` is made, and what needs more (an id longer than 18 digits, a
64-bit frame length, JSON that orjson refuses, a payload that may nest deeper
than ``MAX_DEPTH``) is left to the general path. The caller only scans when its
WebSocket reader holds no partial frame or fragment.

:func:`scan_packets` is the client's: the same reading of unmasked frames (a
server never masks, RFC 6455 section 5.1), each an EVENT ``42[<id>][...]`` or an
ACK ``43<id>[...]`` on ``/``, given flat as triples ``[ptype, ack_id, data, ...]``
(``ptype`` 2 or 3). A masked frame is left to the general path, which fails the
connection.

:func:`ack_frame` is the server's other end: the whole unmasked frame of an ack
on ``/``, built in one allocation from the ack id and the JSON of its arguments.
:func:`message_frame` is the client's: the masked frame of one Engine.IO message
(``4`` and a Socket.IO packet), header, key and masked payload in one allocation.

All are compiled in ``socketwire._speedups`` when it was built (unless
``SOCKETWIRE_NO_SPEEDUPS`` is set); the pure-Python versions below decide exactly
the same and are what the tests compare the compiled ones against.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, Final, NamedTuple

import orjson

from socketwire.core.socketio.packet import MAX_DEPTH, RESERVED_EVENTS
from socketwire.core.websocket.frames import ZERO_MASK, Opcode, encode_frame, xor_unchecked
from socketwire.core.websocket.protocol import Scanner

__all__ = [
    "COMPILED",
    "MAX_ID_DIGITS",
    "ack_frame",
    "message_frame",
    "scan_events",
    "scan_packets",
]

#: The longest ack id read here: ids up to ``10**18 - 1`` fit in 63 bits; longer
#: ones (allowed up to 4,000 digits) take the general decoder.
MAX_ID_DIGITS: Final = 18
# A payload shorter than this cannot nest MAX_DEPTH + 1 levels (packet.py's screen).
_DEPTH_SCREEN: Final = 2 * MAX_DEPTH + 1
_MAX_ACK_ID: Final = 2**63 - 1
# Byte values: "4" (Engine.IO message), "2" (Socket.IO EVENT), "3" (ACK).
_MESSAGE: Final = 0x34
_EVENT: Final = 0x32
_ACK: Final = 0x33

_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError

Events = list[Any]
Packets = list[Any]


def _packet(
    payload: bytes, validate_utf8: bool, acks: bool
) -> tuple[int, int | None, list[Any]] | None:
    """The ``(ptype, ack_id, data)`` of one unmasked frame payload, or None.

    ``acks``: an ACK is read too (the client's side); otherwise EVENTs only.
    """
    if len(payload) < 3 or payload[0] != _MESSAGE:
        return None
    kind = payload[1]
    if kind != _EVENT and (kind != _ACK or not acks):
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
    # socket.io-parser's isPayloadValid. Text that starts with "[" and that
    # orjson reads whole is a list.
    if kind == _ACK:
        # An ACK: an array (maybe empty), and the id is required.
        return None if ack_id is None else (3, ack_id, data)
    # An EVENT: a non-empty array whose first element is a number or a string
    # that is not a reserved name (only ints are numbers here, as in the
    # general decoder's fast path).
    if not data:
        return None
    name = data[0]
    t = type(name)
    if (t is str and name not in RESERVED_EVENTS) or t is int:
        return 2, ack_id, data
    return None


def _scan(
    data: bytes, max_message_size: int, validate_utf8: bool, client: bool
) -> list[Any] | None:
    """Both scans in Python: ``client`` reads unmasked frames of events and acks
    into triples, else masked frames of events into pairs."""
    n = len(data)
    if not n:
        return None
    # RFC 6455 section 5.1: a client's frames are masked, a server's are not.
    masked = 0 if client else 0x80
    pos = 0
    out: list[Any] = []
    while pos < n:
        # Section 5.2: FIN, no RSV bit, text opcode, the mask bit of the side.
        if n - pos < 2 or data[pos] != 0x81:
            return None
        b1 = data[pos + 1]
        if b1 & 0x80 != masked:
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
        start = hp if client else hp + 4
        stop = start + length
        if length > max_message_size or stop > n:
            return None
        payload = data[start:stop]
        if not client:
            mask = data[hp:start]
            if mask != ZERO_MASK:
                payload = xor_unchecked(payload, mask)
        packet = _packet(payload, validate_utf8, client)
        if packet is None:
            return None
        if client:
            out += packet
        else:
            out += packet[1:]
        pos = stop
    return out


def _scan_events_python(
    data: bytes, max_message_size: int, validate_utf8: bool = True, /
) -> Events | None:
    """``scan_events`` in Python."""
    return _scan(data, max_message_size, validate_utf8, False)


def _scan_packets_python(
    data: bytes, max_message_size: int, validate_utf8: bool = True, /
) -> Packets | None:
    """``scan_packets`` in Python."""
    return _scan(data, max_message_size, validate_utf8, True)


def _ack_frame_python(ack_id: int, body: bytes) -> bytes | None:
    """``ack_frame`` in Python."""
    if type(ack_id) is not int or not 0 <= ack_id <= _MAX_ACK_ID:
        return None
    return encode_frame(Opcode.TEXT, b"43%d%b" % (ack_id, body))


def _message_frame_python(text: bytes, mask: bytes) -> bytes:
    """``message_frame`` in Python."""
    if len(mask) != 4:
        raise ValueError(f"a masking key is 4 bytes, got {len(mask)}")
    return encode_frame(Opcode.TEXT, b"4" + text, mask=mask)


class _Versions(NamedTuple):
    scan_events: Scanner[Events]
    scan_packets: Scanner[Packets]
    ack_frame: Callable[[int, bytes], bytes | None]
    message_frame: Callable[[bytes, bytes], bytes]


_PYTHON: Final = _Versions(
    _scan_events_python, _scan_packets_python, _ack_frame_python, _message_frame_python
)


def _compiled() -> _Versions | None:
    if os.environ.get("SOCKETWIRE_NO_SPEEDUPS"):
        return None
    try:
        from socketwire._speedups import ack_frame as c_ack_frame
        from socketwire._speedups import message_frame as c_message_frame
        from socketwire._speedups import scan_events as c_scan_events
        from socketwire._speedups import scan_packets as c_scan_packets
    except ImportError:
        return None
    # The compiled scans take orjson's ``loads`` and the reserved names first.
    return _Versions(
        functools.partial(c_scan_events, _loads, RESERVED_EVENTS),
        functools.partial(c_scan_packets, _loads, RESERVED_EVENTS),
        c_ack_frame,
        c_message_frame,
    )


_compiled_versions = _compiled()
#: Whether the compiled versions are in use.
COMPILED: Final = _compiled_versions is not None
_chosen: Final = _compiled_versions or _PYTHON

#: ``scan_events(data, max_message_size, validate_utf8=True)``: the events of a
#: read of whole masked frames, flat ``[ack_id, data, ...]``, or None (see the
#: module's docstring). A frame's payload over ``max_message_size`` bytes gives
#: None (the general path fails the connection with 1009).
scan_events: Final[Scanner[Events]] = _chosen.scan_events

#: ``scan_packets(data, max_message_size, validate_utf8=True)``: the events and
#: acks on ``/`` of a read of whole unmasked frames (what a client receives),
#: flat ``[ptype, ack_id, data, ...]`` with ``ptype`` 2 (EVENT, ``ack_id`` None
#: when the server asked for no ack) or 3 (ACK), or None (see the module's
#: docstring).
scan_packets: Final[Scanner[Packets]] = _chosen.scan_packets

#: ``ack_frame(ack_id, body)``: the WebSocket frame of the Engine.IO message
#: ``43<ack_id><body>`` (an ack on ``/`` whose arguments are the JSON ``body``),
#: or None for an id outside ``0 .. 2**63 - 1`` (the general encoder takes those).
ack_frame: Final[Callable[[int, bytes], bytes | None]] = _chosen.ack_frame

#: ``message_frame(text, mask)``: the frame a client sends for the Engine.IO
#: message ``4<text>``, masked with the 4-byte ``mask`` (RFC 6455 section 5.3;
#: the caller draws a fresh key for each frame). ``ValueError`` for a key that
#: is not 4 bytes.
message_frame: Final[Callable[[bytes, bytes], bytes]] = _chosen.message_frame
