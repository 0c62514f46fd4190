"""Tests of the Socket.IO v5 packet codec (socketwire.core.socketio.packet).

The vectors are the examples of the protocol document
(/work/shared/specs/socket.io-protocol-v5.md): "Packet encoding" > "Examples",
plus the packets of "Exchange protocol" and "Sample session".
"""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from socketwire.core.socketio.packet import (
    RESERVED_EVENTS,
    Packet,
    PacketDecoder,
    PacketType,
    encode,
    encode_ack,
    encode_event,
)
from socketwire.errors import LocalProtocolError, RemoteProtocolError

CONNECT = PacketType.CONNECT
DISCONNECT = PacketType.DISCONNECT
EVENT = PacketType.EVENT
ACK = PacketType.ACK
CONNECT_ERROR = PacketType.CONNECT_ERROR
BINARY_EVENT = PacketType.BINARY_EVENT
BINARY_ACK = PacketType.BINARY_ACK

BUF = b"\x01\x02\x03\x04"


def ph(num: int) -> str:
    return f'{{"_placeholder":true,"num":{num}}}'


# (name, packet, wire text, attachments)
VECTORS: list[tuple[str, Packet, bytes, list[bytes]]] = [
    # "Packet encoding" > "Examples" > "Connection to a namespace"
    ("connect-main", Packet(CONNECT), b"0", []),
    (
        "connect-custom-sid",
        Packet(CONNECT, "/admin", {"sid": "oSO0OpakMV_3jnilAAAA"}),
        b'0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}',
        [],
    ),
    (
        "connect-error",
        Packet(CONNECT_ERROR, "/", {"message": "Not authorized"}),
        b'4{"message":"Not authorized"}',
        [],
    ),
    # "Examples" > "Sending and receiving data"
    ("event-main", Packet(EVENT, "/", ["foo"]), b'2["foo"]', []),
    ("event-custom", Packet(EVENT, "/admin", ["bar"]), b'2/admin,["bar"]', []),
    (
        "binary-event",
        Packet(BINARY_EVENT, "/", ["baz", BUF]),
        b'51-["baz",' + ph(0).encode() + b"]",
        [BUF],
    ),
    (
        "binary-event-multiple-attachments",
        Packet(BINARY_EVENT, "/admin", ["baz", b"\x01\x02", b"\x03\x04"]),
        b'52-/admin,["baz",' + ph(0).encode() + b"," + ph(1).encode() + b"]",
        [b"\x01\x02", b"\x03\x04"],
    ),
    # "Examples" > "Acknowledgement"
    ("event-with-id", Packet(EVENT, "/", ["foo"], 12), b'212["foo"]', []),
    ("ack-custom", Packet(ACK, "/admin", ["bar"], 13), b'3/admin,13["bar"]', []),
    (
        "binary-ack",
        Packet(BINARY_ACK, "/", ["bar", BUF], 15),
        b'61-15["bar",' + ph(0).encode() + b"]",
        [BUF],
    ),
    # "Examples" > "Disconnection from a namespace"
    ("disconnect-main", Packet(DISCONNECT), b"1", []),
    ("disconnect-custom", Packet(DISCONNECT, "/admin"), b"1/admin,", []),
    # "Exchange protocol"
    (
        "connect-main-sid",
        Packet(CONNECT, "/", {"sid": "wZX3oN0bSVIhsaknAAAI"}),
        b'0{"sid":"wZX3oN0bSVIhsaknAAAI"}',
        [],
    ),
    ("connect-custom", Packet(CONNECT, "/admin"), b"0/admin,", []),
    (
        "connect-custom-token",
        Packet(CONNECT, "/admin", {"token": "123"}),
        b'0/admin,{"token":"123"}',
        [],
    ),
    ("ack-empty", Packet(ACK, "/", [], 12), b"312[]", []),
    ("event-custom-id", Packet(EVENT, "/admin", ["foo"], 13), b'2/admin,13["foo"]', []),
    (
        "binary-event-id",
        Packet(BINARY_EVENT, "/", ["foo", BUF], 14),
        b'51-14["foo",' + ph(0).encode() + b"]",
        [BUF],
    ),
    ("ack-main", Packet(ACK, "/", ["bar"], 14), b'314["bar"]', []),
    ("event-id-15", Packet(EVENT, "/", ["foo"], 15), b'215["foo"]', []),
    # "Sample session"
    ("session-hey", Packet(EVENT, "/", ["hey", "Jude"]), b'2["hey","Jude"]', []),
    ("session-hello", Packet(EVENT, "/", ["hello"]), b'2["hello"]', []),
    (
        "session-admin-sid",
        Packet(CONNECT, "/admin", {"sid": "-G5j-67EZFp-q59rADQM"}),
        b'0/admin,{"sid":"-G5j-67EZFp-q59rADQM"}',
        [],
    ),
    ("session-tellme", Packet(EVENT, "/admin", ["tellme"], 1), b'2/admin,1["tellme"]', []),
    (
        "session-binary-ack",
        Packet(BINARY_ACK, "/admin", [b"\xff\x00binary"], 1),
        b"61-/admin,1[" + ph(0).encode() + b"]",
        [b"\xff\x00binary"],
    ),
]

VECTOR_IDS = [v[0] for v in VECTORS]


