"""Tests of the parser option (socketwire.core.socketio.parser).

Node's socket.io takes ``parser``: socket.io-parser by default, the msgpack parser
by name here, or any object with the parser's methods.
"""

from __future__ import annotations

from typing import Any

import pytest

from socketwire.core.socketio import packet
from socketwire.core.socketio.msgpack import MSGPACK_PARSER
from socketwire.core.socketio.packet import Packet, PacketDecoder, PacketType
from socketwire.core.socketio.parser import DEFAULT_PARSER, resolve_parser


def test_default_parser_is_the_packet_codec() -> None:
    assert resolve_parser(None) is DEFAULT_PARSER
    assert resolve_parser("default") is DEFAULT_PARSER
    event = Packet(PacketType.EVENT, "/", ["a", 1], 3)
    assert DEFAULT_PARSER.encode(event) == packet.encode(event) == (b'23["a",1]', [])
    assert DEFAULT_PARSER.encode_event("/", ["a", 1], 3) == (b'23["a",1]', [])
    assert DEFAULT_PARSER.encode_ack("/", ["ok"], 3) == (b'33["ok"]', [])
    decoder = DEFAULT_PARSER.decoder()
    assert isinstance(decoder, PacketDecoder)
    assert DEFAULT_PARSER.decoder() is not decoder
    assert decoder.feed_text(b'23["a",1]') == event


def test_msgpack_by_name() -> None:
    assert resolve_parser("msgpack") is MSGPACK_PARSER


class Custom:
    def encode(self, p: Packet) -> tuple[bytes, list[bytes]]:
        return b"", []

    def encode_event(self, nsp: str, data: list[Any], ack_id: int | None = None) -> Any:
        return b"", []

    def encode_ack(self, nsp: str, data: list[Any], ack_id: int) -> Any:
        return b"", []

    def decoder(self) -> PacketDecoder:
        return PacketDecoder()


def test_an_object_with_the_methods_is_taken_as_it_is() -> None:
    custom = Custom()
    assert resolve_parser(custom) is custom


def test_refusals() -> None:
    with pytest.raises(ValueError, match="unknown parser 'json'"):
        resolve_parser("json")

    class Partial:
        def encode(self, p: Packet) -> tuple[bytes, list[bytes]]:
            return b"", []

    with pytest.raises(TypeError, match=r"lacks \['encode_event', 'encode_ack', 'decoder'\]"):
        resolve_parser(Partial())
