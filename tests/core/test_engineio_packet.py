"""Tests of the Engine.IO v4 packet codec (socketwire.core.engineio.packet).

The vectors are the examples of the protocol document
(/work/shared/specs/engine.io-protocol-v4.md): "Protocol" (the packet types) and
"Packet encoding" (HTTP long-polling payloads, WebSocket frames).
"""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from socketwire.core.engineio.packet import (
    CLOSE,
    MESSAGE_PREFIX,
    NOOP,
    PING,
    PONG,
    PREFIX,
    PROBE_PING,
    PROBE_PONG,
    SEPARATOR,
    EnginePacketType,
    decode_payload,
    encode_payload,
    encode_polling_binary,
    parse_text_packet,
)
from socketwire.errors import RemoteProtocolError

OPEN = EnginePacketType.OPEN
MESSAGE = EnginePacketType.MESSAGE
BUF = b"\x01\x02\x03\x04"

# -- "Protocol": the packet types ---------------------------------------------------


def test_packet_type_ids_match_the_spec_table() -> None:
    assert {t.name.lower(): int(t) for t in EnginePacketType} == {
        "open": 0,
        "close": 1,
        "ping": 2,
        "pong": 3,
        "message": 4,
        "upgrade": 5,
        "noop": 6,
    }


def test_prefix_constants() -> None:
    assert PREFIX == (b"0", b"1", b"2", b"3", b"4", b"5", b"6")
    for t in EnginePacketType:
        assert PREFIX[t] == str(int(t)).encode()
    assert SEPARATOR == b"\x1e"
    assert MESSAGE_PREFIX == b"4"
    assert PING == b"2"
    assert PONG == b"3"
    assert NOOP == b"6"
    assert CLOSE == b"1"
    # "Upgrade": the probe is a ping / pong with the string "probe" as payload.
    assert PROBE_PING == b"2probe"
    assert PROBE_PONG == b"3probe"


# -- parse_text_packet: one packet (WebSocket frame, "Packet encoding" > "WebSocket") --


@pytest.mark.parametrize(
    ("wire", "ptype", "data"),
    [
        (b"0", EnginePacketType.OPEN, b""),
        (
            b'0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],'
            b'"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}',
            EnginePacketType.OPEN,
            b'{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],'
            b'"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}',
        ),
        (b"1", EnginePacketType.CLOSE, b""),
        (b"2", EnginePacketType.PING, b""),
        (b"2probe", EnginePacketType.PING, b"probe"),
        (b"3", EnginePacketType.PONG, b""),
        (b"3probe", EnginePacketType.PONG, b"probe"),
        (b"4hello", EnginePacketType.MESSAGE, b"hello"),
        (b"4", EnginePacketType.MESSAGE, b""),
        ("4€ é".encode(), EnginePacketType.MESSAGE, "€ é".encode()),
        (b"44", EnginePacketType.MESSAGE, b"4"),
        (b"5", EnginePacketType.UPGRADE, b""),
        (b"6", EnginePacketType.NOOP, b""),
    ],
)
def test_parse_text_packet(wire: bytes, ptype: EnginePacketType, data: bytes) -> None:
    got_type, got_data = parse_text_packet(wire)
    assert got_type == ptype
    assert got_data == data
    # and back: type digit + payload is the wire form
    assert PREFIX[got_type] + got_data == wire


def test_parse_text_packet_covers_all_seven_types() -> None:
    for t in EnginePacketType:
        assert parse_text_packet(str(int(t)).encode() + b"x") == (t, b"x")


def test_parse_text_packet_empty() -> None:
    with pytest.raises(RemoteProtocolError):
        parse_text_packet(b"")


