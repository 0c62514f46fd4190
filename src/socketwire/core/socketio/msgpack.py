"""The msgpack parser: socket.io-msgpack-parser 3.0.2's format (layer 0: sans-I/O).

Every Socket.IO packet travels as ONE binary Engine.IO message holding a
msgpack map (socket.io-msgpack-parser hands the packet object to notepack.io)::

    {"type": <0..4>, "data": <payload>, "nsp": <namespace>, "id": <ack id>}

Format facts (as the npm package writes and reads them):

* keys are written in the packet object's insertion order; this encoder always
  writes ``type, data, nsp, id`` (the order of the npm server's broadcasts),
  leaving out ``data`` when there is no payload and ``id`` when there is no
  acknowledgement id.  The npm peers use other orders for some packets (the
  client writes ``type, data, options, id, nsp`` for an event), so the decoder
  takes the keys in any order;
* binary stays inline as msgpack ``bin``: no attachments, no placeholders, and
  the type stays EVENT / ACK (BINARY_EVENT / BINARY_ACK do not exist here);
* the client adds ``"options": {"compress": ...}`` to the events it sends: the
  decoder accepts (and ignores) an ``options`` key; any other key is an error;
* notepack.io writes JavaScript ``undefined`` as the ext ``d4 00 00`` (the client
  sends ``"data": undefined`` in a CONNECT without auth), a ``Date`` as the ext
  ``d7 00`` + milliseconds (int64), and, under Node, an ``ArrayBuffer`` /
  typed array as an ext of type 0 (``c7``/``c8``/``c9``); other ext types decode
  to ``[type, data]``.

Decoding follows those rules: ``undefined`` is "absent" (dropped from maps,
``None`` in arrays, as JSON would do), a ``Date`` becomes an aware UTC
``datetime``, an ext-0 ``ArrayBuffer`` becomes ``bytes``, ``bin`` becomes
``bytes``; a msgpack timestamp (ext -1, never written by notepack.io) becomes a
``datetime`` too.  The packet is then validated as the npm decoder does (type an
integer 0-4, ``nsp`` a string, ``id`` absent or an integer) plus socket.io's
payload rules (CONNECT: absent or a map; DISCONNECT: absent; CONNECT_ERROR: a
string or a map; EVENT: a non-empty array whose first element is a
non-reserved string or a number; ACK: an array).  Map keys must be strings.
Anything else raises :class:`~socketwire.errors.RemoteProtocolError`.

Encoding takes ``str``, ``int`` (64-bit), ``float``, ``bool``, ``None``,
``list``/``tuple``, ``dict`` with ``str`` keys, ``bytes``/``bytearray``/
``memoryview`` (as ``bin``) and aware ``datetime`` (as a notepack ``Date``);
anything else raises :class:`~socketwire.errors.LocalProtocolError`.
"""

from __future__ import annotations

import re
import struct
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import msgpack  # type: ignore[import-untyped]
import orjson

from socketwire.core.socketio import packet as packet_module
from socketwire.core.socketio.packet import (
    RESERVED_EVENTS,
    Packet,
    PacketType,
    check_ack_data,
    check_event_data,
)
from socketwire.errors import LocalProtocolError, RemoteProtocolError

__all__ = ["MSGPACK_PARSER", "MsgpackDecoder", "MsgpackParser", "pack", "unpack"]

_PACKET_TYPES: Final = tuple(PacketType)
_EVENT: Final = PacketType.EVENT
_ACK: Final = PacketType.ACK

_INT_MIN: Final = -(2**63)
_INT_MAX: Final = 2**64 - 1  # msgpack's integer range: int64 and uint64
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND: Final = timedelta(milliseconds=1)

_BINARY_TYPES: Final = (bytes, bytearray, memoryview)


