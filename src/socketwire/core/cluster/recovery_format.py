"""What connection state recovery adds to the classic Redis format (layer 0: sans-I/O).

A socketwire server whose Redis adapter keeps recovery state publishes its
recorded broadcasts as the classic message with a fourth element, the
broadcast's offset: ``[uid, packet, opts, offset]``. Node's adapter reads the
first three elements only, so Node servers deliver such a message as any other
(without the offset). The offset is always ``OFFSET_LENGTH`` ASCII characters, so
a receiver finds it in the last bytes of the message without decoding it
(``peek_offset``): a server can follow the offsets of every broadcast of the
namespace, even of those it drops unread.

A broadcast that carries no offset (from a Node server, the Node emitter, or a
socketwire server without recovery) gets one from each receiving server:
``foreign_offset(anchor, n)``, the offset of the last broadcast that had one
(the *anchor*) and how many came since. Redis delivers the messages of a pattern
subscription in one order to every subscriber, so every server computes the
same offset for the same message.

Stored sessions are msgpack ``[sid, pid, rooms, data]``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from socketwire.core.cluster.redis_format import encode_broadcast
from socketwire.core.cluster.stored_session import StoredSession
from socketwire.core.describe import describe
from socketwire.core.notepack import pack_timestamps, unpack
from socketwire.errors import RemoteProtocolError

__all__ = [
    "ANCHOR_EVENT",
    "ANCHOR_ROOM",
    "OFFSET_LENGTH",
    "StoredSession",
    "decode_session",
    "encode_recorded_broadcast",
    "encode_session",
    "foreign_offset",
    "make_offset",
    "peek_offset",
]

#: Characters of an offset: a server's 6-character uid and 14 hex digits.
OFFSET_LENGTH: Final = 20
# msgpack: a fixarray of 4 (Node's broadcast has 3) and a fixstr of 20.
_ARRAY4: Final = 0x94
_FIXSTR20: Final = 0xA0 | OFFSET_LENGTH

#: A room that no socket holds: a server's first recorded broadcast goes there,
#: so that the others learn an anchor without any client receiving it.
ANCHOR_ROOM: Final = "socketwire:recovery-anchor"
ANCHOR_EVENT: Final = "socketwire:anchor"


def make_offset(uid: str, counter: int) -> str:
    """The offset of a server's ``counter``-th recorded broadcast (unique in the cluster)."""
    return f"{uid}{counter:014x}"


def foreign_offset(anchor: str, count: int) -> str:
    """The offset of the ``count``-th broadcast without one after ``anchor``."""
    return f"{anchor}~{count:x}"


def encode_recorded_broadcast(
    uid: str,
    nsp: str,
    data: list[Any],
    rooms: Iterable[str],
    except_rooms: Iterable[str],
    offset: str,
    *,
    volatile: bool = False,
    compress: bool = True,
) -> bytes:
    """A classic broadcast message with ``offset`` as a fourth element."""
    if len(offset) != OFFSET_LENGTH or not offset.isascii():
        raise ValueError(f"an offset has {OFFSET_LENGTH} ASCII characters: {offset!r}")
    payload = encode_broadcast(
        uid, nsp, data, rooms, except_rooms, volatile=volatile, compress=compress
    )
    # The same array, one element longer: a fixarray header is one byte.
    return bytes((_ARRAY4,)) + payload[1:] + bytes((_FIXSTR20,)) + offset.encode("ascii")


def peek_offset(payload: bytes) -> str | None:
    """The offset of a recorded broadcast, read from its last bytes; None when it
    has none (any other broadcast)."""
    n = OFFSET_LENGTH
    if len(payload) <= n + 1 or payload[0] != _ARRAY4 or payload[-n - 1] != _FIXSTR20:
        return None
    tail = payload[-n:]
    return tail.decode("ascii") if tail.isascii() else None


def encode_session(session: StoredSession) -> bytes:
    """msgpack ``[sid, pid, rooms, data]`` (raises ``LocalProtocolError`` for data
    that msgpack cannot hold)."""
    return pack_timestamps([session.sid, session.pid, session.rooms, session.data])


def decode_session(blob: bytes) -> StoredSession:
    """Read a stored session (``RemoteProtocolError`` if malformed)."""
    obj = unpack(blob)
    if (
        type(obj) is not list
        or len(obj) != 4
        or type(obj[0]) is not str
        or type(obj[1]) is not str
        or type(obj[2]) is not list
        or not all(type(r) is str for r in obj[2])
    ):
        raise RemoteProtocolError(f"invalid stored session: {describe(obj)}")
    return StoredSession(obj[0], obj[1], obj[2], obj[3])
