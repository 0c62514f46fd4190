"""One outgoing Engine.IO message, encoded once for every recipient (layer 0, sans-I/O).

Every layer may build or pass an ``OutgoingMessage``: the Socket.IO server and
the adapters build one per emit or broadcast, the Engine.IO runtime writes it to
a polling buffer or a WebSocket, and a front door that frames WebSocket messages
itself takes its packets. Server frames are unmasked (RFC 6455 section 5.1), so
the framed bytes are the same for every WebSocket recipient.
"""

from __future__ import annotations

from typing import Final

from socketwire.core.engineio.packet import MESSAGE_PREFIX
from socketwire.core.websocket.frames import Opcode, encode_frame

_TEXT = Opcode.TEXT
_BINARY = Opcode.BINARY
#: Frame header + Engine.IO "4" for each text shorter than 125 bytes, indexed by
#: its length (RFC 6455 section 5.2: FIN + text opcode, unmasked 7-bit length).
TEXT_MESSAGE_HEADERS: Final = tuple(bytes((0x81, n + 1)) + MESSAGE_PREFIX for n in range(125))


def frame_text_message(text: bytes) -> bytes:
    """The unmasked WebSocket frame of one Engine.IO message packet of ``text``.

    What ``OutgoingMessage(text).frames`` holds, without building the message:
    the per-socket emit, framed with one concatenation.
    """
    n = len(text)
    if n < 125:
        return TEXT_MESSAGE_HEADERS[n] + text
    return encode_frame(_TEXT, MESSAGE_PREFIX + text)


class OutgoingMessage:
    """One Engine.IO message (with its binary attachments), encoded once.

    A broadcast builds one of these and hands it to every recipient: WebSocket
    recipients get the same framed bytes (built on first use), polling recipients
    the same encoded packets.
    """

    __slots__ = ("framed", "packets")

    def __init__(self, text: bytes, attachments: list[bytes] | None = None) -> None:
        # Engine.IO "message" packets: the text one gets the "4" prefix; binary
        # attachments travel as binary messages (Socket.IO v5 "Packet encoding").
        # An empty text part means a parser that only sends binary messages (msgpack).
        packets = [(MESSAGE_PREFIX + text, False)] if text else []
        if attachments:
            packets.extend((a, True) for a in attachments)
        self.packets = packets
        #: ``frames`` once built (None before): a broadcast's writer reads this
        #: attribute for each recipient rather than call the property.
        self.framed: bytes | None = None

    @property
    def frames(self) -> bytes:
        """Every packet of the message as unmasked WebSocket frames, concatenated."""
        f = self.framed
        if f is None:
            f = b"".join(encode_frame(_BINARY if b else _TEXT, d) for d, b in self.packets)
            self.framed = f
        return f


__all__ = ["TEXT_MESSAGE_HEADERS", "OutgoingMessage", "frame_text_message"]