def decode_all(
    wire: bytes, attachments: list[bytes], decoder: PacketDecoder | None = None
) -> Packet:
    """Feed a whole packet, checking the intermediate states."""
    decoder = decoder or PacketDecoder(max_attachments=1000)
    result = decoder.feed_text(wire)
    if not attachments:
        assert result is not None
        assert not decoder.awaiting_attachments
        return result
    assert result is None
    for attachment in attachments[:-1]:
        assert decoder.awaiting_attachments
        assert decoder.feed_binary(attachment) is None
    assert decoder.awaiting_attachments
    result = decoder.feed_binary(attachments[-1])
    assert result is not None
    assert not decoder.awaiting_attachments
    return result


# ---------------------------------------------------------------------------
# Spec vectors, both directions
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "packet", "wire", "attachments"), VECTORS, ids=VECTOR_IDS)
def test_encode_vector(name: str, packet: Packet, wire: bytes, attachments: list[bytes]) -> None:
    assert encode(packet) == (wire, attachments)


@pytest.mark.parametrize(("name", "packet", "wire", "attachments"), VECTORS, ids=VECTOR_IDS)
def test_decode_vector(name: str, packet: Packet, wire: bytes, attachments: list[bytes]) -> None:
    decoded = decode_all(wire, attachments)
    assert decoded == packet
    assert type(decoded.type) is PacketType
    assert decoded.type is packet.type


@pytest.mark.parametrize(("name", "packet", "wire", "attachments"), VECTORS, ids=VECTOR_IDS)
def test_vector_shortcuts_and_promotion(
    name: str, packet: Packet, wire: bytes, attachments: list[bytes]
) -> None:
    """EVENT/ACK with binary become BINARY_*; the shortcuts give the same bytes."""
    if packet.type in (EVENT, BINARY_EVENT):
        assert encode_event(packet.nsp, packet.data, packet.id) == (wire, attachments)
        if attachments:
            assert encode(Packet(EVENT, packet.nsp, packet.data, packet.id)) == (wire, attachments)
    elif packet.type in (ACK, BINARY_ACK):
        assert packet.id is not None
        assert encode_ack(packet.nsp, packet.data, packet.id) == (wire, attachments)
        if attachments:
            assert encode(Packet(ACK, packet.nsp, packet.data, packet.id)) == (wire, attachments)


def test_vectors_decode_with_one_decoder() -> None:
    decoder = PacketDecoder()
    for _, packet, wire, attachments in VECTORS:
        assert decode_all(wire, attachments, decoder) == packet


def test_spec_typo_backtick_is_not_part_of_the_packet() -> None:
    # The spec shows ``3/admin,13["bar"]` `` with a stray backtick; it is invalid JSON.
    with pytest.raises(RemoteProtocolError, match="invalid JSON"):
        PacketDecoder().feed_text(b'3/admin,13["bar"]`')


# ---------------------------------------------------------------------------
# Encoding details
# ---------------------------------------------------------------------------


def test_binary_promotes_event_and_ack() -> None:
    assert encode(Packet(EVENT, "/", ["baz", BUF])) == (
        b'51-["baz",' + ph(0).encode() + b"]",
        [BUF],
    )
    assert encode(Packet(ACK, "/", [BUF], 7)) == (b"61-7[" + ph(0).encode() + b"]", [BUF])


def test_no_binary_keeps_event_and_ack() -> None:
    assert encode(Packet(EVENT, "/", ["a", {"b": [1, 2.5, None, True]}])) == (
        b'2["a",{"b":[1,2.5,null,true]}]',
        [],
    )
    assert encode(Packet(ACK, "/", [], 0)) == (b"30[]", [])


def test_nested_binary_depth_first() -> None:
    data = [
        "ev",
        {"a": b"0", "b": [bytearray(b"1"), {"c": memoryview(b"2")}], "d": 5},
        (b"3", "x"),
        b"4",
    ]
    wire, attachments = encode_event("/", data, 9)
    assert wire == (
        b'55-9["ev",{"a":'
        + ph(0).encode()
        + b',"b":['
        + ph(1).encode()
        + b',{"c":'
        + ph(2).encode()
        + b'}],"d":5},['
        + ph(3).encode()
        + b',"x"],'
        + ph(4).encode()
        + b"]"
    )
    assert attachments == [b"0", b"1", b"2", b"3", b"4"]
    assert all(type(a) is bytes for a in attachments)
    assert encode(Packet(EVENT, "/", data, 9)) == (wire, attachments)
    # The input is not modified.
    assert data[1]["a"] == b"0"  # type: ignore[index]

    decoded = decode_all(wire, attachments)
    assert decoded == Packet(
        BINARY_EVENT,
        "/",
        ["ev", {"a": b"0", "b": [b"1", {"c": b"2"}], "d": 5}, [b"3", "x"], b"4"],
        9,
    )


def test_binary_attachments_are_bytes() -> None:
    _, attachments = encode_ack("/x", [bytearray(b"ab"), memoryview(b"cd")], 1)
    assert attachments == [b"ab", b"cd"]
    assert [type(a) for a in attachments] == [bytes, bytes]


def test_tuples_encode_as_arrays() -> None:
    assert encode_event("/", ("ev", (1, 2), {"k": (3,)})) == (  # type: ignore[arg-type]
        b'2["ev",[1,2],{"k":[3]}]',
        [],
    )
    assert encode_ack("/", (), 3) == (b"33[]", [])  # type: ignore[arg-type]


