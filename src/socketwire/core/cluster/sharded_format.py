"""The sharded ``@socket.io/redis-adapter`` 8.x wire format (layer 0: sans-I/O).

``createShardedAdapter`` runs socket.io-adapter's ``ClusterAdapter`` over Redis
7 sharded pub/sub (``SSUBSCRIBE``/``SPUBLISH``). Its channels, for a namespace
``<nsp>`` (``prefix`` defaults to ``socket.io``)::

    <prefix>#<nsp>#          every message
    <prefix>#<nsp>#<uid>#    responses to the server ``uid``
    <prefix>#<nsp>#<room>#   broadcasts to one room, in the "dynamic" modes

In the ``dynamic`` mode (Node's default) a server subscribes to a room's channel
while it holds the room locally, for public rooms only (a socket's own room is
not one); ``dynamic-private`` does so for every room; ``static`` never does, and
everything travels on the namespace's channel.

A message is ``{type, data, uid, nsp}`` (``type`` a :class:`MessageType`). It is
JSON, unless its type may carry binary (broadcasts, server-side events and their
answers) and it does, in which case the whole message is msgpack (notepack.io 3);
receivers tell them apart by the first byte (``{`` is JSON).

This module builds channel names and encodes and decodes messages; what a
server does with them is the adapter's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any, Final

import orjson

from socketwire.core.describe import describe
from socketwire.core.notepack import pack_timestamps, unpack
from socketwire.errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "DEFAULT_CHANNEL_PREFIX",
    "MessageType",
    "ShardedChannels",
    "ShardedMessage",
    "SubscriptionMode",
    "decode_message",
    "encode_message",
    "has_binary",
    "looks_like_socket_id",
]

DEFAULT_CHANNEL_PREFIX: Final = "socket.io"
_JSON_FIRST_BYTE: Final = 0x7B  # "{"
_BINARY_TYPES: Final = (bytes, bytearray, memoryview)
# Node socket ids (base64id) are 20 characters: the "dynamic" mode sends a
# broadcast to a room of that length on the namespace's channel, since a
# server never subscribes to the channel of a socket's own room.
_SOCKET_ID_LENGTH: Final = 20


class MessageType(IntEnum):
    """socket.io-adapter's ``MessageType`` (the ``ClusterAdapter`` messages)."""

    INITIAL_HEARTBEAT = 1
    HEARTBEAT = 2
    BROADCAST = 3
    SOCKETS_JOIN = 4
    SOCKETS_LEAVE = 5
    DISCONNECT_SOCKETS = 6
    FETCH_SOCKETS = 7
    FETCH_SOCKETS_RESPONSE = 8
    SERVER_SIDE_EMIT = 9
    SERVER_SIDE_EMIT_RESPONSE = 10
    BROADCAST_CLIENT_COUNT = 11
    BROADCAST_ACK = 12
    ADAPTER_CLOSE = 13


# The types whose data may hold binary: sent as msgpack when they do (as Node).
_MAY_CARRY_BINARY: Final = frozenset(
    {
        MessageType.BROADCAST,
        MessageType.BROADCAST_ACK,
        MessageType.FETCH_SOCKETS_RESPONSE,
        MessageType.SERVER_SIDE_EMIT,
        MessageType.SERVER_SIDE_EMIT_RESPONSE,
    }
)


class SubscriptionMode(StrEnum):
    """Which room channels the servers subscribe to (Node's ``subscriptionMode``)."""

    STATIC = "static"
    DYNAMIC = "dynamic"
    DYNAMIC_PRIVATE = "dynamic-private"


def looks_like_socket_id(room: str) -> bool:
    """Whether ``room`` has the length of a socket id (Node's test, nothing finer)."""
    return len(room) == _SOCKET_ID_LENGTH


class ShardedChannels:
    """The channel names of one namespace."""

    __slots__ = ("main", "mode")

    def __init__(
        self,
        nsp: str,
        prefix: str = DEFAULT_CHANNEL_PREFIX,
        mode: SubscriptionMode = SubscriptionMode.DYNAMIC,
    ) -> None:
        self.main = f"{prefix}#{nsp}#"
        self.mode = SubscriptionMode(mode)

    def room(self, room: str) -> str:
        """The channel of one room (subscribed in the dynamic modes)."""
        return f"{self.main}{room}#"

    def response(self, uid: str) -> str:
        """The channel of the responses to the server ``uid``."""
        return f"{self.main}{uid}#"

    def for_broadcast(self, rooms: Sequence[str], with_ack: bool = False) -> str:
        """Where a broadcast goes (the adapter's ``computeChannel``).

        A room's own channel only for a broadcast to exactly one room, without
        acks (their count of servers is of every server, not of those holding
        the room), in a dynamic mode, and in ``dynamic`` only if the room does
        not look like a socket id.
        """
        if with_ack or len(rooms) != 1 or self.mode is SubscriptionMode.STATIC:
            return self.main
        (room,) = rooms
        if self.mode is SubscriptionMode.DYNAMIC and looks_like_socket_id(room):
            return self.main
        return self.room(room)


def has_binary(obj: Any) -> bool:
    """Whether ``obj`` holds bytes anywhere (in lists, tuples and dict values)."""
    if isinstance(obj, _BINARY_TYPES):
        return True
    if isinstance(obj, (list, tuple)):
        return any(has_binary(item) for item in obj)
    if isinstance(obj, dict):
        return any(has_binary(value) for value in obj.values())
    return False


def encode_message(uid: str, nsp: str, mtype: MessageType, data: Any = None) -> bytes:
    """A message ``{type, data, uid, nsp}`` (``data`` left out when None), as
    Node's adapter writes it: JSON, or msgpack when it carries binary."""
    message: dict[str, Any] = {"type": int(mtype)}
    if data is not None:
        message["data"] = data
    message["uid"] = uid
    message["nsp"] = nsp
    if mtype in _MAY_CARRY_BINARY and has_binary(data):
        return pack_timestamps(message)
    try:
        return orjson.dumps(message)
    except TypeError as exc:
        raise LocalProtocolError(f"message is not JSON-serialisable: {exc}") from None


@dataclass(frozen=True, slots=True)
class ShardedMessage:
    """A message read from a sharded channel (``data`` as it came, maybe None)."""

    type: int
    uid: str | None
    nsp: str | None
    data: Any


def decode_message(payload: bytes) -> ShardedMessage:
    """Read a message (JSON or msgpack); ``RemoteProtocolError`` if it is not an
    object with an integer ``type`` and string (or absent) ``uid`` and ``nsp``.

    ``type`` stays an int: a code this module does not know is the caller's to
    ignore, as Node ignores it.
    """
    if not payload:
        raise RemoteProtocolError("empty message")
    if payload[0] == _JSON_FIRST_BYTE:
        try:
            obj = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise RemoteProtocolError(f"invalid JSON: {exc}") from None
    else:
        obj = unpack(payload)
    if type(obj) is not dict:
        raise RemoteProtocolError(f"message is not an object: {describe(obj)}")
    mtype = obj.get("type")
    if type(mtype) is not int:
        raise RemoteProtocolError(f"invalid message type {describe(mtype)}")
    uid, nsp = obj.get("uid"), obj.get("nsp")
    for name, value in (("uid", uid), ("nsp", nsp)):
        if value is not None and type(value) is not str:
            raise RemoteProtocolError(f"invalid {name}: {describe(value)}")
    return ShardedMessage(mtype, uid, nsp, obj.get("data"))
