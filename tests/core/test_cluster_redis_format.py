"""Tests of the classic Redis adapter wire format (socketwire.core.cluster.redis_format).

The byte vectors of the first section were captured from socket.io 4.8.4 with
@socket.io/redis-adapter 8.3.0 (a recording Redis client in between). The last
section runs the adapter's own notepack.io 3.0.1 (tests/js/redis_vectors.js, one
Node process for the whole module): the encoders must write the very bytes
notepack writes for the same JavaScript structures, notepack must read back what
they write, and the decoders must read what notepack writes.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from socketwire.core.cluster import redis_format as rf
from socketwire.core.cluster.redis_format import (
    DEFAULT_KEY,
    EMITTER_UID,
    BroadcastMessage,
    Channels,
    FetchedSocket,
    Flags,
    Request,
    RequestType,
    Response,
    decode_broadcast,
    decode_request,
    decode_response,
    encode_broadcast,
    encode_broadcast_ack,
    encode_broadcast_request,
    encode_json,
    encode_request,
    encode_response,
    new_uid,
    parse_fetched_socket,
    targets,
)
from socketwire.core.notepack import pack, unpack
from socketwire.errors import LocalProtocolError, RemoteProtocolError
from tests.conftest import JS_DIR, run_node

UID = "PxeW5f"


def _literal(text: str) -> str:
    return re.escape(text)


# ---------------------------------------------------------------------------
# Vectors captured from the Node packages
# ---------------------------------------------------------------------------

# io.to("room1").emit("hello", "world"), on socket.io#/#room1# (68 bytes).
BROADCAST_ROOM1 = bytes.fromhex(
    "93a650786557356683a47479706502a46461746192a568656c6c6fa5776f726c64a36e7370a12f"
    "83a5726f6f6d7391a5726f6f6d31a665786365707490a5666c61677380"
)
# io.emit("all", 1, {a: [1, 2]}), on socket.io#/#.
BROADCAST_ALL = bytes.fromhex(
    "93a650786557356683a47479706502a46461746193a3616c6c0181a161920102a36e7370a12f"
    "83a5726f6f6d7390a665786365707490a5666c61677380"
)
# io.to("r1").to("r2").except("r3").volatile.emit("multi", Buffer[1, 2, 3]), on socket.io#/#.
BROADCAST_MULTI = bytes.fromhex(
    "93a650786557356683a47479706502a46461746192a56d756c7469c403010203a36e7370a12f"
    "83a5726f6f6d7392a27231a27232a665786365707491a27233a5666c61677381a8766f6c6174696c65c3"
)
# io.timeout(1000).emit("ask", 42, cb): the msgpack BROADCAST request (105 bytes).
BROADCAST_REQUEST = bytes.fromhex(
    "85a3756964a6507865573566a9726571756573744964a6584c45444c4aa47479706507a67061636b6574"
    "83a47479706502a46461746192a361736b2aa36e7370a12fa46f70747383a5726f6f6d7390a665786365"
    "707490a5666c61677381a774696d656f7574cd03e8"
)
SOCKETS_JOIN = b'{"uid":"PxeW5f","type":2,"opts":{"rooms":["room1"],"except":[]},"rooms":["room2"]}'
DISCONNECT_SOCKETS = (
    b'{"uid":"PxeW5f","type":4,"opts":{"rooms":["room1"],"except":[]},"close":true}'
)
SERVER_SIDE_EMIT = b'{"uid":"PxeW5f","type":6,"data":["ping","x"]}'
SERVER_SIDE_EMIT_ACK = b'{"uid":"PxeW5f","requestId":"PO2RKK","type":6,"data":["ping2"]}'
FETCH_SOCKETS = b'{"uid":"PxeW5f","requestId":"tJFxoY","type":5,"opts":{"rooms":[],"except":[]}}'


def test_vector_lengths() -> None:
    assert len(BROADCAST_ROOM1) == 68
    assert len(BROADCAST_REQUEST) == 105


def test_broadcast_to_one_room_vector() -> None:
    channels = Channels("/", UID)
    assert channels.for_rooms(["room1"]) == "socket.io#/#room1#"
    assert encode_broadcast(UID, "/", ["hello", "world"], ["room1"], []) == BROADCAST_ROOM1
    assert decode_broadcast(BROADCAST_ROOM1) == BroadcastMessage(
        UID, "/", ["hello", "world"], frozenset({"room1"}), frozenset(), Flags()
    )


def test_broadcast_to_all_vector() -> None:
    assert Channels("/", UID).for_rooms([]) == "socket.io#/#"
    assert encode_broadcast(UID, "/", ["all", 1, {"a": [1, 2]}], [], []) == BROADCAST_ALL
    msg = decode_broadcast(BROADCAST_ALL)
    assert msg == BroadcastMessage(
        UID, "/", ["all", 1, {"a": [1, 2]}], frozenset(), frozenset(), Flags()
    )


def test_broadcast_to_several_rooms_with_binary_vector() -> None:
    rooms = ["r1", "r2"]
    assert Channels("/", UID).for_rooms(rooms) == "socket.io#/#"
    payload = encode_broadcast(UID, "/", ["multi", b"\x01\x02\x03"], rooms, ["r3"], volatile=True)
    assert payload == BROADCAST_MULTI
    msg = decode_broadcast(BROADCAST_MULTI)
    assert msg == BroadcastMessage(
        UID,
        "/",
        ["multi", b"\x01\x02\x03"],
        frozenset({"r1", "r2"}),
        frozenset({"r3"}),
        Flags(volatile=True),
    )
    assert type(msg.data[1]) is bytes


def test_broadcast_request_vector() -> None:
    payload = encode_broadcast_request(UID, "XLEDLJ", "/", ["ask", 42], [], [], timeout=1.0)
    assert payload == BROADCAST_REQUEST
    assert payload[0] != ord("{")  # msgpack, told apart from JSON by its first byte
    req = decode_request(BROADCAST_REQUEST)
    assert req == Request(
        RequestType.BROADCAST,
        uid=UID,
        request_id="XLEDLJ",
        nsp="/",
        data=["ask", 42],
        flags=Flags(timeout=1.0),
    )


def test_json_request_vectors_encoded() -> None:
    opts = targets(["room1"], [])
    assert encode_request(UID, RequestType.REMOTE_JOIN, opts=opts, rooms=["room2"]) == SOCKETS_JOIN
    assert encode_request(UID, RequestType.REMOTE_DISCONNECT, opts=opts, close=True) == (
        DISCONNECT_SOCKETS
    )
    assert encode_request(UID, RequestType.SERVER_SIDE_EMIT, data=["ping", "x"]) == (
        SERVER_SIDE_EMIT
    )
    assert encode_request(UID, RequestType.SERVER_SIDE_EMIT, "PO2RKK", data=["ping2"]) == (
        SERVER_SIDE_EMIT_ACK
    )
    assert (
        encode_request(UID, RequestType.REMOTE_FETCH, "tJFxoY", opts=targets([], []))
        == FETCH_SOCKETS
    )


def test_json_request_vectors_decoded() -> None:
    assert decode_request(SOCKETS_JOIN) == Request(
        RequestType.REMOTE_JOIN, uid=UID, rooms=frozenset({"room1"}), new_rooms=["room2"]
    )
    assert decode_request(DISCONNECT_SOCKETS) == Request(
        RequestType.REMOTE_DISCONNECT, uid=UID, rooms=frozenset({"room1"}), close=True
    )
    assert decode_request(SERVER_SIDE_EMIT) == Request(
        RequestType.SERVER_SIDE_EMIT, uid=UID, data=["ping", "x"]
    )
    assert decode_request(SERVER_SIDE_EMIT_ACK) == Request(
        RequestType.SERVER_SIDE_EMIT, uid=UID, request_id="PO2RKK", data=["ping2"]
    )
    assert decode_request(FETCH_SOCKETS) == Request(
        RequestType.REMOTE_FETCH, uid=UID, request_id="tJFxoY"
    )


# ---------------------------------------------------------------------------
# Channels and uids
# ---------------------------------------------------------------------------


def test_channels_of_the_main_namespace() -> None:
    ch = Channels("/", UID)
    assert ch.broadcast == "socket.io#/#"
    assert ch.pattern == "socket.io#/#*"
    assert ch.request == "socket.io-request#/#"
    assert ch.response == "socket.io-response#/#"
    assert ch.specific_response == "socket.io-response#/#PxeW5f#"
    assert DEFAULT_KEY == "socket.io"


def test_channels_with_a_key_and_a_namespace() -> None:
    ch = Channels("/admin", "abc-_1", key="my-app")
    assert ch.broadcast == "my-app#/admin#"
    assert ch.pattern == "my-app#/admin#*"
    assert ch.request == "my-app-request#/admin#"
    assert ch.response == "my-app-response#/admin#"
    assert ch.specific_response == "my-app-response#/admin#abc-_1#"


@pytest.mark.parametrize(
    ("rooms", "channel"),
    [
        ([], "socket.io#/#"),
        (["room1"], "socket.io#/#room1#"),
        (("only",), "socket.io#/#only#"),
        (frozenset({"x"}), "socket.io#/#x#"),
        ({"a", "b"}, "socket.io#/#"),
        (["a", "b", "c"], "socket.io#/#"),
        (["oSO0OpakMV_3jnilAAAA"], "socket.io#/#oSO0OpakMV_3jnilAAAA#"),  # a socket id
        (["a#b"], "socket.io#/#a#b#"),
        (["é 1"], "socket.io#/#é 1#"),
        ([""], "socket.io#/##"),
    ],
)
def test_for_rooms(rooms: Any, channel: str) -> None:
    assert Channels("/", UID).for_rooms(rooms) == channel


@pytest.mark.parametrize(
    ("channel", "room"),
    [
        ("socket.io#/#", ""),
        ("socket.io#/#room1#", "room1"),
        ("socket.io#/#a#b#", "a#b"),  # everything up to the last character
        ("socket.io#/#é 1#", "é 1"),
        # As Node's ``channel.slice(prefix.length, -1)``: the last character goes,
        # whatever it is.
        ("socket.io#/#x", ""),
        ("socket.io#/#room1", "room"),
        # Channels of namespaces whose names extend ours ("/#", "/#x"): the prefix
        # matches, and the packet's own nsp (checked after decoding) tells them apart.
        ("socket.io#/##", ""),
        ("socket.io#/#x#y#", "x#y"),
        # Not ours at all.
        ("socket.io#/admin#", None),
        ("socket.io#/admin#room1#", None),
        ("socket.io-request#/#", None),
        ("socket.io-response#/#", None),
        ("other#/#", None),
        ("socket.io#/", None),
        ("", None),
    ],
)
def test_room_of(channel: str, room: str | None) -> None:
    assert Channels("/", UID).room_of(channel) == room


@pytest.mark.parametrize("room", ["room1", "a#b", "é", "oSO0OpakMV_3jnilAAAA", "#", "1"])
def test_room_of_reads_back_for_rooms(room: str) -> None:
    ch = Channels("/admin", UID, key="k")
    assert ch.room_of(ch.for_rooms([room])) == room
    assert ch.room_of(ch.for_rooms([room, room + "2"])) == ""
    # The channel an interest-mode server subscribes for the room is where it is published.
    assert ch.room(room) == ch.for_rooms([room])


def test_room_of_with_a_key() -> None:
    ch = Channels("/admin", UID, key="k")
    assert ch.room_of("k#/admin#r#") == "r"
    assert ch.room_of("socket.io#/admin#r#") is None


@pytest.mark.parametrize(
    ("requester", "specific", "channel"),
    [
        ("AbC-_9", True, "socket.io-response#/#AbC-_9#"),
        ("AbC-_9", False, "socket.io-response#/#"),
        (None, True, "socket.io-response#/#"),
        ("", True, "socket.io-response#/#"),
        (None, False, "socket.io-response#/#"),
        (EMITTER_UID, True, "socket.io-response#/#emitter#"),
    ],
)
def test_response_to(requester: str | None, specific: bool, channel: str) -> None:
    assert Channels("/", UID).response_to(requester, specific) == channel


def test_new_uid() -> None:
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    uids = [new_uid() for _ in range(2000)]
    for uid in uids:
        assert type(uid) is str and len(uid) == 6
        assert set(uid) <= alphabet
    assert len(set(uids)) > 1990  # 64**6 possibilities
    # Every character of the alphabet turns up (12,000 draws of 64).
    assert set("".join(uids)) == alphabet


# ---------------------------------------------------------------------------
# Broadcasts
# ---------------------------------------------------------------------------


def test_broadcast_flags_on_the_wire() -> None:
    def flags(**kw: Any) -> Any:
        return unpack(encode_broadcast(UID, "/", ["e"], [], [], **kw))[2]["flags"]

    assert flags() == {}
    assert flags(volatile=True) == {"volatile": True}
    assert flags(compress=False) == {"compress": False}
    assert flags(volatile=True, compress=False) == {"volatile": True, "compress": False}


def test_broadcast_shape_on_the_wire() -> None:
    obj = unpack(encode_broadcast("u", "/chat", ["e", None], ("a",), ("b", "c")))
    assert obj == [
        "u",
        {"type": 2, "data": ["e", None], "nsp": "/chat"},
        {"rooms": ["a"], "except": ["b", "c"], "flags": {}},
    ]
    assert list(obj[1]) == ["type", "data", "nsp"]  # the key order of Node
    assert list(obj[2]) == ["rooms", "except", "flags"]


def test_broadcast_round_trip_with_every_field() -> None:
    data = ["ev", b"\x00\xff", {"nested": [1, 2.5, None, True, "é", b""]}, -(2**63), 2**64 - 1]
    payload = encode_broadcast(
        EMITTER_UID, "/x", data, ["a", "b"], ["c"], volatile=True, compress=False
    )
    assert decode_broadcast(payload) == BroadcastMessage(
        EMITTER_UID,
        "/x",
        data,
        frozenset({"a", "b"}),
        frozenset({"c"}),
        Flags(volatile=True, compress=False),
    )


def test_broadcast_decoding_defaults() -> None:
    # nsp absent: "/" (Node); rooms, except and flags absent: empty.
    msg = decode_broadcast(pack(["u", {"type": 2, "data": ["e"]}, {}]))
    assert msg == BroadcastMessage("u", "/", ["e"], frozenset(), frozenset(), Flags())
    # A BINARY_EVENT from a sender that encoded first is read the same way.
    msg = decode_broadcast(pack(["u", {"type": 5, "data": ["e", b"1"], "nsp": "/"}, {}]))
    assert msg.data == ["e", b"1"]
    # null stands for absent, as Node's ``new Set(null)``.
    msg = decode_broadcast(pack(["u", {"type": 2, "data": ["e"]}, {"rooms": None, "flags": None}]))
    assert msg.rooms == frozenset() and msg.flags == Flags()


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"volatile": True}, Flags(volatile=True)),
        ({"volatile": 1}, Flags()),  # only true is true
        ({"volatile": "yes"}, Flags()),
        ({"compress": False}, Flags(compress=False)),
        ({"compress": 0}, Flags()),  # only false is false
        ({"compress": None}, Flags()),
        ({"timeout": 1000}, Flags(timeout=1.0)),
        ({"timeout": 0}, Flags(timeout=0.0)),
        ({"timeout": 62.5}, Flags(timeout=0.0625)),
        ({"timeout": None}, Flags()),
        ({"timeout": 10**12}, Flags(timeout=2**31 / 1000)),  # capped (about 24.8 days)
        ({"local": True, "other": [1]}, Flags()),  # unknown flags ignored
    ],
)
def test_broadcast_flags_decoded(flags: dict[str, Any], expected: Flags) -> None:
    payload = pack(["u", {"type": 2, "data": ["e"], "nsp": "/"}, {"flags": flags}])
    assert decode_broadcast(payload).flags == expected


def test_broadcast_numeric_rooms_become_strings() -> None:
    opts = {"rooms": [1, 2.0, -3, "4"], "except": [0, 2**64 - 1]}
    msg = decode_broadcast(pack(["u", {"type": 2, "data": ["e"]}, opts]))
    assert msg.rooms == frozenset({"1", "2", "-3", "4"})
    assert msg.except_rooms == frozenset({"0", str(2**64 - 1)})


def test_broadcast_with_a_notepack_date_and_undefined() -> None:
    # notepack.io's Date (ext 0, int64 ms) and undefined (d4 00 00): dropped from maps.
    undefined = b"\xd4\x00\x00"
    date = b"\xd7\x00" + (1_700_000_000_123).to_bytes(8, "big")
    payload = (
        b"\x93\xa1u"
        + b"\x83\xa4type\x02\xa4data\x93\xa1e"
        + date
        + undefined
        + b"\xa3nsp"
        + undefined
        + b"\x81\xa5flags\x81\xa8volatile"
        + undefined
    )
    msg = decode_broadcast(payload)
    when = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=1_700_000_000_123)
    assert msg == BroadcastMessage("u", "/", ["e", when, None], frozenset(), frozenset(), Flags())


# ---------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------


def req(**fields: Any) -> bytes:
    return orjson.dumps(fields)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (
            req(uid="A", requestId="r0", type=0, rooms=["a", 1]),
            Request(RequestType.SOCKETS, uid="A", request_id="r0", rooms=frozenset({"a", "1"})),
        ),
        (
            req(uid="A", requestId="r0", type=0),
            Request(RequestType.SOCKETS, uid="A", request_id="r0"),
        ),
        (
            req(uid="A", requestId="r1", type=1),
            Request(RequestType.ALL_ROOMS, uid="A", request_id="r1"),
        ),
        (
            req(uid="A", type=2, opts={"rooms": ["x"], "except": ["y"]}, rooms=["z", 7]),
            Request(
                RequestType.REMOTE_JOIN,
                uid="A",
                rooms=frozenset({"x"}),
                except_rooms=frozenset({"y"}),
                new_rooms=["z", "7"],
            ),
        ),
        (  # legacy single-socket join, answered with {requestId}
            req(uid="A", requestId="r2", type=2, sid="s1", room="room"),
            Request(RequestType.REMOTE_JOIN, uid="A", request_id="r2", sid="s1", room="room"),
        ),
        (
            req(uid="A", requestId="r2", type=2, sid="s1", room=42),
            Request(RequestType.REMOTE_JOIN, uid="A", request_id="r2", sid="s1", room="42"),
        ),
        (
            req(uid="A", type=3, opts={"rooms": [], "except": []}, rooms=[]),
            Request(RequestType.REMOTE_LEAVE, uid="A"),
        ),
        (
            req(uid="A", requestId="r3", type=3, sid="s1", room="room"),
            Request(RequestType.REMOTE_LEAVE, uid="A", request_id="r3", sid="s1", room="room"),
        ),
        (
            req(uid="A", type=4, opts={"rooms": ["x"], "except": []}, close=False),
            Request(RequestType.REMOTE_DISCONNECT, uid="A", rooms=frozenset({"x"})),
        ),
        (  # close is true only when it is true
            req(uid="A", type=4, opts={"rooms": [], "except": []}, close=1),
            Request(RequestType.REMOTE_DISCONNECT, uid="A"),
        ),
        (
            req(uid="A", requestId="r4", type=4, sid="s1", close=True),
            Request(RequestType.REMOTE_DISCONNECT, uid="A", request_id="r4", sid="s1", close=True),
        ),
        (
            req(uid="A", requestId="r4", type=4, sid="s1"),
            Request(RequestType.REMOTE_DISCONNECT, uid="A", request_id="r4", sid="s1"),
        ),
        (
            req(uid="A", requestId="r5", type=5, opts={"rooms": [1], "except": ["b"]}),
            Request(
                RequestType.REMOTE_FETCH,
                uid="A",
                request_id="r5",
                rooms=frozenset({"1"}),
                except_rooms=frozenset({"b"}),
            ),
        ),
        (
            req(uid="A", requestId="r5", type=5, opts={}),
            Request(RequestType.REMOTE_FETCH, uid="A", request_id="r5"),
        ),
        (
            req(uid=EMITTER_UID, type=6, data=["ev", {"a": 1}, None]),
            Request(RequestType.SERVER_SIDE_EMIT, uid=EMITTER_UID, data=["ev", {"a": 1}, None]),
        ),
        (
            req(uid="A", requestId="r6", type=6, data=["ev"]),
            Request(RequestType.SERVER_SIDE_EMIT, uid="A", request_id="r6", data=["ev"]),
        ),
        (  # a JSON BROADCAST is read too (Node sends msgpack)
            req(
                uid="A",
                requestId="r7",
                type=7,
                packet={"type": 2, "data": ["ev", 1], "nsp": "/n"},
                opts={"rooms": ["a"], "except": ["b"], "flags": {"timeout": 500}},
            ),
            Request(
                RequestType.BROADCAST,
                uid="A",
                request_id="r7",
                rooms=frozenset({"a"}),
                except_rooms=frozenset({"b"}),
                nsp="/n",
                data=["ev", 1],
                flags=Flags(timeout=0.5),
            ),
        ),
        (
            pack(
                {
                    "uid": "A",
                    "requestId": "r7",
                    "type": 7,
                    "packet": {"type": 2, "data": ["ev", b"\x01"]},
                    "opts": {"flags": {"volatile": True, "compress": False}},
                }
            ),
            Request(
                RequestType.BROADCAST,
                uid="A",
                request_id="r7",
                data=["ev", b"\x01"],
                flags=Flags(volatile=True, compress=False),
            ),
        ),
    ],
)
def test_requests_decoded(payload: bytes, expected: Request) -> None:
    assert decode_request(payload) == expected


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        # What @socket.io/redis-emitter sends: no uid at all.
        (
            b'{"type":2,"opts":{"rooms":["r"],"except":["e"]},"rooms":["new"]}',
            Request(
                RequestType.REMOTE_JOIN,
                rooms=frozenset({"r"}),
                except_rooms=frozenset({"e"}),
                new_rooms=["new"],
            ),
        ),
        (
            b'{"type":3,"opts":{"rooms":[],"except":[]},"rooms":["old"]}',
            Request(RequestType.REMOTE_LEAVE, new_rooms=["old"]),
        ),
        (
            b'{"type":4,"opts":{"rooms":["r"],"except":[]},"close":true}',
            Request(RequestType.REMOTE_DISCONNECT, rooms=frozenset({"r"}), close=True),
        ),
        (
            b'{"uid":"emitter","type":6,"data":["hello",1]}',
            Request(RequestType.SERVER_SIDE_EMIT, uid="emitter", data=["hello", 1]),
        ),
        (  # uid null: the same as absent
            b'{"uid":null,"type":4,"opts":{"rooms":[],"except":[]}}',
            Request(RequestType.REMOTE_DISCONNECT),
        ),
    ],
)
def test_emitter_requests_decoded(payload: bytes, expected: Request) -> None:
    assert decode_request(payload) == expected


def test_numeric_rooms_of_requests_become_strings() -> None:
    got = decode_request(
        req(uid="A", type=2, opts={"rooms": [1, 2.0], "except": [-5]}, rooms=[3, "4", 1e3])
    )
    assert got.rooms == frozenset({"1", "2"})
    assert got.except_rooms == frozenset({"-5"})
    assert got.new_rooms == ["3", "4", "1000"]


def test_request_encoding() -> None:
    payload = encode_request("u", RequestType.ALL_ROOMS, "abcdef")
    assert payload == b'{"uid":"u","requestId":"abcdef","type":1}'
    # No requestId key at all when there is none: its presence asks for answers.
    payload = encode_request("u", RequestType.SERVER_SIDE_EMIT, None, data=["e"])
    assert payload == b'{"uid":"u","type":6,"data":["e"]}'
    assert targets(("a",), frozenset()) == {"rooms": ["a"], "except": []}
    for kind in RequestType:
        assert encode_request("u", kind)[:1] == b"{"


def test_encode_json_refuses_what_json_cannot_carry() -> None:
    assert encode_json({"a": [1, "é"]}) == '{"a":[1,"é"]}'.encode()
    with pytest.raises(LocalProtocolError, match="JSON"):
        encode_json({"a": b"bytes"})
    with pytest.raises(LocalProtocolError):
        encode_request("u", RequestType.SERVER_SIDE_EMIT, data=["e", object()])


def test_broadcast_request_encoding() -> None:
    payload = encode_broadcast_request(
        "u", "rq", "/n", ["e", b"\x00"], ["a"], ["b"], volatile=True, compress=False, timeout=0.25
    )
    assert unpack(payload) == {
        "uid": "u",
        "requestId": "rq",
        "type": 7,
        "packet": {"type": 2, "data": ["e", b"\x00"], "nsp": "/n"},
        "opts": {
            "rooms": ["a"],
            "except": ["b"],
            "flags": {"volatile": True, "compress": False, "timeout": 250},
        },
    }
    # Milliseconds stay an integer when they are one, as JavaScript numbers are written.
    assert unpack(encode_broadcast_request("u", "r", "/", ["e"], [], [], timeout=2))["opts"][
        "flags"
    ] == {"timeout": 2000}
    flags = unpack(encode_broadcast_request("u", "r", "/", ["e"], [], [], timeout=0.0625))["opts"][
        "flags"
    ]
    assert flags == {"timeout": 62.5}
    assert unpack(encode_broadcast_request("u", "r", "/", ["e"], [], []))["opts"]["flags"] == {}
    assert decode_request(payload) == Request(
        RequestType.BROADCAST,
        uid="u",
        request_id="rq",
        rooms=frozenset({"a"}),
        except_rooms=frozenset({"b"}),
        nsp="/n",
        data=["e", b"\x00"],
        flags=Flags(volatile=True, compress=False, timeout=0.25),
    )


# ---------------------------------------------------------------------------
# Responses
# ---------------------------------------------------------------------------

HANDSHAKE = {
    "headers": {"host": "localhost:3000"},
    "time": "Tue Dec 02 2026",
    "address": "::1",
    "xdomain": False,
    "secure": False,
    "issued": 1796000000000,
    "url": "/socket.io/?EIO=4&transport=websocket",
    "query": {"EIO": "4", "transport": "websocket"},
    "auth": {},
}


def test_fetch_sockets_response() -> None:
    entry = {"id": "oSO0OpakMV_3jnilAAAA", "handshake": HANDSHAKE, "rooms": ["oSO0", "r"]}
    entry["data"] = {"user": 1}
    payload = encode_response({"requestId": "tJFxoY", "sockets": [entry]})
    assert payload[:1] == b"{"
    resp = decode_response(payload)
    assert resp == Response("tJFxoY", sockets=[entry])
    assert parse_fetched_socket(resp.sockets[0]) == FetchedSocket(  # type: ignore[index]
        "oSO0OpakMV_3jnilAAAA", HANDSHAKE, {"oSO0", "r"}, {"user": 1}
    )


def test_sockets_response() -> None:
    resp = decode_response(b'{"requestId":"r","sockets":["a","b"]}')
    assert resp == Response("r", sockets=["a", "b"])


def test_all_rooms_response() -> None:
    resp = decode_response(encode_response({"requestId": "r1", "rooms": ["a", "b"]}))
    assert resp == Response("r1", rooms=["a", "b"])
    assert decode_response(b'{"requestId":"r1","rooms":[1,"x",2.0]}').rooms == ["1", "x", "2"]
    assert decode_response(b'{"requestId":"r1","rooms":[]}').rooms == []


def test_legacy_single_socket_response() -> None:
    assert decode_response(b'{"requestId":"r2"}') == Response("r2")


@pytest.mark.parametrize(
    ("payload", "answer"),
    [
        (b'{"type":6,"requestId":"r","data":"pong"}', "pong"),
        (b'{"type":6,"requestId":"r","data":{"a":[1,2]}}', {"a": [1, 2]}),
        (b'{"type":6,"requestId":"r","data":null}', None),
        # ``data: undefined`` is dropped by JSON.stringify: still an answer, None.
        (b'{"type":6,"requestId":"r"}', None),
    ],
)
def test_server_side_emit_answer(payload: bytes, answer: Any) -> None:
    resp = decode_response(payload)
    assert resp == Response("r", type=6, answer=answer, has_answer=True)


def test_server_side_emit_answer_with_binary_falls_back_to_msgpack() -> None:
    obj = {"type": 6, "requestId": "r", "data": {"blob": b"\x00\x01"}}
    payload = encode_response(obj)
    assert payload[:1] != b"{"
    assert payload == pack(obj)
    assert decode_response(payload) == Response(
        "r", type=6, answer={"blob": b"\x00\x01"}, has_answer=True
    )


def test_encode_response_json_when_possible() -> None:
    obj = {"type": 6, "requestId": "r", "data": ["é", 1.5, None]}
    assert encode_response(obj) == orjson.dumps(obj)
    with pytest.raises(LocalProtocolError):
        encode_response({"requestId": "r", "data": object()})


@pytest.mark.parametrize("count", [0, 1, 17, 2**31])
def test_client_count_response(count: int) -> None:
    obj = {"type": 8, "requestId": "r", "clientCount": count}
    payload = encode_response(obj)
    assert payload == orjson.dumps(obj)
    assert decode_response(payload) == Response("r", type=8, client_count=count)


@pytest.mark.parametrize(
    "answer", [None, "ok", 0, -1.5, [1, "two", None], {"a": b"\x00", "b": [b""]}, b"\xff" * 300]
)
def test_broadcast_ack_response(answer: Any) -> None:
    payload = encode_broadcast_ack("XLEDLJ", answer)
    assert payload[:1] != b"{"  # msgpack, as Node
    assert unpack(payload) == {"type": 9, "requestId": "XLEDLJ", "packet": answer}
    assert list(unpack(payload)) == ["type", "requestId", "packet"]
    assert decode_response(payload) == Response("XLEDLJ", type=9, answer=answer, has_answer=True)


def test_broadcast_ack_response_without_packet() -> None:
    # notepack.io drops ``packet: undefined`` (a client acked with no argument).
    payload = pack({"type": 9, "requestId": "r"})
    assert decode_response(payload) == Response("r", type=9, answer=None, has_answer=True)


def test_broadcast_ack_refuses_what_msgpack_cannot_carry() -> None:
    with pytest.raises(LocalProtocolError):
        encode_broadcast_ack("r", object())
    with pytest.raises(LocalProtocolError):
        encode_broadcast_ack("r", {1: "non-str key"})


def test_response_types_are_kept() -> None:
    # Types without fields of their own are passed through for the adapter to match.
    assert decode_response(b'{"type":5,"requestId":"r","sockets":[]}') == Response(
        "r", type=5, sockets=[]
    )
    assert decode_response(b'{"type":99,"requestId":"r"}') == Response("r", type=99)


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            {"id": "s", "handshake": {"auth": {"t": 1}}, "rooms": ["s", 5], "data": [1]},
            FetchedSocket("s", {"auth": {"t": 1}}, {"s", "5"}, [1]),
        ),
        ({"id": "s"}, FetchedSocket("s", {}, set(), None)),
        (
            {"id": "s", "handshake": None, "rooms": None, "data": None},
            FetchedSocket("s", {}, set(), None),
        ),
        (
            {"id": "s", "handshake": {}, "rooms": [], "data": b"\x00", "extra": 1},
            FetchedSocket("s", {}, set(), b"\x00"),
        ),
    ],
)
def test_parse_fetched_socket(entry: Any, expected: FetchedSocket) -> None:
    assert parse_fetched_socket(entry) == expected


# ---------------------------------------------------------------------------
# Malformed input: RemoteProtocolError, with a message that says what is wrong
# ---------------------------------------------------------------------------


def event(data: Any = None, **packet: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": 2, "data": ["e"] if data is None else data, "nsp": "/"}
    out.update(packet)
    return out


def bc(uid: Any = "u", packet: Any = None, opts: Any = None) -> bytes:
    return pack([uid, event() if packet is None else packet, {} if opts is None else opts])


def bc_request(**fields: Any) -> bytes:
    obj: dict[str, Any] = {"uid": "u", "requestId": "r", "type": 7, "packet": event(), "opts": {}}
    obj.update(fields)
    return pack({k: v for k, v in obj.items() if v is not _DROP})


_DROP = object()
_DEEP = b"\x91" * 1100 + b"\x90"  # deeper than the unpacker's 1024 containers
# Nested 1000 levels: unpacked, but too deep for repr() (the error message must not die).
_NEST_1000 = b"\x91" * 999 + b"\x90"
_NESTED_EVENT = b"\x93\xa1u\x83\xa4type\x02\xa4data" + _NEST_1000 + b"\xa3nsp\xa1/\x80"


BROADCAST_ERRORS: list[tuple[str, bytes, str]] = [
    ("empty", b"", "invalid msgpack"),
    ("never-used byte", b"\xc1", "invalid msgpack"),
    ("truncated", BROADCAST_ROOM1[:-1], "invalid msgpack"),
    ("trailing bytes", BROADCAST_ROOM1 + b"\x00", "trailing"),
    ("invalid UTF-8", b"\x93\xa1\xff\x80\x80", "UTF-8"),
    ("bytes map key", b"\x93\xa1u\x81\xc4\x01k\x01\x80", "key"),
    ("int map key", b"\x93\xa1u\x81\x01\x01\x80", "key"),
    ("nested too deeply", _DEEP, "nested too deeply"),
    ("nested 1000 levels", _NEST_1000, "not [uid, packet, opts]"),
    ("event name nested 1000 levels", _NESTED_EVENT, "event name"),
    ("JSON", b'["u",{"type":2,"data":["e"]},{}]', "invalid msgpack"),
    ("a map", pack({"uid": "u"}), "not [uid, packet, opts]"),
    ("two items", pack(["u", event()]), "not [uid, packet, opts]"),
    ("five items", pack(["u", event(), {}, "x", {}]), "not [uid, packet, opts]"),
    ("uid int", bc(uid=1), "uid"),
    ("uid null", bc(uid=None), "uid"),
    ("uid bytes", bc(uid=b"u"), "uid"),
    ("packet list", bc(packet=["e"]), "invalid packet"),
    ("packet null", pack(["u", None, {}]), "invalid packet"),
    ("packet type 3", bc(packet=event(type=3)), "packet type"),
    ("packet type 0", bc(packet=event(type=0)), "packet type"),
    ("packet type missing", bc(packet={"data": ["e"], "nsp": "/"}), "packet type"),
    ("packet type '2'", bc(packet=event(type="2")), "packet type"),
    ("packet type 2.5", bc(packet=event(type=2.5)), "packet type"),
    ("nsp int", bc(packet=event(nsp=1)), "nsp"),
    ("nsp null", bc(packet=event(nsp=None)), "nsp"),
    ("data missing", bc(packet={"type": 2, "nsp": "/"}), "event data"),
    ("data empty", bc(packet=event(data=[])), "event data"),
    ("data a string", bc(packet=event(data="e")), "event data"),
    ("data a map", bc(packet=event(data={"0": "e"})), "event data"),
    ("event name int", bc(packet=event(data=[1, 2])), "event name"),
    ("event name null", bc(packet=event(data=[None])), "event name"),
    ("event name bytes", bc(packet=event(data=[b"e"])), "event name"),
    ("opts list", bc(opts=[]), "invalid opts"),
    ("opts null", pack(["u", event(), None]), "invalid opts"),
    ("rooms a string", bc(opts={"rooms": "room1"}), "invalid rooms"),
    ("rooms a map", bc(opts={"rooms": {"a": 1}}), "invalid rooms"),
    ("room a map", bc(opts={"rooms": [{}]}), "invalid room"),
    ("room null", bc(opts={"rooms": [None]}), "invalid room"),
    ("room true", bc(opts={"rooms": [True]}), "invalid room"),
    ("room 1.5", bc(opts={"rooms": [1.5]}), "invalid room"),
    ("room NaN", bc(opts={"rooms": [math.nan]}), "invalid room"),
    ("room bytes", bc(opts={"rooms": [b"r"]}), "invalid room"),
    ("except a string", bc(opts={"except": "r"}), "invalid except"),
    ("except room a list", bc(opts={"except": [["r"]]}), "invalid room"),
    ("flags list", bc(opts={"flags": [1]}), "invalid flags"),
    ("flags true", bc(opts={"flags": True}), "invalid flags"),
    ("timeout negative", bc(opts={"flags": {"timeout": -1}}), "timeout"),
    ("timeout string", bc(opts={"flags": {"timeout": "1000"}}), "timeout"),
    ("timeout true", bc(opts={"flags": {"timeout": True}}), "timeout"),
    ("timeout NaN", bc(opts={"flags": {"timeout": math.nan}}), "timeout"),
    ("timeout -inf", bc(opts={"flags": {"timeout": -math.inf}}), "timeout"),
]
BROADCAST_ERRORS += [
    (f"reserved event {name!r}", bc(packet=event(data=[name, 1])), "event name")
    for name in (
        "connect",
        "connect_error",
        "disconnect",
        "disconnecting",
        "newListener",
        "removeListener",
    )
]


@pytest.mark.parametrize(
    ("payload", "message"),
    [pytest.param(p, m, id=name) for name, p, m in BROADCAST_ERRORS],
)
def test_broadcast_errors(payload: bytes, message: str) -> None:
    with pytest.raises(RemoteProtocolError, match=_literal(message)):
        decode_broadcast(payload)


REQUEST_ERRORS: list[tuple[str, bytes, str]] = [
    ("empty", b"", "empty message"),
    ("JSON truncated", SOCKETS_JOIN[:-1], "invalid JSON"),
    ("JSON brace only", b"{", "invalid JSON"),
    ("JSON trailing garbage", SOCKETS_JOIN + b"x", "invalid JSON"),
    ("JSON invalid UTF-8", b'{"uid":"\xff","type":1,"requestId":"r"}', "invalid JSON"),
    ("JSON lone surrogate", b'{"uid":"\\ud800","type":1,"requestId":"r"}', "invalid JSON"),
    ("JSON nested too deeply", b'{"a":' + b"[" * 1100 + b"]" * 1100 + b"}", "invalid JSON"),
    ("JSON NaN", b'{"type":NaN}', "invalid JSON"),
    ("leading space", b' {"type":1,"requestId":"r"}', "invalid msgpack"),
    ("JSON array", b'[{"type":1}]', "invalid msgpack"),  # not "{": read as msgpack
    ("msgpack garbage", b"\xc1\x00", "invalid msgpack"),
    ("msgpack truncated", BROADCAST_REQUEST[:50], "invalid msgpack"),
    ("msgpack list", pack([1, 2]), "not an object"),
    ("msgpack string", pack("{"), "not an object"),
    ("msgpack int", b"\x07", "not an object"),
    ("type missing", req(uid="u", requestId="r"), "unknown request type None"),
    ("type null", req(uid="u", requestId="r", type=None), "unknown request type"),
    ("type string", req(uid="u", requestId="r", type="1"), "unknown request type '1'"),
    ("type float", req(uid="u", requestId="r", type=1.0), "unknown request type 1.0"),
    ("type true", req(uid="u", requestId="r", type=True), "unknown request type True"),
    ("type 8", req(uid="u", requestId="r", type=8, clientCount=1), "unknown request type 8"),
    ("type 9", req(uid="u", requestId="r", type=9), "unknown request type 9"),
    ("type -1", req(uid="u", requestId="r", type=-1), "unknown request type -1"),
    ("type huge", b'{"type":123456789012345678901234567890}', "unknown request type"),
    ("uid int", req(uid=1, requestId="r", type=1), "'uid'"),
    ("uid list", req(uid=["u"], requestId="r", type=1), "'uid'"),
    ("requestId int", req(uid="u", requestId=1, type=6, data=["e"]), "'requestId'"),
    ("requestId list", req(uid="u", requestId=[], type=1), "'requestId'"),
    ("SOCKETS without requestId", req(uid="u", type=0), "missing 'requestId'"),
    ("ALL_ROOMS without requestId", req(uid="u", type=1), "missing 'requestId'"),
    ("REMOTE_FETCH without requestId", req(uid="u", type=5, opts={}), "missing 'requestId'"),
    ("BROADCAST without requestId", bc_request(requestId=_DROP), "missing 'requestId'"),
    ("BROADCAST requestId null", bc_request(requestId=None), "missing 'requestId'"),
    ("SOCKETS rooms a string", req(uid="u", requestId="r", type=0, rooms="a"), "invalid rooms"),
    ("SOCKETS room a map", req(uid="u", requestId="r", type=0, rooms=[{}]), "invalid room"),
    ("JOIN opts null", req(uid="u", type=2, opts=None, rooms=["a"]), "invalid opts"),
    ("JOIN opts list", req(uid="u", type=2, opts=[], rooms=["a"]), "invalid opts"),
    ("JOIN opts rooms bad", req(uid="u", type=2, opts={"rooms": 1}, rooms=["a"]), "invalid rooms"),
    ("JOIN opts except bad", req(uid="u", type=2, opts={"except": "x"}, rooms=[]), "except"),
    ("JOIN rooms missing", req(uid="u", type=2, opts={}), "invalid rooms: None"),
    ("JOIN rooms a string", req(uid="u", type=2, opts={}, rooms="a"), "invalid rooms"),
    ("JOIN room a list", req(uid="u", type=2, opts={}, rooms=[["a"]]), "invalid room"),
    ("JOIN room true", req(uid="u", type=2, opts={}, rooms=[True]), "invalid room True"),
    ("LEAVE rooms missing", req(uid="u", type=3, opts={}), "invalid rooms"),
    ("LEAVE room null", req(uid="u", type=3, opts={}, rooms=[None]), "invalid room None"),
    ("legacy JOIN without sid", req(uid="u", requestId="r", type=2, room="a"), "missing 'sid'"),
    ("legacy JOIN sid int", req(uid="u", type=2, sid=1, room="a"), "invalid 'sid'"),
    ("legacy JOIN room missing", req(uid="u", type=2, sid="s"), "invalid room None"),
    ("legacy JOIN room a map", req(uid="u", type=2, sid="s", room={}), "invalid room"),
    ("legacy LEAVE room 1.5", req(uid="u", type=3, sid="s", room=1.5), "invalid room 1.5"),
    ("legacy DISCONNECT without sid", req(uid="u", type=4, close=True), "missing 'sid'"),
    ("DISCONNECT opts a string", req(uid="u", type=4, opts="x"), "invalid opts"),
    ("FETCH opts missing", req(uid="u", requestId="r", type=5), "invalid opts: None"),
    ("FETCH opts list", req(uid="u", requestId="r", type=5, opts=[]), "invalid opts"),
    ("FETCH room true", req(uid="u", requestId="r", type=5, opts={"rooms": [True]}), "room"),
    ("SSE data missing", req(uid="u", type=6), "invalid event data"),
    ("SSE data empty", req(uid="u", type=6, data=[]), "invalid event data"),
    ("SSE data a string", req(uid="u", type=6, data="ping"), "invalid event data"),
    ("SSE event name int", req(uid="u", type=6, data=[1]), "invalid event name"),
    ("SSE reserved event", req(uid="u", type=6, data=["disconnect"]), "invalid event name"),
    ("BROADCAST packet missing", bc_request(packet=_DROP), "invalid packet"),
    ("BROADCAST packet type 3", bc_request(packet=event(type=3)), "packet type"),
    ("BROADCAST nsp int", bc_request(packet=event(nsp=7)), "nsp"),
    ("BROADCAST reserved event", bc_request(packet=event(data=["connect"])), "event name"),
    ("BROADCAST opts missing", bc_request(opts=_DROP), "invalid opts"),
    ("BROADCAST rooms bad", bc_request(opts={"rooms": "a"}), "invalid rooms"),
    ("BROADCAST timeout negative", bc_request(opts={"flags": {"timeout": -5}}), "timeout"),
    ("BROADCAST timeout string", bc_request(opts={"flags": {"timeout": "5"}}), "timeout"),
    ("BROADCAST flags a list", bc_request(opts={"flags": []}), "invalid flags"),
    ("msgpack nested 1000 levels", b"\x81\xa4type" + _NEST_1000, "unknown request type"),
]


@pytest.mark.parametrize(
    ("payload", "message"),
    [pytest.param(p, m, id=name) for name, p, m in REQUEST_ERRORS],
)
def test_request_errors(payload: bytes, message: str) -> None:
    with pytest.raises(RemoteProtocolError, match=_literal(message)):
        decode_request(payload)


RESPONSE_ERRORS: list[tuple[str, bytes, str]] = [
    ("empty", b"", "empty message"),
    ("JSON truncated", b'{"requestId":"r"', "invalid JSON"),
    ("msgpack garbage", b"\xc1", "invalid msgpack"),
    ("msgpack truncated", encode_broadcast_ack("r", "x")[:-1], "invalid msgpack"),
    ("msgpack list", pack(["r"]), "not an object"),
    ("requestId missing", b'{"type":8,"clientCount":1}', "missing 'requestId'"),
    ("requestId null", b'{"requestId":null}', "missing 'requestId'"),
    ("requestId int", b'{"requestId":1}', "invalid 'requestId'"),
    ("requestId bytes", pack({"requestId": b"r"}), "invalid 'requestId'"),
    ("type string", b'{"requestId":"r","type":"8","clientCount":1}', "invalid response type '8'"),
    ("type float", b'{"requestId":"r","type":8.0,"clientCount":1}', "invalid response type 8.0"),
    ("type true", b'{"requestId":"r","type":true}', "invalid response type True"),
    ("sockets a map", b'{"requestId":"r","sockets":{}}', "invalid sockets"),
    ("sockets a string", b'{"requestId":"r","sockets":"a"}', "invalid sockets"),
    ("rooms a string", b'{"requestId":"r","rooms":"a"}', "invalid rooms"),
    ("room a map", b'{"requestId":"r","rooms":[{}]}', "invalid room"),
    ("room null", b'{"requestId":"r","rooms":[null]}', "invalid room None"),
    ("room 0.5", b'{"requestId":"r","rooms":[0.5]}', "invalid room 0.5"),
    ("clientCount missing", b'{"requestId":"r","type":8}', "invalid clientCount: None"),
    ("clientCount negative", b'{"requestId":"r","type":8,"clientCount":-1}', "clientCount: -1"),
    ("clientCount float", b'{"requestId":"r","type":8,"clientCount":1.0}', "clientCount: 1.0"),
    ("clientCount string", b'{"requestId":"r","type":8,"clientCount":"1"}', "clientCount: '1'"),
    ("clientCount true", b'{"requestId":"r","type":8,"clientCount":true}', "clientCount: True"),
    ("clientCount null", b'{"requestId":"r","type":8,"clientCount":null}', "clientCount: None"),
]


@pytest.mark.parametrize(
    ("payload", "message"),
    [pytest.param(p, m, id=name) for name, p, m in RESPONSE_ERRORS],
)
def test_response_errors(payload: bytes, message: str) -> None:
    with pytest.raises(RemoteProtocolError, match=_literal(message)):
        decode_response(payload)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("sid", "invalid socket entry: 'sid'"),
        (None, "invalid socket entry: None"),
        (["s"], "invalid socket entry"),
        ({}, "missing 'id'"),
        ({"id": None}, "missing 'id'"),
        ({"id": 1}, "invalid 'id': 1"),
        ({"id": "s", "handshake": []}, "invalid handshake: []"),
        ({"id": "s", "handshake": "h"}, "invalid handshake: 'h'"),
        ({"id": "s", "rooms": "r"}, "invalid rooms: 'r'"),
        ({"id": "s", "rooms": [{}]}, "invalid room {}"),
        ({"id": "s", "rooms": [1.5]}, "invalid room 1.5"),
    ],
)
def test_parse_fetched_socket_errors(entry: Any, message: str) -> None:
    with pytest.raises(RemoteProtocolError, match=_literal(message)):
        parse_fetched_socket(entry)


def test_error_messages_are_bounded() -> None:
    # Remote data in an error message is cut short, however large.
    payload = bc(uid=["x" * 100_000])
    with pytest.raises(RemoteProtocolError) as info:
        decode_broadcast(payload)
    assert len(str(info.value)) < 200


def test_invalid_msgpack_message_names_the_problem() -> None:
    # msgpack raises some errors without a message (FormatError() for c1).
    with pytest.raises(RemoteProtocolError) as info:
        decode_broadcast(b"\xc1")
    assert str(info.value).removeprefix("invalid msgpack:").strip()


# ---------------------------------------------------------------------------
# notepack.io 3.0.1 (the adapter's parser) against the encoders and decoders
# ---------------------------------------------------------------------------

SCRIPT = JS_DIR / "redis_vectors.js"
UNDEFINED: Any = {"$undefined": True}


def js(value: Any) -> Any:
    """A Python value as redis_vectors.js takes and prints JavaScript values."""
    if isinstance(value, bytes):
        return {"$bin": list(value)}
    if isinstance(value, datetime):
        return {"$date": (value - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)}
    if isinstance(value, float):
        if math.isnan(value):
            return {"$number": "NaN"}
        if math.isinf(value):
            return {"$number": "Infinity" if value > 0 else "-Infinity"}
        if value == 0 and math.copysign(1, value) < 0:
            return {"$number": "-0"}
        return value
    if isinstance(value, (list, tuple)):
        return [js(v) for v in value]
    if isinstance(value, dict):
        return {k: js(v) for k, v in value.items()}
    return value


def js_broadcast(
    uid: str, nsp: str, data: list[Any], rooms: list[str], excepts: list[str], flags: Any
) -> Any:
    return [
        uid,
        {"type": 2, "data": js(data), "nsp": nsp},
        {"rooms": rooms, "except": excepts, "flags": flags},
    ]


def js_request(
    uid: str, rid: str, nsp: str, data: list[Any], rooms: list[str], excepts: list[str], flags: Any
) -> Any:
    return {
        "uid": uid,
        "requestId": rid,
        "type": 7,
        "packet": {"type": 2, "data": js(data), "nsp": nsp},
        "opts": {"rooms": rooms, "except": excepts, "flags": flags},
    }


INTS = [0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**53 - 1]
INTS += [-1, -32, -33, -128, -129, -32768, -32769, -(2**31), -(2**31) - 1, -(2**53) + 1]
FLOATS = [0.5, -1.25, 3.141592653589793, -1e-300, 2.5e-8, 123456.789, 2.0**-1074, 2.0**51 + 0.5]
STRINGS = ["", "a", "x" * 31, "x" * 32, "é" * 16, "y" * 255, "y" * 256, "z" * 65535]
STRINGS += ["é€𝄞", "\u2028\u2029", "\x00\x01", 'quote " back \\ slash', "日本語" * 40]
BINARIES = [b"", b"\x00", b"\xff" * 255, bytes(range(256)), b"\x01" * 65535]
MAP15 = {f"k{i}": i for i in range(15)}
MAP16 = {f"k{i}": [i] for i in range(16)}
NESTED = {"a": [1, {"b": [None, True, False, {"c": "d"}]}], "e": {}, "f": [], "g": [[[]]]}

WHEN = datetime(2026, 12, 3, 10, 30, 0, 125_000, tzinfo=UTC)
BEFORE_1970 = datetime(1969, 12, 31, 23, 59, 58, 750_000, tzinfo=UTC)
AFTER_2106 = datetime(2200, 1, 1, tzinfo=UTC)

# (id, our encoding, the same value as a JavaScript structure)
SAME_BYTES: list[tuple[str, bytes, Any]] = [
    (
        "broadcast one room",
        encode_broadcast(UID, "/", ["hello", "world"], ["room1"], []),
        js_broadcast(UID, "/", ["hello", "world"], ["room1"], [], {}),
    ),
    (
        "broadcast binary volatile",
        encode_broadcast(UID, "/", ["multi", b"\x01\x02\x03"], ["r1", "r2"], ["r3"], volatile=True),
        js_broadcast(
            UID, "/", ["multi", b"\x01\x02\x03"], ["r1", "r2"], ["r3"], {"volatile": True}
        ),
    ),
    (
        "broadcast emitter compress false",
        encode_broadcast(EMITTER_UID, "/admin", ["ev"], [], ["x"], compress=False),
        js_broadcast(EMITTER_UID, "/admin", ["ev"], [], ["x"], {"compress": False}),
    ),
    (
        "broadcast volatile compress false",
        encode_broadcast("abcdef", "/", ["ev", 1], ["a"], [], volatile=True, compress=False),
        js_broadcast("abcdef", "/", ["ev", 1], ["a"], [], {"volatile": True, "compress": False}),
    ),
    (
        "broadcast integers",
        encode_broadcast(UID, "/", ["ints", *INTS], [], []),
        js_broadcast(UID, "/", ["ints", *INTS], [], [], {}),
    ),
    (
        "broadcast floats",
        encode_broadcast(UID, "/", ["floats", FLOATS], [], []),
        js_broadcast(UID, "/", ["floats", FLOATS], [], [], {}),
    ),
    (
        "broadcast strings",
        encode_broadcast(UID, "/", ["strings", *STRINGS], [], []),
        js_broadcast(UID, "/", ["strings", *STRINGS], [], [], {}),
    ),
    (
        "broadcast binaries",
        encode_broadcast(UID, "/", ["bins", *BINARIES], [], []),
        js_broadcast(UID, "/", ["bins", *BINARIES], [], [], {}),
    ),
    (
        "broadcast maps and arrays",
        encode_broadcast(
            UID, "/", ["m", MAP15, MAP16, list(range(15)), list(range(16)), NESTED], [], []
        ),
        js_broadcast(
            UID, "/", ["m", MAP15, MAP16, list(range(15)), list(range(16)), NESTED], [], [], {}
        ),
    ),
    (
        "broadcast 32-bit lengths",
        encode_broadcast(UID, "/", ["big", "s" * 65536, b"\x02" * 65536, [0] * 65536], [], []),
        js_broadcast(UID, "/", ["big", "s" * 65536, b"\x02" * 65536, [0] * 65536], [], [], {}),
    ),
    (
        "broadcast many rooms",
        encode_broadcast(UID, "/", ["ev"], [f"room{i}" for i in range(16)], ["é", "a#b", "1"]),
        js_broadcast(UID, "/", ["ev"], [f"room{i}" for i in range(16)], ["é", "a#b", "1"], {}),
    ),
    (
        "broadcast unicode namespace and event",
        encode_broadcast(UID, "/ü 𝄞", ["é€𝄞", {"ключ": "значение"}], ["ü"], []),
        js_broadcast(UID, "/ü 𝄞", ["é€𝄞", {"ключ": "значение"}], ["ü"], [], {}),
    ),
    (
        "request one second",
        encode_broadcast_request(UID, "XLEDLJ", "/", ["ask", 42], [], [], timeout=1.0),
        js_request(UID, "XLEDLJ", "/", ["ask", 42], [], [], {"timeout": 1000}),
    ),
    (
        "request rooms volatile 250 ms",
        encode_broadcast_request(
            "AbC-_9",
            "q1w2e3",
            "/chat",
            ["ev", {"x": b"\x00"}],
            ["a", "b"],
            ["c"],
            volatile=True,
            timeout=0.25,
        ),
        js_request(
            "AbC-_9",
            "q1w2e3",
            "/chat",
            ["ev", {"x": b"\x00"}],
            ["a", "b"],
            ["c"],
            {"volatile": True, "timeout": 250},
        ),
    ),
    (
        "request fractional milliseconds",
        encode_broadcast_request(UID, "r", "/", ["ev"], [], [], compress=False, timeout=0.0625),
        js_request(UID, "r", "/", ["ev"], [], [], {"compress": False, "timeout": 62.5}),
    ),
    (
        "request zero timeout",
        encode_broadcast_request(UID, "r", "/", ["ev", None], [], [], timeout=0),
        js_request(UID, "r", "/", ["ev", None], [], [], {"timeout": 0}),
    ),
    (
        "request no timeout",
        encode_broadcast_request(UID, "r", "/", ["ev", b"\xff" * 300], ["x"], []),
        js_request(UID, "r", "/", ["ev", b"\xff" * 300], ["x"], [], {}),
    ),
    (
        "ack null",
        encode_broadcast_ack("XLEDLJ", None),
        {"type": 9, "requestId": "XLEDLJ", "packet": None},
    ),
    ("ack string", encode_broadcast_ack("r", "ok"), {"type": 9, "requestId": "r", "packet": "ok"}),
    (
        "ack binary map",
        encode_broadcast_ack("r", {"a": b"\x00\x01", "n": [1, 2.5, -3]}),
        {"type": 9, "requestId": "r", "packet": js({"a": b"\x00\x01", "n": [1, 2.5, -3]})},
    ),
    (
        "ack nested list",
        encode_broadcast_ack("r", [[1, [2, [3]]], {"k": None}]),
        {"type": 9, "requestId": "r", "packet": [[1, [2, [3]]], {"k": None}]},
    ),
    (
        "ack large integer",
        encode_broadcast_ack("r", 2**53 - 1),
        {"type": 9, "requestId": "r", "packet": 2**53 - 1},
    ),
    # A Date is the msgpack timestamp (ext -1), in its smallest form, as notepack.io
    # 3 writes it (not notepack.io 2's ext 0 of the client parser).
    (
        "broadcast datetime with milliseconds",
        encode_broadcast(UID, "/", ["ev", WHEN], [], []),
        js_broadcast(UID, "/", ["ev", WHEN], [], [], {}),
    ),
    (
        "ack datetime of a whole second",
        encode_broadcast_ack("r", WHEN.replace(microsecond=0)),
        {"type": 9, "requestId": "r", "packet": js(WHEN.replace(microsecond=0))},
    ),
    (
        "ack datetimes before 1970 and after 2106",
        encode_broadcast_ack("r", [BEFORE_1970, AFTER_2106]),
        {"type": 9, "requestId": "r", "packet": js([BEFORE_1970, AFTER_2106])},
    ),
    (
        "request datetime",
        encode_broadcast_request(UID, "r", "/", ["ev", {"at": WHEN}], [], [], timeout=1),
        js_request(UID, "r", "/", ["ev", {"at": WHEN}], [], [], {"timeout": 1000}),
    ),
]

# Our encodings that notepack reads as another JavaScript value than the
# structure it would write itself (same meaning, other bytes).
SAME_VALUE: list[tuple[str, bytes, Any]] = [
    (
        # JavaScript orders integer-like keys first.
        "integer-like keys",
        encode_broadcast_ack("r", {"b": 1, "10": 2, "2": 3}),
        {"type": 9, "requestId": "r", "packet": {"2": 3, "10": 2, "b": 1}},
    ),
    (
        # An integral float is float64 here, the same Number there. (notepack
        # writes integral Numbers as integers, and those beyond 64 bits wrongly:
        # 1e300 as uint64 0.)
        "integral float",
        encode_broadcast(UID, "/", ["ev", 2.0, -0.0, 1e300], [], []),
        js_broadcast(UID, "/", ["ev", 2, -0.0, 1e300], [], [], {}),
    ),
    (
        "NaN and infinities",
        encode_broadcast_ack("r", [math.nan, math.inf, -math.inf]),
        {"type": 9, "requestId": "r", "packet": js([math.nan, math.inf, -math.inf])},
    ),
    (
        "tuples and frozensets of rooms",
        encode_broadcast(UID, "/", ["ev", (1, 2)], frozenset({"only"}), ()),
        js_broadcast(UID, "/", ["ev", [1, 2]], ["only"], [], {}),
    ),
]

# JavaScript structures that notepack writes and that our decoders must read:
# (id, structure, decoder, expected result).
NODE_WRITES: list[tuple[str, Any, Any, Any]] = [
    (
        "packet nsp undefined",
        [UID, {"type": 2, "data": ["e"], "nsp": UNDEFINED}, {"rooms": [], "except": []}],
        decode_broadcast,
        BroadcastMessage(UID, "/", ["e"], frozenset(), frozenset(), Flags()),
    ),
    (
        "flags undefined, no except",
        [
            UID,
            {"type": 2, "data": ["e"], "nsp": "/"},
            {"rooms": ["a"], "flags": {"volatile": UNDEFINED, "compress": UNDEFINED}},
        ],
        decode_broadcast,
        BroadcastMessage(UID, "/", ["e"], frozenset({"a"}), frozenset(), Flags()),
    ),
    (
        "numeric rooms",
        [
            UID,
            {"type": 2, "data": ["e"], "nsp": "/"},
            {"rooms": [1, 2], "except": [3], "flags": {}},
        ],
        decode_broadcast,
        BroadcastMessage(UID, "/", ["e"], frozenset({"1", "2"}), frozenset({"3"}), Flags()),
    ),
    (
        "undefined in the data",
        [UID, {"type": 2, "data": ["e", UNDEFINED, {"k": UNDEFINED, "v": 1}], "nsp": "/"}, {}],
        decode_broadcast,
        BroadcastMessage(UID, "/", ["e", None, {"v": 1}], frozenset(), frozenset(), Flags()),
    ),
    (
        "Date argument",
        [UID, {"type": 2, "data": ["e", {"$date": 1796286600125}], "nsp": "/"}, {}],
        decode_broadcast,
        BroadcastMessage(
            UID,
            "/",
            ["e", datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=1796286600125)],
            frozenset(),
            frozenset(),
            Flags(),
        ),
    ),
    (
        "Date of a whole second",
        [UID, {"type": 2, "data": ["e", {"$date": 1796286600000}], "nsp": "/"}, {}],
        decode_broadcast,
        BroadcastMessage(
            UID,
            "/",
            ["e", datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=1796286600000)],
            frozenset(),
            frozenset(),
            Flags(),
        ),
    ),
    (
        "BROADCAST request with every flag",
        {
            "uid": UID,
            "requestId": "XLEDLJ",
            "type": 7,
            "packet": {"type": 2, "data": ["ask", {"$bin": [1]}], "nsp": "/"},
            "opts": {
                "rooms": ["a"],
                "except": ["b"],
                "flags": {"volatile": True, "compress": False, "timeout": 1500, "local": UNDEFINED},
            },
        },
        decode_request,
        Request(
            RequestType.BROADCAST,
            uid=UID,
            request_id="XLEDLJ",
            rooms=frozenset({"a"}),
            except_rooms=frozenset({"b"}),
            nsp="/",
            data=["ask", b"\x01"],
            flags=Flags(volatile=True, compress=False, timeout=1.5),
        ),
    ),
    (
        "BROADCAST_ACK without argument",
        {"type": 9, "requestId": "r", "packet": UNDEFINED},
        decode_response,
        Response("r", type=9, answer=None, has_answer=True),
    ),
    (
        "BROADCAST_ACK with binary",
        {"type": 9, "requestId": "r", "packet": {"$bin": [0, 255]}},
        decode_response,
        Response("r", type=9, answer=b"\x00\xff", has_answer=True),
    ),
]

# Bytes that both notepack and our decoders refuse.
BOTH_REFUSE = [b"\xc1", BROADCAST_ROOM1[:-3], BROADCAST_ROOM1 + b"\xc0", b"\x93\xa1u"]


@pytest.fixture(scope="module")
def notepack(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Any]]:
    """One Node run: notepack's encodings of the structures, its decodings of our bytes."""
    encode = [s for _, _, s in SAME_BYTES] + [s for _, s, _, _ in NODE_WRITES]
    decode = [b.hex() for _, b, _ in SAME_BYTES + SAME_VALUE]
    decode += [b.hex() for b in BOTH_REFUSE]
    folder = tmp_path_factory.mktemp("notepack")
    enc_path, dec_path = folder / "encode.json", folder / "decode.json"
    enc_path.write_text(json.dumps(encode), encoding="utf-8")
    dec_path.write_text(json.dumps(decode), encoding="utf-8")
    lines = asyncio.run(run_node(SCRIPT, "encode", f"@{enc_path}", "decode", f"@{dec_path}"))
    assert lines[0] == {"notepack": "3.0.1"}
    lines = lines[1:]
    assert len(lines) == len(encode) + len(decode)
    return {"encoded": lines[: len(encode)], "decoded": lines[len(encode) :]}


