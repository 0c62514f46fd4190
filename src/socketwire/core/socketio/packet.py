"""Socket.IO v5 packet codec (layer 0: sans-I/O, no asyncio, no sockets).

Implements the "Packet encoding" section of the Socket.IO v5 protocol
(``/work/shared/specs/socket.io-protocol-v5.md``)::

    <packet type>[<# of binary attachments>-][<namespace>,][<acknowledgment id>][JSON payload]

    + binary attachments extracted

Text is UTF-8 ``bytes`` throughout.  The Engine.IO layer adds and strips the
``"4"`` (message) prefix; this codec never sees it.

Encoding: :func:`encode` for any packet, and the hot-path shortcuts
:func:`encode_event` / :func:`encode_ack`, which produce exactly the same bytes.
Each returns ``(text, attachments)``: the text part, and the binary attachments
to send as separate binary Engine.IO messages right after it.

Decoding: :class:`PacketDecoder` is fed the text part with
:meth:`PacketDecoder.feed_text` and then, for BINARY_EVENT / BINARY_ACK, each
attachment with :meth:`PacketDecoder.feed_binary`; the call that completes a
packet returns it.

Errors: anything wrong in received data raises
:class:`~socketwire.errors.RemoteProtocolError` (and resets the decoder); misuse
by our own code (unknown type, payload of the wrong shape, data that is not
JSON-serialisable) raises :class:`~socketwire.errors.LocalProtocolError`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum
from math import isfinite
from typing import Any, Final

import orjson

from socketwire.core.describe import describe
from socketwire.errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "RESERVED_EVENTS",
    "Packet",
    "PacketDecoder",
    "PacketType",
    "encode",
    "encode_ack",
    "encode_event",
]


class PacketType(IntEnum):
    """Socket.IO packet types ("Exchange protocol", table of packet types)."""

    CONNECT = 0
    DISCONNECT = 1
    EVENT = 2
    ACK = 3
    CONNECT_ERROR = 4
    BINARY_EVENT = 5
    BINARY_ACK = 6


@dataclass(slots=True)
class Packet:
    """One Socket.IO packet.

    ``data`` is the decoded JSON payload, ``None`` meaning "no payload" (JSON
    ``null`` is never a valid payload, so there is no ambiguity).  For EVENT
    packets it is ``[event_name, *args]``.  ``id`` is the acknowledgement id.
    In decoded BINARY_EVENT / BINARY_ACK packets the placeholders have been
    replaced by the attachments (``bytes``).
    """

    type: PacketType
    nsp: str = "/"
    data: Any = None
    id: int | None = None


# Event names an EVENT packet may not carry (socket.io-parser's RESERVED_EVENTS).
RESERVED_EVENTS: Final[frozenset[str]] = frozenset(
    {
        "connect",
        "connect_error",
        "disconnect",
        "disconnecting",
        "newListener",
        "removeListener",
    }
)

# An acknowledgement id is any run of decimal digits, as socket.io-parser reads
# it (a JavaScript peer only ever counts up from 0; a longer id is echoed back
# exactly).  The bound keeps int() linear and under CPython's digit limit.
_MAX_ID_DIGITS: Final = 4000
_MAX_ID: Final = 10**_MAX_ID_DIGITS - 1
# More attachment-count digits than this is "too many" whatever the limit.
_MAX_ATTACHMENT_DIGITS: Final = 9

# orjson writes at most this many nested arrays and objects; a payload that
# nests deeper is refused on arrival, since it could not be sent back.
MAX_DEPTH: Final = 254
# A payload shorter than this cannot hold MAX_DEPTH + 1 bracket pairs.
_DEPTH_SCREEN: Final = 2 * MAX_DEPTH + 1

_dumps = orjson.dumps
_NON_STR_KEYS = orjson.OPT_NON_STR_KEYS
_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError

_BINARY_TYPES: Final = (bytes, bytearray, memoryview)
_TYPE_NAMES: Final = tuple(t.name for t in PacketType)
_PACKET_TYPES: Final = tuple(PacketType)
_EVENT: Final = PacketType.EVENT
_ACK: Final = PacketType.ACK

# Byte values used by the decoder.
# What may follow the type / attachment count when no namespace is given: an
# ack id, a payload (every valid one is an array, an object or a string, maybe
# after JSON whitespace), or a misplaced "-" (reported as such).
_NOT_NSP_START: Final = b'0123456789[{" \t\r\n-'
_DIGIT_0: Final = 0x30  # "0"
_DIGIT_9: Final = 0x39  # "9"
_DASH: Final = 0x2D  # "-"
_SLASH: Final = 0x2F  # "/"


# ---------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------


# Validated "<namespace>," header segments, by namespace (bounded: cleared when full).
_NSP_SEGMENTS: dict[str, bytes] = {}
_NSP_SEGMENTS_MAX: Final = 1024


def _nsp_segment(nsp: str) -> bytes:
    """The ``<namespace>,`` part of the header for a namespace other than "/"."""
    if type(nsp) is str:
        segment = _NSP_SEGMENTS.get(nsp)
        if segment is not None:
            return segment
    # "Format": the namespace is only included if it differs from "/"; it is
    # followed by "," which is also its terminator, so it may not contain one.
    if type(nsp) is not str or not nsp.startswith("/"):
        raise LocalProtocolError(f"namespace must be a str starting with '/', got {nsp!r}")
    if "," in nsp:
        raise LocalProtocolError(f"namespace may not contain ',': {nsp!r}")
    try:
        segment = nsp.encode() + b","
    except UnicodeEncodeError:
        raise LocalProtocolError(f"namespace is not encodable as UTF-8: {nsp!r}") from None
    if len(_NSP_SEGMENTS) >= _NSP_SEGMENTS_MAX:
        _NSP_SEGMENTS.clear()
    _NSP_SEGMENTS[nsp] = segment
    return segment


def _check_id(ack_id: object) -> None:
    if type(ack_id) is not int or not 0 <= ack_id <= _MAX_ID:
        raise LocalProtocolError(f"ack id must be an int in [0, {_MAX_ID}], got {ack_id!r}")


def check_event_data(data: object) -> None:
    """EVENT payload: a non-empty array, first element a non-reserved name or a number.

    Raises :class:`LocalProtocolError`; shared with the msgpack parser.
    """
    # "Sending and receiving data": the payload is mandatory and MUST be a
    # non-empty array (first element as socket.io-parser's isPayloadValid).
    if not isinstance(data, (list, tuple)) or not data:
        raise LocalProtocolError(f"EVENT data must be a non-empty list, got {data!r}")
    name = data[0]
    if isinstance(name, str):
        if name in RESERVED_EVENTS:
            raise LocalProtocolError(f"{name!r} is a reserved event name")
    elif not isinstance(name, (int, float)) or isinstance(name, bool):
        raise LocalProtocolError(f"event name must be a str or a number, got {name!r}")


def check_ack_data(data: object) -> None:
    """ACK payload: an array; raises :class:`LocalProtocolError` (shared with msgpack)."""
    # "Acknowledgement": the payload is mandatory and MUST be an array (possibly empty).
    if not isinstance(data, (list, tuple)):
        raise LocalProtocolError(f"ACK data must be a list, got {data!r}")


def _deconstruct(obj: Any, buffers: list[bytes]) -> Any:
    """Copy of ``obj`` with every binary value replaced by a placeholder.

    Depth-first, in list / dict order, as socket.io-parser's deconstructPacket
    ("Packet encoding" > "with multiple attachments": num 0, then 1, ...).
    """
    if isinstance(obj, _BINARY_TYPES):
        num = len(buffers)
        if type(obj) is bytes:
            buffers.append(obj)
        elif isinstance(obj, memoryview):
            buffers.append(obj.tobytes())
        else:
            buffers.append(bytes(obj))
        return {"_placeholder": True, "num": num}
    if isinstance(obj, (list, tuple)):
        return [_deconstruct(item, buffers) for item in obj]
    if isinstance(obj, dict):
        return {key: _deconstruct(value, buffers) for key, value in obj.items()}
    return obj


def _refuse_constant(name: str) -> Any:
    # JSON.parse refuses NaN and Infinity literals; so does the fallback.
    raise ValueError(f"invalid JSON constant {name}")


def _depth(obj: Any) -> int:
    """How many arrays and objects nest in ``obj`` (decoded JSON), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        node, level = stack.pop()
        if type(node) is list:
            children: Any = node
        elif type(node) is dict:
            children = node.values()
        else:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest


