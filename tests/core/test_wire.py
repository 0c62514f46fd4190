"""The one-step reading of Socket.IO packets and framing of messages (socketwire.core.wire).

``scan_events`` (a server's reads) and ``scan_packets`` (a client's) may only
ever accept what the general path (the WebSocket protocol, the Engine.IO packet,
the Socket.IO decoder) reads as the same packets; anything else must give None.
Both versions of each (the compiled one when it was built, and the pure-Python
one) are checked against that, and against each other, on hand-picked reads and
on generated ones. ``ack_frame`` and ``message_frame`` are checked against the
general encoder and framing.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import sys
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socketwire.core import wire
from socketwire.core.engineio.message import frame_text_message
from socketwire.core.engineio.packet import EnginePacketType, parse_text_packet
from socketwire.core.socketio.packet import (
    MAX_DEPTH,
    RESERVED_EVENTS,
    PacketDecoder,
    PacketType,
    encode_ack,
)
from socketwire.core.websocket.frames import Opcode, encode_frame
from socketwire.core.websocket.protocol import WebSocketProtocol
from socketwire.errors import RemoteProtocolError

BUILT = importlib.util.find_spec("socketwire._speedups") is not None
MASK = b"\x11\x22\x33\x44"
BIG = 1 << 20

Scan = Callable[..., Any]


def _scanners() -> list[Any]:
    found: list[Any] = [pytest.param(wire._scan_events_python, id="python")]
    if BUILT:
        from socketwire._speedups import scan_events

        compiled = functools.partial(scan_events, orjson.loads, RESERVED_EVENTS)
        found.append(pytest.param(compiled, id="compiled"))
    return found


def _ackers() -> list[Any]:
    found: list[Any] = [pytest.param(wire._ack_frame_python, id="python")]
    if BUILT:
        from socketwire._speedups import ack_frame

        found.append(pytest.param(ack_frame, id="compiled"))
    return found


SCANNERS = _scanners()
ACKERS = _ackers()


def frame(
    payload: bytes, *, first: int = 0x81, mask: bytes | None = MASK, length: int = 0
) -> bytes:
    """A frame by hand; ``length`` forces the 16-bit (126) or 64-bit (127) encoding."""
    n = len(payload)
    mbit = 0x80 if mask is not None else 0
    if length == 127 or n >= 65536:
        header = bytes((first, mbit | 127)) + n.to_bytes(8, "big")
    elif length == 126 or n >= 126:
        header = bytes((first, mbit | 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((first, mbit | n))
    if mask is None:
        return header + payload
    return header + mask + bytes(b ^ mask[i & 3] for i, b in enumerate(payload))


def general(data: bytes, max_message_size: int = BIG) -> list[Any] | None:
    """What the general path makes of ``data``: the flat events, or None when the
    read holds anything other than Socket.IO EVENTs on "/" (or fails)."""
    protocol = WebSocketProtocol(client_side=False, max_message_size=max_message_size)
    decoder = PacketDecoder()
    out: list[Any] = []
    for opcode, payload in protocol.receive_data(data):
        if opcode != Opcode.TEXT or not payload.startswith(b"4"):
            return None
        try:
            packet = decoder.feed_text(payload[1:])
        except RemoteProtocolError:
            return None
        if packet is None or packet.type != PacketType.EVENT or packet.nsp != "/":
            return None
        out += [packet.id, packet.data]
    if protocol.data_to_send() or not out:
        return None
    return out


def event(data: Any, ack_id: int | None = None) -> bytes:
    head = b"42" if ack_id is None else b"42%d" % ack_id
    return frame(head + json.dumps(data, separators=(",", ":")).encode())


# -- reads the scan takes ----------------------------------------------------------------


ACCEPTED = {
    "one event": (event(["echo", {"a": 1}]), [None, ["echo", {"a": 1}]]),
    "with an ack id": (event(["echo", 1], 17), [17, ["echo", 1]]),
    "ack id 0": (event(["e"], 0), [0, ["e"]]),
    "leading zeros": (frame(b'42007["e"]'), [7, ["e"]]),
    "18 digits": (event(["e"], 10**18 - 1), [10**18 - 1, ["e"]]),
    "numeric name": (event([5, "x"], 3), [3, [5, "x"]]),
    "several frames": (
        event(["a"], 1) + event(["b", [1, 2]]) + event(["c", None], 2),
        [1, ["a"], None, ["b", [1, 2]], 2, ["c", None]],
    ),
    "zero mask": (frame(b'42["z"]', mask=b"\0\0\0\0"), [None, ["z"]]),
    "16-bit length": (event(["big", "x" * 200], 5), [5, ["big", "x" * 200]]),
    "16-bit length, short payload": (frame(b'42["s"]', length=126), [None, ["s"]]),
    "utf-8": (event(["héllo", "日本", "🎉"]), [None, ["héllo", "日本", "🎉"]]),
    "whitespace in the JSON": (frame(b'42[ "w" , 1 ]'), [None, ["w", 1]]),
    "deep but under the limit": (
        event(["d", [[[[1]]]], "x" * 600]),
        [None, ["d", [[[[1]]]], "x" * 600]],
    ),
}


@pytest.mark.parametrize("scan", SCANNERS)
@pytest.mark.parametrize("name", list(ACCEPTED))
def test_accepted_reads(scan: Scan, name: str) -> None:
    data, expected = ACCEPTED[name]
    assert scan(data, BIG) == expected
    assert scan(data, BIG, True) == expected
    # The same events as the general path.
    assert general(data) == expected


# -- reads the scan leaves to the general path ---------------------------------------------

DEEP = b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1)

DECLINED = {
    "nothing": b"",
    "half a header": event(["e"])[:1],
    "a partial frame": event(["e"])[:-1],
    "a partial 16-bit header": frame(b'42["' + b"x" * 200 + b'"]')[:3],
    "a partial mask": event(["e"])[:4],
    "a trailing partial frame": event(["e"]) + event(["f"])[:5],
    "not FIN": frame(b'42["e"]', first=0x01),
    "a continuation": frame(b'42["e"]', first=0x80),
    "RSV1 set": frame(b'42["e"]', first=0xC1),
    "binary": frame(b'42["e"]', first=0x82),
    "a ping": frame(b"", first=0x89),
    "a close": frame(b"\x03\xe8", first=0x88),
    "an event then a ping": event(["e"]) + frame(b"", first=0x89),
    "unmasked": frame(b'42["e"]', mask=None),
    "64-bit length": frame(b'42["e"]', length=127),
    "Engine.IO ping": frame(b"2"),
    "Engine.IO pong": frame(b"3"),
    "Engine.IO message, no Socket.IO type": frame(b"4"),
    "short": frame(b"42"),
    "CONNECT": frame(b"40"),
    "DISCONNECT": frame(b"41"),
    "an ACK": frame(b'431["x"]'),
    "BINARY_EVENT": frame(b'451-["e",{"_placeholder":true,"num":0}]'),
    "another namespace": frame(b'42/chat,["e"]'),
    "namespace and id": frame(b'42/chat,1["e"]'),
    "19-digit id": event(["e"], 10**18),
    "letters in the id": frame(b'421a["e"]'),
    "a sign in the id": frame(b'42-1["e"]'),
    "no array": frame(b'42{"e":1}'),
    "an array after an object": frame(b'42{"a":[1]}'),
    "a string": frame(b'42"e"'),
    "empty array": frame(b"42[]"),
    "invalid JSON": frame(b'42["e",]'),
    "trailing garbage": frame(b'42["e"]x'),
    "NaN": frame(b'42["e",NaN]'),
    "lone surrogate escape": frame(b'42["e","\\ud800"]'),
    "a float name": frame(b"42[1.5]"),
    "a bool name": frame(b"42[true]"),
    "a null name": frame(b"42[null]"),
    "a list name": frame(b'42[["e"]]'),
    "an object name": frame(b'42[{"e":1}]'),
    "reserved name": event(["connect"]),
    "not UTF-8": frame(b'42["\xff"]'),
    "overlong UTF-8": frame(b'42["\xc0\xaf"]'),
    "UTF-8 surrogate": frame(b'42["\xed\xa0\x80"]'),
    "past U+10FFFF": frame(b'42["\xf4\x90\x80\x80"]'),
    "truncated UTF-8": frame(b'42["\xe6\x97"]'),
    "too deep": frame(b'42["e",' + DEEP + b"]"),
    "valid, then one declined": event(["e"], 1) + frame(b"41"),
}


@pytest.mark.parametrize("scan", SCANNERS)
@pytest.mark.parametrize("name", list(DECLINED))
def test_declined_reads(scan: Scan, name: str) -> None:
    assert scan(DECLINED[name], BIG) is None


@pytest.mark.parametrize("name", ["reserved name", "empty array", "a bool name", "too deep"])
def test_declined_reads_the_general_path_refuses(name: str) -> None:
    # Not a read the fast path turned down for being unusual: the general path
    # refuses it too (and gives the exact error).
    assert general(DECLINED[name]) is None


@pytest.mark.parametrize("scan", SCANNERS)
def test_reserved_names_are_all_refused(scan: Scan) -> None:
    for name in sorted(RESERVED_EVENTS):
        assert scan(event([name, 1], 2), BIG) is None


@pytest.mark.parametrize("scan", SCANNERS)
def test_the_message_size_limit(scan: Scan) -> None:
    data = event(["e", "x" * 100])
    size = len(data) - 6  # header and mask
    assert scan(data, size) == [None, ["e", "x" * 100]]
    # One byte over: the general path fails the connection with 1009.
    assert scan(data, size - 1) is None
    protocol = WebSocketProtocol(client_side=False, max_message_size=size - 1)
    [(opcode, payload)] = protocol.receive_data(data)
    assert opcode == Opcode.CLOSE and payload[:2] == (1009).to_bytes(2, "big")


@pytest.mark.parametrize("scan", SCANNERS)
def test_without_utf8_validation(scan: Scan) -> None:
    # The JSON decoder still refuses text that is not UTF-8.
    assert scan(frame(b'42["\xff"]'), BIG, False) is None
    assert scan(event(["é"]), BIG, False) == [None, ["é"]]


@pytest.mark.parametrize("scan", SCANNERS)
def test_a_long_payload_that_only_looks_deep(scan: Scan) -> None:
    # More brackets than MAX_DEPTH, side by side: the general path accepts it.
    data = frame(b'42["e",' + b"[]," * (MAX_DEPTH + 5) + b"1]")
    expected = [None, ["e", *([[]] * (MAX_DEPTH + 5)), 1]]
    # Left to the general path, which checks the real depth.
    assert scan(data, BIG) is None
    assert general(data) == expected
    # Short of the screen length, the count is not made.
    data = frame(b'42["e",' + b"[]," * 100 + b"1]")
    assert scan(data, BIG) == general(data)


@pytest.mark.skipif(not BUILT, reason="socketwire._speedups was not built")
def test_compiled_scan_checks_its_arguments() -> None:
    from socketwire._speedups import scan_events

    with pytest.raises(TypeError):
        scan_events(orjson.loads, RESERVED_EVENTS, b"")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        scan_events(orjson.loads, ["connect"], b"", 10)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        scan_events(orjson.loads, RESERVED_EVENTS, "text", 10)  # type: ignore[arg-type]
    with pytest.raises(OverflowError):
        scan_events(orjson.loads, RESERVED_EVENTS, b"", 1 << 80)

    # An error that is not an Exception (here KeyboardInterrupt) is not swallowed.
    def interrupted(data: bytes) -> Any:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        scan_events(interrupted, RESERVED_EVENTS, event(["e"]), BIG)

    # An ordinary error of the decoder: the read goes to the general path.
    def failing(data: bytes) -> Any:
        raise ValueError("no")

    assert scan_events(failing, RESERVED_EVENTS, event(["e"]), BIG) is None


def test_the_chosen_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCKETWIRE_NO_SPEEDUPS", "1")
    assert wire._compiled() is None
    monkeypatch.delenv("SOCKETWIRE_NO_SPEEDUPS")
    monkeypatch.setitem(sys.modules, "socketwire._speedups", None)
    assert wire._compiled() is None


@pytest.mark.skipif(not BUILT, reason="socketwire._speedups was not built")
def test_the_compiled_versions_when_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOCKETWIRE_NO_SPEEDUPS", raising=False)
    chosen = wire._compiled()
    assert chosen is not None
    assert chosen.scan_events(event(["e"], 1), BIG) == [1, ["e"]]
    assert chosen.scan_packets(frame(b'431["a"]', mask=None), BIG) == [3, 1, ["a"]]
    assert chosen.ack_frame.__module__ == "socketwire._speedups"
    assert chosen.message_frame.__module__ == "socketwire._speedups"


def test_the_versions_in_use() -> None:
    # The module's functions are the compiled ones exactly when COMPILED says so.
    # Typed as plain objects: mypy's inference of zip over two tuples of
    # differently typed callables depends on its hash seed.
    python: tuple[object, ...] = (
        wire._scan_events_python,
        wire._scan_packets_python,
        wire._ack_frame_python,
        wire._message_frame_python,
    )
    in_use: tuple[object, ...] = (
        wire.scan_events,
        wire.scan_packets,
        wire.ack_frame,
        wire.message_frame,
    )
    if wire.COMPILED:
        assert all(f is not g for f, g in zip(in_use, python, strict=True))
    else:
        assert in_use == python


# -- generated reads: never a different reading from the general path --------------------

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=12,
)
NAMES: st.SearchStrategy[Any] = st.sampled_from(
    ["echo", "connect", "", "é", 0, 7, -1, 1.5, True, None, [], {}]
)


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 9))
    if kind <= 5:
        data = [draw(NAMES), *draw(st.lists(JSON, max_size=3))]
        ack = draw(st.none() | st.integers(0, 10**20))
        head = b"42" if ack is None else b"42%d" % ack
        return (
            head
            + json.dumps(data, separators=(",", ":"), ensure_ascii=draw(st.booleans())).encode()
        )
    if kind == 6:
        return draw(st.sampled_from([b"2", b"3", b"40", b"41", b'43["x"]', b'431["x"]', b"6"]))
    if kind == 7:
        return b"42" + draw(st.binary(max_size=12))
    return draw(st.binary(max_size=20))


@st.composite
def reads(draw: st.DrawFn) -> bytes:
    out = b""
    for payload in draw(st.lists(messages(), min_size=1, max_size=4)):
        first = draw(st.sampled_from([0x81, 0x81, 0x81, 0x81, 0x01, 0x82, 0x89, 0x8A, 0xC1]))
        mask = draw(st.sampled_from([MASK, MASK, b"\0\0\0\0", None]))
        length = draw(st.sampled_from([0, 0, 0, 126, 127]))
        out += frame(payload, first=first, mask=mask, length=length)
    cut = draw(st.integers(0, 3))
    return out[: len(out) - cut] if cut else out


@settings(max_examples=400, deadline=None)
@given(reads(), st.sampled_from([BIG, 40]))
def test_generated_reads(data: bytes, max_size: int) -> None:
    results = [scan.values[0](data, max_size) for scan in SCANNERS]
    # Every version reads the same.
    assert all(r == results[0] for r in results)
    if results[0] is not None:
        # What it accepts, the general path reads as the same events.
        assert general(data, max_size) == results[0]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.text(min_size=1, max_size=6), JSON, st.none() | st.integers(0, 10**18 - 1)),
        min_size=1,
        max_size=5,
    )
)
def test_generated_events_are_taken(items: list[tuple[str, Any, int | None]]) -> None:
    # Well-formed events (numbers that JSON.parse reads back the same) are never
    # turned down.
    data = b""
    expected: list[Any] = []
    for name, value, ack in items:
        if name in RESERVED_EVENTS:
            name += "!"
        value = orjson.loads(orjson.dumps(value))
        data += event([name, value], ack)
        expected += [ack, [name, value]]
    for scan in SCANNERS:
        assert scan.values[0](data, BIG) == expected


# -- acks --------------------------------------------------------------------------------


@pytest.mark.parametrize("ack_frame", ACKERS)
@pytest.mark.parametrize("size", [0, 100, 117, 118, 119, 120, 200, 65525, 65526, 65540, 70000])
@pytest.mark.parametrize("ack_id", [0, 7, 123456, 2**63 - 1])
def test_ack_frame_is_the_general_framing(
    ack_frame: Callable[[int, bytes], bytes | None], size: int, ack_id: int
) -> None:
    args = ["x" * size]
    text, attachments = encode_ack("/", args, ack_id)
    assert attachments == []
    expected = frame_text_message(text)
    assert ack_frame(ack_id, orjson.dumps(args)) == expected
    # And that is a frame the general reader takes back.
    assert encode_frame(Opcode.TEXT, b"4" + text) == expected


@pytest.mark.parametrize("ack_frame", ACKERS)
@pytest.mark.parametrize("ack_id", [-1, 2**63, 10**30, True, 1.0, "1", None])
def test_ack_frame_leaves_other_ids_to_the_general_encoder(
    ack_frame: Callable[[Any, bytes], bytes | None], ack_id: Any
) -> None:
    assert ack_frame(ack_id, b"[]") is None


@pytest.mark.skipif(not BUILT, reason="socketwire._speedups was not built")
def test_compiled_ack_frame_checks_its_arguments() -> None:
    from socketwire._speedups import ack_frame

    with pytest.raises(TypeError):
        ack_frame(1)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        ack_frame(1, "[]")  # type: ignore[arg-type]
    assert ack_frame(1, bytearray(b"[]")) == b"\x81\x05431[]"  # type: ignore[arg-type]


# -- the client's side: scan_packets ------------------------------------------------------


def _packet_scanners() -> list[Any]:
    found: list[Any] = [pytest.param(wire._scan_packets_python, id="python")]
    if BUILT:
        from socketwire._speedups import scan_packets

        compiled = functools.partial(scan_packets, orjson.loads, RESERVED_EVENTS)
        found.append(pytest.param(compiled, id="compiled"))
    return found


PACKET_SCANNERS = _packet_scanners()


def sframe(payload: bytes, *, first: int = 0x81, length: int = 0) -> bytes:
    """A frame as a server sends it: unmasked (RFC 6455 section 5.1)."""
    return frame(payload, first=first, mask=None, length=length)


def general_client(data: bytes, max_message_size: int = BIG) -> list[Any] | None:
    """What a client's general path makes of ``data``: flat ``[ptype, ack_id, data]``
    triples, or None when the read holds anything other than Socket.IO EVENTs and
    ACKs on "/" (or fails)."""
    protocol = WebSocketProtocol(
        client_side=True, max_message_size=max_message_size, mask_key=lambda: MASK
    )
    decoder = PacketDecoder()
    out: list[Any] = []
    for opcode, payload in protocol.receive_data(data):
        if opcode != Opcode.TEXT:
            return None
        try:
            ptype, body = parse_text_packet(payload)
            if ptype != EnginePacketType.MESSAGE:
                return None
            packet = decoder.feed_text(body)
        except RemoteProtocolError:
            return None
        if packet is None or packet.type not in (PacketType.EVENT, PacketType.ACK):
            return None
        if packet.nsp != "/":
            return None
        out += [int(packet.type), packet.id, packet.data]
    if protocol.data_to_send() or not out:
        return None
    return out


def server_event(data: Any, ack_id: int | None = None) -> bytes:
    head = b"42" if ack_id is None else b"42%d" % ack_id
    return sframe(head + json.dumps(data, separators=(",", ":")).encode())


def server_ack(args: Any, ack_id: int) -> bytes:
    return sframe(b"43%d" % ack_id + json.dumps(args, separators=(",", ":")).encode())


CLIENT_ACCEPTED = {
    "one event": (server_event(["news", {"a": 1}]), [2, None, ["news", {"a": 1}]]),
    "an event asking for an ack": (server_event(["q", 1], 17), [2, 17, ["q", 1]]),
    "an ack": (server_ack(["ok", 2], 3), [3, 3, ["ok", 2]]),
    "an ack without arguments": (sframe(b"430[]"), [3, 0, []]),
    "an ack of an object": (server_ack([{"a": [1, 2]}], 9), [3, 9, [{"a": [1, 2]}]]),
    "an ack of null": (server_ack([None], 1), [3, 1, [None]]),
    "an ack id with leading zeros": (sframe(b"43007[1]"), [3, 7, [1]]),
    "an ack id of 18 digits": (server_ack([1], 10**18 - 1), [3, 10**18 - 1, [1]]),
    "a numeric event name": (server_event([5, "x"]), [2, None, [5, "x"]]),
    "events and acks": (
        server_ack(["a"], 1)
        + server_event(["b", [1, 2]])
        + server_ack([], 2)
        + server_event(["c"], 4),
        [3, 1, ["a"], 2, None, ["b", [1, 2]], 3, 2, [], 2, 4, ["c"]],
    ),
    "16-bit length": (server_ack(["x" * 200], 5), [3, 5, ["x" * 200]]),
    "16-bit length, short payload": (sframe(b'431["s"]', length=126), [3, 1, ["s"]]),
    "utf-8": (server_ack(["héllo", "日本", "🎉"], 2), [3, 2, ["héllo", "日本", "🎉"]]),
    "whitespace in the JSON": (sframe(b'431[ "w" , 1 ]'), [3, 1, ["w", 1]]),
    "deep but under the limit": (
        server_ack([[[[[1]]]], "x" * 600], 1),
        [3, 1, [[[[[1]]]], "x" * 600]],
    ),
}


@pytest.mark.parametrize("scan", PACKET_SCANNERS)
@pytest.mark.parametrize("name", list(CLIENT_ACCEPTED))
def test_client_accepted_reads(scan: Scan, name: str) -> None:
    data, expected = CLIENT_ACCEPTED[name]
    assert scan(data, BIG) == expected
    assert scan(data, BIG, True) == expected
    # The same packets as the general path.
    assert general_client(data) == expected


CLIENT_DECLINED = {
    "nothing": b"",
    "half a header": server_ack([1], 1)[:1],
    "a partial frame": server_ack([1], 1)[:-1],
    "a partial 16-bit header": server_ack(["x" * 200], 1)[:3],
    "a trailing partial frame": server_ack([1], 1) + server_ack([2], 2)[:3],
    "masked": frame(b'431["e"]'),
    "masked with a zero key": frame(b'431["e"]', mask=b"\0\0\0\0"),
    "a masked event": event(["e"]),
    "an ack, then a masked one": server_ack([1], 1) + frame(b"432[2]"),
    "not FIN": sframe(b"431[1]", first=0x01),
    "a continuation": sframe(b"431[1]", first=0x80),
    "RSV1 set": sframe(b"431[1]", first=0xC1),
    "binary": sframe(b"431[1]", first=0x82),
    "a ping": sframe(b"", first=0x89),
    "a close": sframe(b"\x03\xe8", first=0x88),
    "an ack then a ping": server_ack([1], 1) + sframe(b"", first=0x89),
    "64-bit length": sframe(b"431[1]", length=127),
    "Engine.IO open": sframe(b'0{"sid":"x"}'),
    "Engine.IO ping": sframe(b"2"),
    "Engine.IO noop": sframe(b"6"),
    "Engine.IO close": sframe(b"1"),
    "Engine.IO message, no Socket.IO type": sframe(b"4"),
    "short": sframe(b"43"),
    "an unknown Engine.IO type": sframe(b"92[1]"),
    "CONNECT": sframe(b'40{"sid":"x"}'),
    "DISCONNECT": sframe(b"41"),
    "CONNECT_ERROR": sframe(b'44{"message":"no"}'),
    "BINARY_EVENT": sframe(b'451-["e",{"_placeholder":true,"num":0}]'),
    "BINARY_ACK": sframe(b'461-1[{"_placeholder":true,"num":0}]'),
    "an ack without an id": sframe(b'43["x"]'),
    "an ack of an object": sframe(b'431{"a":1}'),
    "an ack of a string": sframe(b'431"x"'),
    "an ack of a number": sframe(b"4315"),
    "an ack of nothing": sframe(b"431"),
    "an ack on another namespace": sframe(b"43/chat,1[1]"),
    "an event on another namespace": sframe(b'42/chat,["e"]'),
    "a 19-digit ack id": server_ack([1], 10**18),
    "letters in the ack id": sframe(b"431a[1]"),
    "a sign in the ack id": sframe(b"43-1[1]"),
    "an invalid ack": sframe(b"431[1,]"),
    "trailing garbage": sframe(b"431[1]x"),
    "NaN": sframe(b"431[NaN]"),
    "lone surrogate escape": sframe(b'431["\\ud800"]'),
    "an empty event": sframe(b"42[]"),
    "a float event name": sframe(b"42[1.5]"),
    "a bool event name": sframe(b"42[true]"),
    "a reserved event name": server_event(["disconnect"]),
    "not UTF-8": sframe(b'431["\xff"]'),
    "overlong UTF-8": sframe(b'431["\xc0\xaf"]'),
    "UTF-8 surrogate": sframe(b'431["\xed\xa0\x80"]'),
    "truncated UTF-8": sframe(b'431["\xe6\x97"]'),
    "too deep": sframe(b"431[" + DEEP + b"]"),
    "valid, then one declined": server_ack([1], 1) + sframe(b"41"),
}


@pytest.mark.parametrize("scan", PACKET_SCANNERS)
@pytest.mark.parametrize("name", list(CLIENT_DECLINED))
def test_client_declined_reads(scan: Scan, name: str) -> None:
    assert scan(CLIENT_DECLINED[name], BIG) is None


@pytest.mark.parametrize(
    "name", ["masked", "an ack without an id", "an ack of an object", "too deep", "not UTF-8"]
)
def test_client_declined_reads_the_general_path_refuses(name: str) -> None:
    # Not a read the fast path turned down for being unusual: the general path
    # refuses it too (a client fails the connection on a masked frame, 1002).
    assert general_client(CLIENT_DECLINED[name]) is None


def test_a_masked_frame_fails_a_client_on_the_general_path() -> None:
    protocol = WebSocketProtocol(client_side=True, max_message_size=BIG, mask_key=lambda: MASK)
    [(opcode, payload)] = protocol.receive_data(CLIENT_DECLINED["masked"])
    assert opcode == Opcode.CLOSE and payload[:2] == (1002).to_bytes(2, "big")


@pytest.mark.parametrize("scan", PACKET_SCANNERS)
def test_client_message_size_limit(scan: Scan) -> None:
    data = server_ack(["x" * 100], 1)
    size = len(data) - 2  # the header
    assert scan(data, size) == [3, 1, ["x" * 100]]
    # One byte over: the general path fails the connection with 1009.
    assert scan(data, size - 1) is None
    assert general_client(data, size - 1) is None


@pytest.mark.parametrize("scan", PACKET_SCANNERS)
def test_client_scan_without_utf8_validation(scan: Scan) -> None:
    assert scan(sframe(b'431["\xff"]'), BIG, False) is None
    assert scan(server_ack(["é"], 1), BIG, False) == [3, 1, ["é"]]


@pytest.mark.parametrize("scan", PACKET_SCANNERS)
def test_client_scan_of_a_long_payload_that_only_looks_deep(scan: Scan) -> None:
    data = sframe(b"431[" + b"[]," * (MAX_DEPTH + 5) + b"1]")
    assert scan(data, BIG) is None
    assert general_client(data) == [3, 1, [*([[]] * (MAX_DEPTH + 5)), 1]]


@pytest.mark.parametrize("scan", SCANNERS)
def test_the_server_scan_takes_no_ack(scan: Scan) -> None:
    # A client sends acks too, but the server's lane takes events only.
    assert scan(frame(b"431[1]"), BIG) is None


@pytest.mark.skipif(not BUILT, reason="socketwire._speedups was not built")
def test_compiled_packet_scan_checks_its_arguments() -> None:
    from socketwire._speedups import scan_packets

    with pytest.raises(TypeError, match="scan_packets"):
        scan_packets(orjson.loads, RESERVED_EVENTS, b"")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="scan_packets"):
        scan_packets(orjson.loads, ["connect"], b"", 10)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        scan_packets(orjson.loads, RESERVED_EVENTS, "text", 10)  # type: ignore[arg-type]

    def interrupted(data: bytes) -> Any:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        scan_packets(interrupted, RESERVED_EVENTS, server_ack([1], 1), BIG)

    # A decoder that gives something other than a list: left to the general path.
    assert scan_packets(lambda data: {"a": 1}, RESERVED_EVENTS, server_ack([1], 1), BIG) is None
    assert scan_packets(lambda data: [], RESERVED_EVENTS, server_ack([], 1), BIG) == [3, 1, []]


@st.composite
def server_messages(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 11))
    if kind <= 3:
        data = [draw(NAMES), *draw(st.lists(JSON, max_size=3))]
        ack = draw(st.none() | st.integers(0, 10**20))
        head = b"42" if ack is None else b"42%d" % ack
    elif kind <= 7:
        data = draw(st.lists(JSON, max_size=3))
        ack = draw(st.none() | st.integers(0, 10**20))
        head = b"43" if ack is None else b"43%d" % ack
    elif kind == 8:
        return draw(
            st.sampled_from(
                [b"2", b"3", b"6", b'40{"sid":"a"}', b"41", b'44{"message":"x"}', b"43/a,1[]"]
            )
        )
    elif kind == 9:
        return b"43" + draw(st.binary(max_size=12))
    else:
        return draw(st.binary(max_size=20))
    ascii_only = draw(st.booleans())
    return head + json.dumps(data, separators=(",", ":"), ensure_ascii=ascii_only).encode()


@st.composite
def server_reads(draw: st.DrawFn) -> bytes:
    out = b""
    for payload in draw(st.lists(server_messages(), min_size=1, max_size=4)):
        first = draw(st.sampled_from([0x81, 0x81, 0x81, 0x81, 0x01, 0x82, 0x89, 0x8A, 0xC1]))
        mask = draw(st.sampled_from([None, None, None, MASK, b"\0\0\0\0"]))
        length = draw(st.sampled_from([0, 0, 0, 126, 127]))
        out += frame(payload, first=first, mask=mask, length=length)
    cut = draw(st.integers(0, 3))
    return out[: len(out) - cut] if cut else out


@settings(max_examples=400, deadline=None)
@given(server_reads(), st.sampled_from([BIG, 40]))
def test_generated_client_reads(data: bytes, max_size: int) -> None:
    results = [scan.values[0](data, max_size) for scan in PACKET_SCANNERS]
    # Every version reads the same.
    assert all(r == results[0] for r in results)
    if results[0] is not None:
        # What it accepts, the general path reads as the same packets.
        assert general_client(data, max_size) == results[0]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.booleans(),
            st.text(min_size=1, max_size=6),
            st.lists(JSON, max_size=3),
            st.none() | st.integers(0, 10**18 - 1),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_generated_client_packets_are_taken(
    items: list[tuple[bool, str, list[Any], int | None]],
) -> None:
    # Well-formed events and acks (numbers that JSON.parse reads back the same)
    # are never turned down.
    data = b""
    expected: list[Any] = []
    for is_ack, name, args, ack in items:
        args = orjson.loads(orjson.dumps(args))
        if is_ack:
            ack_id = 0 if ack is None else ack
            data += server_ack(args, ack_id)
            expected += [3, ack_id, args]
        else:
            if name in RESERVED_EVENTS:
                name += "!"
            data += server_event([name, *args], ack)
            expected += [2, ack, [name, *args]]
    for scan in PACKET_SCANNERS:
        assert scan.values[0](data, BIG) == expected
    assert general_client(data) == expected


# -- the client's frames: message_frame ----------------------------------------------------


def _framers() -> list[Any]:
    found: list[Any] = [pytest.param(wire._message_frame_python, id="python")]
    if BUILT:
        from socketwire._speedups import message_frame

        found.append(pytest.param(message_frame, id="compiled"))
    return found


FRAMERS = _framers()


@pytest.mark.parametrize("message_frame", FRAMERS)
@pytest.mark.parametrize("size", [0, 1, 7, 8, 124, 125, 126, 65534, 65535, 65536, 70001])
@pytest.mark.parametrize("mask", [MASK, b"\0\0\0\0", b"\xff\x00\xa5\x5a"])
def test_message_frame_is_the_general_framing(
    message_frame: Callable[[bytes, bytes], bytes], size: int, mask: bytes
) -> None:
    text = bytes(range(48, 58)) * (size // 10) + b"x" * (size % 10)
    expected = encode_frame(Opcode.TEXT, b"4" + text, mask=mask)
    assert message_frame(text, mask) == expected
    # A server reads it back as the Engine.IO message.
    server = WebSocketProtocol(client_side=False, max_message_size=BIG)
    assert server.receive_data(expected) == [(Opcode.TEXT, b"4" + text)]


@pytest.mark.parametrize("message_frame", FRAMERS)
@pytest.mark.parametrize("mask", [b"", b"abc", b"abcde"])
def test_message_frame_needs_a_4_byte_key(
    message_frame: Callable[[bytes, bytes], bytes], mask: bytes
) -> None:
    with pytest.raises(ValueError, match="4 bytes"):
        message_frame(b'2["e"]', mask)


@pytest.mark.skipif(not BUILT, reason="socketwire._speedups was not built")
def test_compiled_message_frame_checks_its_arguments() -> None:
    from socketwire._speedups import message_frame

    with pytest.raises(TypeError):
        message_frame(b"2[1]")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        message_frame("2[1]", MASK)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        message_frame(b"2[1]", "abcd")  # type: ignore[arg-type]
    assert message_frame(bytearray(b"2[1]"), memoryview(MASK)) == encode_frame(  # type: ignore[arg-type]
        Opcode.TEXT, b"42[1]", mask=MASK
    )