def test_binary_type_without_binary_has_zero_attachments() -> None:
    packet = Packet(BINARY_EVENT, "/", ["a"], 3)
    assert encode(packet) == (b'50-3["a"]', [])
    decoder = PacketDecoder()
    assert decoder.feed_text(b'50-3["a"]') == packet
    assert not decoder.awaiting_attachments
    assert encode(Packet(BINARY_ACK, "/n", [], 3)) == (b"60-/n,3[]", [])


def _nested(levels: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(levels - 1):
        value = [value]
    return value


def test_encode_what_was_decoded_at_the_limits() -> None:
    assert encode_event("/", ["a", float("inf")]) == (b'2["a",null]', [])
    assert encode_event("/", ["a", _nested(253)]) == (
        b'2["a",' + b"[" * 253 + b"]" * 253 + b"]",
        [],
    )
    assert encode_ack("/", [], 10**4000 - 1) == (b"3" + b"9" * 4000 + b"[]", [])
    assert encode(Packet(CONNECT_ERROR, "/", "\ud83d", None)) == (b'4"\\ud83d"', [])
    # A lone surrogate met first, then nesting too deep for either encoder.
    with pytest.raises(LocalProtocolError, match="not JSON-serialisable"):
        encode(Packet(CONNECT_ERROR, "/", {"s": "\ud83d", "d": _nested(5000)}))
    with pytest.raises(LocalProtocolError, match="not JSON-serialisable"):
        encode(Packet(CONNECT, "/", {"d": _nested(300)}))


def test_encode_plain_int_type() -> None:
    assert encode(Packet(2, "/", ["a"])) == (b'2["a"]', [])  # type: ignore[arg-type]


def test_encode_ids_and_namespaces() -> None:
    assert encode_event("/", ["a"], 0) == (b'20["a"]', [])
    assert encode_event("/", ["a"], 10**15 - 1) == (b'2999999999999999["a"]', [])
    assert encode_event("/ns", ["a"]) == (b'2/ns,["a"]', [])
    assert encode_event("/ns", ["a"], 4) == (b'2/ns,4["a"]', [])
    assert encode_ack("/ns", ["a"], 4) == (b'3/ns,4["a"]', [])
    assert encode_event("/ü", ["é"]) == ('2/ü,["é"]'.encode(), [])
    assert encode(Packet(CONNECT_ERROR, "/x", "nope", None)) == (b'4/x,"nope"', [])
    assert encode(Packet(CONNECT, "/", None, 5)) == (b"05", [])
    assert encode_event("/", [1.5, "x"]) == (b'2[1.5,"x"]', [])


def test_many_namespaces() -> None:
    # The cache of namespace segments is bounded; results stay right past its size.
    for i in range(2100):
        assert encode_event(f"/n{i}", ["e"]) == (f'2/n{i},["e"]'.encode(), [])
    assert encode_event("/n0", ["e"], 1) == (b'2/n0,1["e"]', [])


class Point(NamedTuple):
    x: int
    y: int


def test_what_json_refuses_is_refused_even_without_binary() -> None:
    # orjson refuses a named tuple; with no binary in the data, the walk that
    # extracts binary would not change that verdict: refused, not turned into a list.
    for data in (["a", Point(1, 2)], ["a", {"p": [Point(1, 2)]}]):
        with pytest.raises(LocalProtocolError, match="not JSON-serialisable"):
            encode_event("/", data)


@pytest.mark.parametrize(
    "packet",
    [
        Packet(7, "/", None),  # type: ignore[arg-type]
        Packet(-1, "/", None),  # type: ignore[arg-type]
        Packet("2", "/", ["a"]),  # type: ignore[arg-type]
        Packet(True, "/", None),  # type: ignore[arg-type]
        Packet(EVENT, "/", None),
        Packet(EVENT, "/", []),
        Packet(EVENT, "/", "abc"),
        Packet(EVENT, "/", {"a": 1}),
        Packet(EVENT, "/", [None]),
        Packet(EVENT, "/", [True]),
        Packet(EVENT, "/", [["a"]]),
        Packet(EVENT, "/", ["connect"]),
        Packet(BINARY_EVENT, "/", ["disconnect", b"x"]),
        Packet(EVENT, "/", [b"x"]),
        Packet(ACK, "/", None, 1),
        Packet(ACK, "/", {"a": 1}, 1),
        Packet(ACK, "/", ["a"]),
        Packet(BINARY_ACK, "/", ["a"]),
        Packet(EVENT, "/", ["a"], -1),
        Packet(EVENT, "/", ["a"], 10**4000),
        Packet(EVENT, "/", ["a"], True),
        Packet(EVENT, "/", ["a"], "1"),  # type: ignore[arg-type]
        Packet(EVENT, "/x", ["a"], -1),
        Packet(CONNECT, "/", None, -1),
        Packet(EVENT, "admin", ["a"]),
        Packet(EVENT, "", ["a"]),
        Packet(EVENT, "/a,b", ["a"]),
        Packet(EVENT, None, ["a"]),  # type: ignore[arg-type]
        Packet(EVENT, "/\ud800", ["a"]),
        Packet(BINARY_EVENT, "admin", ["a", b"x"]),
        Packet(CONNECT, "admin"),
        Packet(CONNECT, "/", []),
        Packet(CONNECT, "/", "x"),
        Packet(DISCONNECT, "/", {}),
        Packet(CONNECT_ERROR, "/", []),
        Packet(CONNECT_ERROR, "/", 1),
        Packet(CONNECT, "/", {"a": b"binary"}),
        Packet(CONNECT, "/", {"a": object()}),
        Packet(EVENT, "/", ["a", object()]),
        Packet(EVENT, "/", ["a", 2**64]),
        Packet(EVENT, "/", ["a", b"x", object()]),
        Packet(BINARY_EVENT, "/", ["a", object()]),
        Packet(ACK, "/", [object()], 1),
    ],
)
def test_encode_misuse(packet: Packet) -> None:
    with pytest.raises(LocalProtocolError):
        encode(packet)
    if packet.type == EVENT and type(packet.type) is PacketType:
        with pytest.raises(LocalProtocolError):
            encode_event(packet.nsp, packet.data, packet.id)
    if packet.type == ACK and type(packet.type) is PacketType:
        with pytest.raises(LocalProtocolError):
            encode_ack(packet.nsp, packet.data, packet.id)  # type: ignore[arg-type]


def test_encode_cyclic_data() -> None:
    cyclic: list[Any] = ["a", b"x"]
    cyclic.append(cyclic)
    with pytest.raises(LocalProtocolError):
        encode_event("/", cyclic)
    cyclic_plain: list[Any] = ["a"]
    cyclic_plain.append(cyclic_plain)
    with pytest.raises(LocalProtocolError):
        encode_event("/", cyclic_plain)


def test_reserved_events() -> None:
    assert (
        frozenset(
            {
                "connect",
                "connect_error",
                "disconnect",
                "disconnecting",
                "newListener",
                "removeListener",
            }
        )
        == RESERVED_EVENTS
    )


# ---------------------------------------------------------------------------
# Decoding details
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wire", "packet"),
    [
        (b"0", Packet(CONNECT)),
        (b"05", Packet(CONNECT, "/", None, 5)),
        (b"1", Packet(DISCONNECT)),
        (b"1/admin", Packet(DISCONNECT, "/admin")),
        (b"0/admin,{}", Packet(CONNECT, "/admin", {})),
        (b'4"not allowed"', Packet(CONNECT_ERROR, "/", "not allowed")),
        (b"4", Packet(CONNECT_ERROR)),
        (b"2[1]", Packet(EVENT, "/", [1])),
        (b'2[1.5,"x"]', Packet(EVENT, "/", [1.5, "x"])),
        (b'2[-3,"x"]', Packet(EVENT, "/", [-3, "x"])),
        (b'2["connection"]', Packet(EVENT, "/", ["connection"])),
        (b'2/,["a"]', Packet(EVENT, "/", ["a"])),
        (b'20["a"]', Packet(EVENT, "/", ["a"], 0)),
        (b'2999999999999999["a"]', Packet(EVENT, "/", ["a"], 10**15 - 1)),
        (b'2/admin,999999999999999["a"]', Packet(EVENT, "/admin", ["a"], 10**15 - 1)),
        # Longer ack ids are read as socket.io-parser reads them (any digits).
        (b'212345678901234567890["a"]', Packet(EVENT, "/", ["a"], 12345678901234567890)),
        (b"3/admin," + b"9" * 4000 + b"[]", Packet(ACK, "/admin", [], 10**4000 - 1)),
        # Bytes that are not UTF-8 read as U+FFFD, as Node reads an HTTP body.
        (b'2["\xff"]', Packet(EVENT, "/", ["\ufffd"])),
        (b'21["\xfe"]', Packet(EVENT, "/", ["\ufffd"], 1)),
        (b'2/admin,["\xff"]', Packet(EVENT, "/admin", ["\ufffd"])),
        (b'0{"a":"\xc3"}', Packet(CONNECT, "/", {"a": "\ufffd"})),
        (b'40"\xed\xa0\x80"', Packet(CONNECT_ERROR, "/", "\ufffd" * 3, 0)),
        (b'2/ad\xffmin,["a"]', Packet(EVENT, "/ad\ufffdmin", ["a"])),
        (b"1/\xc3", Packet(DISCONNECT, "/\ufffd")),
        # 1e400 is Infinity to JSON.parse (sent back as null, as JSON.stringify does).
        (b'2["a",1e400]', Packet(EVENT, "/", ["a", float("inf")])),
        # Integers beyond 64 bits are doubles, as orjson and JSON.parse read them,
        # also on the fallback path (the encoder could not write an exact int
        # back): found by the sio fuzz target (see fuzz/RESULTS.md).
        (b'2["a",1' + b"0" * 400 + b"]", Packet(EVENT, "/", ["a", float("inf")])),
        (b'2["a",-1' + b"0" * 5000 + b"]", Packet(EVENT, "/", ["a", float("-inf")])),
        (
            b'2["\xff",-9223372036854785808,18446744073709551615]',
            Packet(EVENT, "/", ["\ufffd", -9.223372036854786e18, 18446744073709551615]),
        ),
        (b'2["\\ud83d",18446744073709551616]', Packet(EVENT, "/", ["\ud83d", 2.0**64])),
        # Many brackets, shallow: accepted, with or without a lone surrogate.
        (b'2["a",' + b"[1]," * 300 + b"{}]", Packet(EVENT, "/", ["a", *[[1]] * 300, {}])),
        (
            b'2["\\ud83d",' + b"[1]," * 300 + b'{"a":[]}]',
            Packet(EVENT, "/", ["\ud83d", *[[1]] * 300, {"a": []}]),
        ),
        # 254 levels: as deep as the encoder writes, so accepted.
        (b'2["a",' + b"[" * 253 + b"]" * 253 + b"]", Packet(EVENT, "/", ["a", _nested(253)])),
        (b'2 ["a"] ', Packet(EVENT, "/", ["a"])),
        (b"3/admin,1[]", Packet(ACK, "/admin", [], 1)),
        (b"31[null]", Packet(ACK, "/", [None], 1)),
        ('2/ü,["é"]'.encode(), Packet(EVENT, "/ü", ["é"])),
        # _placeholder not true: an ordinary dict, left alone
        (
            b'50-["a",{"_placeholder":false,"num":0}]',
            Packet(BINARY_EVENT, "/", ["a", {"_placeholder": False, "num": 0}]),
        ),
        (
            b'2["a",{"_placeholder":true,"num":0}]',
            Packet(EVENT, "/", ["a", {"_placeholder": True, "num": 0}]),
        ),
    ],
)
def test_decode_accepts(wire: bytes, packet: Packet) -> None:
    assert PacketDecoder().feed_text(wire) == packet


