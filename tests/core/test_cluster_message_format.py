"""The ClusterAdapter message format of the sharded Redis adapter, byte for byte.

The vector of the spec (node-cluster-formats.md, "Sharded adapter and the
ClusterAdapter message format") was captured from socket.io 4.8.4 with
``createShardedAdapter``; the others are Node's ``JSON.stringify`` of the same
message shapes (keys in the order Node's ``ClusterAdapter`` sets them).
"""

from __future__ import annotations

from typing import Any

import msgpack  # type: ignore[import-untyped]
import pytest

from socketwire.core.cluster.message_format import (
    BINARY_TYPES,
    MessageType,
    ShardedChannels,
    SubscriptionMode,
    broadcast_data,
    decode_message,
    encode_message,
    encode_options,
    looks_like_socket_id,
)
from socketwire.errors import LocalProtocolError, RemoteProtocolError

UID = "27b6c6eb49b9ff98"
SID = "aaaaaaaaaaaaaaaaaaaa"  # 20 characters: looks like a socket id

SPEC_VECTOR = (
    b'{"type":3,"data":{"packet":{"type":2,"data":["hello","world"]},'
    b'"opts":{"rooms":["room1"],"except":[],"flags":{}}},"uid":"27b6c6eb49b9ff98","nsp":"/"}'
)


def test_spec_vector_encodes_byte_for_byte() -> None:
    data = broadcast_data(["hello", "world"], encode_options(["room1"], []))
    assert encode_message(MessageType.BROADCAST, UID, "/", data) == SPEC_VECTOR
    channels = ShardedChannels("/", "x" * 16)
    assert channels.for_broadcast(["room1"], with_ack=False) == "socket.io#/#room1#"


def test_spec_vector_decodes() -> None:
    msg = decode_message(SPEC_VECTOR)
    assert msg.type is MessageType.BROADCAST
    assert (msg.uid, msg.nsp, msg.request_id) == (UID, "/", None)
    assert msg.data == ["hello", "world"]
    assert msg.rooms == {"room1"} and msg.except_rooms == frozenset()
    assert not msg.flags.volatile and msg.flags.timeout is None


# (type, data, the JSON Node writes)
JSON_VECTORS: list[tuple[MessageType, Any, bytes]] = [
    (
        MessageType.BROADCAST,
        broadcast_data(["ask", 42], encode_options([], [], timeout=1.0), "0123456789abcdef"),
        b'{"type":3,"data":{"packet":{"type":2,"data":["ask",42]},"requestId":"0123456789abcdef",'
        b'"opts":{"rooms":[],"except":[],"flags":{"timeout":1000}}},"uid":"27b6c6eb49b9ff98",'
        b'"nsp":"/"}',
    ),
    (
        MessageType.SOCKETS_JOIN,
        {"opts": encode_options(["a"], ["b"]), "rooms": ["c"]},
        b'{"type":4,"data":{"opts":{"rooms":["a"],"except":["b"],"flags":{}},"rooms":["c"]},'
        b'"uid":"27b6c6eb49b9ff98","nsp":"/"}',
    ),
    (
        MessageType.DISCONNECT_SOCKETS,
        {"opts": encode_options([], []), "close": True},
        b'{"type":6,"data":{"opts":{"rooms":[],"except":[],"flags":{}},"close":true},'
        b'"uid":"27b6c6eb49b9ff98","nsp":"/"}',
    ),
    (
        MessageType.FETCH_SOCKETS,
        {"opts": encode_options(["r"], []), "requestId": "fedcba9876543210"},
        b'{"type":7,"data":{"opts":{"rooms":["r"],"except":[],"flags":{}},'
        b'"requestId":"fedcba9876543210"},"uid":"27b6c6eb49b9ff98","nsp":"/"}',
    ),
    (
        MessageType.SERVER_SIDE_EMIT,
        {"requestId": "fedcba9876543210", "packet": ["whoami"]},
        b'{"type":9,"data":{"requestId":"fedcba9876543210","packet":["whoami"]},'
        b'"uid":"27b6c6eb49b9ff98","nsp":"/"}',
    ),
    (
        MessageType.BROADCAST_CLIENT_COUNT,
        {"requestId": "fedcba9876543210", "clientCount": 3},
        b'{"type":11,"data":{"requestId":"fedcba9876543210","clientCount":3},'
        b'"uid":"27b6c6eb49b9ff98","nsp":"/admin"}',
    ),
    (MessageType.HEARTBEAT, None, b'{"type":2,"uid":"27b6c6eb49b9ff98","nsp":"/"}'),
]