@pytest.mark.parametrize(
    ("index", "ours"),
    [pytest.param(i, b, id=name) for i, (name, b, _) in enumerate(SAME_BYTES)],
)
def test_encoders_write_what_notepack_writes(
    notepack: dict[str, list[Any]], index: int, ours: bytes
) -> None:
    assert bytes.fromhex(notepack["encoded"][index]) == ours


@pytest.mark.parametrize(
    ("index", "structure"),
    [pytest.param(i, s, id=name) for i, (name, _, s) in enumerate(SAME_BYTES + SAME_VALUE)],
)
def test_notepack_reads_what_encoders_write(
    notepack: dict[str, list[Any]], index: int, structure: Any
) -> None:
    got = notepack["decoded"][index]
    assert got == structure
    # Keys in the order written (JavaScript puts integer-like keys first).
    if isinstance(structure, dict):
        assert list(got) == list(structure)


@pytest.mark.parametrize(
    ("index", "decoder", "expected"),
    [
        pytest.param(len(SAME_BYTES) + i, d, e, id=name)
        for i, (name, _, d, e) in enumerate(NODE_WRITES)
    ],
)
def test_decoders_read_what_notepack_writes(
    notepack: dict[str, list[Any]], index: int, decoder: Any, expected: Any
) -> None:
    assert decoder(bytes.fromhex(notepack["encoded"][index])) == expected