def test_decode_placeholder_reused_and_extra_keys() -> None:
    decoder = PacketDecoder()
    assert (
        decoder.feed_text(
            b'52-["a",{"_placeholder":true,"num":1,"x":1},[{"_placeholder":true,"num":1}]]'
        )
        is None
    )
    assert decoder.feed_binary(b"zero") is None
    last = decoder.feed_binary(bytearray(b"one"))  # type: ignore[arg-type]
    assert last == Packet(BINARY_EVENT, "/", ["a", b"one", [b"one"]])


def test_decode_attachment_boundary() -> None:
    decoder = PacketDecoder(max_attachments=2)
    assert decoder.feed_text(b'52-["a"]') is None
    assert decoder.awaiting_attachments
    decoder.reset()
    assert not decoder.awaiting_attachments
    with pytest.raises(RemoteProtocolError, match="too many attachments"):
        decoder.feed_text(b'53-["a"]')
    # The default is Node's socket.io-parser limit: 10 attachments.
    assert PacketDecoder().feed_text(b'510-["a"]') is None
    with pytest.raises(RemoteProtocolError, match="too many attachments"):
        PacketDecoder().feed_text(b'511-["a"]')
    assert PacketDecoder(max_attachments=0).feed_text(b'50-["a"]') == Packet(
        BINARY_EVENT, "/", ["a"]
    )
    with pytest.raises(RemoteProtocolError, match="too many attachments"):
        PacketDecoder(max_attachments=0).feed_text(b'51-["a"]')


