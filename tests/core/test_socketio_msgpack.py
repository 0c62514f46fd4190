"""Tests of the msgpack parser (socketwire.core.socketio.msgpack).

The byte vectors below were written by the npm package socket.io-msgpack-parser
3.0.2 (notepack.io 2.2.0) with tests/integration/js/msgpack_vectors.js, which
also records whether the npm Decoder accepts them ("ok") or throws ("error: ...").
tests/integration/test_msgpack_parser.py runs that script again and checks this
copy is still what the npm package writes.

These tests are about packets: the msgpack values inside them (undefined, Date,
ArrayBuffer, the reader's limits) are tested with the codec that reads them, in
tests/core/test_notepack.py.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgpack  # type: ignore[import-untyped]
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from socketwire.core import notepack
from socketwire.core.socketio import msgpack as mp
from socketwire.core.socketio.msgpack import MSGPACK_PARSER, MsgpackDecoder
from socketwire.core.socketio.packet import RESERVED_EVENTS, Packet, PacketType
from socketwire.core.socketio.parser import resolve_parser
from socketwire.errors import LocalProtocolError, RemoteProtocolError
from tests.core.msgpack_wire import (
    UNDEFINED,
    Ext,
    Map,
    Raw,
    assert_same,
    date_ext,
    keys,
    outcome,
    values,
    wire,
    wire_leaves,
    wire_values,
)

CONNECT = PacketType.CONNECT
DISCONNECT = PacketType.DISCONNECT
EVENT = PacketType.EVENT
ACK = PacketType.ACK
CONNECT_ERROR = PacketType.CONNECT_ERROR
BINARY_EVENT = PacketType.BINARY_EVENT
BINARY_ACK = PacketType.BINARY_ACK

# name -> (hex written by socket.io-msgpack-parser, verdict of its Decoder)
VECTORS: dict[str, tuple[str, str]] = {
    "connect": ("82a47479706500a36e7370a12f", "ok"),
    "connect-auth-admin": (
        "83a47479706500a46461746181a5746f6b656ea3616263a36e7370a62f61646d696e",
        "ok",
    ),
    "connect-sid": (
        "83a47479706500a46461746181a3736964b46f534f304f70616b4d565f336a6e696c41414141a36e7370a12f",
        "ok",
    ),
    "disconnect": ("82a47479706501a36e7370a12f", "ok"),
    "disconnect-admin": ("82a47479706501a36e7370a62f61646d696e", "ok"),
    "event": ("83a47479706502a46461746191a3666f6fa36e7370a12f", "ok"),
    "event-admin-id": (
        "84a47479706502a46461746196a362617201a374776fc3c0cb3ff8000000000000a36e7370a62f61646d"
        "696ea269640c",
        "ok",
    ),
    "event-binary-nested": (
        "84a47479706502a46461746193a675706c6f616483a46e616d65a5612e62696ea66368756e6b7392c402"
        "0102c400a46d65746181a3726177c5012c000102030405060708090a0b0c0d0e0f101112131415161718"
        "191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142"
        "434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c"
        "6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f90919293949596"
        "9798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0"
        "c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9ea"
        "ebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f1011121314"
        "15161718191a1b1c1d1e1f202122232425262728292a2bc401ffa36e7370a12fa26964cc80",
        "ok",
    ),
    "event-number-name": ("83a47479706502a464617461922aa178a36e7370a12f", "ok"),
    "ack-empty": ("84a47479706503a46461746190a36e7370a12fa2696400", "ok"),
    "ack-admin-binary": (
        "84a47479706503a46461746193a26f6bc402000181a16291c40102a36e7370a62f61646d696ea26964ce"
        "00010000",
        "ok",
    ),
    "connect-error-object": (
        "83a47479706504a46461746182a76d657373616765a26e6fa46461746181a17801a36e7370a12f",
        "ok",
    ),
    "connect-error-string": (
        "83a47479706504a464617461b1496e76616c6964206e616d657370616365a36e7370a52f6e6f7065",
        "ok",
    ),
    "numbers": (
        "84a47479706502a464617461dc0018a16e007fcc80ccffcd0100cdffffce00010000ceffffffffcf0000"
        "000100000000cf001fffffffffffffffe0d0dfd080d1ff7fd18000d2ffff7fffd280000000d3ffffffff"
        "7fffffffd3ffe0000000000001cb3fe0000000000000cbc0934a456d5cfaadcb01a56e1fc2f8f359a36e"
        "7370a12fa26964cf0000000100000000",
        "ok",
    ),
    "strings": (
        "83a47479706502a46461746197a173a0bf61616161616161616161616161616161616161616161616161"
        "616161616161d9206262626262626262626262626262626262626262626262626262626262626262d9ff"
        "636363636363636363636363636363636363636363636363636363636363636363636363636363636363"
        "636363636363636363636363636363636363636363636363636363636363636363636363636363636363"
        "636363636363636363636363636363636363636363636363636363636363636363636363636363636363"
        "636363636363636363636363636363636363636363636363636363636363636363636363636363636363"
        "636363636363636363636363636363636363636363636363636363636363636363636363636363636363"
        "636363636363636363636363636363636363636363636363636363636363636363636363636363636363"
        "636363da0100646464646464646464646464646464646464646464646464646464646464646464646464"
        "646464646464646464646464646464646464646464646464646464646464646464646464646464646464"
        "646464646464646464646464646464646464646464646464646464646464646464646464646464646464"
        "646464646464646464646464646464646464646464646464646464646464646464646464646464646464"
        "646464646464646464646464646464646464646464646464646464646464646464646464646464646464"
        "646464646464646464646464646464646464646464646464646464646464646464646464646464646464"
        "64646464646464646464a9c3a9e282acf09f9880a36e7370a12f",
        "ok",
    ),
    "containers": (
        "83a47479706502a46461746196a1639f000102030405060708090a0b0c0d0edc00100001020304050607"
        "08090a0b0c0d0e0f8fa26b3000a26b3101a26b3202a26b3303a26b3404a26b3505a26b3606a26b3707a2"
        "6b3808a26b3909a36b31300aa36b31310ba36b31320ca36b31330da36b31340ede0010a26b3000a26b31"
        "01a26b3202a26b3303a26b3404a26b3505a26b3606a26b3707a26b3808a26b3909a36b31300aa36b3131"
        "0ba36b31320ca36b31330da36b31340ea36b31350f929080a36e7370a12f",
        "ok",
    ),
    "dates": (
        "83a47479706502a46461746193a164d7000000018bcfe5687bd700ffffffffffffffffa36e7370a12f",
        "ok",
    ),
    "client-connect-undefined": ("83a47479706500a464617461d40000a36e7370a12f", "ok"),
    "client-event-options-id": (
        "85a47479706502a46461746192a2657601a76f7074696f6e7381a8636f6d7072657373c3a2696400a36e"
        "7370a12f",
        "ok",
    ),
    "client-ack": ("84a47479706503a2696407a4646174619181a26f6bc3a36e7370a12f", "ok"),
    "server-ack": ("84a2696407a47479706503a46461746191a172a36e7370a12f", "ok"),
    "server-connect-pid-undefined": (
        "83a47479706500a46461746182a3736964a178a3706964d40000a36e7370a12f",
        "ok",
    ),
    "client-typed-arrays": (
        "83a47479706502a46461746194a362696ec70300010203c7010007c708000000000000000000a36e7370a12f",
        "ok",
    ),
    "undefined-nested": (
        "83a47479706502a46461746194a175d4000082a161d40000a1620191d40000a36e7370a12f",
        "ok",
    ),
    "mixed-ambiguous": (
        "83a47479706502a46461746195a16dd40000c7010000d7000000000000000000c7080000000000000000"
        "00a36e7370a12f",
        "ok",
    ),
    "integral-float": ("83a47479706502a46461746192a16602a36e7370a12f", "ok"),
    "float-type-and-id": (
        "84a474797065cb4000000000000000a46461746191a178a36e7370a12fa26964cb4008000000000000",
        "ok",
    ),
    "any-nsp-string": ("82a47479706500a36e7370a561646d696e", "ok"),
    "negative-id": ("84a47479706502a46461746191a178a36e7370a12fa26964fb", "ok"),
    "ack-without-id": ("83a47479706503a46461746190a36e7370a12f", "ok"),
    "bad-type-5": ("83a47479706505a46461746191a178a36e7370a12f", "error: invalid packet type"),
    "bad-type-negative": (
        "83a474797065ffa46461746191a178a36e7370a12f",
        "error: invalid packet type",
    ),
    "bad-type-string": (
        "83a474797065a132a46461746191a178a36e7370a12f",
        "error: invalid packet type",
    ),
    "bad-type-float": (
        "83a474797065cb4004000000000000a46461746191a178a36e7370a12f",
        "error: invalid packet type",
    ),
    "bad-type-missing": ("82a46461746191a178a36e7370a12f", "error: invalid packet type"),
    "bad-type-undefined": (
        "83a474797065d40000a46461746191a178a36e7370a12f",
        "error: invalid packet type",
    ),
    "bad-type-null": (
        "83a474797065c0a46461746191a178a36e7370a12f",
        "error: invalid packet type",
    ),
    "bad-nsp-missing": ("82a47479706502a46461746191a178", "error: invalid namespace"),
    "bad-nsp-number": ("83a47479706502a46461746191a178a36e737001", "error: invalid namespace"),
    "bad-nsp-null": ("83a47479706502a46461746191a178a36e7370c0", "error: invalid namespace"),
    "bad-nsp-buffer": (
        "83a47479706502a46461746191a178a36e7370c4012f",
        "error: invalid namespace",
    ),
    "bad-id-string": (
        "84a47479706502a46461746191a178a36e7370a12fa26964a131",
        "error: invalid packet id",
    ),
    "bad-id-float": (
        "84a47479706502a46461746191a178a36e7370a12fa26964cb3ff8000000000000",
        "error: invalid packet id",
    ),
    "bad-id-null": (
        "84a47479706502a46461746191a178a36e7370a12fa26964c0",
        "error: invalid packet id",
    ),
    "bad-id-date": (
        "84a47479706502a46461746191a178a36e7370a12fa26964d7000000000000000000",
        "error: invalid packet id",
    ),
    "bad-connect-array": ("83a47479706500a4646174619101a36e7370a12f", "error: invalid payload"),
    "bad-connect-null": ("83a47479706500a464617461c0a36e7370a12f", "error: invalid payload"),
    "bad-connect-string": ("83a47479706500a464617461a178a36e7370a12f", "error: invalid payload"),
    "bad-connect-buffer": (
        "83a47479706500a464617461c40101a36e7370a12f",
        "error: invalid payload",
    ),
    "bad-disconnect-data": ("83a47479706501a46461746180a36e7370a12f", "error: invalid payload"),
    "bad-disconnect-null": ("83a47479706501a464617461c0a36e7370a12f", "error: invalid payload"),
    "bad-connect-error-missing": ("82a47479706504a36e7370a12f", "error: invalid payload"),
    "bad-connect-error-number": (
        "83a47479706504a46461746101a36e7370a12f",
        "error: invalid payload",
    ),
    "bad-connect-error-array": (
        "83a47479706504a46461746191a178a36e7370a12f",
        "error: invalid payload",
    ),
    "bad-event-missing": ("82a47479706502a36e7370a12f", "error: invalid payload"),
    "bad-event-object": (
        "83a47479706502a46461746181a130a178a36e7370a12f",
        "error: invalid payload",
    ),
    "bad-event-string": ("83a47479706502a464617461a178a36e7370a12f", "error: invalid payload"),
    "bad-ack-missing": ("83a47479706503a36e7370a12fa2696401", "error: invalid payload"),
    "bad-ack-object": (
        "84a47479706503a46461746180a36e7370a12fa2696401",
        "error: invalid payload",
    ),
    "bad-ack-null": ("84a47479706503a464617461c0a36e7370a12fa2696401", "error: invalid payload"),
    "bad-event-empty": ("83a47479706502a46461746190a36e7370a12f", "ok"),
    "bad-event-name-reserved": ("83a47479706502a46461746191a7636f6e6e656374a36e7370a12f", "ok"),
    "bad-event-name-object": ("83a47479706502a4646174619180a36e7370a12f", "ok"),
    "bad-event-name-bool": ("83a47479706502a46461746191c3a36e7370a12f", "ok"),
    "bad-event-name-null": ("83a47479706502a46461746191c0a36e7370a12f", "ok"),
    "bad-unknown-key": ("84a47479706502a46461746191a178a36e7370a12fa5657874726101", "ok"),
    "bad-not-map-array": ("930291a178a12f", "error: invalid packet type"),
    "bad-not-map-int": ("02", "error: invalid packet type"),
    "bad-not-map-string": ("a6325b2278225d", "error: invalid packet type"),
    "bad-not-map-null": ("c0", "error: Cannot read properties of null (reading 'type')"),
}


def vector(name: str) -> bytes:
    return bytes.fromhex(VECTORS[name][0])


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
BYTES300 = bytes(i % 256 for i in range(300))


def keyed(n: int) -> dict[str, int]:
    return {f"k{i}": i for i in range(n)}


# Vectors our encoder writes byte for byte, and decodes back to the same packet.
ROUND_TRIP: dict[str, Packet] = {
    "connect": Packet(CONNECT),
    "connect-auth-admin": Packet(CONNECT, "/admin", {"token": "abc"}),
    "connect-sid": Packet(CONNECT, "/", {"sid": "oSO0OpakMV_3jnilAAAA"}),
    "disconnect": Packet(DISCONNECT),
    "disconnect-admin": Packet(DISCONNECT, "/admin"),
    "event": Packet(EVENT, "/", ["foo"]),
    "event-admin-id": Packet(EVENT, "/admin", ["bar", 1, "two", True, None, 1.5], 12),
    "event-binary-nested": Packet(
        EVENT,
        "/",
        [
            "upload",
            {"name": "a.bin", "chunks": [b"\x01\x02", b""], "meta": {"raw": BYTES300}},
            b"\xff",
        ],
        128,
    ),
    "event-number-name": Packet(EVENT, "/", [42, "x"]),
    "ack-empty": Packet(ACK, "/", [], 0),
    "ack-admin-binary": Packet(ACK, "/admin", ["ok", b"\x00\x01", {"b": [b"\x02"]}], 65536),
    "connect-error-object": Packet(CONNECT_ERROR, "/", {"message": "no", "data": {"x": 1}}),
    "connect-error-string": Packet(CONNECT_ERROR, "/nope", "Invalid namespace"),
    "numbers": Packet(
        EVENT,
        "/",
        [
            "n",
            *(0, 127, 128, 255, 256, 65535, 65536, 4294967295, 4294967296, 9007199254740991),
            *(-1, -32, -33, -128, -129, -32768, -32769, -2147483648, -2147483649),
            -9007199254740991,
            *(0.5, -1234.5678, 1e-300),
        ],
        4294967296,
    ),
    "strings": Packet(
        EVENT, "/", ["s", "", "a" * 31, "b" * 32, "c" * 255, "d" * 256, "\u00e9\u20ac\U0001f600"]
    ),
    "containers": Packet(
        EVENT, "/", ["c", list(range(15)), list(range(16)), keyed(15), keyed(16), [[], {}]]
    ),
    "dates": Packet(
        EVENT,
        "/",
        [
            "d",
            datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC),
            datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=UTC),
        ],
    ),
}

# Valid packets as the npm peers write them (key orders, undefined, typed arrays...).
DECODE_ONLY: dict[str, Packet] = {
    # the client's CONNECT without auth: "data": undefined, i.e. no payload
    "client-connect-undefined": Packet(CONNECT),
    # the client's events: keys type, data, options, id, nsp
    "client-event-options-id": Packet(EVENT, "/", ["ev", 1], 0),
    "client-ack": Packet(ACK, "/", [{"ok": True}], 7),
    "server-ack": Packet(ACK, "/", ["r"], 7),
    # undefined is dropped from maps, None in arrays (as JSON does)
    "server-connect-pid-undefined": Packet(CONNECT, "/", {"sid": "x"}),
    "undefined-nested": Packet(EVENT, "/", ["u", None, {"b": 1}, [None]]),
    # Node's Uint8Array / ArrayBuffer: ext type 0, read as bytes
    "client-typed-arrays": Packet(EVENT, "/", ["bin", b"\x01\x02\x03", b"\x07", bytes(8)]),
    # undefined (d4 00 00) and a 1-byte ArrayBuffer (c7 01 00 ..) in one message, and
    # a Date (d7 00 ..) with an 8-byte ArrayBuffer (c7 08 00 ..): the exact decoder
    "mixed-ambiguous": Packet(EVENT, "/", ["m", None, b"\x00", EPOCH, bytes(8)]),
    "integral-float": Packet(EVENT, "/", ["f", 2]),
    # type and id as float64 2.0 / 3.0: Number.isInteger accepts them
    "float-type-and-id": Packet(EVENT, "/", ["x"], 3),
    "any-nsp-string": Packet(CONNECT, "admin"),
    "negative-id": Packet(EVENT, "/", ["x"], -5),
    "ack-without-id": Packet(ACK, "/", [], None),
}

# Refused by socket.io's payload rules (and by this decoder), not by the npm Decoder.
SOCKETIO_RULES = {
    "bad-event-empty",
    "bad-event-name-reserved",
    "bad-event-name-object",
    "bad-event-name-bool",
    "bad-event-name-null",
    "bad-unknown-key",
}
REJECTED = sorted(name for name in VECTORS if name.startswith("bad-"))


def assert_packet(actual: Packet, expected: Packet) -> None:
    assert type(actual) is Packet
    assert type(actual.type) is PacketType
    assert actual.type == expected.type
    assert_same(actual.nsp, expected.nsp)
    assert_same(actual.data, expected.data)
    assert_same(actual.id, expected.id)


def decode(data: bytes) -> Packet:
    packet = MsgpackDecoder().feed_binary(data)
    assert packet is not None
    return packet


def decode_exact(data: bytes) -> Packet:
    """The pure Python decoder, which the C path falls back to."""
    return mp._to_packet(notepack._unpack_exact(data))


def packet_map(ptype: Any = 2, data: Any = ("x",), nsp: Any = "/", **more: Any) -> bytes:
    pairs: list[tuple[Any, Any]] = [("type", ptype)]
    if data is not None:
        pairs.append(("data", list(data) if isinstance(data, tuple) else data))
    pairs.append(("nsp", nsp))
    pairs.extend(more.items())
    return wire(Map(*pairs))


# -- the npm vectors ---------------------------------------------------------------------


def test_every_vector_has_an_expectation() -> None:
    for name in VECTORS:
        assert (name in ROUND_TRIP) + (name in DECODE_ONLY) + name.startswith("bad-") == 1, name


@pytest.mark.parametrize("name", sorted(ROUND_TRIP))
def test_encode_writes_the_npm_bytes(name: str) -> None:
    assert MSGPACK_PARSER.encode(ROUND_TRIP[name]) == (b"", [vector(name)])


@pytest.mark.parametrize("name", sorted(n for n, p in ROUND_TRIP.items() if p.type in (EVENT, ACK)))
def test_encode_event_and_ack_write_the_npm_bytes(name: str) -> None:
    packet = ROUND_TRIP[name]
    if packet.type == EVENT:
        got = MSGPACK_PARSER.encode_event(packet.nsp, packet.data, packet.id)
    else:
        assert packet.id is not None
        got = MSGPACK_PARSER.encode_ack(packet.nsp, packet.data, packet.id)
    assert got == (b"", [vector(name)])


@pytest.mark.parametrize("name", sorted(ROUND_TRIP) + sorted(DECODE_ONLY))
def test_decode_reads_the_npm_bytes(name: str) -> None:
    expected = ROUND_TRIP.get(name) or DECODE_ONLY[name]
    assert VECTORS[name][1] == "ok"
    assert_packet(decode(vector(name)), expected)
    # the pure Python decoder agrees
    assert_packet(decode_exact(vector(name)), expected)


@pytest.mark.parametrize("name", REJECTED)
def test_decode_refuses_what_npm_or_socketio_refuses(name: str) -> None:
    verdict = VECTORS[name][1]
    if name in SOCKETIO_RULES:
        assert verdict == "ok"
    else:
        assert verdict.startswith("error")
    with pytest.raises(RemoteProtocolError):
        decode(vector(name))
    with pytest.raises(RemoteProtocolError):
        decode_exact(vector(name))


def test_format_facts() -> None:
    # One binary message, no text; keys type, data, nsp, id; absent data / id left out.
    text, binaries = MSGPACK_PARSER.encode_event("/", ["a"], 1)
    assert text == b"" and len(binaries) == 1
    assert list(msgpack.unpackb(binaries[0])) == ["type", "data", "nsp", "id"]
    (disconnect,) = MSGPACK_PARSER.encode(Packet(DISCONNECT, "/x"))[1]
    assert list(msgpack.unpackb(disconnect)) == ["type", "nsp"]
    # binary stays inline as bin, and the type stays EVENT / ACK
    (event,) = MSGPACK_PARSER.encode_event("/", ["a", b"\x01"])[1]
    assert event == bytes.fromhex("83a47479706502a46461746192a161c40101a36e7370a12f")
    (ack,) = MSGPACK_PARSER.encode(Packet(BINARY_ACK, "/", [b"\x01"], 2))[1]
    assert msgpack.unpackb(ack) == {"type": 3, "data": [b"\x01"], "nsp": "/", "id": 2}
    (bevent,) = MSGPACK_PARSER.encode(Packet(BINARY_EVENT, "/", ["a", b"\x01"]))[1]
    assert bevent == event


# -- decoding: what npm peers send --------------------------------------------------------


def test_undefined_keys_are_absent() -> None:
    # A top-level key holding undefined is absent: the client's CONNECT without auth.
    assert_packet(decode(packet_map(0, UNDEFINED)), Packet(CONNECT))
    assert_packet(decode(packet_map(1, UNDEFINED)), Packet(DISCONNECT))
    assert_packet(decode(packet_map(id=UNDEFINED)), Packet(EVENT, "/", ["x"]))
    with pytest.raises(RemoteProtocolError, match="packet type"):
        decode(packet_map(UNDEFINED))
    with pytest.raises(RemoteProtocolError, match="namespace"):
        decode(packet_map(nsp=UNDEFINED))
    with pytest.raises(RemoteProtocolError, match="EVENT payload"):
        decode(packet_map(data=UNDEFINED))
    with pytest.raises(RemoteProtocolError, match="CONNECT_ERROR payload"):
        decode(packet_map(4, UNDEFINED))
    # the whole message undefined: not a map
    with pytest.raises(RemoteProtocolError, match="not a map"):
        decode(b"\xd4\x00\x00")


def test_payload_values_are_read_as_notepack_does() -> None:
    # The codec's rules reach the payload: Dates, ArrayBuffers, undefined, other
    # exts, timestamps (tests/core/test_notepack.py has the rules themselves).
    moment = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    timestamp = Raw(msgpack.packb(msgpack.Timestamp.from_datetime(moment)))
    data = packet_map(
        data=["x", date_ext(5), Ext(0, b"\x01", "8"), UNDEFINED, Ext(3, b"k"), timestamp]
    )
    expected = ["x", EPOCH + timedelta(milliseconds=5), b"\x01", None, [3, b"k"], moment]
    assert_packet(decode(data), Packet(EVENT, "/", expected))
    assert_packet(decode_exact(data), Packet(EVENT, "/", expected))


def test_options_key_is_accepted_with_any_value() -> None:
    for options in ({"compress": False}, None, [1], "x"):
        data = packet_map(options=options, id=3)
        assert_packet(decode(data), Packet(EVENT, "/", ["x"], 3))


def test_key_order_does_not_matter() -> None:
    data = wire(Map(("nsp", "/a"), ("id", 1), ("data", ["x", 2]), ("type", 2)))
    assert_packet(decode(data), Packet(EVENT, "/a", ["x", 2], 1))


def test_event_names() -> None:
    for name in ("message", "", "disconnected", 0, -1, 1.5, 2**64 - 1):
        assert_packet(decode(packet_map(data=[name, 1])), Packet(EVENT, "/", [name, 1]))
    for name in sorted(RESERVED_EVENTS):
        with pytest.raises(RemoteProtocolError, match="EVENT payload"):
            decode(packet_map(data=[name]))
    bad: Any
    for bad in (None, True, False, [], {}, b"x"):
        with pytest.raises(RemoteProtocolError, match="EVENT payload"):
            decode(packet_map(data=[bad, 1]))


def test_ids() -> None:
    for ack_id in (0, 1, 2**53, 2**64 - 1, -(2**63), -1):
        assert decode(packet_map(id=ack_id)).id == ack_id
    assert decode(packet_map(id=1e3)).id == 1000
    bad: Any
    for bad in ("1", None, True, 1.5, math.inf, math.nan, [1], {}, b"\x01"):
        with pytest.raises(RemoteProtocolError, match="packet id"):
            decode(packet_map(id=bad))
    # Number.isInteger(1e300) holds, but no ack could answer it: refused here.
    with pytest.raises(RemoteProtocolError, match="64-bit"):
        decode(packet_map(id=1e300))


def test_types() -> None:
    for ptype, data, expected in (
        (0, None, Packet(CONNECT)),
        (0, {"a": 1}, Packet(CONNECT, "/", {"a": 1})),
        (1, None, Packet(DISCONNECT)),
        (2, ["e"], Packet(EVENT, "/", ["e"])),
        (3, [], Packet(ACK, "/", [])),
        (4, "why", Packet(CONNECT_ERROR, "/", "why")),
        (4.0, {}, Packet(CONNECT_ERROR, "/", {})),
    ):
        assert_packet(decode(packet_map(ptype, data)), expected)
    bad: Any
    for bad in (5, 6, 7, -1, 2**64 - 1, 0.5, "0", None, True, False, [0], {}):
        with pytest.raises(RemoteProtocolError, match="packet type"):
            decode(packet_map(bad, ["x"]))


def test_feed_text_is_refused() -> None:
    decoder = MSGPACK_PARSER.decoder()
    for text in (b"", b'2["x"]', b"0"):
        with pytest.raises(RemoteProtocolError, match="text message"):
            decoder.feed_text(text)
    decoder.reset()  # stateless: nothing to drop
    assert decoder.feed_binary(vector("event")) == Packet(EVENT, "/", ["foo"])


def test_feed_binary_takes_any_buffer() -> None:
    decoder = MsgpackDecoder()
    raw = vector("ack-admin-binary")
    expected = ROUND_TRIP["ack-admin-binary"]
    for data in (bytearray(raw), memoryview(raw), memoryview(b"xx" + raw)[2:]):
        assert_packet(decoder.feed_binary(data), expected)  # type: ignore[arg-type]


def test_parser_object() -> None:
    assert resolve_parser("msgpack") is MSGPACK_PARSER
    first = MSGPACK_PARSER.decoder()
    assert isinstance(first, MsgpackDecoder)
    assert MSGPACK_PARSER.decoder() is not first


# -- decoding: malformed msgpack -----------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "truncated|incomplete"),
        (b"\xc1", "invalid msgpack"),
        (b"\x83\xa4type\x02", "truncated|incomplete"),
        (vector("event") + b"\x00", "trailing"),
        (vector("event") + vector("event"), "trailing"),
        (b"\xc0", "not a map"),
        (b"\x90", "not a map"),
        (b"\x80", "packet type"),
        (b"\xa1\xff", "UTF-8"),
        (wire(Map(("type", 2), ("data", ["x"]), ("nsp", "/"), (1, 1))), "key"),
        (wire(Map(("type", 2), ("data", ["x", Map((b"k", 1))]), ("nsp", "/"))), "key"),
    ],
)
def test_malformed_msgpack(data: bytes, match: str) -> None:
    # The codec's refusals come out of the decoder as they are.
    with pytest.raises(RemoteProtocolError, match=match):
        decode(data)
    with pytest.raises(RemoteProtocolError, match=match):
        decode_exact(data)


def test_every_truncation_is_refused() -> None:
    for name in ("event-binary-nested", "numbers", "dates", "mixed-ambiguous", "containers"):
        raw = vector(name)
        for end in range(len(raw)):
            with pytest.raises(RemoteProtocolError):
                decode(raw[:end])


def test_unknown_keys_are_refused() -> None:
    for key in ("extra", "Type", "ID", "attachments", ""):
        with pytest.raises(RemoteProtocolError, match="unknown key"):
            decode(packet_map(**{key: 1}))


# -- encoding ------------------------------------------------------------------------------


def test_encode_accepts() -> None:
    data: Any = ("e", bytearray(b"\x01"), (1, 2), 2**64 - 1)
    (raw,) = MSGPACK_PARSER.encode_event("/", data)[1]
    assert_packet(decode(raw), Packet(EVENT, "/", ["e", b"\x01", [1, 2], 2**64 - 1]))
    assert decode(MSGPACK_PARSER.encode_event("/", [7, "x"])[1][0]).data == [7, "x"]
    empty: Any = ()
    assert decode(MSGPACK_PARSER.encode_ack("/", empty, 1)[1][0]) == Packet(ACK, "/", [], 1)
    moment = datetime(2020, 1, 2, 3, 4, 5, 678999, tzinfo=timezone(timedelta(hours=2)))
    got = decode(MSGPACK_PARSER.encode_event("/", ["e", {"at": [moment]}])[1][0]).data
    assert got == ["e", {"at": [moment.replace(microsecond=678000)]}]
    # namespaces are any str, even without "/" (a CONNECT_ERROR may answer such a CONNECT)
    (raw,) = MSGPACK_PARSER.encode(Packet(CONNECT_ERROR, "admin,x", {"message": "Invalid"}))[1]
    assert decode(raw).nsp == "admin,x"
    # ack ids of every msgpack integer width
    for ack_id in (0, 127, 128, 65536, 2**32, 2**64 - 1, -1, -(2**63)):
        assert decode(MSGPACK_PARSER.encode_event("/", ["e"], ack_id)[1][0]).id == ack_id


def test_encode_many_namespaces() -> None:
    # The cache of namespace entries is bounded; results stay right past its size.
    for i in range(2100):
        nsp = f"/n{i}"
        assert decode(MSGPACK_PARSER.encode_event(nsp, ["e"])[1][0]).nsp == nsp
    assert len(mp._NSP_ENTRIES) <= mp._NSP_ENTRIES_MAX
    assert decode(MSGPACK_PARSER.encode_event("/", ["e"])[1][0]).nsp == "/"


@pytest.mark.parametrize(
    "value",
    [2**64, {1: "x"}, {1, 2}, object(), "\ud800", datetime(2020, 1, 1)],
    ids=["int-too-big", "int-key", "set", "object", "surrogate", "naive-datetime"],
)
def test_encode_refuses_bad_data(value: Any) -> None:
    # The codec's refusals (tests/core/test_notepack.py) come out of every encoder.
    with pytest.raises(LocalProtocolError):
        MSGPACK_PARSER.encode_event("/", ["e", value])
    with pytest.raises(LocalProtocolError):
        MSGPACK_PARSER.encode_event("/", ["e", [value]], 3)
    with pytest.raises(LocalProtocolError):
        MSGPACK_PARSER.encode_ack("/", [{"k": value}], 1)
    with pytest.raises(LocalProtocolError):
        MSGPACK_PARSER.encode(Packet(CONNECT, "/", {"k": value}))


@pytest.mark.parametrize(
    "packet",
    [
        Packet(7),  # type: ignore[arg-type]
        Packet(-1),  # type: ignore[arg-type]
        Packet("2"),  # type: ignore[arg-type]
        Packet(EVENT, "/", None),
        Packet(EVENT, "/", []),
        Packet(EVENT, "/", "e"),
        Packet(EVENT, "/", ["connect"]),
        Packet(EVENT, "/", [None]),
        Packet(EVENT, "/", [True]),
        Packet(BINARY_EVENT, "/", []),
        Packet(ACK, "/", None, 1),
        Packet(ACK, "/", {}, 1),
        Packet(ACK, "/", []),
        Packet(BINARY_ACK, "/", [b"x"]),
        Packet(CONNECT, "/", []),
        Packet(CONNECT, "/", "x"),
        Packet(DISCONNECT, "/", {}),
        Packet(CONNECT_ERROR, "/", None),
        Packet(CONNECT_ERROR, "/", 1),
        Packet(EVENT, None, ["e"]),  # type: ignore[arg-type]
        Packet(EVENT, b"/", ["e"]),  # type: ignore[arg-type]
        Packet(EVENT, "/\ud800", ["e"]),
        Packet(EVENT, "/", ["e"], True),
        Packet(EVENT, "/", ["e"], "1"),  # type: ignore[arg-type]
        Packet(EVENT, "/", ["e"], 1.0),  # type: ignore[arg-type]
        Packet(EVENT, "/", ["e"], 2**64),
        Packet(EVENT, "/", ["e"], -(2**63) - 1),
    ],
)
def test_encode_refuses_bad_packets(packet: Packet) -> None:
    with pytest.raises(LocalProtocolError):
        MSGPACK_PARSER.encode(packet)
    kind = packet.type
    if kind == EVENT and packet.data is not None:
        with pytest.raises(LocalProtocolError):
            MSGPACK_PARSER.encode_event(packet.nsp, packet.data, packet.id)
    if kind == ACK and packet.id is not None:
        with pytest.raises(LocalProtocolError):
            MSGPACK_PARSER.encode_ack(packet.nsp, packet.data, packet.id)


def test_encode_ack_needs_an_id() -> None:
    with pytest.raises(LocalProtocolError):
        MSGPACK_PARSER.encode_ack("/", [], None)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        MSGPACK_PARSER.encode_ack("/", "x", 1)  # type: ignore[arg-type]


# -- properties ----------------------------------------------------------------------------

event_names = (
    st.text(max_size=20).filter(lambda s: s not in RESERVED_EVENTS)
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
)
namespaces = st.sampled_from(["/", "/admin", "/a/b"]) | st.text(max_size=12)
ids = st.integers(min_value=-(2**63), max_value=2**64 - 1)


@st.composite
def packets(draw: st.DrawFn) -> Packet:
    kind = draw(st.integers(min_value=0, max_value=4))
    nsp = draw(namespaces)
    ack_id = draw(st.none() | ids)
    data: Any
    if kind == 0:
        data = draw(st.none() | st.dictionaries(keys, values, max_size=4))
    elif kind == 1:
        data = None
    elif kind == 2:
        data = [draw(event_names), *draw(st.lists(values, max_size=4))]
    elif kind == 3:
        data = draw(st.lists(values, max_size=4))
        ack_id = draw(ids)
    else:
        data = draw(st.text(max_size=20) | st.dictionaries(keys, values, max_size=4))
    return Packet(PacketType(kind), nsp, data, ack_id)


def has_datetime(value: Any) -> bool:
    if isinstance(value, datetime):
        return True
    if isinstance(value, list):
        return any(has_datetime(v) for v in value)
    if isinstance(value, dict):
        return any(has_datetime(v) for v in value.values())
    return False


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(packets())
def test_round_trip(packet: Packet) -> None:
    text, binaries = MSGPACK_PARSER.encode(packet)
    assert text == b"" and len(binaries) == 1
    assert_packet(decode(binaries[0]), packet)
    assert_packet(decode_exact(binaries[0]), packet)
    if not has_datetime(packet.data):
        # the same map as msgpack itself writes, keys in the order type, data, nsp, id
        expected: dict[str, Any] = {"type": int(packet.type)}
        if packet.data is not None:
            expected["data"] = packet.data
        expected["nsp"] = packet.nsp
        if packet.id is not None:
            expected["id"] = packet.id
        assert binaries[0] == msgpack.packb(expected, use_bin_type=True)


@settings(max_examples=300)
@given(namespaces, event_names, st.lists(values, max_size=4), st.none() | ids)
def test_encode_event_is_encode(nsp: str, name: Any, args: list[Any], ack_id: int | None) -> None:
    data = [name, *args]
    assert MSGPACK_PARSER.encode_event(nsp, data, ack_id) == MSGPACK_PARSER.encode(
        Packet(EVENT, nsp, data, ack_id)
    )


@settings(max_examples=300)
@given(namespaces, st.lists(values, max_size=4), ids)
def test_encode_ack_is_encode(nsp: str, data: list[Any], ack_id: int) -> None:
    assert MSGPACK_PARSER.encode_ack(nsp, data, ack_id) == MSGPACK_PARSER.encode(
        Packet(ACK, nsp, data, ack_id)
    )


@st.composite
def wire_packets(draw: st.DrawFn) -> bytes:
    pairs: list[tuple[Any, Any]] = [
        ("type", draw(st.sampled_from([0, 2, 2, 3, 4]) | wire_leaves)),
        ("data", draw(wire_values | st.lists(wire_values, max_size=3).map(lambda a: ["e", *a]))),
        ("nsp", draw(st.just("/") | wire_leaves)),
    ]
    if draw(st.booleans()):
        pairs.append(("id", draw(ids | wire_leaves)))
    return wire(Map(*draw(st.permutations(pairs))))


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(wire_packets())
def test_c_path_agrees_with_the_exact_decoder(data: bytes) -> None:
    got = outcome(decode, data)
    exact = outcome(decode_exact, data)
    if isinstance(exact, str):
        assert got == exact
    else:
        assert_packet(got, exact)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(sorted(VECTORS)),
    st.lists(
        st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=255)), max_size=4
    ),
    st.integers(min_value=0),
)
def test_mutated_vectors(name: str, changes: list[tuple[int, int]], cut: int) -> None:
    raw = bytearray(vector(name))
    for where, byte in changes:
        raw[where % len(raw)] = byte
    data = bytes(raw[: len(raw) - cut % 3])
    got = outcome(decode, data)
    exact = outcome(decode_exact, data)
    if isinstance(exact, str):
        assert got == exact
    else:
        assert_packet(got, exact)


@settings(max_examples=300)
@given(st.binary(max_size=64))
def test_random_bytes(data: bytes) -> None:
    assume(data)
    got = outcome(decode, data)
    exact = outcome(decode_exact, data)
    if isinstance(exact, str):
        assert got == exact
    else:
        assert_packet(got, exact)