def _parse_int(digits: str) -> int | float:
    # As orjson reads an integer: exact within 64 bits, else a double as JSON.parse
    # gives (Infinity past 1.8e308).  An exact int beyond could not be written back
    # by the encoder, and int() refuses more than 4,300 digits.
    if len(digits) <= 20:
        value = int(digits)
        if -(2**63) <= value < 2**64:
            return value
    return float(digits)


def _loads_fallback(text: str) -> Any:
    """The stdlib decoder, for JSON that orjson refuses but JSON.parse accepts:
    escaped lone surrogates (``"\\ud83d"``, as JSON.stringify writes them), text
    that was not UTF-8, integers too large for a double."""
    return json.loads(text, parse_constant=_refuse_constant, parse_int=_parse_int)


def _dumps_fallback(obj: Any) -> bytes:
    """The stdlib encoder, for strings orjson refuses (lone surrogates): with
    ``ensure_ascii`` they are written as escapes, as JSON.stringify does."""
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()


def _dumps_plain(data: Any) -> bytes:
    """JSON of ``data`` (no binary), lone surrogates written as escapes."""
    try:
        return _dumps(data)
    except TypeError as exc:
        if "surrogates" not in str(exc):
            raise LocalProtocolError(f"data is not JSON-serialisable: {exc}") from None
    try:
        return _dumps_fallback(data)
    except (RecursionError, ValueError, TypeError) as exc:
        raise LocalProtocolError(f"data is not JSON-serialisable: {exc}") from None