class _Undefined:
    """JavaScript ``undefined`` while decoding (never left in a decoded packet)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "undefined"


_UNDEFINED: Final = _Undefined()


# ---------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------

_packer = msgpack.Packer(use_bin_type=True, autoreset=True)
_pack = _packer.pack
_dumps = orjson.dumps


def _json_default(obj: Any) -> None:
    # orjson only validates (see _pack_data); binary is msgpack's business.
    if isinstance(obj, _BINARY_TYPES):
        return None
    raise TypeError(f"Type is not serialisable: {type(obj).__name__}")


def _packable(obj: Any) -> Any:
    """``obj`` with every datetime turned into notepack's ``Date`` ext (type 0)."""
    if isinstance(obj, datetime):
        if obj.tzinfo is None or obj.utcoffset() is None:
            raise LocalProtocolError(f"datetime must be timezone-aware, got {obj!r}")
        ms = (obj - _EPOCH) // _MILLISECOND  # years 1-9999: always within int64
        return msgpack.ExtType(0, ms.to_bytes(8, "big", signed=True))
    if isinstance(obj, (list, tuple)):
        return [_packable(item) for item in obj]
    if isinstance(obj, dict):
        return {key: _packable(value) for key, value in obj.items()}
    return obj


def _pack_data(data: Any) -> bytes:
    """The msgpack of a payload, validated.

    orjson, run first, refuses what msgpack would take but a Socket.IO peer
    could not read back: non-str map keys.  It also stops integers beyond 64
    bits, unsupported types and cycles, all at C speed.
    """
    try:
        _dumps(data, default=_json_default)
    except TypeError as exc:
        raise LocalProtocolError(f"data is not msgpack-serialisable: {exc}") from None
    try:
        return _pack(data)  # type: ignore[no-any-return]
    except (TypeError, ValueError, OverflowError):
        pass  # something orjson takes and msgpack does not, such as a datetime
    try:
        return _pack(_packable(data))  # type: ignore[no-any-return]
    except (TypeError, ValueError, OverflowError) as exc:
        raise LocalProtocolError(f"data is not msgpack-serialisable: {exc}") from None


# Map headers and keys, pre-packed.
_MAP: Final = (b"", b"", b"\x82", b"\x83", b"\x84")
_KEY_TYPE: Final = b"\xa4type"
_KEY_DATA: Final = b"\xa4data"
_KEY_NSP: Final = b"\xa3nsp"
_KEY_ID: Final = b"\xa2id"
# "type" key and value, then "data" key, for EVENT / ACK.
_EVENT_HEAD3: Final = b"\x83" + _KEY_TYPE + b"\x02" + _KEY_DATA
_EVENT_HEAD4: Final = b"\x84" + _KEY_TYPE + b"\x02" + _KEY_DATA
_ACK_HEAD: Final = b"\x84" + _KEY_TYPE + b"\x03" + _KEY_DATA

# Validated "nsp" entries (key and packed value), by namespace (bounded).
_NSP_ENTRIES: dict[str, bytes] = {"/": _KEY_NSP + b"\xa1/"}
_NSP_ENTRIES_MAX: Final = 1024


def _nsp_entry(nsp: Any) -> bytes:
    if type(nsp) is not str:
        raise LocalProtocolError(f"namespace must be a str, got {nsp!r}")
    try:
        entry: bytes = _KEY_NSP + _pack(nsp)
    except ValueError:
        raise LocalProtocolError(f"namespace is not encodable as UTF-8: {nsp!r}") from None
    if len(_NSP_ENTRIES) >= _NSP_ENTRIES_MAX:
        _NSP_ENTRIES.clear()
        _NSP_ENTRIES["/"] = _KEY_NSP + b"\xa1/"
    _NSP_ENTRIES[nsp] = entry
    return entry


def _id_entry(ack_id: Any) -> bytes:
    if type(ack_id) is not int or not _INT_MIN <= ack_id <= _INT_MAX:
        raise LocalProtocolError(f"ack id must be a 64-bit int, got {ack_id!r}")
    if 0 <= ack_id < 0x80:
        return _KEY_ID + _SMALL_INTS[ack_id]
    return _KEY_ID + _pack(ack_id)  # type: ignore[no-any-return]


_SMALL_INTS: Final = tuple(bytes((i,)) for i in range(0x80))