@pytest.mark.parametrize("index", range(len(BOTH_REFUSE)))
def test_notepack_and_decoders_refuse_the_same_bytes(
    notepack: dict[str, list[Any]], index: int
) -> None:
    offset = len(SAME_BYTES) + len(SAME_VALUE)
    assert "$error" in notepack["decoded"][offset + index]
    with pytest.raises(RemoteProtocolError):
        decode_broadcast(BOTH_REFUSE[index])


def test_captured_vectors_are_what_notepack_writes(notepack: dict[str, list[Any]]) -> None:
    names = [name for name, _, _ in SAME_BYTES]
    encoded = notepack["encoded"]
    assert bytes.fromhex(encoded[names.index("broadcast one room")]) == BROADCAST_ROOM1
    assert bytes.fromhex(encoded[names.index("broadcast binary volatile")]) == BROADCAST_MULTI
    assert bytes.fromhex(encoded[names.index("request one second")]) == BROADCAST_REQUEST


def test_javascript_orders_integer_like_keys_first(notepack: dict[str, list[Any]]) -> None:
    names = [name for name, _, _ in SAME_BYTES + SAME_VALUE]
    got = notepack["decoded"][names.index("integer-like keys")]
    assert list(got["packet"]) == ["2", "10", "b"]


def test_module_exports() -> None:
    assert all(hasattr(rf, name) for name in rf.__all__)