def _dumps_binary(data: Any) -> tuple[bytes, list[bytes]]:
    """JSON of ``data`` with binary extracted, and the attachments."""
    buffers: list[bytes] = []
    try:
        # Keys that are not exactly ``str`` (a ``StrEnum`` such as a disconnect
        # reason, an int) are written as strings, as JSON.stringify does.
        tree = _deconstruct(data, buffers)
        try:
            body = _dumps(tree, option=_NON_STR_KEYS)
        except TypeError as exc:
            # Off the fast path: only strings orjson refused (lone surrogates,
            # which JSON.stringify writes as escapes) go to the fallback.
            if "surrogates" not in str(exc):
                raise
            body = _dumps_fallback(tree)
    except (RecursionError, ValueError):
        raise LocalProtocolError("data is nested too deeply (or is cyclic)") from None
    except TypeError as exc:
        raise LocalProtocolError(f"data is not JSON-serialisable: {exc}") from None
    return body, buffers


def _encode_args(kind: int, nsp: str, data: Any, ack_id: int | None) -> tuple[bytes, list[bytes]]:
    """Encode an EVENT (kind 2) or ACK (kind 3) whose payload was validated.

    Binary anywhere in ``data`` turns the packet into BINARY_EVENT (5) or
    BINARY_ACK (6) (socket.io-parser's Encoder, "with binary data").
    """
    try:
        # Fast path: no binary, so orjson serialises it in one go; the walk
        # looking for binary only happens when orjson refuses something.
        body = _dumps(data)
    except TypeError as exc:
        body, buffers = _dumps_binary(data)
        if buffers:
            return _binary_header(kind + 3, len(buffers), nsp, ack_id) + body, buffers
        # No binary: keys that are not plain ``str`` (written as strings, as
        # JSON.stringify does) or lone surrogates (the fallback encoder's
        # escapes) may make a refusal of orjson acceptable; the walk's other
        # changes (a tuple becoming a list) must not turn a refusal into a yes.
        if "surrogates" not in str(exc):
            try:
                body = _dumps(data, option=_NON_STR_KEYS)
            except TypeError:
                raise LocalProtocolError(f"data is not JSON-serialisable: {exc}") from None
    # "Format": <type>[<namespace>,][<id>]<JSON>
    if nsp == "/":
        if ack_id is None:
            return (b"2" if kind == 2 else b"3") + body, []
        _check_id(ack_id)
        return b"%d%d%b" % (kind, ack_id, body), []
    segment = _nsp_segment(nsp)
    if ack_id is None:
        return b"%d%b%b" % (kind, segment, body), []
    _check_id(ack_id)
    return b"%d%b%d%b" % (kind, segment, ack_id, body), []


