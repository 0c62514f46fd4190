"""Property-based fuzzing of every parser that reads the network (CI budget).

Random bytes and structure-aware mutations of valid inputs are fed to:

* ``HttpConnection.data_received`` (httptools request heads) on a fake transport;
* the client's ``HttpConnection`` (httptools responses to a poll) on a fake
  transport, and the poll's body through the Engine.IO and Socket.IO decoders;
* ``FrameReader.feed`` (server and client side) and ``decode_close_payload``;
* Engine.IO ``parse_text_packet`` and ``decode_payload``;
* Socket.IO ``PacketDecoder.feed_text`` / ``feed_binary`` sequences;
* the msgpack parser's ``decoder().feed_binary``, and the notepack value codec's
  ``unpack`` under it (C path and pure Python decoder);
* the Redis adapter's ``decode_broadcast`` / ``decode_request`` /
  ``decode_response``, and ``RedisAdapter.on_message`` on every channel;
* a whole ``socketwire.Server``: in process through a real ``HttpConnection`` on
  a fake transport, and on 127.0.0.1 over raw sockets after a valid handshake.

Only the documented protocol errors may escape a parser
(``WebSocketProtocolError`` for framing, ``RemoteProtocolError`` for the
rest); the HTTP connection, the server and the Redis adapter let nothing escape
and log no error.
Where an encoder exists, the encoding of a valid value decodes back to it.

Reproducers of fixed failures stay as tests; the long
coverage-guided runs live in ``fuzz/`` (see ``fuzz/README.md``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import logging
import math
import os
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import socketwire
from socketwire.adapters.base import BroadcastOptions
from socketwire.client.http import MAX_HEAD, ResponseTooLarge
from socketwire.client.http import HttpConnection as ClientHttpConnection
from socketwire.client.http import HttpResponse as ClientResponse
from socketwire.core.engineio import packet as eio
from socketwire.core.socketio.packet import (
    RESERVED_EVENTS,
    Packet,
    PacketDecoder,
    PacketType,
    encode,
)
from socketwire.core.websocket.frames import (
    FrameReader,
    Opcode,
    decode_close_payload,
    encode_close_payload,
    encode_frame,
)
from socketwire.errors import RemoteProtocolError, WebSocketProtocolError
from socketwire.serve import HttpConnection
from socketwire.serve import connection as serve_connection

try:
    import msgpack  # type: ignore[import-untyped]

    from socketwire.core import notepack
    from socketwire.core.socketio.msgpack import MSGPACK_PARSER
except ImportError:  # the msgpack parser is optional
    msgpack = None
    notepack = None  # type: ignore[assignment]
    MSGPACK_PARSER = None  # type: ignore[misc, assignment]

needs_msgpack = pytest.mark.skipif(MSGPACK_PARSER is None, reason="msgpack parser not available")

# Modest budgets: the whole file stays well under 30 s. In CI the examples are
# derandomized (the same inputs every run); locally every run explores anew, and
# FUZZ_SCALE=20 (say) multiplies the number of examples for a longer local run.
_IN_CI = bool(os.environ.get("CI"))
_SCALE = max(1, int(os.environ.get("FUZZ_SCALE", "1")))
FUZZ = settings(
    max_examples=150 * _SCALE,
    deadline=None,
    derandomize=_IN_CI,
    database=None if _IN_CI or settings.default is None else settings.default.database,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
FEW = settings(FUZZ, max_examples=50 * _SCALE)

MASK = b"\x5a\x17\xc3\x08"
METHOD_START = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n")


# ---------------------------------------------------------------------------
# Strategies shared by several parsers
# ---------------------------------------------------------------------------

keys = st.text(max_size=8).filter(lambda k: k != "_placeholder")
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=16)
)


def json_values(binary: bool = False) -> st.SearchStrategy[Any]:
    leaves = scalars | st.binary(max_size=16) if binary else scalars
    return st.recursive(
        leaves,
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4)
        ),
        max_leaves=10,
    )


def contains_bytes(obj: Any) -> bool:
    stack = [obj]
    while stack:
        node = stack.pop()
        if isinstance(node, bytes):
            return True
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            stack.extend(node.values())
    return False


namespaces = st.just("/") | st.text(
    alphabet=st.characters(blacklist_characters=",", blacklist_categories=["Cs"]), max_size=8
).map(lambda s: "/" + s)
ack_ids = st.integers(min_value=0, max_value=10**15 - 1)
event_names = (
    st.text(max_size=10).filter(lambda s: s not in RESERVED_EVENTS)
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
)


@st.composite
def sio_packets(draw: st.DrawFn) -> Packet:
    """A valid Socket.IO packet of any type (binary anywhere in EVENT / ACK arguments)."""
    ptype = draw(st.sampled_from(PacketType))
    nsp = draw(namespaces)
    binary = ptype in (PacketType.EVENT, PacketType.ACK, PacketType.BINARY_EVENT)
    binary = binary or ptype == PacketType.BINARY_ACK
    args = st.lists(json_values(binary), max_size=3)
    ack_id = draw(st.none() | ack_ids)
    if ptype in (PacketType.EVENT, PacketType.BINARY_EVENT):
        data: Any = [draw(event_names), *draw(args)]
    elif ptype in (PacketType.ACK, PacketType.BINARY_ACK):
        data = draw(args)
        ack_id = draw(ack_ids)
    elif ptype == PacketType.CONNECT:
        data = draw(st.none() | st.dictionaries(keys, json_values(), max_size=3))
    elif ptype == PacketType.DISCONNECT:
        data = None
    else:
        data = draw(st.none() | st.text(max_size=10) | st.dictionaries(keys, json_values()))
    return Packet(ptype, nsp, data, ack_id)


def decoded_form(packet: Packet) -> Packet:
    """What the decoder gives back for ``packet``: EVENT / ACK with binary become BINARY_*."""
    if packet.type in (PacketType.EVENT, PacketType.ACK) and contains_bytes(packet.data):
        return Packet(PacketType(packet.type + 3), packet.nsp, packet.data, packet.id)
    return packet


def records_of(packet: Packet) -> list[tuple[bool, bytes]]:
    """The messages that carry ``packet``: its text, then its attachments."""
    text, attachments = encode(packet)
    return [(False, text)] + [(True, a) for a in attachments]


_PLACEHOLDER_NUMS = (b"-1", b"1.0", b'"0"', b"true", b"null", b"1e0", b"99999999999999999999", b"9")


@st.composite
def mutated_sio_records(draw: st.DrawFn) -> list[tuple[bool, bytes]]:
    """The messages of a valid packet, then one structure-aware mutation."""
    records = records_of(draw(sio_packets()))
    text = records[0][1]
    kind = draw(st.integers(min_value=0, max_value=11))
    if kind == 0:  # another packet type
        text = draw(st.binary(min_size=1, max_size=1)) + text[1:]
    elif kind == 1 and b"-" in text:  # another attachment count
        head, _, rest = text.partition(b"-")
        count = draw(st.integers(min_value=0, max_value=10**12))
        text = head[:1] + str(count).encode() + draw(st.sampled_from([b"-", b"", b"--"])) + rest
    elif kind == 2 and b'"num":' in text:  # a placeholder pointing elsewhere
        text = text.replace(b'"num":0', b'"num":' + draw(st.sampled_from(_PLACEHOLDER_NUMS)), 1)
    elif kind == 3:  # placeholder marker not exactly true
        text = text.replace(b'"_placeholder":true', b'"_placeholder":1', 1)
    elif kind == 4:  # header fields in the wrong shape
        extra = draw(st.sampled_from([b"admin,", b"/x", b"-", b",", b"1234567890123456", b" "]))
        at = draw(st.integers(min_value=1, max_value=max(1, len(text))))
        text = text[:at] + extra + text[at:]
    elif kind == 5:  # JSON cut short
        text = text[: draw(st.integers(min_value=0, max_value=len(text)))]
    elif kind == 6:  # invalid UTF-8 in the JSON or the namespace
        at = draw(st.integers(min_value=0, max_value=len(text)))
        text = (
            text[:at] + draw(st.sampled_from([b"\xff", b"\xc0\x80", b"\xed\xa0\x80"])) + text[at:]
        )
    elif kind == 7:  # random bytes inserted
        at = draw(st.integers(min_value=0, max_value=len(text)))
        text = text[:at] + draw(st.binary(min_size=1, max_size=4)) + text[at:]
    records[0] = (False, text)
    if kind == 8 and len(records) > 1:  # an attachment missing
        records.pop()
    elif kind == 9:  # one attachment too many
        records.append((True, draw(st.binary(max_size=8))))
    elif kind == 10:  # text arriving while attachments are awaited
        records.insert(1, (False, b'2["x"]'))
    elif kind == 11:  # messages out of order
        records = draw(st.permutations(records))
    return records


# ---------------------------------------------------------------------------
# WebSocket frames
# ---------------------------------------------------------------------------


def read_all(
    stream: bytes, cuts: list[int], *, client_side: bool, max_size: int = 1 << 20
) -> tuple[list[tuple[int, bytes]], WebSocketProtocolError | None]:
    """Feed ``stream`` cut at ``cuts``; the messages, and the error if one was raised."""
    reader = FrameReader(max_message_size=max_size, client_side=client_side)
    out: list[tuple[int, bytes]] = []
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    for a, b in itertools.pairwise(points):
        try:
            out += reader.feed(stream[a:b])
        except WebSocketProtocolError as exc:
            assert exc.code in (1002, 1007, 1009)
            with pytest.raises(WebSocketProtocolError) as again:
                reader.feed(b"\x00")
            assert again.value is exc  # the error is sticky
            return out, exc
    for opcode, payload in out:
        assert opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CLOSE, Opcode.PING, Opcode.PONG)
        assert type(payload) is bytes
        if opcode >= 8:
            assert len(payload) <= 125
        else:
            assert len(payload) <= max_size
        if opcode == Opcode.TEXT:
            payload.decode("utf-8")
    return out, None


close_payloads = st.one_of(
    st.just(b""),
    st.tuples(
        st.sampled_from([1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4999]),
        st.text(max_size=20).filter(lambda r: len(r.encode()) <= 123),
    ).map(lambda cr: encode_close_payload(*cr)),
)


@st.composite
def ws_messages(draw: st.DrawFn) -> list[tuple[int, bytes, list[bytes]]]:
    """Valid messages: (opcode, payload, fragments); control frames are never fragmented."""
    out: list[tuple[int, bytes, list[bytes]]] = []
    for _ in range(draw(st.integers(min_value=1, max_value=5))):
        kind = draw(st.sampled_from(["text", "binary", "ping", "pong", "close"]))
        if kind == "text":
            payload = draw(st.text(max_size=60)).encode()
            opcode = Opcode.TEXT
        elif kind == "binary":
            payload = draw(st.binary(max_size=300))
            opcode = Opcode.BINARY
        elif kind == "close":
            payload = draw(close_payloads)
            opcode = Opcode.CLOSE
        else:
            payload = draw(st.binary(max_size=125))
            opcode = Opcode.PING if kind == "ping" else Opcode.PONG
        fragments = [payload]
        if opcode < 8:
            # Cuts anywhere, including inside a UTF-8 sequence: only the whole
            # message has to be valid text.
            cuts = sorted(draw(st.lists(st.integers(0, len(payload)), max_size=3)))
            bounds = [0, *cuts, len(payload)]
            fragments = [payload[a:b] for a, b in itertools.pairwise(bounds)]
        out.append((opcode, payload, fragments))
    return out


def frame_stream(messages: list[tuple[int, bytes, list[bytes]]], masked: bool) -> bytes:
    parts = []
    mask = MASK if masked else None
    for opcode, _payload, fragments in messages:
        for i, fragment in enumerate(fragments):
            op = opcode if i == 0 else Opcode.CONTINUATION
            last = i == len(fragments) - 1
            parts.append(encode_frame(op, fragment, fin=last, mask=mask))
    return b"".join(parts)


@FUZZ
@given(ws_messages(), st.lists(st.integers(min_value=0), max_size=8), st.booleans())
def test_frames_round_trip(
    messages: list[tuple[int, bytes, list[bytes]]], cuts: list[int], client_side: bool
) -> None:
    stream = frame_stream(messages, masked=not client_side)
    out, error = read_all(stream, cuts, client_side=client_side)
    assert error is None
    assert out == [(opcode, payload) for opcode, payload, _ in messages]


@pytest.mark.parametrize("size", [125, 126, 65535, 65536, 70_000])
@pytest.mark.parametrize("client_side", [False, True])
def test_frames_round_trip_length_forms(size: int, client_side: bool) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    stream = encode_frame(Opcode.BINARY, payload, mask=None if client_side else MASK)
    out, error = read_all(stream, [1, 2, 3, 9, 4000], client_side=client_side)
    assert error is None
    assert out == [(Opcode.BINARY, payload)]


@FUZZ
@given(st.binary(max_size=600), st.lists(st.integers(min_value=0), max_size=6), st.booleans())
def test_frames_random_bytes(data: bytes, cuts: list[int], client_side: bool) -> None:
    read_all(data, cuts, client_side=client_side, max_size=256)


@st.composite
def mutated_frame_streams(draw: st.DrawFn) -> tuple[bytes, bool]:
    """A valid stream with bits flipped, lengths rewritten, bytes cut or inserted."""
    client_side = draw(st.booleans())
    data = bytearray(frame_stream(draw(ws_messages()), masked=not client_side))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        kind = draw(st.integers(min_value=0, max_value=4))
        at = draw(st.integers(min_value=0, max_value=max(0, len(data) - 1)))
        if kind == 0 and data:  # flip a bit (FIN, RSV, opcode, MASK, length, payload)
            data[at] ^= 1 << draw(st.integers(min_value=0, max_value=7))
        elif kind == 1 and data:  # another 7-bit length, including 126 / 127
            data[at] = (data[at] & 0x80) | draw(st.sampled_from([0, 1, 125, 126, 127]))
        elif kind == 2:  # 16- or 64-bit length field rewritten
            value = draw(st.sampled_from([0, 125, 126, 65535, 65536, 2**63, 2**64 - 1]))
            data[at : at + 8] = value.to_bytes(8, "big")
        elif kind == 3:  # cut
            del data[at : at + draw(st.integers(min_value=1, max_value=16))]
        else:  # insert
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
    return bytes(data), client_side


@FUZZ
@given(mutated_frame_streams(), st.lists(st.integers(min_value=0), max_size=6))
def test_frames_mutated_streams(stream_side: tuple[bytes, bool], cuts: list[int]) -> None:
    stream, client_side = stream_side
    split, split_error = read_all(stream, cuts, client_side=client_side, max_size=4096)
    whole, whole_error = read_all(stream, [], client_side=client_side, max_size=4096)
    # Where the stream is cut never changes the outcome.
    assert (split_error is None) == (whole_error is None)
    if whole_error is None:
        assert split == whole
    else:
        assert split_error is not None and split_error.code == whole_error.code


@FUZZ
@given(st.binary(max_size=140))
def test_close_payload_random_bytes(data: bytes) -> None:
    try:
        code, reason = decode_close_payload(data)
    except WebSocketProtocolError as exc:
        assert exc.code in (1002, 1007)
        return
    if data:
        assert encode_close_payload(code, reason) == data
    else:
        assert (code, reason) == (1005, "")


@FUZZ
@given(close_payloads)
def test_close_payload_round_trip(payload: bytes) -> None:
    code, reason = decode_close_payload(payload)
    assert encode_close_payload(code, reason) == payload


# ---------------------------------------------------------------------------
# Engine.IO packets and polling payloads
# ---------------------------------------------------------------------------

text_segments = st.tuples(
    st.integers(min_value=0, max_value=6),
    st.binary(max_size=30).map(lambda b: b.replace(b"\x1e", b"")),
).map(lambda tp: (tp[0], tp[1], False))
binary_segments = st.binary(max_size=30).map(lambda b: (4, b, True))
payload_segments = st.lists(text_segments | binary_segments, min_size=1, max_size=6)


def encode_segments(segments: list[tuple[int, bytes, bool]]) -> bytes:
    return eio.encode_payload(
        [eio.encode_polling_binary(d) if b else eio.PREFIX[t] + d for t, d, b in segments]
    )


@FUZZ
@given(st.binary(max_size=64))
def test_parse_text_packet_random_bytes(data: bytes) -> None:
    try:
        ptype, payload = eio.parse_text_packet(data)
    except RemoteProtocolError:
        return
    assert 0 <= ptype <= 6
    assert payload == data[1:]


@FUZZ
@given(payload_segments)
def test_polling_payload_round_trip(segments: list[tuple[int, bytes, bool]]) -> None:
    assert eio.decode_payload(encode_segments(segments)) == segments


@st.composite
def mutated_payloads(draw: st.DrawFn) -> bytes:
    """A valid polling payload with separators and base64 damaged."""
    segments = [
        eio.encode_polling_binary(d) if b else eio.PREFIX[t] + d
        for t, d, b in draw(payload_segments)
    ]
    i = draw(st.integers(min_value=0, max_value=len(segments) - 1))
    kind = draw(st.integers(min_value=0, max_value=7))
    seg = segments[i]
    if kind == 0 and seg.endswith(b"="):  # padding dropped
        segments[i] = seg.rstrip(b"=")
    elif kind == 1:  # a byte base64 does not have
        at = draw(st.integers(min_value=1, max_value=len(seg)))
        bad = draw(st.sampled_from([b"!", b"-", b"_", b"\n", b" ", b"=", b"\x00", b"\xff"]))
        segments[i] = seg[:at] + bad + seg[at:]
    elif kind == 2:  # URL-safe alphabet
        segments[i] = b"b" + base64.urlsafe_b64encode(draw(st.binary(min_size=1, max_size=20)))
    elif kind == 3:  # empty packet
        segments.insert(i, b"")
    elif kind == 4:  # not a type digit
        segments[i] = draw(st.binary(min_size=1, max_size=1)) + seg[1:]
    sep = eio.SEPARATOR
    if kind == 5:
        sep = draw(st.sampled_from([b"\x1e\x1e", b"\x1f", b"", b"\n"]))
    body = sep.join(segments)
    if kind == 6:
        body = eio.SEPARATOR + body
    elif kind == 7:
        body += eio.SEPARATOR
    return body


@FUZZ
@given(mutated_payloads() | st.binary(max_size=200))
def test_polling_payload_mutated(body: bytes) -> None:
    try:
        decoded = eio.decode_payload(body)
    except RemoteProtocolError:
        return
    assert len(decoded) == body.count(eio.SEPARATOR) + 1
    for ptype, data, binary in decoded:
        assert 0 <= ptype <= 6 and type(data) is bytes
        assert not binary or ptype == 4
    assert eio.decode_payload(encode_segments(decoded)) == decoded


# ---------------------------------------------------------------------------
# Socket.IO packets with attachments
# ---------------------------------------------------------------------------


def feed(decoder: Any, records: list[tuple[bool, bytes]]) -> list[Packet]:
    """Feed messages; the packets completed (errors are raised)."""
    out = []
    for binary, data in records:
        packet = decoder.feed_binary(data) if binary else decoder.feed_text(data)
        if packet is not None:
            out.append(packet)
    return out


@FUZZ
@given(st.lists(sio_packets(), min_size=1, max_size=4))
def test_socketio_round_trip(packets: list[Packet]) -> None:
    records = [records_of(p) for p in packets]
    assume(all(len(r) - 1 <= 10 for r in records))  # the default max_attachments
    decoder = PacketDecoder()
    got = feed(decoder, [m for r in records for m in r])
    assert got == [decoded_form(p) for p in packets]
    assert not decoder.awaiting_attachments


def check_decoded(packet: Packet) -> None:
    assert isinstance(packet.type, PacketType)
    assert packet.nsp.startswith("/") and "," not in packet.nsp
    assert packet.id is None or 0 <= packet.id < 10**4000
    if packet.type in (PacketType.EVENT, PacketType.BINARY_EVENT):
        assert type(packet.data) is list and packet.data
    elif packet.type in (PacketType.ACK, PacketType.BINARY_ACK):
        assert type(packet.data) is list and packet.id is not None
    elif packet.type == PacketType.DISCONNECT:
        assert packet.data is None
    # A decoded packet encodes and decodes back to itself.
    text, attachments = encode(packet)
    again = feed(PacketDecoder(max_attachments=len(attachments)), records_of(packet))
    assert again == [packet], (text, attachments)


@FUZZ
@given(mutated_sio_records(), sio_packets())
def test_socketio_mutated_packets(records: list[tuple[bool, bytes]], after: Packet) -> None:
    decoder = PacketDecoder()
    for binary, data in records:
        try:
            packet = decoder.feed_binary(data) if binary else decoder.feed_text(data)
        except RemoteProtocolError:
            assert not decoder.awaiting_attachments  # an error resets the decoder
            continue
        if packet is not None:
            check_decoded(packet)
    # Whatever came before, a reset decoder reads the next valid packet.
    decoder.reset()
    after_records = records_of(after)
    assume(len(after_records) - 1 <= 10)
    assert feed(decoder, after_records) == [decoded_form(after)]


@FUZZ
@given(st.lists(st.tuples(st.booleans(), st.binary(max_size=40)), max_size=6))
def test_socketio_random_messages(records: list[tuple[bool, bytes]]) -> None:
    decoder = PacketDecoder()
    for binary, data in records:
        try:
            packet = decoder.feed_binary(data) if binary else decoder.feed_text(data)
        except RemoteProtocolError:
            assert not decoder.awaiting_attachments
            continue
        if packet is not None:
            check_decoded(packet)


NESTED = 1000  # below orjson's limit of 1024 levels, deeper than the repr() recursion limit


def test_socketio_deeply_nested_invalid_payload_is_a_protocol_error() -> None:
    data = b"0" + b"[" * NESTED + b"]" * NESTED  # CONNECT whose payload is not an object
    with pytest.raises(RemoteProtocolError):
        PacketDecoder().feed_text(data)


# ---------------------------------------------------------------------------
# msgpack packets
# ---------------------------------------------------------------------------


def msgpack_values() -> st.SearchStrategy[Any]:
    leaves = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**63), max_value=2**64 - 1)
        | st.floats(allow_nan=False)
        | st.text(max_size=12)
        | st.binary(max_size=12)
    )
    return st.recursive(
        leaves,
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=6), children, max_size=4)
        ),
        max_leaves=10,
    )


@st.composite
def msgpack_packets(draw: st.DrawFn) -> Packet:
    ptype = draw(st.integers(min_value=0, max_value=4))
    nsp = draw(st.text(max_size=8).map(lambda s: "/" + s))
    ack_id = draw(st.none() | st.integers(min_value=-(2**63), max_value=2**64 - 1))
    if ptype == 2:
        data: Any = [draw(event_names), *draw(st.lists(msgpack_values(), max_size=3))]
    elif ptype == 3:
        data = draw(st.lists(msgpack_values(), max_size=3))
        ack_id = draw(st.integers(min_value=0, max_value=2**53))
    elif ptype == 0:
        data = draw(st.none() | st.dictionaries(st.text(max_size=6), msgpack_values(), max_size=3))
    elif ptype == 1:
        data = None
    else:
        data = draw(st.text(max_size=10) | st.dictionaries(st.text(max_size=6), msgpack_values()))
    return Packet(PacketType(ptype), nsp, data, ack_id)


@needs_msgpack
@FUZZ
@given(msgpack_packets())
def test_msgpack_round_trip(packet: Packet) -> None:
    assert MSGPACK_PARSER is not None
    text, binaries = MSGPACK_PARSER.encode(packet)
    assert text == b"" and len(binaries) == 1
    assert MSGPACK_PARSER.decoder().feed_binary(binaries[0]) == packet


@st.composite
def mutated_msgpack(draw: st.DrawFn) -> bytes:
    """A packet map with keys and values of the wrong kind, ext forms, or damaged bytes."""
    assert msgpack is not None
    obj: dict[Any, Any] = {"type": 2, "data": ["ev", 1], "nsp": "/"}
    kind = draw(st.integers(min_value=0, max_value=9))
    if kind == 0:
        obj["type"] = draw(st.sampled_from([5, 6, -1, 2.0, 2.5, True, "2", None, 2**64 - 1]))
    elif kind == 1:
        obj["nsp"] = draw(st.sampled_from([1, None, b"/", ["/"]]))
    elif kind == 2:
        obj["id"] = draw(st.sampled_from([1.0, 1.5, "1", None, -(2**63), 2**64 - 1, float("nan")]))
    elif kind == 3:
        obj[draw(st.sampled_from(["extra", "options", 1, b"k"]))] = 1
    elif kind == 4:
        del obj[draw(st.sampled_from(["type", "data", "nsp"]))]
    elif kind == 5:
        obj["data"] = draw(msgpack_values())
    elif kind == 6:
        obj["data"] = [
            "ev",
            msgpack.ExtType(draw(st.integers(0, 127)), draw(st.binary(max_size=17))),
        ]
    elif kind == 7:
        obj["data"] = ["ev", msgpack.Timestamp(draw(st.integers(-(2**34), 2**34)), 0)]
    obj = dict(draw(st.permutations(list(obj.items()))))
    data = msgpack.packb(obj, use_bin_type=True)
    if kind == 8:  # notepack's ext forms: undefined, Date, ArrayBuffer of 1 / 8 bytes
        ext = draw(st.sampled_from([b"\xd4\x00\x00", b"\xd7\x00" + bytes(8), b"\xc7\x01\x00\x07"]))
        data = b"\x83\xa4type\x02\xa4data\x92\xa2ev" + ext + b"\xa3nsp\xa1/"
    elif kind == 9:  # bytes flipped, cut or inserted
        buf = bytearray(data)
        at = draw(st.integers(min_value=0, max_value=len(buf) - 1))
        op = draw(st.integers(min_value=0, max_value=2))
        if op == 0:
            buf[at] ^= 1 << draw(st.integers(min_value=0, max_value=7))
        elif op == 1:
            del buf[at:]
        else:
            buf[at:at] = draw(st.binary(min_size=1, max_size=3))
        data = bytes(buf)
    return bytes(data)


@needs_msgpack
@FUZZ
@given(mutated_msgpack() | st.binary(max_size=80))
def test_msgpack_mutated_and_random(data: bytes) -> None:
    assert MSGPACK_PARSER is not None
    decoder = MSGPACK_PARSER.decoder()
    with pytest.raises(RemoteProtocolError):
        decoder.feed_text(data)
    try:
        packet = decoder.feed_binary(data)
    except RemoteProtocolError:
        return
    assert packet is not None and 0 <= packet.type <= 4 and type(packet.nsp) is str
    assert packet.id is None or -(2**63) <= packet.id < 2**64


@needs_msgpack
@FUZZ
@given(mutated_msgpack() | st.binary(max_size=80))
def test_notepack_paths_agree(data: bytes) -> None:
    assert notepack is not None
    # The C path and the pure Python decoder it falls back to: same value, or both refuse.
    results = []
    for decoder in (notepack.unpack, notepack._unpack_exact):
        try:
            results.append(("value", decoder(data)))
        except RemoteProtocolError:
            results.append(("refused", None))
    (kind, value), (exact_kind, exact) = results
    assert kind == exact_kind
    if kind == "value" and nesting(value) < 200:
        # repr: NaN equals itself, and bytes, ints and floats stay apart
        assert repr(value) == repr(exact)
        assert repr(notepack.unpack(notepack.pack_timestamps(value))) == repr(value)


def nesting(value: Any) -> int:
    """How deeply lists and dicts nest in ``value`` (without recursion)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, list):
            stack.extend((item, level + 1) for item in node)
        elif isinstance(node, dict):
            stack.extend((item, level + 1) for item in node.values())
        else:
            continue
        deepest = max(deepest, level)
    return deepest