@pytest.mark.parametrize("wire", [b"7", b"7hello", b"8", b"9", b"x", b"xhello", b"/", b"b", b" 4"])
def test_parse_text_packet_unknown_type(wire: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_text_packet(wire)


# -- "Packet encoding" > "HTTP long-polling" ------------------------------------------


def test_spec_example_text_payload_decodes() -> None:
    assert decode_payload(b"4hello\x1e2\x1e4world") == [
        (EnginePacketType.MESSAGE, b"hello", False),
        (EnginePacketType.PING, b"", False),
        (EnginePacketType.MESSAGE, b"world", False),
    ]


def test_spec_example_text_payload_encodes() -> None:
    assert encode_payload([b"4hello", PING, b"4world"]) == b"4hello\x1e2\x1e4world"


def test_spec_example_binary_payload_decodes() -> None:
    assert decode_payload(b"4hello\x1ebAQIDBA==") == [
        (EnginePacketType.MESSAGE, b"hello", False),
        (EnginePacketType.MESSAGE, BUF, True),
    ]


def test_spec_example_binary_payload_encodes() -> None:
    assert encode_polling_binary(BUF) == b"bAQIDBA=="
    assert encode_payload([b"4hello", encode_polling_binary(BUF)]) == b"4hello\x1ebAQIDBA=="


def test_binary_triple_is_a_message_type() -> None:
    ((ptype, data, binary),) = decode_payload(b"bAQIDBA==")
    assert ptype == EnginePacketType.MESSAGE
    assert int(ptype) == 4
    assert (data, binary) == (BUF, True)


def test_single_packet_payload() -> None:
    assert decode_payload(b"4hello") == [(MESSAGE, b"hello", False)]
    assert encode_payload([b"4hello"]) == b"4hello"


def test_encode_payload_of_nothing_is_empty() -> None:
    assert encode_payload([]) == b""


@pytest.mark.parametrize(
    ("data", "wire"),
    [
        (b"", b"b"),
        (b"\x00", b"bAA=="),
        (b"\xff\xfe", b"b//4="),
        (b"abc", b"bYWJj"),
        (b"\x1e", b"bHg=="),
    ],
)
def test_encode_polling_binary_vectors(data: bytes, wire: bytes) -> None:
    assert encode_polling_binary(data) == wire
    assert decode_payload(wire) == [(MESSAGE, data, True)]


def test_encode_polling_binary_has_no_newline() -> None:
    # A trailing newline would be invalid base64 on the peer (and in our decoder).
    out = encode_polling_binary(bytes(range(256)) * 4)
    assert b"\n" not in out
    assert out.startswith(b"b")
    assert base64.b64decode(out[1:], validate=True) == bytes(range(256)) * 4


def test_payload_keeps_packet_order_and_types() -> None:
    body = b"0\x1e1\x1e2probe\x1e3\x1e4a\x1ebAQ==\x1e5\x1e6"
    assert decode_payload(body) == [
        (EnginePacketType.OPEN, b"", False),
        (EnginePacketType.CLOSE, b"", False),
        (EnginePacketType.PING, b"probe", False),
        (EnginePacketType.PONG, b"", False),
        (EnginePacketType.MESSAGE, b"a", False),
        (EnginePacketType.MESSAGE, b"\x01", True),
        (EnginePacketType.UPGRADE, b"", False),
        (EnginePacketType.NOOP, b"", False),
    ]


def test_utf8_text_is_kept_as_bytes() -> None:
    # "History" > "From v3 to v4": no character counting, multi-byte chars pass as is.
    body = "4€\x1e4日本".encode()
    assert decode_payload(body) == [
        (MESSAGE, "€".encode(), False),
        (MESSAGE, "日本".encode(), False),
    ]


# -- errors ------------------------------------------------------------------------


def test_empty_payload_is_an_error() -> None:
    with pytest.raises(RemoteProtocolError):
        decode_payload(b"")


@pytest.mark.parametrize(
    "body",
    [
        b"4a\x1e\x1e4b",  # empty packet between two separators
        b"\x1e4a",  # leading separator
        b"4a\x1e",  # trailing separator
        b"\x1e",
        b"\x1e\x1e",
    ],
)
def test_empty_packet_is_an_error(body: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_payload(body)


@pytest.mark.parametrize("body", [b"7", b"x", b"4a\x1e7", b"4a\x1ex\x1e4b", b"9hello"])
def test_unknown_type_in_payload_is_an_error(body: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_payload(body)


@pytest.mark.parametrize(
    "body",
    [
        b"bAQID!A==",  # non-alphabet character
        b"bAQ ID",  # space
        b"bAQIDBA==\n",  # trailing newline
        b"bAQ-_",  # URL-safe alphabet is not the base64 of the spec
        b"bAQIDBA",  # missing padding
        b"bAQIDBA=",  # short padding
        b"bAQIDBA===",  # excess padding
        b"bAQ=IDBA=",  # padding in the middle
        b"b=AQIDBA",  # leading padding
        b"bA",  # impossible length
        b"4hello\x1ebAQIDBA",  # bad packet after a good one
    ],
)
def test_invalid_base64_is_an_error(body: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_payload(body)


def test_errors_are_remote_protocol_errors_not_binascii() -> None:
    import binascii

    with pytest.raises(RemoteProtocolError) as info:
        decode_payload(b"bAQID!A==")
    assert not isinstance(info.value, binascii.Error)
    assert info.value.__suppress_context__


# -- round-trips -------------------------------------------------------------------

text_payloads = st.text(
    alphabet=st.characters(exclude_characters="\x1e", exclude_categories=["Cs"]),
    max_size=40,
).map(str.encode)
text_packets = st.tuples(st.sampled_from(list(EnginePacketType)), text_payloads)
binary_packets = st.binary(max_size=64)
packets = st.lists(
    st.one_of(
        text_packets.map(lambda p: (p[0], p[1], False)),
        binary_packets.map(lambda b: (EnginePacketType.MESSAGE, b, True)),
    ),
    min_size=1,
    max_size=12,
)


@given(st.lists(text_packets, min_size=1, max_size=12))
def test_roundtrip_text_packets(pkts: list[tuple[EnginePacketType, bytes]]) -> None:
    body = encode_payload([PREFIX[t] + data for t, data in pkts])
    assert decode_payload(body) == [(t, data, False) for t, data in pkts]


@given(st.lists(binary_packets, min_size=1, max_size=12))
def test_roundtrip_binary_messages(bufs: list[bytes]) -> None:
    body = encode_payload([encode_polling_binary(b) for b in bufs])
    assert decode_payload(body) == [(MESSAGE, b, True) for b in bufs]


@given(packets)
def test_roundtrip_mixed_packets(pkts: list[tuple[EnginePacketType, bytes, bool]]) -> None:
    segments = [encode_polling_binary(d) if binary else PREFIX[t] + d for t, d, binary in pkts]
    body = encode_payload(segments)
    # The payload is the spec's format: segments joined by exactly one separator.
    assert body.count(SEPARATOR) == len(pkts) - 1
    assert decode_payload(body) == pkts


@given(binary_packets)
def test_polling_binary_is_standard_base64(data: bytes) -> None:
    out = encode_polling_binary(data)
    assert out == b"b" + base64.b64encode(data)
