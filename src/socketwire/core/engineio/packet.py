"""Engine.IO v4 packets and polling payloads (layer 0, sans-I/O).

Engine.IO protocol v4, "Protocol" and "Packet encoding": a packet is a type digit
followed by an optional payload. Over WebSocket each packet is one frame; a binary
frame is a ``message`` packet carried as is. Over HTTP long-polling several packets
are joined with the record separator ``\\x1e`` and a binary message is written as
``b`` + base64.

Text is kept as UTF-8 ``bytes`` end to end: it is what the sockets carry, and the
JSON library reads and writes bytes directly.
"""

from __future__ import annotations

import binascii
from enum import IntEnum
from typing import Final

from socketwire.errors import RemoteProtocolError

__all__ = [
    "CLOSE",
    "MESSAGE_PREFIX",
    "NOOP",
    "PING",
    "PONG",
    "PREFIX",
    "PROBE_PING",
    "PROBE_PONG",
    "SEPARATOR",
    "EnginePacketType",
    "decode_payload",
    "encode_payload",
    "encode_polling_binary",
    "parse_text_packet",
]


class EnginePacketType(IntEnum):
    """Engine.IO packet types (spec: "Protocol")."""

    OPEN = 0
    CLOSE = 1
    PING = 2
    PONG = 3
    MESSAGE = 4
    UPGRADE = 5
    NOOP = 6


SEPARATOR: Final = b"\x1e"
"""Record separator between packets of a polling payload (spec: "HTTP long-polling")."""

# One-byte type prefixes, built once: the hot paths concatenate with these.
PREFIX: Final = tuple(str(t).encode() for t in range(7))
MESSAGE_PREFIX: Final = b"4"
PING: Final = b"2"
PONG: Final = b"3"
NOOP: Final = b"6"
CLOSE: Final = b"1"
PROBE_PING: Final = b"2probe"
PROBE_PONG: Final = b"3probe"

# Type digits as byte values (b"0"[0] == 48).
_ZERO = 48
_MAX_TYPE = 6


def parse_text_packet(data: bytes) -> tuple[int, bytes]:
    """Split one text packet into its type and payload.

    Raises ``RemoteProtocolError`` for an empty packet or an unknown type.
    """
    if not data:
        raise RemoteProtocolError("empty Engine.IO packet")
    ptype = data[0] - _ZERO
    if ptype < 0 or ptype > _MAX_TYPE:
        raise RemoteProtocolError(f"unknown Engine.IO packet type {data[:1]!r}")
    return ptype, data[1:]


def encode_polling_binary(data: bytes) -> bytes:
    """A binary message as it travels in a polling payload: ``b`` + base64."""
    return b"b" + binascii.b2a_base64(data, newline=False)


def decode_payload(body: bytes) -> list[tuple[int, bytes, bool]]:
    """Decode a polling payload into ``(type, data, is_binary)`` triples.

    A binary triple is always a ``message`` (type 4) with the decoded bytes.
    Raises ``RemoteProtocolError`` on an empty payload, an empty packet, an unknown
    packet type or invalid base64.
    """
    if not body:
        raise RemoteProtocolError("empty polling payload")
    out: list[tuple[int, bytes, bool]] = []
    for part in body.split(SEPARATOR):
        if part[:1] == b"b":
            try:
                out.append(
                    (
                        EnginePacketType.MESSAGE,
                        binascii.a2b_base64(part[1:], strict_mode=True),
                        True,
                    )
                )
            except binascii.Error as exc:
                raise RemoteProtocolError(f"invalid base64 in polling payload: {exc}") from None
        else:
            ptype, data = parse_text_packet(part)
            out.append((ptype, data, False))
    return out


def encode_payload(segments: list[bytes]) -> bytes:
    """Join already-encoded polling segments (see ``encode_polling_binary``)."""
    return SEPARATOR.join(segments)