@needs_msgpack
def test_msgpack_deeply_nested_invalid_payload_is_a_protocol_error() -> None:
    assert MSGPACK_PARSER is not None
    # {"type": 4, "data": [[...[]...]], "nsp": "/"}: CONNECT_ERROR data must be a str or a map.
    data = b"\x83\xa4type\x04\xa4data" + b"\x91" * (NESTED - 1) + b"\x90" + b"\xa3nsp\xa1/"
    with pytest.raises(RemoteProtocolError):
        MSGPACK_PARSER.decoder().feed_binary(data)


# ---------------------------------------------------------------------------
# HTTP request heads (HttpConnection on a fake transport)
# ---------------------------------------------------------------------------


class FakeTransport:
    """Records what the connection writes and whether it closed; nothing else is faked."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.paused = False
        self.protocol: Any = None

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def set_protocol(self, protocol: Any) -> None:
        # An upgraded connection's reads go to its WebSocket; the fuzzer keeps
        # feeding the HTTP connection, which passes them on.
        self.protocol = protocol

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def get_write_buffer_size(self) -> int:
        return 0

    def output(self) -> bytes:
        return b"".join(self.writes)


class Handler:
    def __init__(self) -> None:
        self.messages: list[tuple[int, bytes]] = []

    def ws_message(self, opcode: int, payload: bytes) -> None:
        self.messages.append((opcode, payload))

    def ws_closed(self, code: int, reason: str) -> None:
        pass


def echo_app(req: Any) -> None:
    if req.is_websocket():
        req.accept_websocket(Handler(), [])
        return
    req.respond(200, [("Content-Type", "text/plain")], f"<{req.method} {req.url}>".encode())


def feed_http(
    data: bytes, cuts: list[int] | tuple[int, ...] = (), app: Callable[[Any], None] = echo_app
) -> FakeTransport:
    """Feed ``data`` cut at ``cuts`` to a new connection; nothing may escape."""
    conn = HttpConnection(app, 1 << 16)
    transport = FakeTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    for a, b in itertools.pairwise(points):
        if transport.closed:
            break
        conn.data_received(data[a:b])
    conn.connection_lost(None)
    return transport


@FUZZ
@given(
    st.binary(min_size=1, max_size=300).filter(lambda b: b[0] not in METHOD_START),
    st.lists(st.integers(min_value=0), max_size=4),
)
def test_http_garbage_gets_400_and_close(data: bytes, cuts: list[int]) -> None:
    transport = feed_http(data, cuts)
    assert transport.closed
    assert transport.output().startswith(b"HTTP/1.1 400 Bad Request\r\n")


@FUZZ
@given(st.binary(max_size=400), st.lists(st.integers(min_value=0), max_size=4))
def test_http_random_bytes(data: bytes, cuts: list[int]) -> None:
    feed_http(data, cuts)


token = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12)
header_values = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30)
paths = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-._~/=&%", max_size=30)


@st.composite
def http_requests(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """A valid keep-alive request and the echo it gets."""
    method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]))
    url = "/" + draw(paths)
    headers = draw(
        st.lists(
            st.tuples(token, header_values).filter(
                lambda h: (
                    # Framing and expectations have tests of their own
                    # (an "Expect" other than 100-continue is refused: 417).
                    h[0] not in ("content-length", "transfer-encoding", "connection", "expect")
                    and h[0] != "upgrade"
                )
            ),
            max_size=5,
        )
    )
    body = draw(st.binary(max_size=50)) if method in ("POST", "PUT", "PATCH") else b""
    lines = [f"{method} {url} HTTP/1.1", "Host: x"]
    lines += [f"{n}: {v.strip()}" for n, v in headers]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()
    return head + body, f"<{method} {url}>".encode()


@FUZZ
@given(st.lists(http_requests(), min_size=1, max_size=4), st.lists(st.integers(0), max_size=6))
def test_http_pipelined_requests_answered_in_order(
    requests: list[tuple[bytes, bytes]], cuts: list[int]
) -> None:
    transport = feed_http(b"".join(r for r, _ in requests), cuts)
    out = transport.output()
    assert out.count(b"HTTP/1.1 200 OK\r\n") == len(requests)
    at = 0
    for _, echo in requests:  # in the order sent
        at = out.find(echo, at)
        assert at >= 0, echo
        at += len(echo)
    assert not transport.closed


@st.composite
def mutated_requests(draw: st.DrawFn) -> bytes:
    data = bytearray(
        b"".join(r for r, _ in draw(st.lists(http_requests(), min_size=1, max_size=3)))
    )
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        at = draw(st.integers(min_value=0, max_value=len(data) - 1))
        kind = draw(st.integers(min_value=0, max_value=5))
        if kind == 0:
            data[at] ^= 1 << draw(st.integers(min_value=0, max_value=7))
        elif kind == 1:
            del data[at : at + draw(st.integers(min_value=1, max_value=8))]
        elif kind == 2:
            data[at:at] = draw(
                st.sampled_from(
                    [
                        b"\r\n",
                        b"\n",
                        b"\x00",
                        b": ",
                        b" ",
                        b"Content-Length: 99\r\n",
                        b"Transfer-Encoding: chunked\r\n",
                        b"Content-Length: -1\r\n",
                    ]
                )
            )
        elif kind == 3:
            data = data.replace(b"\r\n", b"\n", 1)
        elif kind == 4:
            data[at:at] = b"X-Big: " + b"v" * 70_000 + b"\r\n"  # over the 64 KiB head limit
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=6))
    return bytes(data)


@FUZZ
@given(mutated_requests(), st.lists(st.integers(min_value=0), max_size=4))
def test_http_mutated_requests(data: bytes, cuts: list[int]) -> None:
    transport = feed_http(data, cuts)
    if transport.closed:
        # Closed after an error answer (400 / 413 / 414 / 431) or a close-delimited exchange.
        assert transport.output().startswith(b"HTTP/1.1 ")


@FUZZ
@given(st.binary(max_size=300), st.lists(st.integers(min_value=0), max_size=4))
def test_http_upgrade_then_random_frames(frames: bytes, cuts: list[int]) -> None:
    head = (
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    transport = feed_http(head + frames, [len(head) + c for c in cuts])
    assert transport.output().startswith(b"HTTP/1.1 101 Switching Protocols\r\n")


def feed_http_general(
    data: bytes, cuts: list[int] | tuple[int, ...] = (), app: Callable[[Any], None] = echo_app
) -> FakeTransport:
    """``feed_http`` with every head read by httptools (no compiled scanner)."""
    scanner = serve_connection._scan_head
    serve_connection._scan_head = None  # type: ignore[misc]
    try:
        return feed_http(data, cuts, app)
    finally:
        serve_connection._scan_head = scanner  # type: ignore[misc]


@st.composite
def websocket_openings(draw: st.DrawFn) -> bytes:
    """An upgrade request, often mutated, and frames after it in the same bytes."""
    head = bytearray(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        at = draw(st.integers(min_value=0, max_value=len(head) - 1))
        head[at : at + draw(st.integers(0, 2))] = draw(st.binary(max_size=3))
    frames = bytes((0x81, 0x82)) + b"abcd" + bytes((ord("4") ^ 97, ord("0") ^ 98))
    return bytes(head) + draw(st.sampled_from([b"", frames, frames * 2 + b"\x88\x80abcd"]))


def parking_app(req: Any) -> None:
    """``echo_app``, but a request to ``/park`` is never answered (a parked GET)."""
    if req.path != "/park":
        echo_app(req)


@st.composite
def closing_requests(draw: st.DrawFn) -> bytes:
    """A request that closes the connection (or parks first), and what follows it."""
    path = draw(st.sampled_from([b"/", b"/park"]))
    head = b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    after = draw(
        st.one_of(
            st.sampled_from([b"", b"\r\n", b"\r\n\r\n", b"\n", b"x"]),
            http_requests().map(lambda r: r[0]),
        )
    )
    return head + after


@pytest.mark.skipif(serve_connection._scan_head is None, reason="socketwire._speedups not built")
@FUZZ
@given(
    st.one_of(
        closing_requests(),
        st.lists(http_requests(), min_size=1, max_size=3).map(
            lambda rs: b"".join(r for r, _ in rs)
        ),
        mutated_requests(),
        websocket_openings(),
    ),
    st.lists(st.integers(min_value=0), max_size=4),
)
def test_http_scanned_heads_are_answered_as_httptools_answers_them(
    data: bytes, cuts: list[int]
) -> None:
    # The same bytes, cut the same way, with and without the compiled reading of
    # whole heads: the same answers, byte for byte, and the same close.
    for app in (echo_app, parking_app):
        fast = feed_http(data, cuts, app)
        general = feed_http_general(data, cuts, app)
        assert fast.output() == general.output()
        assert fast.closed == general.closed


# ---------------------------------------------------------------------------
# The client's poll responses (client HttpConnection on a fake transport)
# ---------------------------------------------------------------------------

CLEAN_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
CLIENT_ERRORS = ("invalid HTTP response", "connection closed before the response")


def settle(coro: Any) -> tuple[Any, ...]:
    """Resume a request whose future is done: ("ok", status, headers, body) or ("refused",).

    ``answer_poll`` adds to an "ok" whether the connection is kept for the next poll.
    """
    try:
        coro.send(None)
    except StopIteration as stop:
        response: ClientResponse = stop.value
        return ("ok", response.status, response.headers, response.body)
    except ResponseTooLarge:
        return ("refused",)
    except ConnectionError as exc:
        assert type(exc) is ConnectionError and str(exc).startswith(CLIENT_ERRORS), exc
        return ("refused",)
    raise AssertionError("request() waited again after its answer")


def answer_poll(
    data: bytes, cuts: list[int] | tuple[int, ...], max_body: int, eof: bool
) -> tuple[Any, ...]:
    """``data``, cut at ``cuts``, as the server's answer to one poll; nothing may escape.

    With ``eof`` the server then closes; without, a connection kept for the next
    poll must answer it from a clean slate.
    """
    loop = asyncio.new_event_loop()
    try:
        conn = ClientHttpConnection(loop, "example.com", max_body)
        transport = FakeTransport()
        conn.connection_made(transport)  # type: ignore[arg-type]
        coro = conn.request("GET", "/socket.io/?EIO=4&transport=polling")
        waiter = coro.send(None)
        points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
        for a, b in itertools.pairwise(points):
            if transport.closed:
                break
            conn.data_received(data[a:b])
        if eof or transport.closed:
            conn.connection_lost(None)
        if not waiter.done():
            assert not eof and not transport.closed
            coro.close()
            return ("pending",)
        outcome = settle(coro)
        if outcome[0] == "ok":
            assert len(outcome[3]) <= max_body
            outcome += (conn.reusable,)
            if conn.reusable and not eof:
                coro = conn.request("GET", "/socket.io/?EIO=4&transport=polling&sid=x")
                coro.send(None)
                conn.data_received(CLEAN_ANSWER)
                assert settle(coro) == ("ok", 200, {"content-length": "0"}, b"")
        else:
            assert not conn.reusable
        return outcome
    finally:
        loop.close()


def poll_body(packets: list[Packet]) -> bytes:
    segments = []
    for packet in packets:
        text, attachments = encode(packet)
        segments.append(b"4" + text)
        segments += [eio.encode_polling_binary(a) for a in attachments]
    return eio.encode_payload(segments)


@st.composite
def poll_answers(draw: st.DrawFn) -> tuple[bytes, bytes, list[Packet]]:
    """A valid answer to a poll: (response bytes, body, the packets in the body)."""
    packets = draw(st.lists(sio_packets(), min_size=1, max_size=3))
    records = [records_of(p) for p in packets]
    assume(all(len(r) - 1 <= 10 for r in records))  # the default max_attachments
    # A text packet holding the record separator cannot travel in a polling
    # payload (the encoders of the polling transports never give one).
    assume(not any(eio.SEPARATOR in r[0][1] for r in records))
    body = poll_body(packets)
    lines = [draw(st.sampled_from([b"HTTP/1.1 200 OK", b"HTTP/1.0 200 OK", b"HTTP/1.1 200 "]))]
    lines += [
        b"%s: %s" % (n.encode(), v.strip().encode())
        for n, v in draw(
            st.lists(
                st.tuples(token, header_values).filter(
                    lambda h: h[0] not in ("content-length", "transfer-encoding", "connection")
                ),
                max_size=4,
            )
        )
    ]
    framing = draw(st.sampled_from(["length", "chunked", "close"]))
    if framing == "length":
        lines.append(b"Content-Length: %d" % len(body))
        payload = body
    elif framing == "chunked":
        lines.append(b"Transfer-Encoding: chunked")
        size = draw(st.integers(min_value=1, max_value=64))
        payload = b"".join(
            b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size])
            for i in range(0, len(body), size)
        )
        payload += b"0\r\n\r\n"
    else:  # delimited by the end of the connection
        payload = body
    return b"\r\n".join(lines) + b"\r\n\r\n" + payload, body, packets


@FUZZ
@given(poll_answers(), st.lists(st.integers(min_value=0), max_size=6), st.booleans())
def test_client_poll_valid_answers(
    answer: tuple[bytes, bytes, list[Packet]], cuts: list[int], keep_open: bool
) -> None:
    data, body, packets = answer
    delimited_by_close = b"\r\nContent-Length: " not in data and b"chunked" not in data
    outcome = answer_poll(data, cuts, 100_000_000, eof=not keep_open or delimited_by_close)
    assert outcome[0] == "ok" and outcome[1] == 200 and outcome[3] == body
    triples = eio.decode_payload(outcome[3])
    messages = [(binary, payload) for _, payload, binary in triples]
    assert feed(PacketDecoder(), messages) == [decoded_form(p) for p in packets]


@st.composite
def damaged_poll_answers(draw: st.DrawFn) -> bytes:
    """A valid answer to a poll, then damaged: lengths, chunks, heads, the payload."""
    data = bytearray(draw(poll_answers())[0])
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        at = draw(st.integers(min_value=0, max_value=len(data)))
        kind = draw(st.integers(min_value=0, max_value=5))
        if kind == 0 and data[at:]:
            data[at] ^= 1 << draw(st.integers(min_value=0, max_value=7))
        elif kind == 1:
            del data[at : at + draw(st.integers(min_value=1, max_value=8))]
        elif kind == 2:
            data[at:at] = draw(
                st.sampled_from(
                    [
                        b"\r\n",
                        b"\x1e",
                        b"b!",
                        b"\xff",
                        b"Content-Length: 99\r\n",
                        b"Content-Length: -1\r\n",
                        b"Transfer-Encoding: chunked\r\n",
                        b"ffffffffffffffff\r\n",
                        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n",
                        b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
                        b"[" * 300,
                    ]
                )
            )
        elif kind == 3:
            data[at:at] = b"X-Big: " + b"v" * 70_000 + b"\r\n"  # over MAX_HEAD
        elif kind == 4:
            data = data.replace(b"\r\n", b"\n", 1)
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=6))
    return bytes(data)


@FUZZ
@given(
    damaged_poll_answers() | st.binary(max_size=300),
    st.lists(st.integers(min_value=0), max_size=4),
    st.sampled_from([100_000_000, 0, 16, 1000]),
    st.booleans(),
)
def test_client_poll_damaged_answers(
    data: bytes, cuts: list[int], max_body: int, keep_open: bool
) -> None:
    whole = answer_poll(data, (), max_body, eof=not keep_open)
    # Where the reads are cut changes nothing: the same answer, or a refusal.
    assert answer_poll(data, cuts, max_body, eof=not keep_open) == whole
    if whole[0] != "ok" or whole[1] != 200:
        return
    try:
        triples = eio.decode_payload(whole[3])
    except RemoteProtocolError:
        return
    decoder = PacketDecoder()
    for ptype, payload, binary in triples:
        assert 0 <= ptype <= 6 and type(payload) is bytes
        assert not binary or ptype == 4
        if ptype == 1:
            break  # the transport closes: the rest is not read
        if ptype == 4:
            try:
                packet = decoder.feed_binary(payload) if binary else decoder.feed_text(payload)
            except RemoteProtocolError:
                break  # the manager closes the connection
            if packet is not None:
                check_decoded(packet)


@pytest.mark.parametrize(
    ("data", "cuts", "expected"),
    [
        # A 101 stopped httptools with HttpParserUpgrade, which escaped data_received.
        (
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\n\r\n\x81\x00",
            (),
            101,
        ),
        # A response nobody asked for, in the same read, was parsed into the state
        # cleared for the next poll (answer_poll checks that next poll).
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n42"
            b"HTTP/1.1 200 OK\r\nX: 1\r\nContent-Length: 9\r\n\r\n4ab",
            (),
            200,
        ),
    ],
    ids=["101", "stray response"],
)
def test_client_poll_fuzz_reproducers(data: bytes, cuts: tuple[int, ...], expected: int) -> None:
    outcome = answer_poll(data, cuts, 100_000_000, eof=False)
    assert outcome[:2] == ("ok", expected)


def test_client_poll_head_at_the_limit_split_at_its_blank_line() -> None:
    # The blank line that ends a head of exactly MAX_HEAD bytes, cut between two
    # reads: it was refused as too large, and accepted in one read.
    start = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Pad: "
    data = start + b"p" * (MAX_HEAD - len(start) - 4) + b"\r\n\r\n42"
    for cut in (MAX_HEAD - 3, MAX_HEAD - 2, MAX_HEAD - 1, MAX_HEAD):
        assert answer_poll(data, (cut,), 100_000_000, eof=True)[:2] == ("ok", 200)
    assert answer_poll(b"X" + data, (MAX_HEAD - 1,), 100_000_000, eof=True) == ("refused",)


def test_client_poll_trailers_are_dropped_and_bounded() -> None:
    head = b"HTTP/1.1 200 OK\r\nX-Head: 1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n42\r\n0\r\n"
    small = head + b"X-Trailer: 1\r\n\r\n"
    for cuts in ((), (len(head) + 3,), tuple(range(len(small)))):
        outcome = answer_poll(small, cuts, 1000, eof=False)
        assert outcome == ("ok", 200, {"x-head": "1", "transfer-encoding": "chunked"}, b"42", True)
    big = head + b"".join(b"X-%d: %s\r\n" % (i, b"t" * 1000) for i in range(70)) + b"\r\n"
    assert answer_poll(big, (), 1000, eof=False) == ("refused",)
    assert answer_poll(big, (len(head) + 10, len(head) + 5000), 1000, eof=False) == ("refused",)


@pytest.mark.parametrize("empty", [b"\r\n", b"\n", b"\r\n\r\n"])
def test_client_poll_empty_lines_after_the_answer(empty: bytes) -> None:
    # Ignored in the same read as the answer (httptools skips them) and, since
    # the fix, in a read of their own too: the connection is kept either way.
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n42"
    whole = answer_poll(answer + empty, (), 1000, eof=False)
    assert whole == ("ok", 200, {"content-length": "2"}, b"42", True)
    assert answer_poll(answer + empty, (len(answer),), 1000, eof=False) == whole


# ---------------------------------------------------------------------------
# The whole server
# ---------------------------------------------------------------------------


class ErrorRecorder(logging.Handler):
    """Every ERROR record of socketwire and asyncio (an exception nobody handled)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += f": {record.exc_info[1]!r}"
        with self._guard:
            self.records.append(f"{record.name}: {text}")

    def take(self) -> list[str]:
        with self._guard:
            out, self.records = self.records, []
        return out


