"""msgpack values as the npm package notepack.io writes and reads them (layer 0: sans-I/O).

Two formats of the Node ecosystem carry notepack.io's msgpack: the Socket.IO
msgpack parser (``socketwire.core.socketio.msgpack``, on notepack.io 2) and the
Redis adapter's cluster messages (``socketwire.core.cluster.redis_format``, on
notepack.io 3).  This module is the value codec they share: :func:`pack` (dates
as notepack.io 2 writes them), :func:`pack_timestamps` (as notepack.io 3) and
:func:`unpack` (both).  It knows nothing of packets.

Format facts (as notepack.io writes and reads them):

* JavaScript ``undefined`` is the ext ``d4 00 00`` (fixext 1 of type 0);
* a ``Date`` is, in notepack.io 2, the ext ``d7 00`` + int64 milliseconds since
  the epoch (fixext 8 of type 0); notepack.io 3 writes the standard msgpack
  timestamp instead (ext -1, 32, 64 or 96 bits); both versions read both forms;
* under Node, an ``ArrayBuffer`` / typed array is an ext of type 0 with an
  ext 8/16/32 header (``c7``/``c8``/``c9``), even when its length is one a
  fixext could hold: the header, not the type, tells it from ``undefined`` and
  ``Date``;
* other ext types read as ``[type, data]``.

Reading follows those rules: ``undefined`` is "absent" (dropped from maps,
``None`` in arrays, as JSON would do, and ``None`` as a whole value), a ``Date``
or a msgpack timestamp becomes an aware UTC ``datetime``, ``bin`` and
ArrayBuffers become ``bytes``.  Map keys must be strings, at most 1024
containers may nest (the msgpack C unpacker's limit) and nothing may follow the
value; anything else raises
:class:`~socketwire.errors.RemoteProtocolError`.

Writing takes ``str``, ``int`` (64-bit), ``float``, ``bool``, ``None``,
``list``/``tuple``, ``dict`` with ``str`` keys, ``bytes``/``bytearray``/
``memoryview`` (as ``bin``) and aware ``datetime``; anything else raises
:class:`~socketwire.errors.LocalProtocolError`.

The C msgpack package does the work; its ext hook cannot see an ext's header,
so an ext of type 0 whose length a fixext could have is resolved from the
message's bytes, and, when the bytes do not tell, by the pure Python decoder
:func:`_unpack_exact` (the slow path, same results and limits).
"""

from __future__ import annotations

import re
import struct
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import msgpack  # type: ignore[import-untyped]
import orjson

from socketwire.core.describe import describe
from socketwire.errors import LocalProtocolError, RemoteProtocolError

__all__ = ["INT_MAX", "INT_MIN", "pack", "pack_timestamps", "unpack"]

# msgpack's integer range: int64 and uint64.
INT_MIN: Final = -(2**63)
INT_MAX: Final = 2**64 - 1

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND: Final = timedelta(milliseconds=1)

_BINARY_TYPES: Final = (bytes, bytearray, memoryview)


class _Undefined:
    """JavaScript ``undefined`` while decoding (never left in a decoded value)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "undefined"


_UNDEFINED: Final = _Undefined()


# ---------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------

_packer = msgpack.Packer(use_bin_type=True, autoreset=True)
_pack = _packer.pack
_ts_pack = msgpack.Packer(use_bin_type=True, autoreset=True, datetime=True).pack
_dumps = orjson.dumps
_PACK_ERRORS: Final = (TypeError, ValueError, OverflowError)


def _json_default(obj: Any) -> None:
    # orjson only validates (see pack); binary is msgpack's business.
    if isinstance(obj, _BINARY_TYPES):
        return None
    raise TypeError(f"Type is not serialisable: {type(obj).__name__}")


def _packable(obj: Any) -> Any:
    """``obj`` with every datetime turned into notepack.io 2's ``Date`` ext (type 0)."""
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