def encode_event(nsp: str, data: list[Any], ack_id: int | None = None) -> tuple[bytes, list[bytes]]:
    """Encode an EVENT ``data = [event_name, *args]``: ``(b"", [msgpack])``."""
    # Hot path (once per emit / broadcast): _pack_data inlined.
    if type(data) is not list or not data or type(data[0]) is not str or data[0] in RESERVED_EVENTS:
        check_event_data(data)
    try:
        _dumps(data, default=_json_default)
        body = _pack(data)
    except (TypeError, ValueError, OverflowError):
        body = _pack_data(data)  # the precise error, or a datetime
    entry = _NSP_ENTRIES.get(nsp) if type(nsp) is str else None
    if entry is None:
        entry = _nsp_entry(nsp)
    if ack_id is None:
        return b"", [b"".join((_EVENT_HEAD3, body, entry))]
    return b"", [b"".join((_EVENT_HEAD4, body, entry, _id_entry(ack_id)))]


def encode_ack(nsp: str, data: list[Any], ack_id: int) -> tuple[bytes, list[bytes]]:
    """Encode an ACK answering ``ack_id`` with the arguments ``data``: ``(b"", [msgpack])``."""
    if type(data) is not list:  # hot path (once per acknowledgement)
        check_ack_data(data)
    if ack_id is None:
        raise LocalProtocolError("an ACK packet needs an ack id")
    try:
        _dumps(data, default=_json_default)
        body = _pack(data)
    except (TypeError, ValueError, OverflowError):
        body = _pack_data(data)  # the precise error, or a datetime
    entry = _NSP_ENTRIES.get(nsp) if type(nsp) is str else None
    if entry is None:
        entry = _nsp_entry(nsp)
    return b"", [b"".join((_ACK_HEAD, body, entry, _id_entry(ack_id)))]


def encode(packet: Packet) -> tuple[bytes, list[bytes]]:
    """Encode any packet: ``(b"", [msgpack])``.

    BINARY_EVENT / BINARY_ACK are written as EVENT / ACK (this format has no
    binary types: binary is inline).
    """
    ptype = packet.type
    if type(ptype) is not PacketType and (type(ptype) is not int or not 0 <= ptype <= 6):
        raise LocalProtocolError(f"unknown packet type {ptype!r}")
    kind = int(ptype)
    if kind >= 5:
        kind -= 3
    data = packet.data
    ack_id = packet.id
    if kind == 2:
        check_event_data(data)
    elif kind == 3:
        check_ack_data(data)
        if ack_id is None:
            raise LocalProtocolError("an ACK packet needs an ack id")
    elif kind == 0:
        if data is not None and not isinstance(data, dict):
            raise LocalProtocolError(f"CONNECT data must be a dict or None, got {data!r}")
    elif kind == 1:
        if data is not None:
            raise LocalProtocolError(f"a DISCONNECT packet has no data, got {data!r}")
    elif not isinstance(data, (str, dict)):
        # socket.io-msgpack-parser refuses a CONNECT_ERROR without a payload.
        raise LocalProtocolError(f"CONNECT_ERROR data must be a str or a dict, got {data!r}")

    nsp = packet.nsp
    entry = _NSP_ENTRIES.get(nsp) if type(nsp) is str else None
    if entry is None:
        entry = _nsp_entry(nsp)
    parts = [_MAP[2 + (data is not None) + (ack_id is not None)], _KEY_TYPE, _SMALL_INTS[kind]]
    if data is not None:
        parts += (_KEY_DATA, _pack_data(data))
    parts.append(entry)
    if ack_id is not None:
        parts.append(_id_entry(ack_id))
    return b"", [b"".join(parts)]


# ---------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------


class _Ambiguous(Exception):
    """An ext of type 0 whose meaning depends on its header (fixext or ext 8/16/32)."""


class _NeedExact(Exception):
    """The byte patterns do not tell which header an ambiguous ext had."""


class _BadKey(Exception):
    pass


# Lengths a fixext can have, and its header byte for each.
_FIXEXT: Final = {1: 0xD4, 2: 0xD5, 4: 0xD6, 8: 0xD7, 16: 0xD8}
# Any bin or ext header byte: a map key may then be bytes, which is refused.
_BIN_OR_EXT: Final = re.compile(b"[\xc4-\xc9]")
_MAX_DEPTH: Final = 1024  # as many nested containers as the msgpack C unpacker takes


def _date(payload: bytes) -> datetime:
    """notepack's Date: int64 milliseconds since the epoch."""
    ms = int.from_bytes(payload, "big", signed=True)
    try:
        return _EPOCH + timedelta(milliseconds=ms)
    except OverflowError:
        raise RemoteProtocolError(f"Date out of range: {ms} ms") from None


