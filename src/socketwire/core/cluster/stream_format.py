"""The Redis Streams adapter's formats (layer 0: sans-I/O).

Node's ``@socket.io/redis-streams-adapter`` 0.3 carries ``socket.io-adapter``'s
``ClusterAdapter`` messages (``socketwire.core.cluster.message_format``) in two
ways:

* **Stream entries.** Messages that a server must not miss, and that a
  reconnecting client may need again (broadcasts, ``sockets_join``...), are
  appended to a Redis stream with the fields ``uid``, ``nsp``, ``type`` (the
  ``MessageType`` code as decimal text) and ``data``: the message's data as
  JSON, or, when it holds binary, base64 of its msgpack. The entry id
  (``<ms>-<seq>``) is the offset that connection state recovery appends to a
  broadcast's arguments.
* **Ephemeral messages.** Requests that wait for answers (a broadcast with
  acks, ``server_side_emit``, ``fetch_sockets``) and every response are
  published on pub/sub channels as the whole message in msgpack: nothing to
  replay there.

A namespace always uses the same stream, so that its messages stay in order:
``<stream_name>`` with one stream, else ``<stream_name>-<i>`` with ``i`` the
namespace's Java-style hash modulo the stream count, with the sign that
JavaScript's ``%`` keeps (``stream_for``).

A disconnected socket's session is stored under ``<session_key_prefix><pid>``
as base64 of the msgpack of ``{sid, pid, rooms, data}`` (``encode_session``).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

import orjson

from socketwire.core.cluster.message_format import (
    BINARY_TYPES,
    ClusterMessage,
    MessageType,
    message_from_object,
)
from socketwire.core.cluster.reach import reaches
from socketwire.core.cluster.stored_session import StoredSession
from socketwire.core.describe import describe
from socketwire.core.notepack import pack_timestamps, unpack
from socketwire.errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "DEFAULT_SESSION_KEY_PREFIX",
    "DEFAULT_STREAM_NAME",
    "StoredSession",
    "decode_entry",
    "decode_session",
    "encode_entry",
    "encode_ephemeral",
    "encode_session",
    "hash_code",
    "included",
    "is_ephemeral",
    "is_offset",
    "next_offset",
    "stream_for",
]

DEFAULT_STREAM_NAME: Final = "socket.io"
DEFAULT_SESSION_KEY_PREFIX: Final = "sio:session:"

_OFFSET = re.compile(r"[0-9]+-[0-9]+")
_JSON_FIRST = "{"


def hash_code(text: str) -> int:
    """Java's ``String.hashCode`` over UTF-16 code units, as a signed 32-bit int."""
    h = 0
    data = text.encode("utf-16-le", "surrogatepass")
    for i in range(0, len(data), 2):
        h = (h * 31 + (data[i] | data[i + 1] << 8)) & 0xFFFFFFFF
    return h - 0x100000000 if h & 0x80000000 else h


def stream_for(nsp: str, stream_name: str = DEFAULT_STREAM_NAME, stream_count: int = 1) -> str:
    """The stream of a namespace's messages."""
    if stream_count == 1:
        return stream_name
    h = hash_code(nsp)
    # JavaScript's % keeps the dividend's sign: a negative hash picks "-<n>".
    i = abs(h) % stream_count
    return f"{stream_name}-{-i if h < 0 else i}"


def is_ephemeral(kind: MessageType, data: Mapping[str, Any] | None) -> bool:
    """Whether a message goes through pub/sub rather than the stream."""
    if kind is MessageType.BROADCAST:
        return data is not None and "requestId" in data
    return kind in (MessageType.SERVER_SIDE_EMIT, MessageType.FETCH_SOCKETS)


def encode_entry(
    kind: MessageType, uid: str, nsp: str, data: Any = None, *, only_plaintext: bool = False
) -> dict[str, str]:
    """The fields of a stream entry, in Node's order (``LocalProtocolError`` if the
    data has no encoding, or holds binary with ``only_plaintext``)."""
    fields = {"uid": uid, "nsp": nsp, "type": str(int(kind))}
    if data is not None:
        try:
            fields["data"] = orjson.dumps(data).decode()
        except TypeError as exc:
            # What orjson refuses is binary (or nothing msgpack takes either).
            if only_plaintext or kind not in BINARY_TYPES:
                raise LocalProtocolError(f"message is not JSON-serialisable: {exc}") from None
            fields["data"] = base64.b64encode(pack_timestamps(data)).decode("ascii")
    return fields


