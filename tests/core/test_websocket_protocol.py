"""The sans-I/O WebSocket protocol object, both sides, grouped by RFC 6455 section.

Every test states its bytes: what the peer sends is built with ``encode_frame``
(tested on its own in ``test_websocket_frames.py``), what the protocol sends is read
back with a ``FrameReader`` of the other side. The protocol reads no clock: the
waits it asks for are only ever signalled (``close_expected()``).
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socketwire.core.websocket.frames import (
    FrameReader,
    Opcode,
    apply_mask,
    encode_close_payload,
    encode_frame,
)
from socketwire.core.websocket.protocol import WebSocketProtocol, WebSocketState, _wire_reason
from socketwire.errors import LocalProtocolError

MASK = bytes((0x37, 0xFA, 0x21, 0x3D))  # the key of the RFC 6455 section 5.7 examples
BIG = 1 << 20
SIDES = ["server", "client"]

OPEN = WebSocketState.OPEN
CLOSING = WebSocketState.CLOSING
CLOSED = WebSocketState.CLOSED
TEXT, BINARY, CLOSE, PING, PONG = (
    Opcode.TEXT,
    Opcode.BINARY,
    Opcode.CLOSE,
    Opcode.PING,
    Opcode.PONG,
)

Event = tuple[int, bytes]


class Keys:
    """Masking keys drawn in a known order: 00000001, 00000002, ..."""

    def __init__(self) -> None:
        self.drawn: list[bytes] = []
        self._n = itertools.count(1)

    def __call__(self) -> bytes:
        key = next(self._n).to_bytes(4, "big")
        self.drawn.append(key)
        return key


def make(side: str, max_message_size: int = BIG, keys: Keys | None = None) -> WebSocketProtocol:
    if side == "server":
        return WebSocketProtocol(client_side=False, max_message_size=max_message_size)
    return WebSocketProtocol(
        client_side=True, max_message_size=max_message_size, mask_key=keys or Keys()
    )


def peer_frame(side: str, opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """A frame as the peer of ``side`` sends it: a client masks, a server does not."""
    return encode_frame(opcode, payload, fin=fin, mask=MASK if side == "server" else None)


def raw_frame(side: str, first: int, payload: bytes) -> bytes:
    """A short frame with any first byte (reserved opcodes included), built by hand."""
    if side == "client":
        return bytes((first, len(payload))) + payload
    return bytes((first, 0x80 | len(payload))) + MASK + apply_mask(payload, MASK)


def sent(proto: WebSocketProtocol) -> list[Event]:
    """What ``proto`` queued, as its peer reads it."""
    reader = FrameReader(max_message_size=BIG, client_side=not proto.client_side)
    return reader.feed(proto.data_to_send())


def close_frame(code: int, reason: str = "") -> Event:
    return (CLOSE, encode_close_payload(code, reason))


# == Construction ==========================================================================


def test_a_client_needs_a_key_source_and_a_server_takes_none() -> None:
    with pytest.raises(LocalProtocolError):
        WebSocketProtocol(client_side=True, max_message_size=BIG)
    with pytest.raises(LocalProtocolError):
        WebSocketProtocol(client_side=False, max_message_size=BIG, mask_key=Keys())
    assert make("client").client_side and not make("server").client_side


@pytest.mark.parametrize("side", SIDES)
def test_a_new_connection_is_open_and_quiet(side: str) -> None:
    proto = make(side)
    assert proto.state is OPEN
    assert proto.data_to_send() == b""
    assert proto.close_code is None and proto.close_sent is None
    assert not proto.should_end_transport and not proto.close_expected()


# == 5.1 / 5.3: masking ======================================================================


def test_server_frames_are_unmasked_rfc_5_7() -> None:
    proto = make("server")
    proto.send_text(b"Hello")
    assert proto.data_to_send() == bytes((0x81, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F))


def test_client_frames_are_masked_with_a_fresh_key_each_rfc_5_7() -> None:
    keys = iter([MASK, b"\x01\x02\x03\x04"])
    proto = WebSocketProtocol(client_side=True, max_message_size=BIG, mask_key=lambda: next(keys))
    proto.send_text(b"Hello")
    # RFC 6455 section 5.7: "A single-frame masked text message".
    assert proto.data_to_send() == bytes(
        (0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58)
    )
    proto.send_binary(b"\x00\xff")
    frame = proto.data_to_send()
    assert frame[:6] == bytes((0x82, 0x82, 1, 2, 3, 4))
    assert apply_mask(frame[6:], b"\x01\x02\x03\x04") == b"\x00\xff"


@pytest.mark.parametrize("side", SIDES)
def test_a_frame_masked_the_wrong_way_fails_1002(side: str) -> None:
    proto = make(side)
    # A client's frame must be masked, a server's must not: send the other kind.
    wrong = encode_frame(TEXT, b"hi", mask=None if side == "server" else MASK)
    events = proto.receive_data(wrong)
    assert events == [close_frame(1002, proto.close_reason)]
    assert proto.close_code == 1002 and proto.error is not None
    assert sent(proto) == [close_frame(1002, proto.close_reason)]


# == 5.2 / 5.4 / 5.6: data frames ========================================================


@pytest.mark.parametrize("side", SIDES)
def test_one_data_message_per_read(side: str) -> None:
    proto = make(side)
    assert proto.receive_data(peer_frame(side, TEXT, b'42["a"]')) == [(TEXT, b'42["a"]')]
    assert proto.receive_data(peer_frame(side, BINARY, b"\x00\x01")) == [(BINARY, b"\x00\x01")]
    assert proto.data_to_send() == b""


@pytest.mark.parametrize(
    "payload",
    [b"", b"4", b"x" * 125, "h\u00e9llo \u263a".encode(), b"\x00" * 10],
    ids=["empty", "one", "125", "utf8", "nul"],
)
def test_small_text_frame_whole_or_cut_gives_the_same_message(payload: bytes) -> None:
    frame = peer_frame("server", TEXT, payload)
    whole = make("server").receive_data(frame)
    cut = make("server")
    events = cut.receive_data(frame[:3]) + cut.receive_data(frame[3:])
    assert whole == events == [(TEXT, payload)]
    zero_masked = make("server").receive_data(encode_frame(TEXT, payload, mask=bytes(4)))
    assert zero_masked == [(TEXT, payload)]


@pytest.mark.parametrize("side", SIDES)
def test_text_that_is_not_utf8_fails_1007_section_8_1(side: str) -> None:
    proto = make(side)
    events = proto.receive_data(peer_frame(side, TEXT, b"6\xff\xfe"))
    assert events[-1][0] == CLOSE and proto.close_code == 1007
    assert sent(proto)[0][1][:2] == (1007).to_bytes(2, "big")


def test_utf8_check_can_be_left_to_the_caller() -> None:
    proto = WebSocketProtocol(client_side=False, max_message_size=BIG, validate_utf8=False)
    assert proto.receive_data(peer_frame("server", TEXT, b"\xff")) == [(TEXT, b"\xff")]


@pytest.mark.parametrize("side", SIDES)
def test_fragmented_message_with_a_ping_between_the_fragments(side: str) -> None:
    proto = make(side)
    stream = (
        peer_frame(side, TEXT, b"Hel", fin=False)
        + peer_frame(side, PING, b"p")
        + peer_frame(side, Opcode.CONTINUATION, b"lo")
    )
    assert proto.receive_data(stream) == [(PING, b"p"), (TEXT, b"Hello")]
    assert sent(proto) == [(PONG, b"p")]


@settings(max_examples=60, deadline=None)
@given(
    side=st.sampled_from(SIDES),
    messages=st.lists(st.tuples(st.booleans(), st.binary(max_size=300)), max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=6),
)
def test_any_cutting_of_the_stream_gives_the_same_messages(
    side: str, messages: list[tuple[bool, bytes]], cuts: list[int]
) -> None:
    stream = b"".join(
        peer_frame(side, BINARY if binary else TEXT, data.hex().encode() if not binary else data)
        for binary, data in messages
    )
    expected = [
        (BINARY, data) if binary else (TEXT, data.hex().encode()) for binary, data in messages
    ]
    proto = make(side)
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    events: list[Event] = []
    for a, b in itertools.pairwise(points):
        events += proto.receive_data(stream[a:b])
    assert events == expected
    assert proto.state is OPEN and proto.data_to_send() == b""


@pytest.mark.parametrize("side", SIDES)
def test_message_over_max_size_fails_1009_from_the_header_alone(side: str) -> None:
    proto = make(side, max_message_size=100)
    header = peer_frame(side, BINARY, b"x" * 101)[:8]  # header and key, no payload
    events = proto.receive_data(header)
    assert events == [close_frame(1009, proto.close_reason)]
    assert proto.should_end_transport


# == 5.5.1: close ============================================================================


@pytest.mark.parametrize("side", SIDES)
def test_a_close_is_answered_echoing_its_code(side: str) -> None:
    proto = make(side)
    payload = encode_close_payload(1001, "going away")
    events = proto.receive_data(peer_frame(side, TEXT, b"last") + peer_frame(side, CLOSE, payload))
    assert events == [(TEXT, b"last"), (CLOSE, payload)]
    assert (proto.close_code, proto.close_reason) == (1001, "going away")
    assert proto.close_received == (1001, "going away") and proto.close_sent == (1001, "")
    assert sent(proto) == [close_frame(1001)]
    assert proto.state is CLOSED


@pytest.mark.parametrize("side", SIDES)
def test_a_close_without_status_is_answered_without_status(side: str) -> None:
    proto = make(side)
    assert proto.receive_data(peer_frame(side, CLOSE, b"")) == [(CLOSE, b"")]
    assert proto.close_code == 1005
    # 1005 is never on the wire (section 7.4.1): an empty close frame answers.
    assert sent(proto) == [(CLOSE, b"")]


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize(
    ("payload", "code"),
    [
        pytest.param(b"\x03", 1002, id="one-byte"),
        pytest.param((999).to_bytes(2, "big"), 1002, id="code-999"),
        pytest.param((1004).to_bytes(2, "big"), 1002, id="reserved-1004"),
        pytest.param((1005).to_bytes(2, "big"), 1002, id="1005-on-the-wire"),
        pytest.param((1006).to_bytes(2, "big"), 1002, id="1006-on-the-wire"),
        pytest.param((1015).to_bytes(2, "big"), 1002, id="1015-on-the-wire"),
        pytest.param((5000).to_bytes(2, "big"), 1002, id="code-5000"),
        pytest.param((1000).to_bytes(2, "big") + b"\xff", 1007, id="reason-not-utf8"),
    ],
)
def test_an_invalid_close_payload_fails_the_connection(
    side: str, payload: bytes, code: int
) -> None:
    proto = make(side)
    events = proto.receive_data(peer_frame(side, CLOSE, payload))
    assert events == [close_frame(code, proto.close_reason)]
    assert proto.close_code == code and proto.close_received is None
    assert sent(proto) == [close_frame(code, proto.close_reason)]
    assert proto.should_end_transport


@pytest.mark.parametrize("side", SIDES)
def test_nothing_after_the_peers_close_is_read(side: str) -> None:
    proto = make(side)
    stream = peer_frame(side, CLOSE, b"") + peer_frame(side, TEXT, b"late")
    assert proto.receive_data(stream) == [(CLOSE, b"")]
    assert proto.receive_data(peer_frame(side, PING, b"x")) == []
    assert sent(proto) == [(CLOSE, b"")]  # and no pong


@pytest.mark.parametrize("side", SIDES)
def test_local_close_then_the_peers_answer(side: str) -> None:
    proto = make(side)
    proto.close(1000, "done")
    assert proto.state is CLOSING and proto.close_expected()
    assert sent(proto) == [close_frame(1000, "done")]
    # Section 5.5.1: the peer may still send until its close frame.
    assert proto.receive_data(peer_frame(side, TEXT, b"in flight")) == [(TEXT, b"in flight")]
    answer = encode_close_payload(1000)
    assert proto.receive_data(peer_frame(side, CLOSE, answer)) == [(CLOSE, answer)]
    assert proto.state is CLOSED and proto.close_code == 1000
    assert proto.data_to_send() == b""  # the handshake is done: nothing more to say


@pytest.mark.parametrize("side", SIDES)
def test_close_with_1005_sends_an_empty_close_frame(side: str) -> None:
    proto = make(side)
    proto.close(1005)
    assert sent(proto) == [(CLOSE, b"")]


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (1004, ""),
        (1006, ""),
        (1015, ""),
        (0, ""),
        (2999, ""),
        (5000, ""),
        (1005, "why"),
        (1000, "x" * 124),
    ],
)
def test_close_refuses_what_cannot_go_on_the_wire(side: str, code: int, reason: str) -> None:
    proto = make(side)
    with pytest.raises(LocalProtocolError):
        proto.close(code, reason)
    # Nothing changed: the connection is still open and can close properly.
    assert proto.state is OPEN and proto.data_to_send() == b""
    proto.close(1000)
    assert sent(proto) == [close_frame(1000)]


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("command", ["text", "binary", "ping", "pong", "close"])
def test_nothing_can_be_sent_after_the_close_frame(side: str, command: str) -> None:
    for closing in ("local", "remote"):
        proto = make(side)
        if closing == "local":
            proto.close()
        else:
            proto.receive_data(peer_frame(side, CLOSE, b""))
        proto.data_to_send()
        with pytest.raises(LocalProtocolError):
            if command == "close":
                proto.close()
            else:
                getattr(proto, f"send_{command}")(b"x")
        assert proto.data_to_send() == b""


# == 5.5.2 / 5.5.3: ping and pong ============================================================


@pytest.mark.parametrize("side", SIDES)
def test_a_ping_gets_a_pong_with_its_payload(side: str) -> None:
    keys = Keys()
    proto = make(side, keys=keys)
    assert proto.receive_data(peer_frame(side, PING, b"Hello")) == [(PING, b"Hello")]
    out = proto.data_to_send()
    if side == "client":
        # RFC 6455 section 5.7's masked pong, with this test's first key.
        assert out[:6] == bytes((0x8A, 0x85)) + keys.drawn[0]
    else:
        assert out == bytes((0x8A, 0x05)) + b"Hello"
    assert sent(proto) == []


@pytest.mark.parametrize("side", SIDES)
def test_a_pong_is_reported_and_not_answered(side: str) -> None:
    proto = make(side)
    assert proto.receive_data(peer_frame(side, PONG, b"beat")) == [(PONG, b"beat")]
    assert proto.data_to_send() == b""


@pytest.mark.parametrize("side", SIDES)
def test_a_ping_after_our_close_is_still_answered(side: str) -> None:
    proto = make(side)
    proto.close()
    proto.data_to_send()
    proto.receive_data(peer_frame(side, PING, b"?"))
    assert sent(proto) == [(PONG, b"?")]


@pytest.mark.parametrize("side", SIDES)
def test_pings_and_pongs_we_send(side: str) -> None:
    proto = make(side)
    proto.send_ping(b"1")
    proto.send_pong()
    assert sent(proto) == [(PING, b"1"), (PONG, b"")]
    with pytest.raises(LocalProtocolError):
        proto.send_ping(b"x" * 126)  # section 5.5: 125 bytes at most
    assert proto.data_to_send() == b""


# == 7.1.1 / 7.1.2: who ends the TCP connection ==============================================


def test_the_server_ends_the_connection_after_the_closing_handshake() -> None:
    proto = make("server")
    proto.receive_data(peer_frame("server", CLOSE, encode_close_payload(1000)))
    assert proto.should_end_transport and not proto.close_expected()


def test_the_client_waits_for_the_server_to_end_the_connection() -> None:
    for first in ("client", "server"):
        proto = make("client")
        if first == "client":
            proto.close()
        proto.receive_data(peer_frame("client", CLOSE, encode_close_payload(1000)))
        assert proto.state is CLOSED
        assert not proto.should_end_transport and proto.close_expected()
        proto.receive_eof()  # the server ended it
        assert proto.should_end_transport and not proto.close_expected()
        assert proto.close_code == 1000


# == 7.1.5: the close code when the TCP connection ends ======================================


@pytest.mark.parametrize("side", SIDES)
def test_end_without_a_close_frame_is_1006_and_sends_nothing(side: str) -> None:
    proto = make(side)
    proto.receive_data(peer_frame(side, TEXT, b"half")[:4])  # a frame cut short
    proto.receive_eof()
    assert (proto.close_code, proto.close_reason) == (1006, "")
    assert proto.state is CLOSED and proto.should_end_transport
    assert proto.data_to_send() == b""
    assert proto.receive_data(peer_frame(side, TEXT, b"late")) == []


@pytest.mark.parametrize("side", SIDES)
def test_end_after_our_close_without_an_answer_is_1006(side: str) -> None:
    proto = make(side)
    proto.close(1000)
    proto.receive_eof()
    assert proto.close_code == 1006 and proto.close_sent == (1000, "")


# == 7.1.7: failing the connection ===========================================================


@pytest.mark.parametrize("side", SIDES)
def test_failing_ends_the_connection_at_once_on_both_sides(side: str) -> None:
    proto = make(side)
    events = proto.receive_data(raw_frame(side, 0x83, b"reserved opcode"))
    assert events == [close_frame(1002, proto.close_reason)]
    assert proto.state is CLOSED and proto.should_end_transport and not proto.close_expected()
    assert proto.error is not None and proto.error.code == 1002
    # Nothing more is read, nothing more may be sent.
    assert proto.receive_data(peer_frame(side, TEXT, b"more")) == []
    with pytest.raises(LocalProtocolError):
        proto.send_text(b"x")


@pytest.mark.parametrize("side", SIDES)
def test_what_a_read_completed_before_a_violation_is_delivered(side: str) -> None:
    # As Node's ws: the messages before the bad frame, then the failure.
    proto = make(side)
    stream = (
        peer_frame(side, TEXT, b"first")
        + peer_frame(side, PING, b"p")
        + peer_frame(side, BINARY, b"second")
        + raw_frame(side, 0x83, b"reserved opcode")
        + peer_frame(side, TEXT, b"never read")
    )
    events = proto.receive_data(stream)
    assert events == [
        (TEXT, b"first"),
        (PING, b"p"),
        (BINARY, b"second"),
        close_frame(1002, proto.close_reason),
    ]
    assert proto.error is not None and proto.error.code == 1002
    # The ping was answered before the connection failed.
    assert sent(proto) == [(PONG, b"p"), close_frame(1002, proto.close_reason)]
    # A fragmented message cut by the violation is not delivered in part.
    proto = make(side)
    stream = peer_frame(side, TEXT, b"half", fin=False) + raw_frame(side, 0x81, b"interleaved")
    assert proto.receive_data(stream) == [close_frame(1002, proto.close_reason)]


@pytest.mark.parametrize("side", SIDES)
def test_a_violation_after_the_peers_close_is_not_read(side: str) -> None:
    # Section 5.5.1: the close frame is the last frame; what follows it in the
    # same read is dropped unread, so it cannot fail the connection.
    proto = make(side)
    stream = peer_frame(side, CLOSE, encode_close_payload(1000, "bye")) + raw_frame(
        side, 0x83, b"garbage"
    )
    assert proto.receive_data(stream) == [close_frame(1000, "bye")]
    assert proto.error is None and proto.close_code == 1000
    assert sent(proto) == [close_frame(1000)]


@pytest.mark.parametrize("side", SIDES)
def test_failing_after_our_close_sends_no_second_close(side: str) -> None:
    proto = make(side)
    proto.close(1000)
    assert sent(proto) == [close_frame(1000)]
    proto.receive_data(raw_frame(side, 0x8B, b""))  # a reserved control opcode
    assert proto.close_code == 1002 and proto.data_to_send() == b""
    assert proto.should_end_transport


def test_a_close_reason_is_cut_to_123_bytes_on_a_character_boundary() -> None:
    assert _wire_reason("short") == "short"
    cut = _wire_reason("\u00e9" * 100)  # 200 bytes of 2-byte characters
    assert cut == "\u00e9" * 61 and len(cut.encode()) == 122
    assert len(_wire_reason("x" * 300).encode()) == 123


# == Remote garbage never raises ============================================================


@settings(max_examples=300, deadline=None)
@given(
    side=st.sampled_from(SIDES),
    pieces=st.lists(st.binary(max_size=40), max_size=8),
    valid_prefix=st.booleans(),
)
def test_arbitrary_bytes_never_raise_and_close_once(
    side: str, pieces: list[bytes], valid_prefix: bool
) -> None:
    proto = make(side, max_message_size=200)
    if valid_prefix:
        pieces = [peer_frame(side, TEXT, b"ok"), *pieces]
    closes = 0
    for piece in pieces:
        was_closed = proto.state is CLOSED
        events = proto.receive_data(piece)
        if was_closed:
            assert events == []
        for i, (opcode, _) in enumerate(events):
            if opcode == CLOSE:
                closes += 1
                assert i == len(events) - 1  # nothing follows the close
        proto.data_to_send()
        if proto.state is CLOSED:
            # Section 7.1.1 / 7.1.7: a server ends TCP after any close, a client
            # only when it failed the connection.
            assert proto.close_code is not None
            assert proto.should_end_transport == (side == "server" or proto.error is not None)
    assert closes <= 1
    assert (closes == 1) == (proto.state is CLOSED)


# -- a scanner's turn (receive_scanned) -----------------------------------------------


class Recorder:
    """A scanner that records its calls and takes every read it is given."""

    def __init__(self) -> None:
        self.calls: list[tuple[bytes, int, bool]] = []

    def __call__(self, data: bytes, max_message_size: int, validate_utf8: bool = True) -> str:
        self.calls.append((data, max_message_size, validate_utf8))
        return "scanned"


def test_a_scanner_reads_between_frames() -> None:
    p = WebSocketProtocol(client_side=False, max_message_size=77, validate_utf8=False)
    scan = Recorder()
    data = encode_frame(TEXT, b"hi", mask=MASK)
    assert p.receive_scanned(data, scan) == "scanned"
    assert scan.calls == [(data, 77, False)]
    # The general parser is untouched: the same bytes read as usual.
    assert p.receive_data(data) == [(TEXT, b"hi")]


def test_no_scanner_inside_a_frame_or_a_fragmented_message() -> None:
    scan = Recorder()
    p = WebSocketProtocol(client_side=False, max_message_size=BIG)
    frame = encode_frame(TEXT, b"hello", mask=MASK)
    assert p.receive_data(frame[:3]) == []
    # A partial frame is held: the next read continues it.
    assert p.receive_scanned(frame[3:], scan) is None
    assert p.receive_data(frame[3:]) == [(TEXT, b"hello")]
    assert p.receive_scanned(frame, scan) == "scanned"
    # A fragmented message begun.
    assert p.receive_data(encode_frame(TEXT, b"he", fin=False, mask=MASK)) == []
    assert p.receive_scanned(frame, scan) is None
    assert len(scan.calls) == 1


def test_no_scanner_once_closing() -> None:
    scan = Recorder()
    p = WebSocketProtocol(client_side=False, max_message_size=BIG)
    p.close()
    assert p.receive_scanned(encode_frame(TEXT, b"x", mask=MASK), scan) is None
    c = WebSocketProtocol(client_side=True, max_message_size=BIG, mask_key=Keys())
    c.close()
    assert c.receive_scanned(encode_frame(TEXT, b"x"), scan) is None
    assert scan.calls == []


def test_a_client_reader_takes_its_scanner_too() -> None:
    scan = Recorder()
    c = WebSocketProtocol(client_side=True, max_message_size=55, mask_key=Keys())
    data = encode_frame(TEXT, b"hi")
    assert c.receive_scanned(data, scan) == "scanned"
    assert scan.calls == [(data, 55, True)]
    # Inside a frame, the general parser keeps it.
    assert c.receive_data(data[:3]) == []
    assert c.receive_scanned(data[3:], scan) is None
    assert len(scan.calls) == 1
