"""Tests of the sans-I/O RFC 6455 framing layer."""

from __future__ import annotations

import ast
import itertools
import os
import tracemalloc
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import socketwire.core.websocket.frames as frames_module
import socketwire.core.websocket.handshake as handshake_module
from socketwire.core.websocket.frames import (
    CloseCode,
    FrameReader,
    Opcode,
    apply_mask,
    decode_close_payload,
    encode_close_payload,
    encode_frame,
)
from socketwire.errors import LocalProtocolError, WebSocketProtocolError

MASK = bytes((0x37, 0xFA, 0x21, 0x3D))  # the key of the RFC 6455 section 5.7 examples
BIG = 1 << 24


def ref_mask(data: bytes, mask: bytes) -> bytes:
    """Byte-by-byte reference of RFC 6455 section 5.3."""
    return bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def raw(first: int, payload: bytes, mask: bytes | None = MASK) -> bytes:
    """Build a frame by hand (independent of encode_frame) with any first byte."""
    n = len(payload)
    mbit = 0x80 if mask is not None else 0
    if n < 126:
        header = bytes((first, mbit | n))
    elif n < 65536:
        header = bytes((first, mbit | 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((first, mbit | 127)) + n.to_bytes(8, "big")
    if mask is None:
        return header + payload
    return header + mask + ref_mask(payload, mask)


def server(max_message_size: int = BIG, **kw: bool) -> FrameReader:
    return FrameReader(max_message_size=max_message_size, **kw)


def client(max_message_size: int = BIG, **kw: bool) -> FrameReader:
    return FrameReader(max_message_size=max_message_size, client_side=True, **kw)


def feed_chunks(reader: FrameReader, chunks: list[bytes]) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    for chunk in chunks:
        out.extend(reader.feed(chunk))
    return out


# --- RFC 6455 section 5.7 examples, byte for byte ------------------------------------

HELLO_UNMASKED = bytes((0x81, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F))
HELLO_MASKED = bytes((0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58))
HEL_LO = (bytes((0x01, 0x03, 0x48, 0x65, 0x6C)), bytes((0x80, 0x02, 0x6C, 0x6F)))
PING_UNMASKED = bytes((0x89, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F))
PONG_MASKED = bytes((0x8A, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58))


def test_rfc_single_frame_unmasked_text() -> None:
    assert encode_frame(Opcode.TEXT, b"Hello") == HELLO_UNMASKED
    assert client().feed(HELLO_UNMASKED) == [(Opcode.TEXT, b"Hello")]


def test_rfc_single_frame_masked_text() -> None:
    assert encode_frame(Opcode.TEXT, b"Hello", mask=MASK) == HELLO_MASKED
    assert server().feed(HELLO_MASKED) == [(Opcode.TEXT, b"Hello")]


def test_rfc_fragmented_unmasked_text() -> None:
    first = encode_frame(Opcode.TEXT, b"Hel", fin=False)
    last = encode_frame(Opcode.CONTINUATION, b"lo")
    assert (first, last) == HEL_LO
    reader = client()
    assert reader.feed(HEL_LO[0]) == []
    assert reader.feed(HEL_LO[1]) == [(Opcode.TEXT, b"Hello")]


def test_rfc_ping_unmasked_and_pong_masked() -> None:
    assert encode_frame(Opcode.PING, b"Hello") == PING_UNMASKED
    assert encode_frame(Opcode.PONG, b"Hello", mask=MASK) == PONG_MASKED
    assert client().feed(PING_UNMASKED) == [(Opcode.PING, b"Hello")]
    assert server().feed(PONG_MASKED) == [(Opcode.PONG, b"Hello")]


@pytest.mark.parametrize(
    ("size", "header"),
    [
        (256, bytes((0x82, 0x7E, 0x01, 0x00))),
        (65536, bytes((0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0))),
    ],
)
def test_rfc_binary_lengths(size: int, header: bytes) -> None:
    payload = os.urandom(size)
    frame = encode_frame(Opcode.BINARY, payload)
    assert frame == header + payload
    assert client().feed(frame) == [(Opcode.BINARY, payload)]
    masked = encode_frame(Opcode.BINARY, payload, mask=MASK)
    assert masked == bytes((0x82, header[1] | 0x80)) + header[2:] + MASK + ref_mask(payload, MASK)
    assert server().feed(masked) == [(Opcode.BINARY, payload)]


@pytest.mark.parametrize(("size", "header_len"), [(125, 2), (126, 4), (65535, 4), (65536, 10)])
def test_length_encoding_boundaries(size: int, header_len: int) -> None:
    payload = bytes(size)
    frame = encode_frame(Opcode.BINARY, payload)
    assert len(frame) == header_len + size
    assert client().feed(frame) == [(Opcode.BINARY, payload)]


def test_opcodes_are_returned_as_enum_members() -> None:
    ((op, payload),) = server().feed(HELLO_MASKED)
    assert op is Opcode.TEXT
    assert type(payload) is bytes


# --- incremental feeding --------------------------------------------------------------

STREAM_PARTS = [
    raw(0x81, b"Hello"),
    raw(0x01, "h\u00e9l".encode()),  # fragment ends inside nothing, next splits a char
    raw(0x89, b"ping!"),
    raw(0x00, b"l"),
    raw(0x8A, b""),
    raw(0x80, "o \u20ac".encode()),
    raw(0x82, bytes(range(200))),
    raw(0x82, b""),
    raw(0x88, encode_close_payload(1000, "bye")),
]
STREAM = b"".join(STREAM_PARTS)
STREAM_EXPECTED = [
    (Opcode.TEXT, b"Hello"),
    (Opcode.PING, b"ping!"),
    (Opcode.PONG, b""),
    (Opcode.TEXT, "h\u00e9llo \u20ac".encode()),
    (Opcode.BINARY, bytes(range(200))),
    (Opcode.BINARY, b""),
    (Opcode.CLOSE, b"\x03\xe8bye"),
]


def test_whole_stream_in_one_feed() -> None:
    assert server().feed(STREAM) == STREAM_EXPECTED


def test_one_byte_at_a_time() -> None:
    reader = server()
    out = feed_chunks(reader, [STREAM[i : i + 1] for i in range(len(STREAM))])
    assert out == STREAM_EXPECTED
    assert all(type(p) is bytes for _, p in out)


def test_every_two_way_split() -> None:
    for cut in range(len(STREAM) + 1):
        assert feed_chunks(server(), [STREAM[:cut], STREAM[cut:]]) == STREAM_EXPECTED, cut


def test_every_three_way_split() -> None:
    stream = b"".join(STREAM_PARTS[:5])  # keep the number of cases reasonable
    expected = [(Opcode.TEXT, b"Hello"), (Opcode.PING, b"ping!"), (Opcode.PONG, b"")]
    for a in range(len(stream) + 1):
        for b in range(a, len(stream) + 1):
            chunks = [stream[:a], stream[a:b], stream[b:]]
            assert feed_chunks(server(), chunks) == expected, (a, b)


def test_messages_returned_as_soon_as_complete() -> None:
    reader = server()
    frame = raw(0x81, b"abc")
    assert reader.feed(frame[:-1]) == []
    assert reader.feed(frame[-1:] + frame[:3]) == [(Opcode.TEXT, b"abc")]
    assert reader.feed(frame[3:]) == [(Opcode.TEXT, b"abc")]


def test_empty_feed() -> None:
    reader = server()
    assert reader.feed(b"") == []
    assert reader.feed(HELLO_MASKED[:3]) == []
    assert reader.feed(b"") == []
    assert reader.feed(HELLO_MASKED[3:]) == [(Opcode.TEXT, b"Hello")]


def test_control_frames_interleaved_with_fragments() -> None:
    reader = server()
    assert reader.feed(raw(0x02, b"ab")) == []
    assert reader.feed(raw(0x89, b"p1")) == [(Opcode.PING, b"p1")]
    assert reader.feed(raw(0x00, b"cd") + raw(0x8A, b"p2")) == [(Opcode.PONG, b"p2")]
    assert reader.feed(raw(0x88, b"") + raw(0x80, b"ef")) == [
        (Opcode.CLOSE, b""),
        (Opcode.BINARY, b"abcdef"),
    ]
    # The message state is reset: a new message may start.
    assert reader.feed(raw(0x81, b"x")) == [(Opcode.TEXT, b"x")]


def test_fragments_may_be_empty() -> None:
    stream = raw(0x01, b"") + raw(0x00, b"") + raw(0x00, b"a") + raw(0x80, b"")
    assert server().feed(stream) == [(Opcode.TEXT, b"a")]


def test_client_side_reader_reads_server_frames() -> None:
    stream = encode_frame(Opcode.TEXT, b"4probe") + encode_frame(Opcode.PING, b"")
    assert client().feed(stream) == [(Opcode.TEXT, b"4probe"), (Opcode.PING, b"")]


# --- masking --------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 5, 7, 8, 100, 1001])
@pytest.mark.parametrize("mask", [MASK, b"\x00\x00\x00\x01", b"\xff\x00\xff\x00", b"\xff" * 4])
def test_apply_mask_matches_reference(size: int, mask: bytes) -> None:
    data = os.urandom(size)
    assert apply_mask(data, mask) == ref_mask(data, mask)
    assert apply_mask(apply_mask(data, mask), mask) == data


def test_compiled_xor_is_built_and_used() -> None:
    # The set-up builds socketwire._speedups; SOCKETWIRE_NO_SPEEDUPS selects the
    # pure-Python fallback (scripts/test runs these tests both ways).
    if os.environ.get("SOCKETWIRE_NO_SPEEDUPS"):
        assert not frames_module.SPEEDUPS
        assert frames_module.xor_unchecked is frames_module._xor_python
    else:
        assert frames_module.SPEEDUPS
        assert frames_module.xor_unchecked.__module__ == "socketwire._speedups"


@settings(max_examples=300)
@given(st.binary(max_size=2000), st.binary(min_size=4, max_size=4))
def test_both_xors_agree(data: bytes, mask: bytes) -> None:
    expected = ref_mask(data, mask)
    assert frames_module._xor_python(data, mask) == expected
    assert frames_module.xor_unchecked(data, mask) == expected
    if frames_module.SPEEDUPS:  # the compiled one takes any buffer
        from socketwire import _speedups

        assert _speedups.apply_mask(bytearray(data), memoryview(mask)) == expected


@pytest.mark.skipif(not frames_module.SPEEDUPS, reason="the compiled XOR is not in use")
def test_compiled_xor_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="4 bytes"):
        frames_module.xor_unchecked(b"abc", b"abc")
    with pytest.raises(TypeError):
        frames_module.xor_unchecked(b"abc")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        frames_module.xor_unchecked("abc", b"abcd")  # type: ignore[arg-type]


def test_zero_mask_fast_path_equals_general_path() -> None:
    payload = os.urandom(300)
    zero = b"\x00\x00\x00\x00"
    assert apply_mask(payload, zero) == ref_mask(payload, zero) == payload
    frame = encode_frame(Opcode.BINARY, payload, mask=zero)
    assert frame == raw(0x82, payload, mask=zero)
    assert server().feed(frame) == [(Opcode.BINARY, payload)]
    # A key that is zero in all but one byte goes through the general path.
    almost = b"\x00\x00\x00\x01"
    assert server().feed(raw(0x82, payload, mask=almost)) == [(Opcode.BINARY, payload)]


def test_apply_mask_rejects_bad_key() -> None:
    with pytest.raises(LocalProtocolError):
        apply_mask(b"abc", b"abc")


# --- protocol errors ------------------------------------------------------------------

ERROR_CASES = [
    pytest.param(False, raw(0xC1, b"x"), 1002, "reserved bits", id="rsv1"),
    pytest.param(False, raw(0xA1, b"x"), 1002, "reserved bits", id="rsv2"),
    pytest.param(False, raw(0x91, b"x"), 1002, "reserved bits", id="rsv3"),
    *(
        pytest.param(False, raw(0x80 | op, b""), 1002, "reserved opcode", id=f"opcode-{op:#x}")
        for op in (3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF)
    ),
    pytest.param(False, raw(0x81, b"x", mask=None), 1002, "unmasked", id="unmasked-to-server"),
    pytest.param(True, raw(0x81, b"x"), 1002, "masked frame", id="masked-to-client"),
    pytest.param(False, raw(0x89, bytes(126)), 1002, "125", id="ping-126-bytes"),
    pytest.param(False, raw(0x8A, bytes(200)), 1002, "125", id="pong-200-bytes"),
    pytest.param(False, raw(0x88, bytes(65536)), 1002, "125", id="close-64k"),
    pytest.param(False, raw(0x09, b"x"), 1002, "fragmented control", id="fragmented-ping"),
    pytest.param(False, raw(0x08, b""), 1002, "fragmented control", id="fragmented-close"),
    pytest.param(False, raw(0x80, b"x"), 1002, "continuation", id="lone-final-continuation"),
    pytest.param(False, raw(0x00, b"x"), 1002, "continuation", id="lone-continuation"),
    pytest.param(
        False,
        raw(0x01, b"a") + raw(0x81, b"b"),
        1002,
        "fragmented message",
        id="text-inside-fragmented",
    ),
    pytest.param(
        False,
        raw(0x02, b"a") + raw(0x89, b"") + raw(0x02, b"b"),
        1002,
        "fragmented message",
        id="binary-inside-fragmented",
    ),
    pytest.param(
        False,
        bytes((0x82, 0xFF)) + (1 << 63).to_bytes(8, "big") + MASK,
        1002,
        "msb",
        id="64-bit-length-msb",
    ),
    pytest.param(False, raw(0x82, bytes(1025)), 1009, "max_message_size", id="too-big"),
    pytest.param(
        False,
        raw(0x02, bytes(600)) + raw(0x80, bytes(425)),
        1009,
        "max_message_size",
        id="too-big-2-fragments",
    ),
    pytest.param(
        False,
        raw(0x02, bytes(400)) + raw(0x00, bytes(400)) + raw(0x80, bytes(225)),
        1009,
        "max_message_size",
        id="too-big-3-fragments",
    ),
    pytest.param(False, raw(0x81, b"\xff"), 1007, "utf-8", id="invalid-utf8"),
    pytest.param(False, raw(0x81, b"\xed\xa0\x80"), 1007, "utf-8", id="utf8-surrogate"),
    pytest.param(False, raw(0x01, b"\xe2\x82") + raw(0x80, b"x"), 1007, "utf-8", id="utf8-frag"),
    pytest.param(False, raw(0x88, b"\x03"), 1002, "one byte", id="close-one-byte"),
    pytest.param(False, raw(0x88, b"\x03\xe8\xff"), 1007, "utf-8", id="close-reason-not-utf8"),
    pytest.param(
        True, raw(0x88, b"\x03\xed", mask=None), 1002, "close code", id="close-1005-to-client"
    ),
]


@pytest.mark.parametrize(("client_side", "stream", "code", "why"), ERROR_CASES)
def test_protocol_errors(client_side: bool, stream: bytes, code: int, why: str) -> None:
    reader = FrameReader(max_message_size=1024, client_side=client_side)
    with pytest.raises(WebSocketProtocolError) as info:
        reader.feed(stream)
    assert info.value.code == code
    assert why in info.value.reason.lower()
    # Sticky: the same error again, even for bytes that would be valid.
    good = raw(0x81, b"ok", mask=None if client_side else MASK)
    with pytest.raises(WebSocketProtocolError) as again:
        reader.feed(good)
    assert again.value is info.value


@pytest.mark.parametrize(("client_side", "stream", "code", "why"), ERROR_CASES)
def test_protocol_errors_one_byte_at_a_time(
    client_side: bool, stream: bytes, code: int, why: str
) -> None:
    reader = FrameReader(max_message_size=1024, client_side=client_side)
    with pytest.raises(WebSocketProtocolError) as info:
        for i in range(len(stream)):
            reader.feed(stream[i : i + 1])
    assert info.value.code == code
    assert why in info.value.reason.lower()


@pytest.mark.parametrize(
    "code", [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]
)
def test_invalid_close_codes_on_the_wire(code: int) -> None:
    with pytest.raises(WebSocketProtocolError) as info:
        server().feed(raw(0x88, code.to_bytes(2, "big") + b"why"))
    assert info.value.code == 1002
    with pytest.raises(WebSocketProtocolError):
        decode_close_payload(code.to_bytes(2, "big"))
    with pytest.raises(LocalProtocolError):
        encode_close_payload(code) if code != 1005 else encode_close_payload(code, "why")


@pytest.mark.parametrize(
    "code",
    [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4999],
)
def test_valid_close_codes_round_trip(code: int) -> None:
    payload = encode_close_payload(code, "r\u00e9ason")
    assert payload == code.to_bytes(2, "big") + "r\u00e9ason".encode()
    assert decode_close_payload(payload) == (code, "r\u00e9ason")
    assert server().feed(raw(0x88, payload)) == [(Opcode.CLOSE, payload)]


def test_close_payload_edge_cases() -> None:
    assert decode_close_payload(b"") == (1005, "")
    assert encode_close_payload() == b"\x03\xe8"
    assert encode_close_payload(CloseCode.NO_STATUS) == b""
    assert decode_close_payload(b"\x03\xe8") == (1000, "")
    assert len(encode_close_payload(1000, "x" * 123)) == 125
    with pytest.raises(LocalProtocolError):
        encode_close_payload(1000, "x" * 124)
    with pytest.raises(WebSocketProtocolError) as info:
        decode_close_payload(b"\x03")
    assert info.value.code == 1002
    with pytest.raises(WebSocketProtocolError) as info:
        decode_close_payload(b"\x03\xe8\xc3")
    assert info.value.code == 1007


def test_message_of_exactly_max_size_is_accepted() -> None:
    reader = server(max_message_size=1000)
    assert reader.feed(raw(0x82, bytes(1000))) == [(Opcode.BINARY, bytes(1000))]
    stream = raw(0x02, bytes(500)) + raw(0x80, bytes(500))
    assert reader.feed(stream) == [(Opcode.BINARY, bytes(1000))]
    # The fragment counter is reset between messages.
    assert reader.feed(stream) == [(Opcode.BINARY, bytes(1000))]
    assert reader.feed(raw(0x82, bytes(1000))) == [(Opcode.BINARY, bytes(1000))]


def test_control_frames_do_not_count_toward_max_size() -> None:
    reader = server(max_message_size=10)
    stream = raw(0x02, bytes(10)) + raw(0x89, bytes(125)) + raw(0x80, b"")
    assert reader.feed(stream) == [(Opcode.PING, bytes(125)), (Opcode.BINARY, bytes(10))]


@pytest.mark.parametrize("length_bytes", [2, 8])
def test_too_big_detected_from_header_alone(length_bytes: int) -> None:
    if length_bytes == 2:
        header = bytes((0x82, 0xFE)) + (60000).to_bytes(2, "big") + MASK
    else:
        header = bytes((0x82, 0xFF)) + (10**12).to_bytes(8, "big") + MASK
    with pytest.raises(WebSocketProtocolError) as info:
        server(max_message_size=1 << 10).feed(header)  # no payload byte at all
    assert info.value.code == 1009
    # Also when the header itself arrives one byte at a time.
    reader = server(max_message_size=1 << 10)
    with pytest.raises(WebSocketProtocolError) as info:
        for i in range(len(header)):
            reader.feed(header[i : i + 1])
    assert info.value.code == 1009
    assert i == len(header) - 1 - 4  # raised once the length is known, before the mask


def test_too_big_fragment_detected_from_its_header() -> None:
    reader = server(max_message_size=1000)
    assert reader.feed(raw(0x02, bytes(600))) == []
    with pytest.raises(WebSocketProtocolError) as info:
        reader.feed(raw(0x80, bytes(401))[:4])
    assert info.value.code == 1009


def test_buffer_never_exceeds_one_frame() -> None:
    limit = 5000
    reader = server(max_message_size=limit)
    frames = [raw(0x82, os.urandom(n)) for n in (limit, 3, limit, 0, 77, limit)]
    stream = b"".join(frames)
    for size in (1, 7, 4096, 13, 30000):
        reader = server(max_message_size=limit)
        out: list[tuple[int, bytes]] = []
        for i in range(0, len(stream), size):
            out.extend(reader.feed(stream[i : i + size]))
            assert len(reader._buf) <= limit + 14
        assert [len(p) for _, p in out] == [limit, 3, limit, 0, 77, limit]
    # A large chunk arriving while a frame is pending is not swallowed whole.
    reader = server(max_message_size=limit)
    assert reader.feed(stream[:1]) == []
    out = reader.feed(stream[1:])
    assert [len(p) for _, p in out] == [limit, 3, limit, 0, 77, limit]
    assert not reader._buf


def test_whole_frames_are_not_copied_into_the_buffer() -> None:
    """A chunk of whole frames is indexed, not buffered, even behind a pending byte."""
    size = 1 << 19
    zero = b"\x00\x00\x00\x00"  # unmasked payloads are plain slices of the input
    first = encode_frame(Opcode.BINARY, b"a", mask=zero)
    rest = b"".join(encode_frame(Opcode.BINARY, bytes(size), mask=zero) for _ in range(8))
    for pending in (b"", first[:1]):
        reader = server(max_message_size=size)
        chunk = first[len(pending) :] + rest
        assert reader.feed(pending) == []
        tracemalloc.start()
        try:
            out = reader.feed(chunk)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert [len(p) for _, p in out] == [1] + [size] * 8
        # The output itself is 8 * size bytes; any copy of the input would double that.
        assert peak < 8 * size * 1.5, peak


def test_validate_utf8_false_passes_bytes_through() -> None:
    reader = server(validate_utf8=False)
    assert reader.feed(raw(0x81, b"\xff\xfe")) == [(Opcode.TEXT, b"\xff\xfe")]


def test_binary_is_not_utf8_checked() -> None:
    assert server().feed(raw(0x82, b"\xff")) == [(Opcode.BINARY, b"\xff")]


def test_utf8_char_split_across_fragments_is_valid() -> None:
    euro = "\u20ac".encode()
    stream = raw(0x01, euro[:1]) + raw(0x00, euro[1:2]) + raw(0x80, euro[2:])
    assert server().feed(stream) == [(Opcode.TEXT, euro)]


def test_reader_rejects_negative_max() -> None:
    with pytest.raises(LocalProtocolError):
        FrameReader(max_message_size=-1)


# --- encode_frame misuse --------------------------------------------------------------


@pytest.mark.parametrize(
    ("opcode", "payload", "fin", "mask"),
    [
        (Opcode.PING, bytes(126), True, None),
        (Opcode.CLOSE, bytes(200), True, MASK),
        (Opcode.PING, b"", False, None),
        (Opcode.PONG, b"", False, MASK),
        (3, b"", True, None),
        (0xB, b"", True, None),
        (0x81, b"", False, None),
        (0x81, b"", True, None),
        (-1, b"", True, None),
        (16, b"", True, None),
        (Opcode.TEXT, b"x", True, b"abc"),
        (Opcode.TEXT, b"x", True, b"abcde"),
    ],
)
def test_encode_frame_misuse(opcode: int, payload: bytes, fin: bool, mask: bytes | None) -> None:
    with pytest.raises(LocalProtocolError):
        encode_frame(opcode, payload, fin=fin, mask=mask)


def test_encode_control_frame_of_125_bytes() -> None:
    frame = encode_frame(Opcode.PONG, bytes(125))
    assert frame[:2] == b"\x8a\x7d"
    assert client().feed(frame) == [(Opcode.PONG, bytes(125))]


def test_encode_nonfinal_frames_clear_fin() -> None:
    assert encode_frame(Opcode.BINARY, b"a", fin=False)[0] == 0x02
    assert encode_frame(Opcode.CONTINUATION, b"a", fin=False)[0] == 0x00
    assert encode_frame(Opcode.CONTINUATION, b"a")[0] == 0x80


# --- property tests -------------------------------------------------------------------

masks = st.binary(min_size=4, max_size=4) | st.just(b"\x00\x00\x00\x00")


@st.composite
def control_frames(draw: st.DrawFn) -> tuple[int, bytes]:
    opcode = draw(st.sampled_from([Opcode.PING, Opcode.PONG, Opcode.CLOSE]))
    if opcode == Opcode.CLOSE:
        code = draw(st.sampled_from([1000, 1001, 1011, 1014, 3000, 4999, 1005]))
        reason = "" if code == 1005 else draw(st.text(max_size=20))
        return opcode, encode_close_payload(code, reason)
    return opcode, draw(st.binary(max_size=125))


@st.composite
def data_messages(draw: st.DrawFn) -> tuple[int, bytes, list[bytes], list[list[tuple[int, bytes]]]]:
    opcode = draw(st.sampled_from([Opcode.TEXT, Opcode.BINARY]))
    if opcode == Opcode.TEXT:
        payload = draw(st.text(max_size=300)).encode()
    else:
        payload = draw(st.binary(max_size=300))
    cuts = sorted(draw(st.lists(st.integers(0, len(payload)), max_size=4)))
    bounds = [0, *cuts, len(payload)]
    pieces = [payload[a:b] for a, b in itertools.pairwise(bounds)]
    # Control frames to put between consecutive fragments.
    between = [draw(st.lists(control_frames(), max_size=2)) for _ in pieces[1:]]
    return opcode, payload, pieces, between


@st.composite
def streams(draw: st.DrawFn, masked: bool) -> tuple[bytes, list[tuple[int, bytes]]]:
    items = draw(st.lists(data_messages() | control_frames(), max_size=6))
    frames: list[bytes] = []
    expected: list[tuple[int, bytes]] = []

    def add(opcode: int, payload: bytes, fin: bool = True) -> None:
        mask = draw(masks) if masked else None
        frames.append(encode_frame(opcode, payload, fin=fin, mask=mask))

    for item in items:
        if len(item) == 2:
            opcode, payload = item
            add(opcode, payload)
            expected.append((opcode, payload))
            continue
        opcode, payload, pieces, between = item
        last = len(pieces) - 1
        for i, piece in enumerate(pieces):
            add(opcode if i == 0 else Opcode.CONTINUATION, piece, fin=i == last)
            if i < last:
                for control in between[i]:
                    add(*control)
                    expected.append(control)
        expected.append((opcode, payload))
    return b"".join(frames), expected


def chunked(data: st.DataObject, stream: bytes) -> list[bytes]:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    bounds = [0, *cuts, len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=300, deadline=None)
@given(st.data(), st.booleans())
def test_round_trip_random_streams(data: st.DataObject, client_side: bool) -> None:
    # A client sends masked frames to a server, a server unmasked frames to a client.
    stream, expected = data.draw(streams(masked=not client_side))
    chunks = chunked(data, stream)
    reader = FrameReader(max_message_size=400, client_side=client_side)
    out = feed_chunks(reader, chunks)
    assert out == expected
    assert all(type(p) is bytes for _, p in out)
    assert not reader._buf


@settings(max_examples=300, deadline=None)
@given(st.data(), st.integers(0, 400))
def test_max_message_size_property(data: st.DataObject, limit: int) -> None:
    stream, expected = data.draw(streams(masked=True))
    chunks = chunked(data, stream)
    too_big = any(op in (Opcode.TEXT, Opcode.BINARY) and len(p) > limit for op, p in expected)
    reader = FrameReader(max_message_size=limit)
    if too_big:
        with pytest.raises(WebSocketProtocolError) as info:
            feed_chunks(reader, chunks)
        assert info.value.code == 1009
    else:
        assert feed_chunks(reader, chunks) == expected


@settings(max_examples=500, deadline=None)
@given(st.data(), st.binary(max_size=300), st.booleans())
def test_arbitrary_bytes_chunking_never_changes_the_outcome(
    data: st.DataObject, stream: bytes, client_side: bool
) -> None:
    """Garbage gives messages or a WebSocketProtocolError, the same for any chunking."""

    def outcome(chunks: list[bytes]) -> object:
        reader = FrameReader(max_message_size=200, client_side=client_side)
        out: list[tuple[int, bytes]] = []
        try:
            for chunk in chunks:
                out.extend(reader.feed(chunk))
        except WebSocketProtocolError as exc:
            return ("error", exc.code)
        return out

    whole = outcome([stream])
    assert outcome(chunked(data, stream)) == whole
    assert outcome([stream[i : i + 1] for i in range(len(stream))]) == whole


# --- layer 0 --------------------------------------------------------------------------


@pytest.mark.parametrize("module", [frames_module, handshake_module])
def test_core_imports_no_io(module: ModuleType) -> None:
    """The core is sans-I/O: only pure standard-library helpers and socketwire.errors."""
    allowed = {
        "__future__",
        "base64",
        "binascii",
        "collections.abc",
        "enum",
        "hashlib",
        "struct",
        "typing",
        "socketwire.errors",
        # The compiled XOR, and the environment variable that turns it off.
        "socketwire._speedups",
        "os",
    }
    assert module.__file__ is not None
    with open(module.__file__, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    assert imported <= allowed, imported - allowed
