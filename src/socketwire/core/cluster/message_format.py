"""The ``ClusterAdapter`` message format of ``socket.io-adapter`` (layer 0: sans-I/O).

Node's ``socket.io-adapter`` 2.5 has a second cluster format beside the classic
Redis one (``socketwire.core.cluster.redis_format``): one message type for every
exchange between servers, written by its ``ClusterAdapter`` class and used by
the sharded Redis adapter (``createShardedAdapter`` of
``@socket.io/redis-adapter`` 8.x), among others. Every message is an object
``{type, data, uid, nsp}`` (``data`` absent for the heartbeats), where ``uid`` is
the sender's 16 hex characters and ``type`` a ``MessageType``.

The sharded Redis adapter writes it as JSON, except that a message whose type
may carry binary (``BINARY_TYPES``) and does is written whole as msgpack
(notepack.io 3); a reader tells them apart by the first byte (``{`` is JSON).

Its channels, for a ``prefix`` (``socket.io`` by default) and a namespace::

    <prefix>#<nsp>#            every message, and broadcasts to several rooms
    <prefix>#<nsp>#<uid>#      the responses to the server ``uid``
    <prefix>#<nsp>#<room>#     broadcasts to exactly one room (dynamic modes)

``ShardedChannels`` names them and decides, as Node does, which channel a
message takes and which rooms a server subscribes to in each
``SubscriptionMode``. ``encode_message`` and ``decode_message`` do the bytes;
a malformed message raises ``RemoteProtocolError`` (every server of the cluster
shares the channels, so a bad message costs one log line, never more).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any, Final

import orjson

from socketwire.core.cluster.fields import (
    Flags,
    decode_event,
    decode_options,
    decode_room_list,
    encode_options,
    load_message,
)
from socketwire.core.describe import describe
from socketwire.core.notepack import pack_timestamps
from socketwire.errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "BINARY_TYPES",
    "DEFAULT_CHANNEL_PREFIX",
    "EMITTER_UID",
    "ClusterMessage",
    "MessageType",
    "ShardedChannels",
    "SubscriptionMode",
    "broadcast_data",
    "decode_message",
    "encode_message",
    "encode_options",
    "looks_like_socket_id",
    "message_from_object",
]

DEFAULT_CHANNEL_PREFIX: Final = "socket.io"
# The uid of the Node emitters; never a server of the cluster.
EMITTER_UID: Final = "emitter"
# A Node socket id is 20 characters: the sharded adapter takes any room of that
# length for a socket's own room when it picks a channel.
SOCKET_ID_LENGTH: Final = 20


class MessageType(IntEnum):
    """The ``type`` of a cluster message (``socket.io-adapter``'s ``MessageType``)."""

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


#: The types whose ``data`` may hold binary: written as msgpack when it does.
BINARY_TYPES: Final = frozenset(
    {
        MessageType.BROADCAST,
        MessageType.FETCH_SOCKETS_RESPONSE,
        MessageType.SERVER_SIDE_EMIT,
        MessageType.SERVER_SIDE_EMIT_RESPONSE,
        MessageType.BROADCAST_ACK,
    }
)

RESPONSE_TYPES: Final = frozenset(
    {
        MessageType.FETCH_SOCKETS_RESPONSE,
        MessageType.SERVER_SIDE_EMIT_RESPONSE,
        MessageType.BROADCAST_CLIENT_COUNT,
        MessageType.BROADCAST_ACK,
    }
)

_TYPES: Final = frozenset(int(t) for t in MessageType)


class SubscriptionMode(StrEnum):
    """Which channels a server of the sharded adapter subscribes to (Node's
    ``subscriptionMode``)."""

    #: One channel per namespace: every server gets every message.
    STATIC = "static"
    #: Also one channel per public room that has sockets on the server.
    DYNAMIC = "dynamic"
    #: Also one channel per private room (a socket's own room).
    DYNAMIC_PRIVATE = "dynamic-private"


def looks_like_socket_id(room: str) -> bool:
    """Whether ``room`` may be a socket's own room, as Node's sharded adapter
    guesses it when it picks a channel: 20 characters."""
    return len(room) == SOCKET_ID_LENGTH


class ShardedChannels:
    """The channel names of one namespace for one server, and Node's rules on them."""

    __slots__ = ("main", "mode", "response")

    def __init__(
        self,
        nsp: str,
        uid: str,
        prefix: str = DEFAULT_CHANNEL_PREFIX,
        mode: SubscriptionMode = SubscriptionMode.DYNAMIC,
    ) -> None:
        self.mode = SubscriptionMode(mode)
        self.main = f"{prefix}#{nsp}#"
        self.response = self.response_to(uid)

    def response_to(self, uid: str) -> str:
        """The channel of the responses to the server ``uid``."""
        return f"{self.main}{uid}#"

    def room(self, room: str) -> str:
        """The channel of broadcasts to ``room`` alone (in the dynamic modes)."""
        return f"{self.main}{room}#"

    def for_broadcast(self, rooms: Iterable[str], with_ack: bool) -> str:
        """Where a BROADCAST goes.

        A room's own channel only for a broadcast without acks to exactly one
        room, never in static mode and, in dynamic mode, never for a room that
        looks like a socket id. A broadcast with acks always takes the main
        channel: its sender counts every server of the namespace, so every one
        of them must answer.
        """
        if with_ack or self.mode is SubscriptionMode.STATIC:
            return self.main
        rooms = list(rooms)
        if len(rooms) != 1:
            return self.main
        (room,) = rooms
        if self.mode is SubscriptionMode.DYNAMIC and looks_like_socket_id(room):
            return self.main
        return self.room(room)

    def subscribes(self, is_private: bool) -> bool:
        """Whether a server subscribes to a room's channel while it has the room:
        public rooms in the dynamic modes, private ones (socket ids) in
        dynamic-private only."""
        mode = self.mode
        if mode is SubscriptionMode.DYNAMIC_PRIVATE:
            return True
        return mode is SubscriptionMode.DYNAMIC and not is_private


# ---------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------


def broadcast_data(
    data: list[Any], opts: dict[str, Any], request_id: str | None = None
) -> dict[str, Any]:
    """The ``data`` of a BROADCAST: the packet before its Socket.IO encoding
    (no ``nsp``: the message has it), then ``requestId`` when acks are asked."""
    out: dict[str, Any] = {"packet": {"type": 2, "data": data}}
    if request_id is not None:
        out["requestId"] = request_id
    out["opts"] = opts
    return out


def encode_message(kind: MessageType, uid: str, nsp: str, data: Any = None) -> bytes:
    """The bytes of a message: JSON, or msgpack for a binary-capable type whose
    ``data`` holds binary (``LocalProtocolError`` if neither can carry it).

    The keys come in Node's order (``type``, ``data``, ``uid``, ``nsp``), so the
    bytes are those a Node server writes.
    """
    obj: dict[str, Any] = {"type": int(kind)}
    if data is not None:
        obj["data"] = data
    obj["uid"] = uid
    obj["nsp"] = nsp
    try:
        return orjson.dumps(obj)
    except TypeError as exc:
        # orjson takes everything JSON can carry, so what it refuses is binary
        # (or not serialisable at all, which msgpack refuses as well).
        if kind not in BINARY_TYPES:
            raise LocalProtocolError(f"message is not JSON-serialisable: {exc}") from None
    return pack_timestamps(obj)


# ---------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------


@dataclass(slots=True)
class ClusterMessage:
    """A message from another server, checked for what its type needs.

    ``rooms``/``except_rooms``/``flags`` are the ``opts`` of the targeted types;
    ``data`` is a BROADCAST's ``[event, *args]`` or a SERVER_SIDE_EMIT's packet;
    ``new_rooms`` the rooms of SOCKETS_JOIN/LEAVE; ``answer`` the single
    argument of a SERVER_SIDE_EMIT_RESPONSE or a BROADCAST_ACK.
    """

    type: MessageType
    uid: str | None
    nsp: str
    request_id: str | None = None
    rooms: frozenset[str] = frozenset()
    except_rooms: frozenset[str] = frozenset()
    flags: Flags = field(default_factory=Flags)
    data: list[Any] = field(default_factory=list)
    new_rooms: list[str] = field(default_factory=list)
    close: bool = False
    sockets: list[Any] = field(default_factory=list)
    client_count: int = 0
    answer: Any = None


def _request_id(data: dict[str, Any], required: bool) -> str | None:
    value = data.get("requestId")
    if value is None:
        if required:
            raise RemoteProtocolError("missing 'requestId'")
        return None
    if type(value) is not str:
        raise RemoteProtocolError(f"invalid requestId: {describe(value)}")
    return value


def decode_message(payload: bytes) -> ClusterMessage:
    """Read a message (JSON or msgpack); ``RemoteProtocolError`` if malformed."""
    return message_from_object(load_message(payload))


def message_from_object(obj: Any) -> ClusterMessage:
    """Check a message already parsed (``{type, data, uid, nsp}``); used by the
    formats that carry the fields apart, such as the Redis Streams entries."""
    if type(obj) is not dict:
        raise RemoteProtocolError(f"message is not an object: {describe(obj)}")
    kind = obj.get("type")
    if type(kind) is not int or kind not in _TYPES:
        raise RemoteProtocolError(f"unknown message type {describe(kind)}")
    mtype = MessageType(kind)
    uid = obj.get("uid")
    if uid is not None and type(uid) is not str:
        raise RemoteProtocolError(f"invalid uid: {describe(uid)}")
    nsp = obj.get("nsp", "/")
    if type(nsp) is not str:
        raise RemoteProtocolError(f"invalid nsp: {describe(nsp)}")
    msg = ClusterMessage(mtype, uid, nsp)
    if mtype in (
        MessageType.INITIAL_HEARTBEAT,
        MessageType.HEARTBEAT,
        MessageType.ADAPTER_CLOSE,
    ):
        return msg
    data = obj.get("data")
    if type(data) is not dict:
        raise RemoteProtocolError(f"invalid data: {describe(data)}")
    if mtype in RESPONSE_TYPES or mtype is MessageType.FETCH_SOCKETS:
        msg.request_id = _request_id(data, required=True)
    else:
        msg.request_id = _request_id(data, required=False)

    if mtype in (
        MessageType.BROADCAST,
        MessageType.SOCKETS_JOIN,
        MessageType.SOCKETS_LEAVE,
        MessageType.DISCONNECT_SOCKETS,
        MessageType.FETCH_SOCKETS,
    ):
        # ``volatile``: any truthy value, as Node reads it.
        msg.rooms, msg.except_rooms, msg.flags = decode_options(
            data.get("opts"), any_true_volatile=True
        )

    if mtype is MessageType.BROADCAST:
        packet = data.get("packet")
        if type(packet) is not dict or packet.get("type") not in (2, 5):
            raise RemoteProtocolError(f"invalid packet: {describe(packet)}")
        msg.data = decode_event(packet.get("data"), "event")
    elif mtype in (MessageType.SOCKETS_JOIN, MessageType.SOCKETS_LEAVE):
        msg.new_rooms = decode_room_list(data.get("rooms"))
    elif mtype is MessageType.DISCONNECT_SOCKETS:
        msg.close = data.get("close") is True
    elif mtype is MessageType.SERVER_SIDE_EMIT:
        msg.data = decode_event(data.get("packet"), "event")
    elif mtype is MessageType.FETCH_SOCKETS_RESPONSE:
        sockets = data.get("sockets")
        if type(sockets) is not list:
            raise RemoteProtocolError(f"invalid sockets: {describe(sockets)}")
        msg.sockets = sockets
    elif mtype is MessageType.BROADCAST_CLIENT_COUNT:
        count = data.get("clientCount")
        if type(count) is not int or count < 0:
            raise RemoteProtocolError(f"invalid clientCount: {describe(count)}")
        msg.client_count = count
    elif mtype in (MessageType.SERVER_SIDE_EMIT_RESPONSE, MessageType.BROADCAST_ACK):
        msg.answer = data.get("packet")
    return msg