def _pack_checked(obj: Any) -> bytes:
    """The slow path of :func:`pack`: the precise error, or datetimes."""
    try:
        _dumps(obj, default=_json_default)
    except TypeError as exc:
        raise LocalProtocolError(f"data is not msgpack-serialisable: {exc}") from None
    try:
        return _pack(obj)  # type: ignore[no-any-return]
    except _PACK_ERRORS:
        pass  # something orjson takes and msgpack does not, such as a datetime
    try:
        return _pack(_packable(obj))  # type: ignore[no-any-return]
    except _PACK_ERRORS as exc:
        raise LocalProtocolError(f"data is not msgpack-serialisable: {exc}") from None


def pack(obj: Any) -> bytes:
    """notepack.io 2's msgpack of ``obj`` (``LocalProtocolError`` if it has none).

    A ``datetime`` is written as notepack.io 2's ``Date`` ext: what
    socket.io-msgpack-parser runs.

    orjson, run first, refuses what msgpack would take but a notepack.io peer
    could not read back: non-str map keys.  It also stops integers beyond 64
    bits, unsupported types and cycles, all at C speed.
    """
    # Hot path (once per emit or broadcast with the msgpack parser): one orjson
    # pass and one msgpack pass; anything unusual takes the slow path.
    try:
        _dumps(obj, default=_json_default)
        return _pack(obj)  # type: ignore[no-any-return]
    except _PACK_ERRORS:
        return _pack_checked(obj)


def pack_timestamps(obj: Any) -> bytes:
    """notepack.io 3's msgpack of ``obj`` (``LocalProtocolError`` if it has none).

    As :func:`pack`, but a ``datetime`` is written as the standard msgpack
    timestamp (ext -1, 32, 64 or 96 bits, the smallest that fits), as
    notepack.io 3 writes a ``Date``: what the Redis adapter's parser runs.
    """
    try:
        _dumps(obj, default=_json_default)
        return _ts_pack(obj)  # type: ignore[no-any-return]
    except _PACK_ERRORS as exc:
        raise LocalProtocolError(f"data is not msgpack-serialisable: {exc}") from None


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
        if obj is _UNDEFINED:
            return None  # the whole value: there is no container to drop it from
        _drop_undefined(obj)
    return obj


def _drop_undefined(root: Any) -> None:
    """Drop ``undefined`` from maps and make it None in arrays, in place.

    ``root`` is a map or an array (an ``undefined`` was found inside it).
    """
    stack = [root]
    while stack:
        node = stack.pop()
        if type(node) is dict:
            gone = [key for key, value in node.items() if value is _UNDEFINED]
            for key in gone:
                del node[key]
            stack.extend(v for v in node.values() if type(v) is dict or type(v) is list)
        else:  # a list: only containers are ever pushed (the root is one too)
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
    dropped from maps (None in arrays, and as the whole value).
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
                    return None if value is _UNDEFINED else value
                frame = stack[-1]
                container = frame[0]
                frame[1] -= 1
                if type(container) is list:
                    container.append(None if value is _UNDEFINED else value)
                elif frame[1] % 2:  # a key
                    if type(value) is not str:
                        raise RemoteProtocolError(
                            f"invalid msgpack map key {describe(value)}: keys must be strings"
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


_UNPACK_ERRORS: Final = (ValueError, TypeError, OverflowError, _BadKey)


def unpack(data: bytes) -> Any:
    """Read one msgpack value as notepack.io does (``RemoteProtocolError`` if invalid).

    ``undefined`` is dropped from maps (None in arrays, and as the whole value:
    Python has no ``undefined``), a notepack ``Date`` or
    a msgpack timestamp becomes a ``datetime``, ``bin`` and ArrayBuffers
    ``bytes``; map keys must be strings.  Any buffer is taken (``bytes``,
    ``bytearray``, ``memoryview``).
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
            f"invalid msgpack map key {describe(exc.args[0])}: keys must be strings"
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