def encode_ephemeral(kind: MessageType, uid: str, nsp: str, data: Any = None) -> bytes:
    """The msgpack of a whole message for pub/sub (keys in Node's order)."""
    obj: dict[str, Any] = {"type": int(kind)}
    if data is not None:
        obj["data"] = data
    obj["uid"] = uid
    obj["nsp"] = nsp
    return pack_timestamps(obj)


def _text(value: Any, what: str) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            raise RemoteProtocolError(f"invalid {what}: not UTF-8") from None
    if isinstance(value, str):
        return value
    raise RemoteProtocolError(f"invalid {what}: {describe(value)}")


def _field(fields: Mapping[Any, Any], name: str) -> Any:
    value = fields.get(name)
    if value is None:
        value = fields.get(name.encode())
    return value


def decode_entry(fields: Mapping[Any, Any]) -> ClusterMessage:
    """Read a stream entry's fields (``bytes`` or ``str`` keys and values);
    ``RemoteProtocolError`` if malformed."""
    raw_type = _text(_field(fields, "type"), "type")
    if not raw_type.isdigit():
        raise RemoteProtocolError(f"invalid type: {raw_type!r}")
    obj: dict[str, Any] = {"type": int(raw_type)}
    uid = _field(fields, "uid")
    if uid is not None:
        obj["uid"] = _text(uid, "uid")
    obj["nsp"] = _text(_field(fields, "nsp"), "nsp")
    raw_data = _field(fields, "data")
    if raw_data:
        text = _text(raw_data, "data")
        if text.startswith(_JSON_FIRST):
            try:
                obj["data"] = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                raise RemoteProtocolError(f"invalid JSON: {exc}") from None
        else:
            try:
                packed = base64.b64decode(text, validate=True)
            except binascii.Error as exc:
                raise RemoteProtocolError(f"invalid base64: {exc}") from None
            obj["data"] = unpack(packed)
    return message_from_object(obj)


# ---------------------------------------------------------------------------
# Connection state recovery
# ---------------------------------------------------------------------------


def is_offset(offset: str) -> bool:
    """Whether ``offset`` is a stream entry id (``<ms>-<seq>``)."""
    return _OFFSET.fullmatch(offset) is not None


def next_offset(offset: str) -> str:
    """The smallest entry id after ``offset`` (an exclusive XRANGE start that
    Redis before 6.2 understands too)."""
    ms, seq = offset.split("-")
    return f"{ms}-{int(seq) + 1}"


def included(
    session_rooms: Iterable[str], rooms: Iterable[str], except_rooms: Iterable[str]
) -> bool:
    """Whether a broadcast to ``rooms`` but ``except_rooms`` reached a socket of
    ``session_rooms`` (Node's ``shouldIncludePacket``)."""
    return reaches(set(session_rooms), frozenset(rooms), except_rooms)


def encode_session(session: StoredSession) -> str:
    """Base64 of the msgpack of ``{sid, pid, rooms, data}`` (``LocalProtocolError``
    if ``data`` has no msgpack)."""
    obj = {"sid": session.sid, "pid": session.pid, "rooms": session.rooms, "data": session.data}
    return base64.b64encode(pack_timestamps(obj)).decode("ascii")


def decode_session(raw: bytes | str) -> StoredSession:
    """Read a stored session; ``RemoteProtocolError`` if malformed."""
    try:
        obj = unpack(base64.b64decode(raw, validate=True))
    except binascii.Error as exc:
        raise RemoteProtocolError(f"invalid session: {exc}") from None
    if type(obj) is not dict:
        raise RemoteProtocolError(f"invalid session: {describe(obj)}")
    sid, pid, rooms = obj.get("sid"), obj.get("pid"), obj.get("rooms", [])
    if type(sid) is not str or type(pid) is not str:
        raise RemoteProtocolError("invalid session: no sid or pid")
    if type(rooms) is not list:
        raise RemoteProtocolError(f"invalid session rooms: {describe(rooms)}")
    return StoredSession(sid, pid, [str(r) for r in rooms], obj.get("data"))