def _binary_header(ptype: int, count: int, nsp: str, ack_id: int | None) -> bytes:
    # "Format": <type><# of binary attachments>-[<namespace>,][<id>]
    head = b"%d%d-" % (ptype, count)
    if nsp != "/":
        head += _nsp_segment(nsp)
    if ack_id is not None:
        _check_id(ack_id)
        head += b"%d" % ack_id
    return head


def encode_event(nsp: str, data: list[Any], ack_id: int | None = None) -> tuple[bytes, list[bytes]]:
    """Encode an EVENT packet ``data = [event_name, *args]``.

    Returns exactly what ``encode(Packet(PacketType.EVENT, nsp, data, ack_id))``
    returns: a BINARY_EVENT with its attachments when ``data`` holds binary.
    """
    # Hot path (once per emit / broadcast): checks and header inlined.
    if type(data) is not list or not data or type(data[0]) is not str or data[0] in RESERVED_EVENTS:
        check_event_data(data)
    if nsp == "/":
        try:
            # No binary: orjson serialises it in one go.  Only when orjson
            # refuses something is the data walked looking for binary.
            body = _dumps(data)
        except TypeError:
            return _encode_args(2, nsp, data, ack_id)
        # "Format": <type>[<id>]<JSON> (namespace "/" omitted)
        if ack_id is None:
            return b"2" + body, []
        if type(ack_id) is int and 0 <= ack_id <= _MAX_ID:
            return b"2%d%b" % (ack_id, body), []
    return _encode_args(2, nsp, data, ack_id)


def encode_ack(nsp: str, data: list[Any], ack_id: int) -> tuple[bytes, list[bytes]]:
    """Encode an ACK packet answering ``ack_id`` with the arguments ``data``.

    Returns exactly what ``encode(Packet(PacketType.ACK, nsp, data, ack_id))``
    returns: a BINARY_ACK with its attachments when ``data`` holds binary.
    """
    # Hot path (once per acknowledgement): checks and header inlined.
    if type(data) is not list:
        check_ack_data(data)
    if nsp == "/" and type(ack_id) is int and 0 <= ack_id <= _MAX_ID:
        try:
            body = _dumps(data)
        except TypeError:
            return _encode_args(3, nsp, data, ack_id)
        return b"3%d%b" % (ack_id, body), []
    if ack_id is None:
        raise LocalProtocolError("an ACK packet needs an ack id")
    return _encode_args(3, nsp, data, ack_id)


def encode(packet: Packet) -> tuple[bytes, list[bytes]]:
    """Encode any packet into ``(text, attachments)``.

    EVENT / ACK packets holding binary (``bytes``, ``bytearray`` or
    ``memoryview``, at any depth in lists, tuples and dict values) are sent as
    BINARY_EVENT / BINARY_ACK.  BINARY_EVENT / BINARY_ACK packets are always
    sent as such, even with no binary (``"50-[...]"``).
    """
    ptype = packet.type
    if type(ptype) is not PacketType and (type(ptype) is not int or not 0 <= ptype <= 6):
        raise LocalProtocolError(f"unknown packet type {ptype!r}")
    kind = int(ptype)
    nsp = packet.nsp
    data = packet.data
    ack_id = packet.id

    if kind == 2 or kind == 5:  # EVENT, BINARY_EVENT
        check_event_data(data)
    elif kind == 3 or kind == 6:  # ACK, BINARY_ACK
        check_ack_data(data)
        if ack_id is None:
            raise LocalProtocolError(f"a {_TYPE_NAMES[kind]} packet needs an ack id")

    if kind == 2 or kind == 3:
        return _encode_args(kind, nsp, data, ack_id)
    if kind == 5 or kind == 6:
        body, buffers = _dumps_binary(data)
        return _binary_header(kind, len(buffers), nsp, ack_id) + body, buffers

    # CONNECT, DISCONNECT, CONNECT_ERROR (payload rules of socket.io-parser's
    # isPayloadValid; "Connection to a namespace").
    if kind == 0:
        if data is not None and not isinstance(data, dict):
            raise LocalProtocolError(f"CONNECT data must be a dict or None, got {data!r}")
    elif kind == 1:
        if data is not None:
            raise LocalProtocolError(f"a DISCONNECT packet has no data, got {data!r}")
    elif data is not None and not isinstance(data, (str, dict)):
        raise LocalProtocolError(f"CONNECT_ERROR data must be a str or a dict, got {data!r}")

    # "Format": <type>[<namespace>,][<id>][<JSON>]
    head = b"%d" % kind
    if nsp != "/":
        head += _nsp_segment(nsp)
    if ack_id is not None:
        _check_id(ack_id)
        head += b"%d" % ack_id
    if data is None:
        return head, []
    return head + _dumps_plain(data), []