def test_a_fourth_item_is_ignored() -> None:
    """socketwire's recovery offset travels as a fourth item; Node reads three."""
    from socketwire.core.cluster.recovery_format import encode_recorded_broadcast, peek_offset

    offset = "abcdef" + "0" * 13 + "1"
    payload = encode_recorded_broadcast("abcdef", "/", ["ev", 1], ["r"], [], offset)
    msg = rf.decode_broadcast(payload)
    assert (msg.uid, msg.data, msg.rooms) == ("abcdef", ["ev", 1], frozenset({"r"}))
    assert peek_offset(payload) == offset
    assert peek_offset(rf.encode_broadcast("abcdef", "/", ["ev"], [], [])) is None


def test_a_recorded_offset_has_twenty_ascii_characters() -> None:
    from socketwire.core.cluster.recovery_format import encode_recorded_broadcast

    for bad in ("short", "é" * 20, "0" * 21):
        with pytest.raises(ValueError, match="20 ASCII characters"):
            encode_recorded_broadcast("abcdef", "/", ["ev"], [], [], bad)


def test_stored_sessions_round_trip_and_malformed_ones_are_refused() -> None:
    from socketwire.core.cluster.recovery_format import (
        StoredSession,
        decode_session,
        encode_session,
    )
    from socketwire.core.notepack import pack
    from socketwire.errors import RemoteProtocolError

    got = decode_session(encode_session(StoredSession("s1", "p1", ["a", "b"], {"k": [1]})))
    assert (got.sid, got.pid, got.rooms, got.data) == ("s1", "p1", ["a", "b"], {"k": [1]})
    for bad in (["s1", "p1", ["a"]], ["s1", "p1", [1], None], {"sid": "s1"}, ["s1", 2, [], None]):
        with pytest.raises(RemoteProtocolError, match="invalid stored session"):
            decode_session(pack(bad))
