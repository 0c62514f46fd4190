"""The msgpack parser: socket.io-msgpack-parser 3.0.2's format (layer 0: sans-I/O).

Every Socket.IO packet travels as ONE binary Engine.IO message holding a
msgpack map (socket.io-msgpack-parser hands the packet object to notepack.io)::

    {"type": <0..4>, "data": <payload>, "nsp": <namespace>, "id": <ack id>}

This module knows the packet map; the msgpack values themselves, as notepack.io
2 writes and reads them (``undefined``, ``Date``, ArrayBuffers), are the
business of :mod:`socketwire.core.notepack`.

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
* the client sends ``"data": undefined`` in a CONNECT without auth: a key
  holding ``undefined`` is absent.

A decoded map is validated as the npm decoder does (type an integer 0-4,
``nsp`` a string, ``id`` absent or an integer) plus socket.io's payload rules
(CONNECT: absent or a map; DISCONNECT: absent; CONNECT_ERROR: a string or a
map; EVENT: a non-empty array whose first element is a non-reserved string or a
number; ACK: an array).  Anything else raises
:class:`~socketwire.errors.RemoteProtocolError`; data that has no notepack.io
encoding raises :class:`~socketwire.errors.LocalProtocolError`.
"""

from __future__ import annotations

from typing import Any, Final

import msgpack  # type: ignore[import-untyped]

from socketwire.core.describe import describe
from socketwire.core.notepack import INT_MAX, INT_MIN, pack, unpack
from socketwire.core.socketio.packet import (
    RESERVED_EVENTS,
    Packet,
    PacketType,
    check_ack_data,
    check_event_data,
)
from socketwire.errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "MSGPACK_PARSER",
    "MsgpackDecoder",
    "MsgpackParser",
    "decode",
    "encode",
    "encode_ack",
    "encode_event",
]

_PACKET_TYPES: Final = tuple(PacketType)
_EVENT: Final = PacketType.EVENT


# ---------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------

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

# The packet map's own scalars (namespace, ack id) are plain msgpack: the
# notepack.io rules (undefined, Date, validation) concern the payload only.
_pack_scalar = msgpack.Packer(use_bin_type=True, autoreset=True).pack

# Validated "nsp" entries (key and packed value), by namespace (bounded).
_NSP_ENTRIES: dict[str, bytes] = {"/": _KEY_NSP + b"\xa1/"}
_NSP_ENTRIES_MAX: Final = 1024


def _nsp_entry(nsp: Any) -> bytes:
    if type(nsp) is not str:
        raise LocalProtocolError(f"namespace must be a str, got {nsp!r}")
    try:
        entry: bytes = _KEY_NSP + _pack_scalar(nsp)
    except ValueError:  # a lone surrogate
        raise LocalProtocolError(f"namespace is not encodable as UTF-8: {nsp!r}") from None
    if len(_NSP_ENTRIES) >= _NSP_ENTRIES_MAX:
        _NSP_ENTRIES.clear()
        _NSP_ENTRIES["/"] = _KEY_NSP + b"\xa1/"
    _NSP_ENTRIES[nsp] = entry
    return entry


def _id_entry(ack_id: Any) -> bytes:
    if type(ack_id) is not int or not INT_MIN <= ack_id <= INT_MAX:
        raise LocalProtocolError(f"ack id must be a 64-bit int, got {ack_id!r}")
    if 0 <= ack_id < 0x80:
        return _KEY_ID + _SMALL_INTS[ack_id]
    return _KEY_ID + _pack_scalar(ack_id)  # type: ignore[no-any-return]


_SMALL_INTS: Final = tuple(bytes((i,)) for i in range(0x80))


def encode_event(nsp: str, data: list[Any], ack_id: int | None = None) -> tuple[bytes, list[bytes]]:
    """Encode an EVENT ``data = [event_name, *args]``: ``(b"", [msgpack])``."""
    # Hot path (once per emit / broadcast).
    if type(data) is not list or not data or type(data[0]) is not str or data[0] in RESERVED_EVENTS:
        check_event_data(data)
    body = pack(data)
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
    body = pack(data)
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
        parts += (_KEY_DATA, pack(data))
    parts.append(entry)
    if ack_id is not None:
        parts.append(_id_entry(ack_id))
    return b"", [b"".join(parts)]


# ---------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------


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
        raise RemoteProtocolError(f"msgpack packet is not a map: {describe(obj)}")
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
        # Only known keys and a type: the count is off because "nsp" is missing.
        raise RemoteProtocolError("invalid namespace: no 'nsp' key")

    # isInteger(type) and CONNECT <= type <= CONNECT_ERROR
    if type(ptype) is not int:
        if type(ptype) is float and ptype.is_integer():
            ptype = int(ptype)
        else:
            raise RemoteProtocolError(f"invalid packet type {describe(ptype)}")
    if not 0 <= ptype <= 4:
        raise RemoteProtocolError(f"invalid packet type {ptype}")
    if type(nsp) is not str:
        raise RemoteProtocolError(f"invalid namespace {describe(nsp)}")

    # isDataValid, plus socket.io's rules for EVENT.
    if ptype == 2:
        if type(data) is not list or not data:
            raise RemoteProtocolError(f"invalid EVENT payload: {describe(data)}")
        name = data[0]
        t = type(name)
        if not ((t is str and name not in RESERVED_EVENTS) or t is int or t is float):
            raise RemoteProtocolError(f"invalid EVENT payload: {describe(data)}")
    elif ptype == 3:
        if type(data) is not list:
            raise RemoteProtocolError(f"invalid ACK payload: {describe(data)}")
    elif ptype == 0:
        if data is _MISSING:
            data = None
        elif type(data) is not dict:
            raise RemoteProtocolError(f"invalid CONNECT payload: {describe(data)}")
    elif ptype == 1:
        if data is not _MISSING:
            raise RemoteProtocolError(f"invalid DISCONNECT payload: {describe(data)}")
        data = None
    elif type(data) is not str and type(data) is not dict:
        raise RemoteProtocolError(f"invalid CONNECT_ERROR payload: {describe(data)}")

    # id === undefined || isInteger(id)
    if ack_id is _MISSING:
        ack_id = None
    elif type(ack_id) is not int:
        if type(ack_id) is float and ack_id.is_integer():
            ack_id = int(ack_id)
        else:
            raise RemoteProtocolError(f"invalid packet id {describe(ack_id)}")
    if ack_id is not None and not INT_MIN <= ack_id <= INT_MAX:
        raise RemoteProtocolError(f"packet id out of the 64-bit range: {ack_id}")
    return Packet(_PACKET_TYPES[ptype], nsp, data, ack_id)


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
                    and INT_MIN <= ack_id <= INT_MAX
                    and n == 4 + ("options" in obj)
                ):
                    return Packet(_EVENT, nsp, payload, ack_id)
    return _to_packet(obj)


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