# ---------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------


def _is_event_payload(payload: Any) -> bool:
    # isPayloadValid, EVENT / BINARY_EVENT: a non-empty array whose first
    # element is a number or a string that is not a reserved event name.
    if type(payload) is not list or not payload:
        return False
    name = payload[0]
    t = type(name)
    if t is str:
        return name not in RESERVED_EVENTS
    # A number that is not finite (1e400) could not be sent back as a name: JSON
    # has no Infinity (JSON.stringify writes null, which names no event).
    return t is int or (t is float and isfinite(name))


def _is_payload_valid(ptype: int, payload: Any) -> bool:
    """socket.io-parser's Decoder.isPayloadValid, for a payload that is present."""
    if ptype == 2 or ptype == 5:  # EVENT, BINARY_EVENT
        return _is_event_payload(payload)
    if ptype == 3 or ptype == 6:  # ACK, BINARY_ACK
        return type(payload) is list
    if ptype == 0:  # CONNECT: an object
        return type(payload) is dict
    if ptype == 4:  # CONNECT_ERROR: a string or an object
        return type(payload) is str or type(payload) is dict
    return False  # DISCONNECT: no payload at all


_Slot = tuple[list[Any] | dict[str, Any], Any, int]


def _find_placeholders(data: Any, count: int) -> list[_Slot]:
    """Every placeholder in ``data`` as (container, key, num), validated.

    A placeholder is a dict whose ``"_placeholder"`` is ``true`` (as
    socket.io-parser's reconstructPacket); its ``"num"`` must be an integer
    indexing one of the ``count`` attachments.  Iterative, so deep nesting
    cannot overflow the Python stack.
    """
    slots: list[_Slot] = []
    stack: list[Any] = [data]
    while stack:
        node = stack.pop()
        items: Any = enumerate(node) if type(node) is list else node.items()
        for key, value in items:
            t = type(value)
            if t is dict:
                if value.get("_placeholder") is True:
                    num = value.get("num")
                    if type(num) is not int or not 0 <= num < count:
                        raise RemoteProtocolError(
                            f"invalid attachment placeholder {value!r} "
                            f"(packet has {count} attachment(s))"
                        )
                    slots.append((node, key, num))
                else:
                    stack.append(value)
            elif t is list:
                stack.append(value)
    return slots


# A decoder's attachments while no binary packet is being reassembled: shared,
# immutable empties (a decoder takes fresh lists when a binary packet begins).
_IDLE_BUFFERS: Final[tuple[()]] = ()
_IDLE_SLOTS: Final[tuple[()]] = ()