def _ext_fast(code: int, payload: bytes) -> Any:
    """ext_hook of the first pass: everything that needs no header."""
    if code == 0:
        if len(payload) in _FIXEXT:
            raise _Ambiguous
        return payload  # ext 8/16/32 of type 0: an ArrayBuffer
    return [code, payload]


def _check_keys(obj: dict[Any, Any]) -> dict[Any, Any]:
    for key in obj:
        if type(key) is not str:
            raise _BadKey(key)
    return obj


def _unpack_fast(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, timestamp=3, ext_hook=_ext_fast)


def _unpack_fast_keys(data: bytes) -> Any:
    return msgpack.unpackb(
        data, raw=False, timestamp=3, ext_hook=_ext_fast, object_hook=_check_keys
    )


def _unpack_resolving(data: bytes) -> Any:
    """Second pass: an ambiguous ext of type 0 is resolved from the bytes.

    notepack.io writes ``undefined`` as fixext 1 (``d4 00 00``) and ``Date`` as
    fixext 8 (``d7 00``), but an ArrayBuffer of 1 or 8 bytes as ext 8
    (``c7 01 00`` ...): the same ``ExtType`` for the C unpacker.  When only one
    of the two header patterns occurs in the message, it tells; otherwise the
    exact (pure Python) decoder decides.
    """
    verdicts: dict[int, bool] = {}  # length -> is a fixext
    undefined = False

    def hook(code: int, payload: bytes) -> Any:
        nonlocal undefined
        if code != 0:
            return [code, payload]
        n = len(payload)
        head = _FIXEXT.get(n)
        if head is None:
            return payload
        fixext = verdicts.get(n)
        if fixext is None:
            has_fix = bytes((head, 0)) in data
            has_ext = (
                bytes((0xC7, n, 0)) in data
                or bytes((0xC8, 0, n, 0)) in data
                or bytes((0xC9, 0, 0, 0, n, 0)) in data
            )
            if has_fix == has_ext:
                raise _NeedExact
            fixext = verdicts[n] = has_fix
        if not fixext:
            return payload
        if n == 1:
            undefined = True
            return _UNDEFINED
        if n == 8:
            return _date(payload)
        return [0, payload]

    try:
        obj = msgpack.unpackb(data, raw=False, timestamp=3, ext_hook=hook, object_hook=_check_keys)
    except _NeedExact:
        return _unpack_exact(data)
    if undefined:
        _drop_undefined(obj)
    return obj


def _drop_undefined(root: Any) -> None:
    """Drop ``undefined`` from maps and make it None in arrays, in place."""
    stack = [root]
    while stack:
        node = stack.pop()
        if type(node) is dict:
            gone = [key for key, value in node.items() if value is _UNDEFINED]
            for key in gone:
                del node[key]
            stack.extend(v for v in node.values() if type(v) is dict or type(v) is list)
        elif type(node) is list:
            for i, value in enumerate(node):
                if value is _UNDEFINED:
                    node[i] = None
                elif type(value) is dict or type(value) is list:
                    stack.append(value)


_UNPACK_INT: Final = {
    0xCC: struct.Struct(">B").unpack_from,
    0xCD: struct.Struct(">H").unpack_from,
    0xCE: struct.Struct(">I").unpack_from,
    0xCF: struct.Struct(">Q").unpack_from,
    0xD0: struct.Struct(">b").unpack_from,
    0xD1: struct.Struct(">h").unpack_from,
    0xD2: struct.Struct(">i").unpack_from,
    0xD3: struct.Struct(">q").unpack_from,
    0xCA: struct.Struct(">f").unpack_from,
    0xCB: struct.Struct(">d").unpack_from,
}
_INT_SIZE: Final = {
    0xCC: 1,
    0xCD: 2,
    0xCE: 4,
    0xCF: 8,
    0xD0: 1,
    0xD1: 2,
    0xD2: 4,
    0xD3: 8,
    0xCA: 4,
    0xCB: 8,
}
# Header byte -> size of the length field (str, bin, array, map, ext).
_LEN_SIZE: Final = {
    0xD9: 1,
    0xDA: 2,
    0xDB: 4,
    0xC4: 1,
    0xC5: 2,
    0xC6: 4,
    0xDC: 2,
    0xDD: 4,
    0xDE: 2,
    0xDF: 4,
    0xC7: 1,
    0xC8: 2,
    0xC9: 4,
}