@pytest.mark.parametrize(("kind", "data", "wire"), JSON_VECTORS, ids=lambda v: str(v)[:20])
def test_json_messages_both_ways(kind: MessageType, data: Any, wire: bytes) -> None:
    nsp = "/admin" if b'"/admin"' in wire else "/"
    assert encode_message(kind, UID, nsp, data) == wire
    msg = decode_message(wire)
    assert msg.type is kind and msg.uid == UID and msg.nsp == nsp


def test_decoded_fields() -> None:
    ack = decode_message(JSON_VECTORS[0][2])
    assert ack.request_id == "0123456789abcdef" and ack.flags.timeout == 1.0
    join = decode_message(JSON_VECTORS[1][2])
    assert join.rooms == {"a"} and join.except_rooms == {"b"} and join.new_rooms == ["c"]
    assert decode_message(JSON_VECTORS[2][2]).close is True
    emit = decode_message(JSON_VECTORS[4][2])
    assert emit.data == ["whoami"] and emit.request_id == "fedcba9876543210"
    assert decode_message(JSON_VECTORS[5][2]).client_count == 3


def test_binary_goes_as_msgpack_only_in_binary_types() -> None:
    data = broadcast_data(["multi", b"\x01\x02\x03"], encode_options(["r1", "r2"], ["r3"]))
    wire = encode_message(MessageType.BROADCAST, UID, "/", data)
    assert wire[0] != 0x7B
    # The whole message, keys in Node's order, bytes as msgpack bin.
    assert wire == msgpack.packb(
        {"type": 3, "data": data, "uid": UID, "nsp": "/"}, use_bin_type=True
    )
    assert b"\xc4\x03\x01\x02\x03" in wire
    msg = decode_message(wire)
    assert msg.data == ["multi", b"\x01\x02\x03"] and msg.rooms == {"r1", "r2"}
    for kind in (MessageType.BROADCAST_ACK, MessageType.SERVER_SIDE_EMIT_RESPONSE):
        assert kind in BINARY_TYPES
        wire = encode_message(kind, UID, "/", {"requestId": "r", "packet": b"\xff"})
        assert decode_message(wire).answer == b"\xff"
    with pytest.raises(LocalProtocolError):
        encode_message(MessageType.SOCKETS_JOIN, UID, "/", {"rooms": [b"x"]})


def test_fetch_response_with_binary_data() -> None:
    sockets = [{"id": SID, "handshake": {}, "rooms": [SID], "data": {"blob": b"\x00"}}]
    wire = encode_message(
        MessageType.FETCH_SOCKETS_RESPONSE, UID, "/", {"requestId": "r", "sockets": sockets}
    )
    assert wire[0] != 0x7B
    assert decode_message(wire).sockets == sockets


@pytest.mark.parametrize(
    ("mode", "rooms", "with_ack", "channel"),
    [
        ("static", ["room1"], False, "p#/#"),
        ("dynamic", ["room1"], False, "p#/#room1#"),
        ("dynamic", ["room1"], True, "p#/#"),
        ("dynamic", ["a", "b"], False, "p#/#"),
        ("dynamic", [], False, "p#/#"),
        ("dynamic", [SID], False, "p#/#"),
        ("dynamic-private", [SID], False, f"p#/#{SID}#"),
        ("dynamic-private", ["room1"], False, "p#/#room1#"),
        ("dynamic-private", ["room1"], True, "p#/#"),
    ],
)
def test_channel_of_a_broadcast(mode: str, rooms: list[str], with_ack: bool, channel: str) -> None:
    channels = ShardedChannels("/", UID, "p", SubscriptionMode(mode))
    assert channels.for_broadcast(rooms, with_ack) == channel


