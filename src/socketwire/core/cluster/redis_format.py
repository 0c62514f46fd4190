"""The classic ``@socket.io/redis-adapter`` 8.x wire format (layer 0: sans-I/O).

Servers of a cluster talk over Redis pub/sub, one set of channels per namespace
(``key`` defaults to ``socket.io``)::

    <key>#<nsp>#            broadcasts to everyone or to several rooms   (pattern <key>#<nsp>#*)
    <key>#<nsp>#<room>#     broadcasts to exactly one room (a socket id is a room)
                            (Node subscribes the pattern; a server may instead
                            subscribe the first channel and the rooms it holds)
    <key>-request#<nsp>#    requests to every server
    <key>-response#<nsp>#   responses, seen by every server
    <key>-response#<nsp>#<uid>#   responses aimed at one server

A broadcast is the msgpack (notepack.io 3, as Node writes it: see
:mod:`socketwire.core.notepack`) of ``[uid, {type: 2, data, nsp}, {rooms,
except, flags}]``: the packet before its
Socket.IO encoding, binary inline as ``bin``, which each receiving server encodes
for its own clients. Requests and responses are JSON objects, except the
BROADCAST request (type 7) and the BROADCAST_ACK response (type 9), which are
msgpack maps; a reader tells them apart by the first byte (``{`` is JSON).

This module builds channel names and encodes and decodes every message, checking
each field a receiver relies on: anything malformed raises
``RemoteProtocolError`` (a Redis channel is shared with every other server and
emitter of the cluster, so a bad message must cost one log line, never more).
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Final

import orjson

from socketwire.core.cluster.fields import (
    Flags,
    decode_event,
    decode_options,
    decode_room,
    decode_room_list,
    decode_rooms,
    encode_options,
    load_message,
)
from socketwire.core.describe import describe
from socketwire.core.notepack import pack_timestamps, unpack
from socketwire.errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "DEFAULT_KEY",
    "EMITTER_UID",
    "BroadcastMessage",
    "Channels",
    "FetchedSocket",
    "Flags",
    "Request",
    "RequestType",
    "Response",
    "decode_broadcast",
    "decode_request",
    "decode_response",
    "encode_broadcast",
    "encode_broadcast_ack",
    "encode_broadcast_request",
    "encode_emitter_broadcast",
    "encode_emitter_request",
    "encode_json",
    "encode_request",
    "encode_response",
    "new_uid",
    "parse_fetched_socket",
    "targets",
]

DEFAULT_KEY: Final = "socket.io"
# The uid the Node emitter (``@socket.io/redis-emitter``) puts on its messages.
EMITTER_UID: Final = "emitter"

_UID_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


class RequestType(IntEnum):
    """Message type codes of requests and responses (the adapter's ``RequestType``)."""

    SOCKETS = 0
    ALL_ROOMS = 1
    REMOTE_JOIN = 2
    REMOTE_LEAVE = 3
    REMOTE_DISCONNECT = 4
    REMOTE_FETCH = 5
    SERVER_SIDE_EMIT = 6
    BROADCAST = 7
    BROADCAST_CLIENT_COUNT = 8
    BROADCAST_ACK = 9


def new_uid() -> str:
    """Six random base64url characters: a server uid or a request id (as ``uid2(6)``)."""
    return "".join(secrets.choice(_UID_ALPHABET) for _ in range(6))


class Channels:
    """The channel names of one namespace for one server."""

    __slots__ = ("broadcast", "pattern", "request", "response", "specific_response")

    def __init__(self, nsp: str, uid: str, key: str = DEFAULT_KEY) -> None:
        self.broadcast = f"{key}#{nsp}#"
        self.pattern = self.broadcast + "*"
        self.request = f"{key}-request#{nsp}#"
        self.response = f"{key}-response#{nsp}#"
        self.specific_response = f"{self.response}{uid}#"

    def room(self, room: str) -> str:
        """The channel of the broadcasts to ``room`` alone (a socket id is a room)."""
        return f"{self.broadcast}{room}#"

    def for_rooms(self, rooms: Collection[str]) -> str:
        """Where a broadcast goes: the room's channel when it targets exactly one."""
        if len(rooms) == 1:
            (room,) = rooms
            return self.room(room)
        return self.broadcast

    def response_to(self, requester_uid: str | None, specific: bool) -> str:
        """Where to answer a request (``publishOnSpecificResponseChannel`` = ``specific``)."""
        if specific and requester_uid:
            return f"{self.response}{requester_uid}#"
        return self.response

    def room_of(self, channel: str) -> str | None:
        """The room a broadcast channel names (``""`` for none), or None if not ours.

        As the Node adapter: the text between the prefix and the last character.
        """
        prefix = self.broadcast
        if not channel.startswith(prefix):
            return None
        return channel[len(prefix) : -1] if len(channel) > len(prefix) else ""


# ---------------------------------------------------------------------------
# Field checks of this format
# ---------------------------------------------------------------------------


def _str(obj: dict[str, Any], key: str, required: bool = True) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise RemoteProtocolError(f"missing {key!r}")
        return None
    if type(value) is not str:
        raise RemoteProtocolError(f"invalid {key!r}: {describe(value)}")
    return value


def _load(payload: bytes) -> dict[str, Any]:
    """A JSON or msgpack object."""
    obj = load_message(payload)
    if type(obj) is not dict:
        raise RemoteProtocolError(f"message is not an object: {describe(obj)}")
    return obj


def _packet(value: Any) -> tuple[str, list[Any]]:
    """``(nsp, data)`` of a shipped packet ``{type: 2, data, nsp}``."""
    if type(value) is not dict:
        raise RemoteProtocolError(f"invalid packet: {describe(value)}")
    # socket.io-parser's EVENT, or BINARY_EVENT from a sender that encoded first.
    if value.get("type") not in (2, 5):
        raise RemoteProtocolError(f"invalid packet type: {describe(value.get('type'))}")
    nsp = value.get("nsp", "/")
    if type(nsp) is not str:
        raise RemoteProtocolError(f"invalid packet nsp: {describe(nsp)}")
    return nsp, decode_event(value.get("data"), "event data")


# ---------------------------------------------------------------------------
# Broadcasts
# ---------------------------------------------------------------------------


@dataclass(slots=True)
class BroadcastMessage:
    """A broadcast from another server, to deliver to the local sockets."""

    uid: str
    nsp: str
    data: list[Any]
    rooms: frozenset[str]
    except_rooms: frozenset[str]
    flags: Flags


def encode_broadcast(
    uid: str,
    nsp: str,
    data: list[Any],
    rooms: Iterable[str],
    except_rooms: Iterable[str],
    *,
    volatile: bool = False,
    compress: bool = True,
) -> bytes:
    """The message of a broadcast, to publish on ``Channels.for_rooms(rooms)``."""
    return pack_timestamps(
        [
            uid,
            {"type": 2, "data": data, "nsp": nsp},
            encode_options(rooms, except_rooms, volatile=volatile, compress=compress),
        ]
    )


def encode_emitter_broadcast(
    nsp: str,
    data: list[Any],
    rooms: Iterable[str],
    except_rooms: Iterable[str],
    flags: Mapping[str, bool],
) -> bytes:
    """A broadcast as ``@socket.io/redis-emitter`` 5.x writes it, byte for byte.

    The same message as :func:`encode_broadcast` from the uid ``"emitter"``, with
    the emitter's own layout: ``opts`` is ``{rooms, flags, except}`` (in that
    order) and ``flags`` holds exactly the flags that were set, in the order they
    were first set (``compress`` is sent whether true or false).
    """
    return pack_timestamps(
        [
            EMITTER_UID,
            {"type": 2, "data": data, "nsp": nsp},
            {"rooms": list(rooms), "flags": dict(flags), "except": list(except_rooms)},
        ]
    )


def decode_broadcast(payload: bytes) -> BroadcastMessage:
    """Read a broadcast message (``RemoteProtocolError`` if malformed)."""
    obj = unpack(payload)
    # A fourth element (socketwire's recovery offset) is ignored here, as by Node.
    if type(obj) is not list or len(obj) not in (3, 4):
        raise RemoteProtocolError(f"broadcast is not [uid, packet, opts]: {describe(obj)}")
    uid, packet, opts = obj[:3]
    if type(uid) is not str:
        raise RemoteProtocolError(f"invalid broadcast uid: {describe(uid)}")
    nsp, data = _packet(packet)
    rooms, except_rooms, flags = decode_options(opts)
    return BroadcastMessage(uid, nsp, data, rooms, except_rooms, flags)


# ---------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------


@dataclass(slots=True)
class Request:
    """A request on the request channel, checked for what its type needs.

    ``rooms``/``except_rooms`` select the target sockets (``opts``, or SOCKETS'
    ``rooms``); ``new_rooms`` are the rooms to join or leave. ``sid`` (with
    ``room``) marks the legacy single-socket form of types 2 to 4.
    """

    type: RequestType
    uid: str | None = None
    request_id: str | None = None
    rooms: frozenset[str] = frozenset()
    except_rooms: frozenset[str] = frozenset()
    new_rooms: list[str] = field(default_factory=list)
    sid: str | None = None
    room: str | None = None
    close: bool = False
    nsp: str = "/"
    data: list[Any] = field(default_factory=list)
    flags: Flags = field(default_factory=Flags)


_REQUEST_TYPES: Final = frozenset(range(8))


def decode_request(payload: bytes) -> Request:
    """Read a request (JSON, or msgpack for BROADCAST); ``RemoteProtocolError`` if malformed."""
    obj = _load(payload)
    kind = obj.get("type")
    if type(kind) is not int or kind not in _REQUEST_TYPES:
        raise RemoteProtocolError(f"unknown request type {describe(kind)}")
    rtype = RequestType(kind)
    # The Node emitter sends joins, leaves and disconnects without a uid.
    req = Request(rtype, uid=_str(obj, "uid", required=False))
    if rtype in (RequestType.SOCKETS, RequestType.ALL_ROOMS, RequestType.REMOTE_FETCH):
        req.request_id = _str(obj, "requestId")
    else:
        req.request_id = _str(obj, "requestId", required=False)

    if rtype is RequestType.SOCKETS:
        req.rooms = decode_rooms(obj.get("rooms"), "rooms")
    elif rtype in (
        RequestType.REMOTE_JOIN,
        RequestType.REMOTE_LEAVE,
        RequestType.REMOTE_DISCONNECT,
    ):
        if "opts" in obj:
            req.rooms, req.except_rooms, _ = decode_options(obj["opts"])
            if rtype is RequestType.REMOTE_DISCONNECT:
                req.close = obj.get("close") is True
            else:
                req.new_rooms = decode_room_list(obj.get("rooms"))
        else:
            req.sid = _str(obj, "sid")
            if rtype is RequestType.REMOTE_DISCONNECT:
                req.close = obj.get("close") is True
            else:
                req.room = decode_room(obj.get("room"))
    elif rtype is RequestType.REMOTE_FETCH:
        req.rooms, req.except_rooms, _ = decode_options(obj.get("opts"))
    elif rtype is RequestType.SERVER_SIDE_EMIT:
        req.data = decode_event(obj.get("data"), "event data")
    elif rtype is RequestType.BROADCAST:
        if req.request_id is None:
            raise RemoteProtocolError("missing 'requestId'")
        req.nsp, req.data = _packet(obj.get("packet"))
        req.rooms, req.except_rooms, req.flags = decode_options(obj.get("opts"))
    return req


def encode_json(obj: dict[str, Any]) -> bytes:
    """A JSON message (its first byte is ``{``, as receivers expect)."""
    try:
        return orjson.dumps(obj)
    except TypeError as exc:
        raise LocalProtocolError(f"message is not JSON-serialisable: {exc}") from None


def encode_request(
    uid: str, rtype: RequestType, request_id: str | None = None, **fields: Any
) -> bytes:
    """A JSON request ``{uid, [requestId], type, **fields}`` (``requestId`` left out
    when None: its presence is what asks for answers)."""
    obj: dict[str, Any] = {"uid": uid}
    if request_id is not None:
        obj["requestId"] = request_id
    obj["type"] = int(rtype)
    obj.update(fields)
    return encode_json(obj)


def encode_emitter_request(rtype: RequestType, **fields: Any) -> bytes:
    """A JSON request ``{type, **fields}`` without a uid, as ``@socket.io/redis-emitter``
    sends its joins, leaves and disconnects (no server ignores it as its own)."""
    return encode_json({"type": int(rtype), **fields})


def targets(rooms: Iterable[str], except_rooms: Iterable[str]) -> dict[str, list[str]]:
    """The ``opts`` of a targeted request."""
    return {"rooms": list(rooms), "except": list(except_rooms)}


def encode_broadcast_request(
    uid: str,
    request_id: str,
    nsp: str,
    data: list[Any],
    rooms: Iterable[str],
    except_rooms: Iterable[str],
    *,
    volatile: bool = False,
    compress: bool = True,
    timeout: float | None = None,
) -> bytes:
    """The msgpack BROADCAST request of a broadcast asking every client for an ack."""
    return pack_timestamps(
        {
            "uid": uid,
            "requestId": request_id,
            "type": int(RequestType.BROADCAST),
            "packet": {"type": 2, "data": data, "nsp": nsp},
            "opts": encode_options(
                rooms, except_rooms, volatile=volatile, compress=compress, timeout=timeout
            ),
        }
    )


# ---------------------------------------------------------------------------
# Responses
# ---------------------------------------------------------------------------


@dataclass(slots=True)
class Response:
    """A response on a response channel. Fields absent from it are None."""

    request_id: str
    type: int | None = None
    sockets: list[Any] | None = None
    rooms: list[str] | None = None
    client_count: int | None = None
    # SERVER_SIDE_EMIT's ``data`` / BROADCAST_ACK's ``packet`` (None is a valid answer).
    answer: Any = None
    has_answer: bool = False


def decode_response(payload: bytes) -> Response:
    """Read a response (JSON or msgpack); ``RemoteProtocolError`` if malformed."""
    obj = _load(payload)
    request_id = _str(obj, "requestId")
    assert request_id is not None
    kind = obj.get("type")
    if kind is not None and type(kind) is not int:
        raise RemoteProtocolError(f"invalid response type {describe(kind)}")
    resp = Response(request_id, kind)
    sockets = obj.get("sockets")
    if sockets is not None:
        if type(sockets) is not list:
            raise RemoteProtocolError(f"invalid sockets: {describe(sockets)}")
        resp.sockets = sockets
    rooms = obj.get("rooms")
    if rooms is not None:
        resp.rooms = decode_room_list(rooms)
    if kind == RequestType.BROADCAST_CLIENT_COUNT:
        count = obj.get("clientCount")
        if type(count) is not int or count < 0:
            raise RemoteProtocolError(f"invalid clientCount: {describe(count)}")
        resp.client_count = count
    elif kind == RequestType.BROADCAST_ACK:
        resp.answer = obj.get("packet")
        resp.has_answer = True
    elif kind == RequestType.SERVER_SIDE_EMIT:
        resp.answer = obj.get("data")
        resp.has_answer = True
    return resp


@dataclass(slots=True)
class FetchedSocket:
    """A socket described by another server in a REMOTE_FETCH response."""

    id: str
    handshake: dict[str, Any]
    rooms: set[str]
    data: Any


def parse_fetched_socket(entry: Any) -> FetchedSocket:
    """Check one entry of a REMOTE_FETCH response's ``sockets``."""
    if type(entry) is not dict:
        raise RemoteProtocolError(f"invalid socket entry: {describe(entry)}")
    sid = _str(entry, "id")
    assert sid is not None
    handshake = entry.get("handshake")
    if handshake is None:
        handshake = {}
    elif type(handshake) is not dict:
        raise RemoteProtocolError(f"invalid handshake: {describe(handshake)}")
    return FetchedSocket(
        sid, handshake, set(decode_rooms(entry.get("rooms"), "rooms")), entry.get("data")
    )


def encode_broadcast_ack(request_id: str, answer: Any) -> bytes:
    """A BROADCAST_ACK response: one client's ack argument (msgpack, as Node)."""
    return pack_timestamps(
        {"type": int(RequestType.BROADCAST_ACK), "requestId": request_id, "packet": answer}
    )


def encode_response(obj: dict[str, Any]) -> bytes:
    """A response as JSON, or as msgpack when it holds what JSON cannot (binary).

    Node's receivers read both; msgpack keeps ``bytes`` as bytes.
    """
    try:
        return orjson.dumps(obj)
    except TypeError:
        return pack_timestamps(obj)