class _Truncated(Exception):
    pass


def _ext_exact(code: int, payload: bytes, fixext: bool) -> Any:
    """notepack.io's reading of an ext (and msgpack's timestamp, ext -1)."""
    if code == -1:
        try:
            return msgpack.Timestamp.from_bytes(payload).to_datetime()
        except (ValueError, OverflowError) as exc:
            raise RemoteProtocolError(f"invalid msgpack timestamp: {exc}") from None
    if code != 0:
        return [code, payload]
    if not fixext:
        return payload  # ArrayBuffer
    n = len(payload)
    if n == 1:
        return _UNDEFINED
    if n == 8:
        return _date(payload)
    return [0, payload]


def _unpack_exact(data: bytes) -> Any:
    """A pure Python msgpack decoder that knows every header (the slow path).

    Same results and limits as the C path: str keys only, strict UTF-8, at
    most 1024 nested containers, no trailing bytes; ``undefined`` already
    dropped from maps (None in arrays).
    """
    n = len(data)
    pos = 0
    # Open containers: [container, items still expected, pending map key or None].
    stack: list[list[Any]] = []
    try:
        while True:
            b = data[pos]
            pos += 1
            value: Any
            count = -1  # >= 0: a container header
            is_map = False
            if b < 0x80:
                value = b
            elif b >= 0xE0:
                value = b - 0x100
            elif b < 0x90:
                count = b & 0x0F
                is_map = True
            elif b < 0xA0:
                count = b & 0x0F
            elif b < 0xC0:
                size = b & 0x1F
                if pos + size > n:
                    raise _Truncated
                value = data[pos : pos + size].decode()
                pos += size
            elif b == 0xC0:
                value = None
            elif b == 0xC2:
                value = False
            elif b == 0xC3:
                value = True
            elif b in _INT_SIZE:
                if pos + _INT_SIZE[b] > n:
                    raise _Truncated
                value = _UNPACK_INT[b](data, pos)[0]
                pos += _INT_SIZE[b]
            elif b in _LEN_SIZE:
                width = _LEN_SIZE[b]
                if pos + width > n:
                    raise _Truncated
                size = int.from_bytes(data[pos : pos + width], "big")
                pos += width
                if b >= 0xDC:  # array 16/32, map 16/32
                    count = size
                    is_map = b >= 0xDE
                elif b >= 0xD9:  # str 8/16/32
                    if pos + size > n:
                        raise _Truncated
                    value = data[pos : pos + size].decode()
                    pos += size
                elif b <= 0xC6:  # bin 8/16/32
                    if pos + size > n:
                        raise _Truncated
                    value = data[pos : pos + size]
                    pos += size
                else:  # ext 8/16/32
                    if pos + 1 + size > n:
                        raise _Truncated
                    code = data[pos] - 0x100 if data[pos] >= 0x80 else data[pos]
                    value = _ext_exact(code, data[pos + 1 : pos + 1 + size], False)
                    pos += 1 + size
            elif 0xD4 <= b <= 0xD8:  # fixext 1/2/4/8/16
                size = 1 << (b - 0xD4)
                if pos + 1 + size > n:
                    raise _Truncated
                code = data[pos] - 0x100 if data[pos] >= 0x80 else data[pos]
                value = _ext_exact(code, data[pos + 1 : pos + 1 + size], True)
                pos += 1 + size
            else:  # 0xC1: never used
                raise RemoteProtocolError(f"invalid msgpack: byte 0x{b:02x} at {pos - 1}")

            if count >= 0:
                if len(stack) >= _MAX_DEPTH:
                    raise RemoteProtocolError("invalid msgpack: nested too deeply")
                container: Any = {} if is_map else []
                if count > 0:
                    stack.append([container, count * 2 if is_map else count, None])
                    continue
                value = container

            # Put the value in its container; completed containers go up.
            while True:
                if not stack:
                    if pos != n:
                        raise RemoteProtocolError(f"invalid msgpack: {n - pos} trailing byte(s)")
                    return value
                frame = stack[-1]
                container = frame[0]
                frame[1] -= 1
                if type(container) is list:
                    container.append(None if value is _UNDEFINED else value)
                elif frame[1] % 2:  # a key
                    if type(value) is not str:
                        raise RemoteProtocolError(
                            f"invalid msgpack map key {_short(value)}: keys must be strings"
                        )
                    frame[2] = value
                else:
                    if value is _UNDEFINED:
                        container.pop(frame[2], None)
                    else:
                        container[frame[2]] = value
                if frame[1]:
                    break
                stack.pop()
                value = container
    except (IndexError, _Truncated):
        raise RemoteProtocolError("invalid msgpack: truncated") from None
    except UnicodeDecodeError as exc:
        raise RemoteProtocolError(f"invalid UTF-8 in msgpack string: {exc}") from None