def make_server() -> socketwire.Server:
    sio = socketwire.Server(serve_client=False, max_http_buffer_size=1 << 16)

    @sio.on("echo")
    def echo(sock: Any, *args: Any) -> Any:
        return args

    sio.of("/admin")
    return sio


UPGRADE = (
    b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def client_text(payload: bytes) -> bytes:
    return encode_frame(Opcode.TEXT, payload, mask=MASK)


def client_messages(records: list[tuple[bool, bytes]]) -> bytes:
    """Engine.IO messages as masked frames (text made valid UTF-8)."""
    out = []
    for binary, data in records:
        if binary:
            out.append(encode_frame(Opcode.BINARY, data, mask=MASK))
        else:
            out.append(client_text(data.decode("utf-8", "replace").encode()))
    return b"".join(out)


class InProcessServer:
    """A Server behind real HttpConnections on fake transports, on one event loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.errors = ErrorRecorder()
        self.loop_errors: list[str] = []
        self.loop.set_exception_handler(
            lambda loop, ctx: self.loop_errors.append(
                f"{ctx.get('message')} {ctx.get('exception')!r}"
            )
        )
        for name in ("socketwire", "asyncio"):
            logging.getLogger(name).addHandler(self.errors)
        self.server = self.loop.run_until_complete(self._make())

    async def _make(self) -> socketwire.Server:
        return make_server()

    def close(self) -> None:
        self.loop.run_until_complete(self.server.close())
        self.loop.close()
        for name in ("socketwire", "asyncio"):
            logging.getLogger(name).removeHandler(self.errors)

    def problems(self) -> list[str]:
        loop_errors, self.loop_errors = self.loop_errors, []
        return self.errors.take() + loop_errors

    async def _exchange(
        self, conn: HttpConnection, transport: FakeTransport, pieces: list[bytes]
    ) -> list[BaseException]:
        escaped: list[BaseException] = []
        for piece in pieces:
            if transport.closed:
                break
            try:
                conn.data_received(piece)
            except Exception as exc:  # asyncio would call this a fatal error
                escaped.append(exc)
            for _ in range(2):
                await asyncio.sleep(0)
        conn.connection_lost(None)
        await asyncio.sleep(0)
        return escaped

    def connection(self, pieces: list[bytes]) -> tuple[FakeTransport, list[BaseException]]:
        conn = HttpConnection(self.server.handle_request, self.server.engine.max_http_buffer_size)
        transport = FakeTransport()
        conn.connection_made(transport)  # type: ignore[arg-type]
        escaped = self.loop.run_until_complete(self._exchange(conn, transport, pieces))
        return transport, escaped

    def websocket(self, body: bytes) -> tuple[FakeTransport, list[BaseException]]:
        """A WebSocket session: handshake, CONNECT to "/", then ``body``."""
        return self.connection([UPGRADE, client_text(b"40"), body])


@pytest.fixture(scope="module")
def in_process() -> Iterator[InProcessServer]:
    server = InProcessServer()
    yield server
    server.close()


def assert_clean(server: InProcessServer, escaped: list[BaseException]) -> None:
    if escaped:
        raise escaped[0]
    assert server.problems() == []


@FEW
@given(st.binary(max_size=400))
def test_server_in_process_random_frame_bytes(in_process: InProcessServer, data: bytes) -> None:
    transport, escaped = in_process.websocket(data)
    assert transport.output().startswith(b"HTTP/1.1 101 ")
    assert_clean(in_process, escaped)


engine_io_messages = st.lists(
    mutated_sio_records().map(lambda rs: [(b, d if b else b"4" + d) for b, d in rs])
    | st.sampled_from([b"2", b"3", b"5", b"6", b"1", b"2probe", b"3probe", b"7", b""]).map(
        lambda d: [(False, d)]
    )
    | st.lists(st.tuples(st.booleans(), st.binary(max_size=30)), max_size=2),
    min_size=1,
    max_size=3,
).map(lambda groups: [r for g in groups for r in g])


@FEW
@given(engine_io_messages)
def test_server_in_process_fuzzed_messages(
    in_process: InProcessServer, records: list[tuple[bool, bytes]]
) -> None:
    _, escaped = in_process.websocket(client_messages(records))
    assert_clean(in_process, escaped)


@FEW
@given(
    mutated_payloads()
    | st.lists(mutated_sio_records(), min_size=1, max_size=2).map(
        lambda groups: eio.encode_payload(
            [eio.encode_polling_binary(d) if b else b"4" + d for g in groups for b, d in g]
        )
    )
)
def test_server_in_process_fuzzed_polling(in_process: InProcessServer, body: bytes) -> None:
    transport, escaped = in_process.connection(
        [b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n"]
    )
    out = transport.output()
    start = out.index(b'"sid":"') + 7
    sid = out[start : out.index(b'"', start)].decode()
    target = f"/socket.io/?EIO=4&transport=polling&sid={sid}"
    for payload in (b"40", body, b"1"):
        head = f"POST {target} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(payload)}\r\n\r\n"
        _, more = in_process.connection([head.encode() + payload])
        escaped += more
    assert_clean(in_process, escaped)


def test_server_in_process_deeply_nested_packet(in_process: InProcessServer) -> None:
    packet = b"40" + b"[" * NESTED + b"]" * NESTED  # Engine.IO message, Socket.IO CONNECT
    transport, escaped = in_process.websocket(client_text(packet))
    in_process.problems()
    if escaped:
        raise escaped[0]
    assert transport.closed


def test_server_in_process_too_deep_to_send_back_is_refused(in_process: InProcessServer) -> None:
    # Deeper than the encoder writes: refused on arrival (an echo could not answer it).
    event = b'4217["echo",' + b"[" * 300 + b"]" * 300 + b"]"
    transport, escaped = in_process.connection([UPGRADE, client_text(b"40"), client_text(event)])
    in_process.problems()
    if escaped:
        raise escaped[0]
    assert transport.closed


def test_server_in_process_deeply_nested_polling_packet(in_process: InProcessServer) -> None:
    transport, escaped = in_process.connection(
        [b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n"]
    )
    out = transport.output()
    start = out.index(b'"sid":"') + 7
    sid = out[start : out.index(b'"', start)].decode()
    body = b"40" + b"[" * NESTED + b"]" * NESTED
    head = f"POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\n"
    head += f"Content-Length: {len(body)}\r\n\r\n"
    _, more = in_process.connection([head.encode() + body])
    assert_clean(in_process, escaped + more)


# -- a real server on 127.0.0.1 ------------------------------------------------------


class ThreadedServer:
    """A real listening Server on 127.0.0.1 port 0, its loop in a thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.errors = ErrorRecorder()
        self.loop_errors: list[str] = []
        self.loop.set_exception_handler(
            lambda loop, ctx: self.loop_errors.append(
                f"{ctx.get('message')} {ctx.get('exception')!r}"
            )
        )
        for name in ("socketwire", "asyncio"):
            logging.getLogger(name).addHandler(self.errors)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        port = self.server.port
        assert port is not None
        self.port = port

    async def _start(self) -> socketwire.Server:
        sio = make_server()
        await sio.listen(0, "127.0.0.1")
        return sio

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
        for name in ("socketwire", "asyncio"):
            logging.getLogger(name).removeHandler(self.errors)

    def problems(self) -> list[str]:
        # One loop turn first, so that whatever the last bytes caused has run.
        asyncio.run_coroutine_threadsafe(asyncio.sleep(0), self.loop).result(10)
        loop_errors, self.loop_errors = self.loop_errors, []
        return self.errors.take() + loop_errors


def wait_for_message(sock: socket.socket, reader: FrameReader, prefix: bytes) -> bytes:
    while True:
        data = sock.recv(65536)
        assert data, f"closed while waiting for {prefix!r}"
        for _, payload in reader.feed(data):
            if payload.startswith(prefix):
                return payload


def open_session(port: int) -> tuple[socket.socket, FrameReader]:
    """A raw WebSocket connected to "/" (handshake, Engine.IO open, Socket.IO CONNECT)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(UPGRADE)
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, "closed during the handshake"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101 ")
    reader = FrameReader(max_message_size=1 << 22, client_side=True)
    rest = head[head.index(b"\r\n\r\n") + 4 :]
    if not any(p.startswith(b"0{") for _, p in reader.feed(rest)):
        wait_for_message(sock, reader, b"0{")
    sock.sendall(client_text(b"40"))
    wait_for_message(sock, reader, b"40")
    return sock, reader


@pytest.fixture(scope="module")
def tcp_server() -> Iterator[ThreadedServer]:
    server = ThreadedServer()
    yield server
    server.close()


@FEW
@given(
    st.binary(max_size=300)
    | mutated_frame_streams().map(lambda sc: sc[0])
    | engine_io_messages.map(client_messages)
)
def test_real_server_fuzzed_frames_after_handshake(tcp_server: ThreadedServer, body: bytes) -> None:
    sock, _ = open_session(tcp_server.port)
    with sock:
        try:
            sock.sendall(body)
            sock.shutdown(socket.SHUT_WR)
            while sock.recv(65536):  # the server closes once it has read EOF
                pass
        except (ConnectionResetError, BrokenPipeError):
            pass
    assert tcp_server.problems() == []
    # The server still serves: a new client gets its acknowledgement.
    sock, reader = open_session(tcp_server.port)
    with sock:
        sock.sendall(client_text(b'4217["echo",1,"two"]'))
        assert wait_for_message(sock, reader, b"4317") == b'4317[1,"two"]'


# ---------------------------------------------------------------------------
# The Redis adapter's wire format, and RedisAdapter.on_message
# ---------------------------------------------------------------------------

try:
    import orjson

    from socketwire.adapters.redis import RedisAdapter
    from socketwire.core.cluster import redis_format as rf
except ImportError:  # needs the msgpack parser
    rf = None  # type: ignore[assignment]

needs_redis = pytest.mark.skipif(rf is None, reason="msgpack parser not available")

rf_uids = st.sampled_from(["PxeW5f", "AbC-_9", "emitter"]) | st.text(max_size=8)
rf_request_ids = st.sampled_from(["XLEDLJ", "PO2RKK"]) | st.text(max_size=8)
rf_rooms = st.lists(st.text(max_size=8), max_size=4, unique=True)
rf_event_names = st.text(max_size=10).filter(lambda s: s not in RESERVED_EVENTS)


def rf_event_data(binary: bool = True) -> st.SearchStrategy[list[Any]]:
    """``[event, *args]``; with ``binary``, msgpack's own values too (bytes, datetimes)."""
    args = json_values(binary)
    if binary:
        args = args | st.datetimes(timezones=st.just(UTC))
    return st.tuples(rf_event_names, st.lists(args, max_size=3)).map(lambda t: [t[0], *t[1]])


rf_timeouts = st.none() | st.integers(min_value=0, max_value=10**7).map(lambda ms: ms / 1000)


@st.composite
def rf_broadcast_objs(draw: st.DrawFn) -> Any:
    """``[uid, packet, opts]`` as Node writes a broadcast."""
    flags: dict[str, Any] = {}
    if draw(st.booleans()):
        flags["volatile"] = True
    if draw(st.booleans()):
        flags["compress"] = False
    packet: dict[str, Any] = {"type": 2, "data": draw(rf_event_data())}
    if draw(st.integers(0, 9)):
        packet["nsp"] = draw(st.sampled_from(["/", "/", "/admin", "/#"]))
    opts = {"rooms": draw(rf_rooms), "except": draw(rf_rooms), "flags": flags}
    return [draw(rf_uids), packet, opts]


@st.composite
def rf_request_objs(draw: st.DrawFn, kind: int | None = None) -> dict[str, Any]:
    """A request of any type as a Node server (or the emitter) writes it."""
    if kind is None:
        kind = draw(st.integers(min_value=0, max_value=7))
    obj: dict[str, Any] = {}
    if draw(st.integers(0, 9)):
        obj["uid"] = draw(rf_uids)
    if kind in (0, 1, 5, 7) or draw(st.booleans()):
        obj["requestId"] = draw(rf_request_ids)
    obj["type"] = kind
    opts = st.fixed_dictionaries({"rooms": rf_rooms, "except": rf_rooms})
    if kind == 0:
        obj["rooms"] = draw(rf_rooms)
    elif kind in (2, 3):
        if draw(st.booleans()):
            obj["opts"] = draw(opts)
            obj["rooms"] = draw(rf_rooms)
        else:  # the legacy single-socket form
            obj["sid"] = draw(st.text(max_size=20))
            obj["room"] = draw(st.text(max_size=8) | st.integers(-100, 100))
    elif kind == 4:
        if draw(st.booleans()):
            obj["opts"] = draw(opts)
        else:
            obj["sid"] = draw(st.text(max_size=20))
        obj["close"] = draw(st.booleans())
    elif kind == 5:
        obj["opts"] = draw(opts)
    elif kind == 6:
        obj["data"] = draw(rf_event_data(binary=False))
    elif kind == 7:
        obj["packet"] = {"type": 2, "data": draw(rf_event_data()), "nsp": "/"}
        flags: dict[str, Any] = {"volatile": draw(st.booleans())}
        timeout = draw(rf_timeouts)
        if timeout is not None:
            flags["timeout"] = timeout * 1000
        obj["opts"] = draw(opts) | {"flags": flags}
    return obj


socket_entries = st.fixed_dictionaries(
    {"id": st.text(max_size=20)},
    optional={
        "handshake": st.dictionaries(keys, json_values(), max_size=3),
        "rooms": rf_rooms,
        "data": json_values(binary=True),
    },
)


@st.composite
def rf_response_objs(draw: st.DrawFn, request_id: Any = None) -> dict[str, Any]:
    """A response of any kind: fetch, sockets, rooms, server-side emit, count, ack."""
    rid = draw(rf_request_ids) if request_id is None else request_id
    kind = draw(st.sampled_from(["fetch", "sockets", "rooms", "sse", "count", "ack", "bare"]))
    if kind == "fetch":
        return {"requestId": rid, "sockets": draw(st.lists(socket_entries, max_size=3))}
    if kind == "sockets":
        return {"requestId": rid, "sockets": draw(st.lists(st.text(max_size=20), max_size=3))}
    if kind == "rooms":
        return {"requestId": rid, "rooms": draw(rf_rooms)}
    if kind == "sse":
        return {"type": 6, "requestId": rid, "data": draw(json_values(binary=True))}
    if kind == "count":
        return {"type": 8, "requestId": rid, "clientCount": draw(st.integers(0, 2**31))}
    if kind == "ack":
        return {"type": 9, "requestId": rid, "packet": draw(json_values(binary=True))}
    return {"requestId": rid}


def rf_encode(obj: Any) -> bytes:
    """As Node writes it: JSON, or msgpack (Dates as timestamps) for BROADCAST, acks,
    and what JSON cannot carry."""
    assert msgpack is not None
    if isinstance(obj, dict) and obj.get("type") not in (7, 9):
        try:
            return orjson.dumps(obj)
        except TypeError:
            pass
    return msgpack.packb(obj, use_bin_type=True, datetime=True)  # type: ignore[no-any-return]


_RF_WEIRD: list[Any]
_RF_WEIRD = [None, True, 0, -1, 1.5, float("nan"), "", "connect", [], {}, [None], b"\x00"]
_RF_WEIRD += [2**64 - 1, "x" * 40, [[[[[]]]]]]


@st.composite
def mutated_redis_messages(draw: st.DrawFn) -> bytes:
    """A valid broadcast, request or response, then a field or its bytes damaged."""
    assert msgpack is not None
    obj = draw(rf_broadcast_objs() | rf_request_objs() | rf_response_objs())
    kind = draw(st.integers(min_value=0, max_value=7))
    if kind <= 2:  # a field (maybe a nested one) replaced, dropped or added
        parent: Any = obj
        key: Any = draw(st.integers(0, len(obj) - 1)) if isinstance(obj, list) else None
        if isinstance(obj, dict):
            key = draw(st.sampled_from(sorted(obj)))
        child = parent[key]
        if isinstance(child, (dict, list)) and child and draw(st.booleans()):
            parent = child
            key = (
                draw(st.sampled_from(sorted(child)))
                if isinstance(child, dict)
                else draw(st.integers(0, len(child) - 1))
            )
        if kind == 0 or isinstance(parent, list):
            parent[key] = draw(st.sampled_from(_RF_WEIRD) | json_values(binary=True))
        elif kind == 1:
            del parent[key]
        else:
            parent[draw(st.sampled_from(["extra", "local", "id"]))] = draw(json_values())
    # kind 3: msgpack even where Node writes JSON.
    data = msgpack.packb(obj, use_bin_type=True, datetime=True) if kind == 3 else rf_encode(obj)
    buf = bytearray(data)
    if kind == 4 and buf:  # a bit flipped
        buf[draw(st.integers(0, len(buf) - 1))] ^= 1 << draw(st.integers(0, 7))
    elif kind == 5:  # cut short
        del buf[draw(st.integers(0, len(buf))) :]
    elif kind == 6:  # bytes inserted (notepack's undefined among them)
        at = draw(st.integers(0, len(buf)))
        buf[at:at] = draw(st.sampled_from([b"\xd4\x00\x00", b"\xc1", b"{", b"\xd7\x00"]))
    elif kind == 7:  # nested deeper than the decoders take
        buf = bytearray(b"\x91" * draw(st.sampled_from([254, 1000, 1030])) + bytes(buf))
    return bytes(buf)


def decode_any(data: bytes) -> None:
    assert rf is not None
    for decode in (rf.decode_broadcast, rf.decode_request, rf.decode_response):
        with contextlib.suppress(RemoteProtocolError):
            decode(data)


@needs_redis
@FUZZ
@given(st.binary(max_size=200))
def test_redis_decoders_random_bytes(data: bytes) -> None:
    decode_any(data)
    decode_any(b"{" + data)  # JSON from the first byte


@needs_redis
@FUZZ
@given(mutated_redis_messages())
def test_redis_decoders_mutated_messages(data: bytes) -> None:
    decode_any(data)


@needs_redis
@FUZZ
@given(
    rf_uids,
    namespaces,
    rf_event_data(),
    rf_rooms,
    rf_rooms,
    st.booleans(),
    st.booleans(),
)
def test_redis_broadcast_round_trip(
    uid: str,
    nsp: str,
    data: list[Any],
    rooms: list[str],
    except_rooms: list[str],
    volatile: bool,
    compress: bool,
) -> None:
    assert rf is not None
    payload = rf.encode_broadcast(
        uid, nsp, data, rooms, except_rooms, volatile=volatile, compress=compress
    )
    assert rf.decode_broadcast(payload) == rf.BroadcastMessage(
        uid,
        nsp,
        data,
        frozenset(rooms),
        frozenset(except_rooms),
        rf.Flags(volatile=volatile, compress=compress),
    )
    # The channel it goes on names its room when there is exactly one.
    channels = rf.Channels(nsp, "PxeW5f")
    room = channels.room_of(channels.for_rooms(rooms))
    assert room == (rooms[0] if len(rooms) == 1 else "")


@needs_redis
@FUZZ
@given(
    rf_uids,
    rf_request_ids,
    namespaces,
    rf_event_data(),
    rf_rooms,
    rf_rooms,
    st.booleans(),
    st.booleans(),
    rf_timeouts | st.floats(min_value=0, max_value=1e9),
)
def test_redis_broadcast_request_round_trip(
    uid: str,
    request_id: str,
    nsp: str,
    data: list[Any],
    rooms: list[str],
    except_rooms: list[str],
    volatile: bool,
    compress: bool,
    timeout: float | None,
) -> None:
    assert rf is not None
    payload = rf.encode_broadcast_request(
        uid,
        request_id,
        nsp,
        data,
        rooms,
        except_rooms,
        volatile=volatile,
        compress=compress,
        timeout=timeout,
    )
    assert payload[:1] != b"{"
    req = rf.decode_request(payload)
    assert (req.type, req.uid, req.request_id, req.nsp) == (
        rf.RequestType.BROADCAST,
        uid,
        request_id,
        nsp,
    )
    assert (req.data, req.rooms, req.except_rooms) == (
        data,
        frozenset(rooms),
        frozenset(except_rooms),
    )
    assert (req.flags.volatile, req.flags.compress) == (volatile, compress)
    if timeout is None:
        assert req.flags.timeout is None
    else:
        assert req.flags.timeout is not None
        assert math.isclose(req.flags.timeout, min(timeout, 2**31 / 1000), rel_tol=1e-12)


@needs_redis
@FUZZ
@given(st.integers(min_value=0, max_value=6).flatmap(lambda k: rf_request_objs(k)))
def test_redis_json_request_round_trip(obj: dict[str, Any]) -> None:
    assert rf is not None
    kind = rf.RequestType(obj["type"])
    fields = {k: v for k, v in obj.items() if k not in ("uid", "requestId", "type")}
    # A missing uid goes through as null, as a JSON peer may send it.
    uid: Any = obj.get("uid")
    payload = rf.encode_request(uid, kind, obj.get("requestId"), **fields)
    assert payload[:1] == b"{"
    assert orjson.loads(payload) == obj | {"uid": obj.get("uid")}
    req = rf.decode_request(payload)
    assert (req.type, req.uid, req.request_id) == (kind, obj.get("uid"), obj.get("requestId"))
    opts = obj.get("opts", {})
    assert req.rooms == set(opts.get("rooms", obj.get("rooms", []) if kind == 0 else []))
    assert req.except_rooms == set(opts.get("except", []))
    if kind in (rf.RequestType.REMOTE_JOIN, rf.RequestType.REMOTE_LEAVE):
        if "opts" in obj:
            assert req.new_rooms == obj["rooms"] and req.sid is None
        else:
            assert (req.sid, req.room) == (obj["sid"], str(obj["room"]))
    if kind == rf.RequestType.REMOTE_DISCONNECT:
        assert req.close == obj["close"] and req.sid == obj.get("sid")
    if kind == rf.RequestType.SERVER_SIDE_EMIT:
        assert req.data == obj["data"]


@needs_redis
@FUZZ
@given(rf_response_objs())
def test_redis_response_round_trip(obj: dict[str, Any]) -> None:
    assert rf is not None
    kind = obj.get("type")
    if kind == 9:
        payload = rf.encode_broadcast_ack(obj["requestId"], obj["packet"])
    else:
        payload = rf.encode_response(obj)
    # JSON unless the response holds binary.
    assert (payload[:1] == b"{") == (kind != 9 and not contains_bytes(obj))
    resp = rf.decode_response(payload)
    assert (resp.request_id, resp.type) == (obj["requestId"], kind)
    assert resp.sockets == obj.get("sockets")
    assert resp.rooms == obj.get("rooms")
    assert resp.client_count == obj.get("clientCount")
    assert resp.has_answer == (kind in (6, 9))
    assert resp.answer == obj.get("data", obj.get("packet"))
    for entry in obj.get("sockets", []):
        if isinstance(entry, dict):
            s = rf.parse_fetched_socket(entry)
            assert s.id == entry["id"] and s.rooms == set(entry.get("rooms", []))
            assert s.handshake == entry.get("handshake", {}) and s.data == entry.get("data")


class CaptureBus:
    """The adapter's bus without Redis: what it publishes is kept."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes]] = []

    def publish(self, channel: str, payload: bytes) -> None:
        self.published.append((channel, payload))

    def command(self, *args: Any, size: int = 0) -> Any:
        return None  # recovery commands are not exercised here

    async def numsub(self, channel: str) -> int:
        return 2  # this server and one other

    async def subscribe(self, channels: Any, patterns: Any, handler: Any) -> None:
        pass

    async def unsubscribe(self, channels: Any, patterns: Any) -> None:
        pass


class RecordAll(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def take(self) -> list[logging.LogRecord]:
        out, self.records = self.records, []
        return out


PENDING = "PENDNG"  # stands for the id of the request this server is waiting on


class AdapterHarness:
    """A Server (not listening) with a RedisAdapter on "/" over a CaptureBus, one loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.loop_errors: list[str] = []
        self.loop.set_exception_handler(
            lambda loop, ctx: self.loop_errors.append(
                f"{ctx.get('message')} {ctx.get('exception')!r}"
            )
        )
        self.bus = CaptureBus()
        self.log = RecordAll()
        self.logger = logging.getLogger("socketwire")
        self.level = self.logger.level
        self.logger.setLevel(logging.INFO)
        for name in ("socketwire", "asyncio"):
            logging.getLogger(name).addHandler(self.log)
        self.server = self.loop.run_until_complete(self._make())
        adapter = self.server.of("/").adapter
        assert isinstance(adapter, RedisAdapter)
        self.adapter = adapter

    async def _make(self) -> socketwire.Server:
        bus = self.bus
        sio = socketwire.Server(
            serve_client=False,
            adapter=lambda nsp: RedisAdapter(nsp, bus, requests_timeout=30),
        )
        sio.of("/").on_server_side_emit("ping", lambda *args: args[0] if args else None)

        async def aping(*args: Any) -> Any:
            await asyncio.sleep(0)
            return list(args)

        sio.of("/").on_server_side_emit("aping", aping)
        await sio.init_adapters()
        return sio

    async def _shutdown(self) -> None:
        await self.server.close()
        me = asyncio.current_task()
        pending = [t for t in asyncio.all_tasks() if t is not me]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def close(self) -> None:
        self.loop.run_until_complete(self._shutdown())
        self.loop.close()
        for name in ("socketwire", "asyncio"):
            logging.getLogger(name).removeHandler(self.log)
        self.logger.setLevel(self.level)

    def channel(self, which: str) -> str:
        ch = self.adapter.channels
        return {
            "broadcast": ch.broadcast,
            "room": ch.for_rooms(["room1"]),  # no local socket is in it
            "request": ch.request,
            "response": ch.response,
            "specific": ch.specific_response,
            "foreign": "socket.io#/admin#",
        }[which]

    async def _drain(self, keep: Any) -> None:
        me = asyncio.current_task()
        for _ in range(50):  # bounded: only what the messages started, run to its end
            await asyncio.sleep(0)
            if not [t for t in asyncio.all_tasks() if t is not me and t is not keep]:
                return

    async def feed(
        self, which: str, specific: bool, pending: str | None, payloads: list[bytes]
    ) -> tuple[list[BaseException], list[bytes]]:
        """Feed the messages; what escaped and the messages as fed (ids filled in)."""
        adapter = self.adapter
        adapter.publish_on_specific_response_channel = specific
        task: asyncio.Task[Any] | None = None
        if pending is not None:
            asks: dict[str, Callable[[], Awaitable[Any]]] = {
                "fetch": lambda: adapter.fetch_sockets(BroadcastOptions()),
                "rooms": adapter.all_rooms,
                "sse": lambda: adapter.server_side_emit_with_ack(["q"], 30),
            }
            task = asyncio.ensure_future(asks[pending]())
            for _ in range(20):
                if self.bus.published:
                    break
                await asyncio.sleep(0)
            request_id = rf.decode_request(self.bus.published[0][1]).request_id
            assert request_id is not None and len(request_id) == 6
            payloads = [p.replace(PENDING.encode(), request_id.encode()) for p in payloads]
        self.bus.published.clear()
        escaped: list[BaseException] = []
        for payload in payloads:
            try:
                adapter.on_message(self.channel(which), payload)
            except Exception as exc:
                escaped.append(exc)
            await self._drain(task)
        if task is not None:
            if task.done():
                result = task.result()  # no error: the answers were well formed
                assert isinstance(result, (list, set))
            else:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        return escaped, payloads


@pytest.fixture(scope="module")
def redis_adapter() -> Iterator[AdapterHarness]:
    harness = AdapterHarness()
    yield harness
    harness.close()


def rf_payloads(objs: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    return objs.map(rf_encode) | mutated_redis_messages() | st.binary(max_size=60)


@st.composite
def adapter_inputs(draw: st.DrawFn) -> tuple[str, bool, str | None, list[bytes]]:
    which = draw(st.sampled_from(["broadcast", "room", "request", "response", "specific"]))
    which = draw(st.sampled_from([which, which, "foreign"]))
    pending = None
    if which == "request":
        messages = rf_payloads(rf_request_objs())
    elif which in ("response", "specific"):
        pending = draw(st.sampled_from([None, "fetch", "rooms", "sse"]))
        ids = st.just(PENDING) if pending else rf_request_ids
        messages = rf_payloads(ids.flatmap(lambda rid: rf_response_objs(rid)))
    else:
        messages = rf_payloads(rf_broadcast_objs())
    return which, draw(st.booleans()), pending, draw(st.lists(messages, min_size=1, max_size=3))


@needs_redis
@FEW
@given(adapter_inputs())
def test_redis_adapter_on_message(
    redis_adapter: AdapterHarness, case: tuple[str, bool, str | None, list[bytes]]
) -> None:
    assert rf is not None
    which, specific, pending, payloads = case
    harness = redis_adapter
    harness.log.take()
    escaped, payloads = harness.loop.run_until_complete(
        harness.feed(which, specific, pending, payloads)
    )
    if escaped:
        raise escaped[0]
    records = harness.log.take()
    assert [f"{r.name}: {r.getMessage()}" for r in records if r.levelno >= logging.ERROR] == []
    assert harness.loop_errors == []
    ch = harness.adapter.channels
    decoder: Callable[[bytes], Any] | None = {
        ch.broadcast: rf.decode_broadcast,
        ch.request: rf.decode_request,
        ch.response: rf.decode_response,
        ch.specific_response: rf.decode_response,
    }.get(harness.channel(which))
    malformed = 0
    due = []  # SOCKETS, ALL_ROOMS and REMOTE_FETCH requests: always answered
    for payload in payloads if decoder is not None else ():
        assert decoder is not None
        try:
            decoded = decoder(payload)
        except RemoteProtocolError:
            malformed += 1
            continue
        if which == "request" and decoded.type in (0, 1, 5):
            due.append(decoded.request_id)
    invalid = [r for r in records if r.getMessage().startswith("invalid message on ")]
    assert all(r.levelno == logging.INFO for r in invalid)
    assert len(invalid) >= malformed  # every malformed message logged at INFO
    answered = []
    for channel, out in harness.bus.published:
        assert which == "request"  # nothing else makes the adapter publish
        assert channel.startswith(ch.response)
        answered.append(rf.decode_response(out).request_id)
    for rid in due:
        assert rid in answered
    harness.bus.published.clear()