def test_max_attachments_must_be_valid() -> None:
    with pytest.raises(ValueError):
        PacketDecoder(max_attachments=-1)


# (wire, expected error message fragment): each a separate rule.
INVALID: list[tuple[str, bytes, str]] = [
    ("empty", b"", "empty"),
    ("type-7", b'7["a"]', "unknown packet type"),
    ("type-9", b"9", "unknown packet type"),
    ("type-letter", b'a["a"]', "unknown packet type"),
    ("type-space", b' 2["a"]', "unknown packet type"),
    ("type-engineio-prefix", b'\xff2["a"]', "unknown packet type"),
    # attachment count
    ("binary-no-count", b'5["a"]', "without an attachment count"),
    ("binary-no-count-nsp", b'6/admin,1["a"]', "without an attachment count"),
    ("binary-no-count-empty", b"5", "without an attachment count"),
    ("binary-count-dash-only", b'5-["a"]', "without an attachment count"),
    ("binary-count-letter", b'5x-["a"]', "without an attachment count"),
    ("binary-count-no-dash", b'51["a"]', "not followed by '-'"),
    ("binary-count-no-dash-end", b"51", "not followed by '-'"),
    ("binary-count-bad-char", b'51+["a"]', "not followed by '-'"),
    ("binary-count-too-many", b'5101-["a"]', "too many attachments"),
    ("binary-count-huge", b'512345678901234567890-["a"]', "too many attachments"),
    ("count-on-event", b'21-["a"]', "non-binary"),
    ("count-on-ack", b'31-["a"]', "non-binary"),
    ("count-on-connect", b"01-{}", "non-binary"),
    ("count-on-event-nsp", b'2/admin,1-["a"]', "non-binary"),
    ("binary-double-dash", b'51-1-["a"]', "unexpected '-'"),
    # namespace
    ("nsp-no-slash", b'2admin,["a"]', "namespace must start with '/'"),
    ("nsp-no-slash-ack", b'3admin,1["a"]', "namespace must start with '/'"),
    # ack id
    ("id-too-long", b"2" + b"1" * 4001 + b'["a"]', "ack id too long"),
    ("id-too-long-nsp", b"2/a," + b"1" * 4001 + b'["a"]', "ack id too long"),
    ("name-infinite", b"2[1e400]", "invalid EVENT payload"),
    ("name-minus-infinite", b'2[-1e400,"a"]', "invalid EVENT payload"),
    ("nested-255", b'2["a",' + b"[" * 254 + b"]" * 254 + b"]", "nested deeper than 254"),
    ("nested-1024", b'2["a",' + b"[" * 1023 + b"]" * 1023 + b"]", "nested deeper than 254"),
    ("nested-2000", b'2["a",' + b"[" * 2000 + b"]" * 2001, "nested deeper than 254"),
    ("nested-obj", b'0{"a":' + b'{"a":' * 300 + b"1" + b"}" * 301, "nested deeper than 254"),
    ("nested-surrogate", b'2["\\ud83d",' + b"[" * 254 + b"]" * 254 + b"]", "nested deeper"),
    ("id-not-digits", b'212x["a"]', "invalid JSON"),
    ("ack-no-id", b'3["a"]', "without an ack id"),
    ("ack-no-id-nsp", b'3/admin,["a"]', "without an ack id"),
    ("ack-no-id-empty", b"3", "without an ack id"),
    ("binary-ack-no-id", b"61-[" + ph(0).encode() + b"]", "without an ack id"),
    # UTF-8 / JSON
    ("json-truncated", b'2["a"', "invalid JSON"),
    ("json-trailing", b'2["a"]x', "invalid JSON"),
    ("json-trailing-id", b'21["a"]]', "invalid JSON"),
    ("json-bad-object", b"0{bad}", "invalid JSON"),
    ("json-nan", b'2["a",NaN]', "invalid JSON"),
    # CONNECT payload: absent or an object
    ("connect-array", b"0[]", "invalid CONNECT payload"),
    ("connect-string", b'0"x"', "invalid CONNECT payload"),
    ("connect-null", b"0null", "invalid CONNECT payload"),
    ("connect-nsp-array", b"0/admin,[1]", "invalid CONNECT payload"),
    # DISCONNECT: no payload
    ("disconnect-object", b"1{}", "invalid DISCONNECT payload"),
    ("disconnect-array", b"1/admin,[]", "invalid DISCONNECT payload"),
    ("disconnect-string", b'1"x"', "invalid DISCONNECT payload"),
    ("disconnect-null", b"1null", "invalid DISCONNECT payload"),
    # CONNECT_ERROR: a string or an object
    ("connect-error-array", b"4[]", "invalid CONNECT_ERROR payload"),
    ("connect-error-null", b"4null", "invalid CONNECT_ERROR payload"),
    ("connect-error-bool", b"4true", "invalid CONNECT_ERROR payload"),
    # EVENT: a non-empty array, first element a number or a non-reserved string
    ("event-no-payload", b"2", "without a payload"),
    ("event-no-payload-id", b"212", "without a payload"),
    ("event-no-payload-nsp", b"2/admin,", "without a payload"),
    ("event-empty-array", b"2[]", "invalid EVENT payload"),
    ("event-empty-array-id", b"21[]", "invalid EVENT payload"),
    ("event-object", b'2{"a":1}', "invalid EVENT payload"),
    ("event-string", b'2"x"', "invalid EVENT payload"),
    ("event-name-null", b"2[null]", "invalid EVENT payload"),
    ("event-name-bool", b"2[true]", "invalid EVENT payload"),
    ("event-name-array", b'2[["a"]]', "invalid EVENT payload"),
    ("event-name-object", b'21[{"a":1}]', "invalid EVENT payload"),
    ("event-nsp-empty-array", b"2/admin,1[]", "invalid EVENT payload"),
    ("binary-event-empty", b"50-[]", "invalid BINARY_EVENT payload"),
    ("binary-event-object", b"50-{}", "invalid BINARY_EVENT payload"),
    ("binary-event-no-payload", b"51-", "without a payload"),
    ("binary-event-reserved", b'50-["disconnect"]', "invalid BINARY_EVENT payload"),
    # ACK: an array
    ("ack-object", b"312{}", "invalid ACK payload"),
    ("ack-string", b'312"x"', "invalid ACK payload"),
    ("ack-no-payload", b"312", "without a payload"),
    ("ack-nsp-object", b"3/a,1{}", "invalid ACK payload"),
    ("binary-ack-object", b"61-1{}", "invalid BINARY_ACK payload"),
    ("binary-ack-no-payload", b"60-1", "without a payload"),
    # placeholders
    ("placeholder-num-too-big", b'51-["a",' + ph(1).encode() + b"]", "placeholder"),
    ("placeholder-num-negative", b'51-["a",' + ph(-1).encode() + b"]", "placeholder"),
    ("placeholder-no-attachments", b'50-["a",' + ph(0).encode() + b"]", "placeholder"),
    ("placeholder-num-string", b'51-["a",{"_placeholder":true,"num":"0"}]', "placeholder"),
    ("placeholder-num-float", b'51-["a",{"_placeholder":true,"num":0.0}]', "placeholder"),
    ("placeholder-num-bool", b'51-["a",{"_placeholder":true,"num":false}]', "placeholder"),
    ("placeholder-num-missing", b'51-["a",{"_placeholder":true}]', "placeholder"),
    ("placeholder-num-null", b'51-["a",{"_placeholder":true,"num":null}]', "placeholder"),
    (
        "placeholder-nested-bad",
        b'62-1[{"x":[' + ph(0).encode() + b"," + ph(2).encode() + b"]}]",
        "placeholder",
    ),
]

