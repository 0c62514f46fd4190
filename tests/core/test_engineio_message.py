"""Tests of the outgoing Engine.IO message (socketwire.core.engineio.message).

Socket.IO v5 "Packet encoding": a packet's text part travels as one Engine.IO
"message" packet (type 4) and each binary attachment as a binary message right
after it.  RFC 6455 section 5.1: server frames are not masked, so the framed
bytes are the same for every WebSocket recipient and are built once.
"""

from __future__ import annotations

from socketwire.core.engineio.message import OutgoingMessage, frame_text_message
from socketwire.core.websocket.frames import Opcode, encode_frame


def test_text_only() -> None:
    message = OutgoingMessage(b'2["hello"]')
    assert message.packets == [(b'42["hello"]', False)]
    # a text frame: FIN + opcode 1, unmasked length 11, the payload
    assert message.frames == b"\x81\x0b" + b'42["hello"]'


def test_text_with_attachments() -> None:
    text = b'51-["up",{"_placeholder":true,"num":0}]'
    message = OutgoingMessage(text, [b"\x01\x02", b""])
    assert message.packets == [(b"4" + text, False), (b"\x01\x02", True), (b"", True)]
    assert message.frames == (
        encode_frame(Opcode.TEXT, b"4" + text)
        + b"\x82\x02\x01\x02"  # FIN + opcode 2, length 2
        + b"\x82\x00"
    )


def test_binary_only() -> None:
    # The msgpack parser sends no text part: binary messages alone.
    message = OutgoingMessage(b"", [b"\x83\xa4type\x02"])
    assert message.packets == [(b"\x83\xa4type\x02", True)]
    assert message.frames == b"\x82\x07\x83\xa4type\x02"


def test_frames_are_built_once() -> None:
    message = OutgoingMessage(b"2[1]", [])
    first = message.frames
    assert message.frames is first
    assert OutgoingMessage(b"2[1]").frames == first


def test_frame_text_message_matches_the_message_frames() -> None:
    # Short (7-bit length, from the header table) and long (16-bit length) texts:
    # the per-socket framing equals what a broadcast's message would hold.
    for n in (0, 1, 123, 124, 125, 126, 1000, 70_000):
        text = b"x" * n
        if n:  # an empty text makes a message of no text packet
            assert frame_text_message(text) == OutgoingMessage(text).frames
        assert frame_text_message(text) == encode_frame(Opcode.TEXT, b"4" + text)