class PacketDecoder:
    """Incremental decoder for one connection's Socket.IO packets.

    ``feed_text`` takes one text packet (without the Engine.IO ``"4"``) and
    returns the :class:`Packet`, or ``None`` for a BINARY_EVENT / BINARY_ACK
    that announces attachments; those then come through ``feed_binary``, the
    one completing the packet returning it.  Any error raises
    :class:`~socketwire.errors.RemoteProtocolError` and resets the decoder.
    """

    __slots__ = ("_buffers", "_expected", "_max_attachments", "_pending", "_slots")

    def __init__(self, *, max_attachments: int = 10) -> None:
        if type(max_attachments) is not int or max_attachments < 0:
            raise ValueError(f"max_attachments must be an int >= 0, got {max_attachments!r}")
        self._max_attachments = max_attachments
        self._pending: Packet | None = None
        self._expected = 0
        # Shared empty stand-ins while no binary packet is being reassembled
        # (nearly always): no per-connection lists for the cycle collector.
        self._buffers: list[bytes] | tuple[()] = _IDLE_BUFFERS
        self._slots: list[_Slot] | tuple[()] = _IDLE_SLOTS

    @property
    def awaiting_attachments(self) -> bool:
        """Whether a binary packet is waiting for more attachments."""
        return self._pending is not None

    def reset(self) -> None:
        """Drop any partially received binary packet."""
        self._pending = None
        self._expected = 0
        self._buffers = _IDLE_BUFFERS
        self._slots = _IDLE_SLOTS

    def _decode_fallback(self, text: bytes) -> Any:
        """JSON that orjson refused: accepted when JSON.parse would accept it.

        Bytes that are not UTF-8 read as U+FFFD, as Node reads an HTTP body
        (over WebSocket, a text frame that is not UTF-8 never gets here).
        """
        try:
            return _loads_fallback(text.decode("utf-8", "replace"))
        except RecursionError:  # deeper than orjson's 1,024 levels too
            raise self._fail(f"payload nested deeper than {MAX_DEPTH} levels") from None
        except ValueError as fallback_exc:
            raise self._fail(f"invalid JSON payload: {fallback_exc}") from None

    def _check_depth(self, text: bytes, payload: Any) -> None:
        """Refuse a payload nested deeper than the encoder can write back."""
        # Screen: without MAX_DEPTH + 1 opening brackets nothing nests that deep.
        if text.count(b"[") + text.count(b"{") <= MAX_DEPTH:
            return
        try:
            _dumps(payload)  # in C: refuses past MAX_DEPTH levels
            return
        except TypeError as exc:
            # Decoded JSON is refused for its depth or for a lone surrogate
            # (met first); only the latter needs the walk.
            if "surrogates" in str(exc) and _depth(payload) <= MAX_DEPTH:
                return
        raise self._fail(f"payload nested deeper than {MAX_DEPTH} levels")

    def _fail(self, message: str) -> RemoteProtocolError:
        self.reset()
        return RemoteProtocolError(message)

    def feed_text(self, data: bytes) -> Packet | None:
        """Decode one text packet; ``None`` if it awaits binary attachments."""
        if self._pending is not None:
            # socket.io-parser: "got plaintext data when reconstructing a packet"
            raise self._fail(
                f"text packet received while {self._expected - len(self._buffers)} "
                "binary attachment(s) are still awaited"
            )
        # Fast path: "2[...]" / "2<id>[...]", an EVENT on "/" (the bulk of
        # traffic).  Anything unusual, including every error, falls through
        # to the general decoder, which gives the precise error message.
        if data and (data[0] == 0x32 or data[0] == 0x33):  # "2" EVENT, "3" ACK
            k = data.find(b"[")
            if k == 1:
                ack_id: int | None = None
            elif 1 < k <= _MAX_ID_DIGITS + 1:
                head = data[1:k]
                if not head.isdigit():
                    return self._decode(data)
                ack_id = int(head)
            else:
                return self._decode(data)
            try:
                payload = _loads(data[k:])  # JSON text starting with "[": a list
            except _JSONDecodeError:
                return self._decode(data)
            if len(data) > _DEPTH_SCREEN:
                self._check_depth(data, payload)
            if data[0] == 0x32:
                # isPayloadValid, EVENT: non-empty array, first element a
                # number or a non-reserved string.
                if payload:
                    name = payload[0]
                    t = type(name)
                    if (t is str and name not in RESERVED_EVENTS) or t is int:
                        return Packet(_EVENT, "/", payload, ack_id)
            elif ack_id is not None:
                # isPayloadValid, ACK: an array; the id is required.
                return Packet(_ACK, "/", payload, ack_id)
        return self._decode(data)

    def _decode(self, data: bytes) -> Packet | None:
        """The general decoder, following socket.io-parser's decodeString."""
        n = len(data)
        if n == 0:
            raise self._fail("empty packet")
        # "Format": <packet type>, one digit.
        ptype = data[0] - _DIGIT_0
        if not 0 <= ptype <= 6:
            raise self._fail(f"unknown packet type {data[:1]!r}")
        type_name = _TYPE_NAMES[ptype]
        binary = ptype >= 5
        i = 1

        # [<# of binary attachments>-], for BINARY_EVENT / BINARY_ACK only.
        attachments = 0
        if binary:
            j = i
            while j < n and _DIGIT_0 <= data[j] <= _DIGIT_9:
                j += 1
            if j == i:
                raise self._fail(f"{type_name} packet without an attachment count")
            if j == n or data[j] != _DASH:
                raise self._fail(f"{type_name} attachment count {data[i:j]!r} not followed by '-'")
            if j - i > _MAX_ATTACHMENT_DIGITS:
                raise self._fail(f"too many attachments: {data[i:j]!r}")
            attachments = int(data[i:j])
            if attachments > self._max_attachments:
                raise self._fail(f"too many attachments: {attachments} > {self._max_attachments}")
            i = j + 1

        # [<namespace>,]: starts with "/", runs up to "," or the end.
        nsp = "/"
        if i < n and data[i] == _SLASH:
            j = data.find(b",", i)
            if j < 0:
                j = n
            # Not UTF-8: U+FFFD, as Node reads an HTTP body (no such namespace).
            nsp = data[i:j].decode("utf-8", "replace")
            i = j + 1
        elif i < n and data[i] not in _NOT_NSP_START:
            # Something like "admin," where the namespace would be: neither an
            # ack id nor the start of a payload, so a namespace missing its "/".
            comma = data.find(b",", i)
            if comma > 0:
                raise self._fail(f"namespace must start with '/': {data[i:comma]!r}")

        # [<acknowledgment id>]: digits only.
        ack_id: int | None = None
        j = i
        while j < n and _DIGIT_0 <= data[j] <= _DIGIT_9:
            j += 1
        if j > i:
            if j - i > _MAX_ID_DIGITS:
                raise self._fail(f"ack id too long ({j - i} digits > {_MAX_ID_DIGITS})")
            ack_id = int(data[i:j])
            i = j
        elif ptype == 3 or ptype == 6:
            raise self._fail(f"{type_name} packet without an ack id")

        if i < n and data[i] == _DASH:
            if binary:
                raise self._fail(f"unexpected '-' in {type_name} packet header")
            raise self._fail(f"attachment count on non-binary packet type {type_name}")

        # [JSON-stringified payload]
        payload: Any = None
        if i < n:
            try:
                payload = _loads(data[i:])
            except _JSONDecodeError:
                payload = self._decode_fallback(data[i:])
            if n - i > _DEPTH_SCREEN:
                self._check_depth(data[i:], payload)
            if not _is_payload_valid(ptype, payload):
                raise self._fail(f"invalid {type_name} payload: {describe(payload)}")
        elif ptype == 2 or ptype == 3 or binary:
            raise self._fail(f"{type_name} packet without a payload")

        packet = Packet(_PACKET_TYPES[ptype], nsp, payload, ack_id)
        if not binary:
            return packet
        # Placeholders are checked now, so a bad one fails before any attachment.
        slots = _find_placeholders(payload, attachments)
        if attachments == 0:
            return packet
        self._pending = packet
        self._expected = attachments
        self._buffers = []
        self._slots = slots
        return None

    def feed_binary(self, data: bytes) -> Packet | None:
        """Take one attachment; returns the packet once the last one arrived."""
        buffers = self._buffers
        # Reassembling exactly when the decoder holds a list of its own (idle, the
        # shared empty tuple): this test also tells the type checker.
        if type(buffers) is not list:
            # socket.io-parser: "got binary data when not reconstructing a packet"
            raise self._fail("binary attachment received while no packet awaits one")
        buffers.append(data if type(data) is bytes else bytes(data))
        if len(buffers) < self._expected:
            return None
        packet = self._pending
        for container, key, num in self._slots:
            container[key] = buffers[num]
        self.reset()
        return packet