for _event in sorted(RESERVED_EVENTS):
    INVALID.append((f"reserved-{_event}", b'2["%s"]' % _event.encode(), "invalid EVENT payload"))
    INVALID.append(
        (f"reserved-{_event}-id-nsp", b'2/a,1["%s",1]' % _event.encode(), "invalid EVENT payload")
    )


@pytest.mark.parametrize(("name", "wire", "message"), INVALID, ids=[v[0] for v in INVALID])
def test_decode_rejects(name: str, wire: bytes, message: str) -> None:
    decoder = PacketDecoder()
    with pytest.raises(RemoteProtocolError, match=message):
        decoder.feed_text(wire)
    # The decoder is reset and can be reused.
    assert not decoder.awaiting_attachments
    assert decoder.feed_text(b'2["ok"]') == Packet(EVENT, "/", ["ok"])
    assert decode_all(b'51-1["b",' + ph(0).encode() + b"]", [b"x"], decoder) == Packet(
        BINARY_EVENT, "/", ["b", b"x"], 1
    )


def test_lone_surrogates_round_trip_as_escapes() -> None:
    # JSON.stringify writes a lone surrogate as an escape and JSON.parse reads it
    # back; orjson refuses both ways, so the stdlib codec takes over.
    wire = b'2["hi \\ud83d"]'
    packet = PacketDecoder().feed_text(wire)
    assert packet == Packet(EVENT, "/", ["hi \ud83d"])
    assert encode(packet) == (wire, [])