def test_channel_names_and_subscriptions() -> None:
    channels = ShardedChannels("/chat", UID)
    assert channels.main == "socket.io#/chat#"
    assert channels.response == f"socket.io#/chat#{UID}#"
    assert channels.room("r") == "socket.io#/chat#r#"
    assert looks_like_socket_id(SID) and not looks_like_socket_id("room")
    assert channels.subscribes(is_private=False) and not channels.subscribes(is_private=True)
    static = ShardedChannels("/", UID, mode=SubscriptionMode.STATIC)
    assert not static.subscribes(is_private=False)
    private = ShardedChannels("/", UID, mode=SubscriptionMode.DYNAMIC_PRIVATE)
    assert private.subscribes(is_private=True) and private.subscribes(is_private=False)


@pytest.mark.parametrize(
    "wire",
    [
        b"",
        b"{",
        b"[1]",
        b'{"type":99}',
        b'{"type":"3"}',
        b'{"type":3,"uid":5}',
        b'{"type":3,"data":[]}',
        b'{"type":3,"data":{"packet":{"type":2,"data":["connect"]},"opts":{}}}',
        b'{"type":3,"data":{"packet":{"type":2,"data":["a"]}}}',
        b'{"type":3,"data":{"packet":{"type":2,"data":["a"]},"opts":{"rooms":[{}]}}}',
        b'{"type":7,"data":{"opts":{}}}',
        b'{"type":11,"data":{"requestId":"r","clientCount":-1}}',
        b'{"type":8,"data":{"requestId":"r","sockets":{}}}',
        b'{"type":4,"data":{"opts":{},"rooms":"x"}}',
        b"\x91\x01",  # msgpack, but not a map
        b'{"type":3,"nsp":5}',
        b'{"type":3,"data":{"packet":{"type":2,"data":["a"]},"opts":{"rooms":"r"}}}',
        b'{"type":3,"data":{"packet":{"type":2,"data":["a"]},"opts":{"flags":[]}}}',
        b'{"type":3,"data":{"packet":{"type":2,"data":["a"]},"opts":{"flags":{"timeout":-1}}}}',
        b'{"type":3,"data":{"packet":{"type":2,"data":["a"]},"opts":{"flags":{"timeout":"1"}}}}',
        b'{"type":3,"data":{"packet":{"type":2,"data":[]},"opts":{}}}',
        b'{"type":3,"data":{"packet":{"type":0,"data":["a"]},"opts":{}}}',
        b'{"type":3,"data":{"packet":"x","opts":{}}}',
        b'{"type":3,"data":{"requestId":5,"packet":{"type":2,"data":["a"]},"opts":{}}}',
    ],
)
def test_malformed_messages_raise(wire: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_message(wire)


def test_options_carry_the_flags() -> None:
    assert encode_options(["r"], ["x"], volatile=True, compress=False, timeout=1.5) == {
        "rooms": ["r"],
        "except": ["x"],
        "flags": {"volatile": True, "compress": False, "timeout": 1500},
    }
    assert encode_options([], [], timeout=0.0015)["flags"] == {"timeout": 1.5}


def test_numeric_rooms_and_missing_nsp() -> None:
    msg = decode_message(
        b'{"type":4,"data":{"opts":{"rooms":[1],"except":[]},"rooms":[2.0]},"uid":"u"}'
    )
    assert msg.nsp == "/" and msg.rooms == {"1"} and msg.new_rooms == ["2"]