class _Missing:
    """A key absent from the packet map."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "nothing"


_KNOWN_KEYS: Final = frozenset({"type", "data", "nsp", "id", "options"})
_MISSING: Final = _Missing()


def _to_packet(obj: Any) -> Packet:
    """Validate a decoded map as socket.io-msgpack-parser (and socket.io) do."""
    if type(obj) is not dict:
        raise RemoteProtocolError(f"msgpack packet is not a map: {_short(obj)}")
    ptype = obj.get("type", _MISSING)
    nsp = obj.get("nsp", _MISSING)
    data = obj.get("data", _MISSING)
    ack_id = obj.get("id", _MISSING)
    known = 2 + (data is not _MISSING) + (ack_id is not _MISSING) + ("options" in obj)
    if len(obj) != known or ptype is _MISSING or nsp is _MISSING:
        unknown = sorted(k for k in obj if k not in _KNOWN_KEYS)
        if unknown:
            raise RemoteProtocolError(f"unknown key(s) in msgpack packet: {unknown}")
        if ptype is _MISSING:
            raise RemoteProtocolError("invalid packet type: no 'type' key")
        if nsp is _MISSING:
            raise RemoteProtocolError("invalid namespace: no 'nsp' key")

    # isInteger(type) and CONNECT <= type <= CONNECT_ERROR
    if type(ptype) is not int:
        if type(ptype) is float and ptype.is_integer():
            ptype = int(ptype)
        else:
            raise RemoteProtocolError(f"invalid packet type {_short(ptype)}")
    if not 0 <= ptype <= 4:
        raise RemoteProtocolError(f"invalid packet type {ptype}")
    if type(nsp) is not str:
        raise RemoteProtocolError(f"invalid namespace {_short(nsp)}")

    # isDataValid, plus socket.io's rules for EVENT.
    if ptype == 2:
        if type(data) is not list or not data:
            raise RemoteProtocolError(f"invalid EVENT payload: {_short(data)}")
        name = data[0]
        t = type(name)
        if not ((t is str and name not in RESERVED_EVENTS) or t is int or t is float):
            raise RemoteProtocolError(f"invalid EVENT payload: {_short(data)}")
    elif ptype == 3:
        if type(data) is not list:
            raise RemoteProtocolError(f"invalid ACK payload: {_short(data)}")
    elif ptype == 0:
        if data is _MISSING:
            data = None
        elif type(data) is not dict:
            raise RemoteProtocolError(f"invalid CONNECT payload: {_short(data)}")
    elif ptype == 1:
        if data is not _MISSING:
            raise RemoteProtocolError(f"invalid DISCONNECT payload: {_short(data)}")
        data = None
    elif type(data) is not str and type(data) is not dict:
        raise RemoteProtocolError(f"invalid CONNECT_ERROR payload: {_short(data)}")

    # id === undefined || isInteger(id)
    if ack_id is _MISSING:
        ack_id = None
    elif type(ack_id) is not int:
        if type(ack_id) is float and ack_id.is_integer():
            ack_id = int(ack_id)
        else:
            raise RemoteProtocolError(f"invalid packet id {_short(ack_id)}")
    if ack_id is not None and not _INT_MIN <= ack_id <= _INT_MAX:
        raise RemoteProtocolError(f"packet id out of the 64-bit range: {ack_id}")
    return Packet(_PACKET_TYPES[ptype], nsp, data, ack_id)


_UNPACK_ERRORS: Final = (ValueError, TypeError, OverflowError, _BadKey)


_ts_packer = msgpack.Packer(use_bin_type=True, autoreset=True, datetime=True)


def pack(obj: Any, *, timestamps: bool = False) -> bytes:
    """notepack.io's msgpack of any value (``LocalProtocolError`` if it has none).

    Used beyond packets by the cluster formats. socket.io-msgpack-parser runs
    notepack.io 2, which writes a ``Date`` as its own ext 0 (the default here);
    the Redis adapter runs notepack.io 3, which writes the standard msgpack
    timestamp (ext -1, 32, 64 or 96 bits, the smallest that fits): pass
    ``timestamps=True`` for that. Both versions read both forms.
    """
    if not timestamps:
        return _pack_data(obj)
    try:
        _dumps(obj, default=_json_default)
        return _ts_packer.pack(obj)  # type: ignore[no-any-return]
    except (TypeError, ValueError, OverflowError) as exc:
        raise LocalProtocolError(f"data is not msgpack-serialisable: {exc}") from None


def unpack(data: bytes) -> Any:
    """Read one msgpack value as notepack.io does (``RemoteProtocolError`` if invalid).

    ``undefined`` is dropped from maps (None in arrays), a notepack ``Date`` or a
    msgpack timestamp becomes a ``datetime``, ``bin`` and ArrayBuffers ``bytes``;
    map keys must be strings.
    """
    if type(data) is not bytes:
        data = bytes(data)
    try:
        try:
            if _BIN_OR_EXT.search(data) is None:
                obj = _unpack_fast(data)
            else:
                obj = _unpack_fast_keys(data)
        except _Ambiguous:
            obj = _unpack_resolving(data)
    except RemoteProtocolError:
        raise
    except _BadKey as exc:
        raise RemoteProtocolError(
            f"invalid msgpack map key {_short(exc.args[0])}: keys must be strings"
        ) from None
    except UnicodeDecodeError as exc:
        raise RemoteProtocolError(f"invalid UTF-8 in msgpack string: {exc}") from None
    except msgpack.ExtraData as exc:
        raise RemoteProtocolError(f"invalid msgpack: {len(exc.extra)} trailing byte(s)") from None
    except msgpack.StackError:
        raise RemoteProtocolError("invalid msgpack: nested too deeply") from None
    except _UNPACK_ERRORS as exc:
        raise RemoteProtocolError(f"invalid msgpack: {str(exc) or type(exc).__name__}") from None
    return obj


def decode(data: bytes) -> Packet:
    """Decode one binary message into a packet (RemoteProtocolError if invalid)."""
    obj = unpack(data)
    if type(obj) is dict:
        # Fast path: an EVENT {type: 2, data: [name, ...], nsp, [id], [options]}
        # with nothing unusual; anything else, errors included, takes _to_packet.
        payload = obj.get("data")
        ptype = obj.get("type")
        if type(payload) is list and payload and type(ptype) is int and ptype == 2:
            name = payload[0]
            nsp = obj.get("nsp")
            if type(name) is str and type(nsp) is str and name not in RESERVED_EVENTS:
                n = len(obj)
                if n == 3:
                    return Packet(_EVENT, nsp, payload, None)
                ack_id = obj.get("id")
                if (
                    type(ack_id) is int
                    and _INT_MIN <= ack_id <= _INT_MAX
                    and n == 4 + ("options" in obj)
                ):
                    return Packet(_EVENT, nsp, payload, ack_id)
    return _to_packet(obj)


_short = packet_module._short


class MsgpackDecoder:
    """Per-connection decoder: one binary message is one packet (no state)."""

    __slots__ = ()

    def feed_text(self, data: bytes) -> Packet | None:
        raise RemoteProtocolError(
            "text message received: the msgpack parser only exchanges binary messages"
        )

    def feed_binary(self, data: bytes) -> Packet | None:
        return decode(data)

    def reset(self) -> None:
        pass


class MsgpackParser:
    """socket.io-msgpack-parser's format, as a parser object (see parser.py)."""

    __slots__ = ()

    encode = staticmethod(encode)
    encode_event = staticmethod(encode_event)
    encode_ack = staticmethod(encode_ack)

    @staticmethod
    def decoder() -> MsgpackDecoder:
        return MsgpackDecoder()


MSGPACK_PARSER: Final = MsgpackParser()