def test_fallback_decoder_still_refuses_what_json_parse_refuses() -> None:
    with pytest.raises(RemoteProtocolError, match="invalid JSON"):
        PacketDecoder().feed_text(b'2["\\ud800",NaN]')


def test_feed_binary_without_pending_packet() -> None:
    decoder = PacketDecoder()
    with pytest.raises(RemoteProtocolError, match="no packet awaits"):
        decoder.feed_binary(b"x")
    assert decoder.feed_text(b'2["ok"]') == Packet(EVENT, "/", ["ok"])
    # Also once a binary packet was completed.
    decode_all(b'51-["a",' + ph(0).encode() + b"]", [b"x"], decoder)
    with pytest.raises(RemoteProtocolError, match="no packet awaits"):
        decoder.feed_binary(b"y")


def test_feed_text_while_awaiting_attachments() -> None:
    decoder = PacketDecoder()
    assert decoder.feed_text(b'52-["a",' + ph(0).encode() + b"," + ph(1).encode() + b"]") is None
    assert decoder.feed_binary(b"x") is None
    with pytest.raises(RemoteProtocolError, match="still awaited"):
        decoder.feed_text(b'2["a"]')
    # Reset: the half-received packet is gone, the decoder is usable again.
    assert not decoder.awaiting_attachments
    with pytest.raises(RemoteProtocolError):
        decoder.feed_binary(b"y")
    assert decoder.feed_text(b'2["a"]') == Packet(EVENT, "/", ["a"])


def test_error_while_awaiting_does_not_leak_state() -> None:
    decoder = PacketDecoder()
    assert decoder.feed_text(b'51-["a",' + ph(0).encode() + b"]") is None
    with pytest.raises(RemoteProtocolError):
        decoder.feed_text(b"")
    assert not decoder.awaiting_attachments
    assert decode_all(b'51-["b",' + ph(0).encode() + b"]", [b"2"], decoder) == Packet(
        BINARY_EVENT, "/", ["b", b"2"]
    )


def test_reset_drops_pending_packet() -> None:
    decoder = PacketDecoder()
    assert decoder.feed_text(b'51-["a",' + ph(0).encode() + b"]") is None
    decoder.reset()
    assert not decoder.awaiting_attachments
    assert decoder.feed_text(b'2["a"]') == Packet(EVENT, "/", ["a"])


def test_decoded_attachments_are_bytes() -> None:
    packet = decode_all(b'51-["a",' + ph(0).encode() + b"]", [memoryview(b"mv")])  # type: ignore[list-item]
    assert packet.data == ["a", b"mv"]
    assert type(packet.data[1]) is bytes


# ---------------------------------------------------------------------------
# Property tests
# ---------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(codec="utf-8"), max_size=20)
)
json_keys = st.text(st.characters(codec="utf-8"), max_size=10).filter(lambda k: k != "_placeholder")
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(json_keys, children, max_size=5)
    ),
    max_leaves=15,
)
json_objects = st.dictionaries(json_keys, json_values, max_size=5)

binary_leaves = st.one_of(
    st.binary(max_size=16),
    st.binary(max_size=16).map(bytearray),
    st.binary(max_size=16).map(lambda b: memoryview(b)),
)
values_with_binary = st.recursive(
    json_scalars | binary_leaves,
    lambda children: (
        st.lists(children, max_size=5)
        | st.lists(children, max_size=5).map(tuple)
        | st.dictionaries(json_keys, children, max_size=5)
    ),
    max_leaves=15,
)

event_names = (
    st.text(st.characters(codec="utf-8"), max_size=15).filter(lambda s: s not in RESERVED_EVENTS)
    | st.sampled_from(sorted(RESERVED_EVENTS)).map(lambda s: s + "_")
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
)
namespaces = st.just("/") | st.text(
    st.characters(codec="utf-8", exclude_characters=","), max_size=12
).map(lambda s: "/" + s)
ack_ids = st.integers(min_value=0, max_value=10**15 - 1)
optional_ids = st.none() | ack_ids


