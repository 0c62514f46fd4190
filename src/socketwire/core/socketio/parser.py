"""The parser interface: how Socket.IO packets become Engine.IO messages (layer 0).

Node's socket.io takes a ``parser`` option (socket.io-parser by default,
socket.io-msgpack-parser as the common alternative); client and server must use
the same one. A parser here is an object with:

* ``encode(packet)``, ``encode_event(nsp, data, ack_id)`` and
  ``encode_ack(nsp, data, ack_id)``, each returning ``(text, binaries)``: the text
  message (UTF-8, without the Engine.IO ``4``; empty when the parser sends no
  text) followed by binary messages;
* ``decoder()``, a new per-connection decoder with ``feed_text``/``feed_binary``
  returning a ``Packet`` once one is complete, and ``reset``.
"""

from __future__ import annotations

from typing import Any, Protocol

from socketwire.core.socketio import packet as _default
from socketwire.core.socketio.packet import Packet

__all__ = ["DEFAULT_PARSER", "Decoder", "DefaultParser", "Parser", "resolve_parser"]


class Decoder(Protocol):
    """A per-connection decoder: messages in, a packet out once one is complete."""

    def feed_text(self, data: bytes) -> Packet | None: ...

    def feed_binary(self, data: bytes) -> Packet | None: ...

    def reset(self) -> None: ...


class Parser(Protocol):
    """A packet format: the encoders, and a factory of per-connection decoders."""

    def encode(self, packet: Packet) -> tuple[bytes, list[bytes]]: ...

    def encode_event(
        self, nsp: str, data: list[Any], ack_id: int | None = None
    ) -> tuple[bytes, list[bytes]]: ...

    def encode_ack(self, nsp: str, data: list[Any], ack_id: int) -> tuple[bytes, list[bytes]]: ...

    def decoder(self) -> Decoder: ...


class DefaultParser:
    """socket.io-parser's format: text packets with binary attachments (the spec's)."""

    __slots__ = ()

    encode = staticmethod(_default.encode)
    encode_event = staticmethod(_default.encode_event)
    encode_ack = staticmethod(_default.encode_ack)

    @staticmethod
    def decoder() -> Decoder:
        return _default.PacketDecoder()


DEFAULT_PARSER = DefaultParser()


def resolve_parser(parser: Any) -> Parser:
    """The parser for the ``parser`` option: None (default), ``"msgpack"`` or an object."""
    if parser is None or parser == "default":
        return DEFAULT_PARSER
    if parser == "msgpack":
        from socketwire.core.socketio.msgpack import MSGPACK_PARSER

        return MSGPACK_PARSER
    if isinstance(parser, str):
        raise ValueError(f"unknown parser {parser!r} (use None, 'msgpack' or a parser object)")
    needed = ("encode", "encode_event", "encode_ack", "decoder")
    missing = [name for name in needed if not hasattr(parser, name)]
    if missing:
        raise TypeError(f"parser object lacks {missing}")
    result: Parser = parser
    return result