def normalize(value: Any) -> Any:
    """What a value becomes after a round trip: tuples as lists, binary as bytes."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, (list, tuple)):
        return [normalize(v) for v in value]
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items()}
    return value


def count_binary(value: Any) -> int:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return 1
    if isinstance(value, (list, tuple)):
        return sum(count_binary(v) for v in value)
    if isinstance(value, dict):
        return sum(count_binary(v) for v in value.values())
    return 0


@st.composite
def packets(draw: st.DrawFn) -> Packet:
    ptype = draw(st.sampled_from(list(PacketType)))
    nsp = draw(namespaces)
    if ptype is CONNECT:
        return Packet(ptype, nsp, draw(st.none() | json_objects), draw(optional_ids))
    if ptype is DISCONNECT:
        return Packet(ptype, nsp, None, draw(optional_ids))
    if ptype is CONNECT_ERROR:
        data = draw(st.none() | st.text(st.characters(codec="utf-8")) | json_objects)
        return Packet(ptype, nsp, data, draw(optional_ids))
    args_strategy = (
        values_with_binary if ptype >= BINARY_EVENT or draw(st.booleans()) else json_values
    )
    args = draw(st.lists(args_strategy, max_size=5))
    if ptype in (EVENT, BINARY_EVENT):
        return Packet(ptype, nsp, [draw(event_names), *args], draw(optional_ids))
    return Packet(ptype, nsp, args, draw(ack_ids))


def expected_after_round_trip(packet: Packet) -> Packet:
    ptype = packet.type
    if count_binary(packet.data):
        ptype = {EVENT: BINARY_EVENT, ACK: BINARY_ACK}.get(ptype, ptype)
    return Packet(ptype, packet.nsp, normalize(packet.data), packet.id)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(packets())
def test_property_round_trip(packet: Packet) -> None:
    wire, attachments = encode(packet)
    assert len(attachments) == count_binary(packet.data)
    assert all(type(a) is bytes for a in attachments)
    decoded = decode_all(wire, attachments)
    assert decoded == expected_after_round_trip(packet)
    # Canonical: re-encoding the decoded packet gives the same bytes.
    assert encode(decoded) == (wire, attachments)
    # Header layout: type, [count "-"], [nsp ","], [id].
    assert wire[:1] == b"%d" % decoded.type
    if packet.nsp != "/":
        assert b"/" + packet.nsp[1:].encode() + b"," in wire


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(packets())
def test_property_shortcuts_equal_encode(packet: Packet) -> None:
    if packet.type in (EVENT, BINARY_EVENT):
        assert encode_event(packet.nsp, packet.data, packet.id) == encode(
            Packet(EVENT, packet.nsp, packet.data, packet.id)
        )
    elif packet.type in (ACK, BINARY_ACK):
        assert packet.id is not None
        assert encode_ack(packet.nsp, packet.data, packet.id) == encode(
            Packet(ACK, packet.nsp, packet.data, packet.id)
        )


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(packets(), min_size=1, max_size=8))
def test_property_stream_through_one_decoder(stream: list[Packet]) -> None:
    decoder = PacketDecoder(max_attachments=1000)
    for packet in stream:
        wire, attachments = encode(packet)
        assert decode_all(wire, attachments, decoder) == expected_after_round_trip(packet)


def _feed_garbage(decoder: PacketDecoder, data: bytes) -> None:
    try:
        result = decoder.feed_text(data)
    except RemoteProtocolError:
        assert not decoder.awaiting_attachments
        return
    if result is None:
        assert decoder.awaiting_attachments
        decoder.reset()
    else:
        assert isinstance(result, Packet)


@settings(max_examples=400)
@given(
    st.binary(max_size=40)
    | st.builds(
        lambda d, b: d + b,
        st.sampled_from(list(b"0123456")).map(lambda c: bytes([c])),
        st.binary(max_size=40),
    )
)
def test_property_garbage_only_raises_remote_error(data: bytes) -> None:
    decoder = PacketDecoder(max_attachments=1000)
    _feed_garbage(decoder, data)
    assert decoder.feed_text(b'2["ok"]') == Packet(EVENT, "/", ["ok"])


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(packets(), st.data())
def test_property_mutated_packets_only_raise_remote_error(
    packet: Packet, data: st.DataObject
) -> None:
    wire, _ = encode(packet)
    position = data.draw(st.integers(min_value=0, max_value=len(wire)))
    kind = data.draw(st.sampled_from(["insert", "delete", "replace", "truncate"]))
    byte = bytes([data.draw(st.integers(min_value=0, max_value=255))])
    if kind == "insert":
        mutated = wire[:position] + byte + wire[position:]
    elif kind == "delete":
        mutated = wire[:position] + wire[position + 1 :]
    elif kind == "replace":
        mutated = wire[:position] + byte + wire[position + 1 :]
    else:
        mutated = wire[:position]
    decoder = PacketDecoder()
    _feed_garbage(decoder, mutated)
    assert decoder.feed_text(b'2["ok"]') == Packet(EVENT, "/", ["ok"])


def test_keys_that_are_not_plain_strings_are_written_as_strings() -> None:
    # As JSON.stringify does: an int key, a str subclass (a disconnect reason).
    from socketwire.core.reasons import DisconnectReason

    data = ["stats", {DisconnectReason.PING_TIMEOUT: 2, 5: "a"}]
    assert encode_event("/", data) == (b'2["stats",{"ping timeout":2,"5":"a"}]', [])
    assert encode_ack("/chat", [{1: b"\x00"}], 7) == (
        b'61-/chat,7[{"1":{"_placeholder":true,"num":0}}]',
        [b"\x00"],
    )
