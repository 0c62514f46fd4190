"""RFC 6455 WebSocket framing: layer 0, sans-I/O.

This module turns bytes into WebSocket messages (:class:`FrameReader`) and
messages into bytes (:func:`encode_frame`).  It performs no I/O, imports no
event loop and holds no randomness: the caller moves the bytes and supplies
masking keys.

Every rule the *peer* can break raises
:class:`~socketwire.errors.WebSocketProtocolError` carrying the close code to
answer with; misuse by our own code raises
:class:`~socketwire.errors.LocalProtocolError`.

No extension is ever negotiated (no ``permessage-deflate``), so the RSV bits
must always be zero.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from enum import IntEnum
from typing import Final

from socketwire.errors import LocalProtocolError, WebSocketProtocolError

__all__ = [
    "MAX_CONTROL_PAYLOAD",
    "MAX_HEADER_SIZE",
    "SPEEDUPS",
    "ZERO_MASK",
    "CloseCode",
    "FrameReader",
    "Opcode",
    "apply_mask",
    "decode_close_payload",
    "encode_close_payload",
    "encode_frame",
    "xor_unchecked",
]


class Opcode(IntEnum):
    """Frame opcodes (RFC 6455 section 5.2, 11.8)."""

    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


class CloseCode(IntEnum):
    """Close status codes (RFC 6455 section 7.4.1)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS = 1005
    ABNORMAL = 1006
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011


#: Largest payload of a control frame (RFC 6455 section 5.5).
MAX_CONTROL_PAYLOAD: Final = 125
#: Largest frame header: 2 bytes + 8 bytes of extended length + 4 bytes of mask key.
MAX_HEADER_SIZE: Final = 14

ZERO_MASK: Final = b"\x00\x00\x00\x00"

# Opcode members indexed by value, so the reader returns enum members without
# paying for an ``Opcode(value)`` call per message.  Only valid opcodes are
# ever looked up.
_OPCODE_BY_VALUE: Final[tuple[Opcode, ...]] = tuple(
    Opcode(v) if v in Opcode._value2member_map_ else Opcode.CONTINUATION for v in range(16)
)

# Close codes that may appear in a CLOSE frame on the wire (RFC 6455 section
# 7.4.1 and 7.4.2, plus 1012-1014 registered later in the IANA registry of
# section 11.7).  1004 is reserved, 1005/1006/1015 must never be sent, and
# 3000-4999 belong to libraries and applications.
_WIRE_CLOSE_CODES: Final = frozenset((1000, 1001, 1002, 1003, *range(1007, 1015)))


def _close_code_allowed(code: int) -> bool:
    return code in _WIRE_CLOSE_CODES or 3000 <= code <= 4999


# Ready-made two-byte headers for every valid first byte and every 7-bit
# length, so that encoding a small frame is one dict lookup plus one concat.
_VALID_FIRST_BYTES: Final = tuple(
    (0x80 if fin else 0) | op
    for fin in (True, False)
    for op in (0, 1, 2, 8, 9, 10)
    if fin or op < 8  # control frames must not be fragmented (section 5.5)
)
_SHORT_HEADERS: Final[dict[int, tuple[bytes, ...]]] = {
    b0: tuple(bytes((b0, n)) for n in range(126)) for b0 in _VALID_FIRST_BYTES
}
_pack_16: Final = struct.Struct("!BBH").pack
_pack_64: Final = struct.Struct("!BBQ").pack


def _xor_python(data: bytes, mask: bytes) -> bytes:
    """The pure-Python XOR: one big-integer operation, much faster than a loop."""
    n = len(data)
    key = mask * (n >> 2) + mask[: n & 3]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


# The compiled XOR (socketwire/_speedups.c) when it was built, unless
# SOCKETWIRE_NO_SPEEDUPS is set (the tests run both).
def _compiled_xor() -> Callable[[bytes, bytes], bytes] | None:
    if os.environ.get("SOCKETWIRE_NO_SPEEDUPS"):
        return None
    try:
        from socketwire._speedups import apply_mask
    except ImportError:
        return None
    return apply_mask


#: The XOR itself, without ``apply_mask``'s checks: for callers that hold a
#: 4-byte key from a parsed frame header.
xor_unchecked: Final = _compiled_xor() or _xor_python
SPEEDUPS: Final = xor_unchecked is not _xor_python


def apply_mask(data: bytes, mask: bytes) -> bytes:
    """XOR ``data`` with the 4-byte ``mask`` repeated (RFC 6455 section 5.3).

    Masking is its own inverse: the same call masks and unmasks.
    """
    if len(mask) != 4:
        raise LocalProtocolError(f"a masking key is 4 bytes, got {len(mask)}")
    if not data or mask == ZERO_MASK:
        return bytes(data)
    return xor_unchecked(data, mask)


def encode_frame(
    opcode: int, payload: bytes, *, fin: bool = True, mask: bytes | None = None
) -> bytes:
    """Return one complete frame carrying ``payload``.

    A server sends unmasked frames (``mask=None``); a client must mask every
    frame with a fresh random 4-byte key it supplies (RFC 6455 section 5.3).
    For a fragmented message the first frame has the data opcode and
    ``fin=False``, the following ones ``Opcode.CONTINUATION``, the last one
    ``fin=True`` (section 5.4).
    """
    n = len(payload)
    b0 = opcode | 0x80 if fin else opcode
    headers = _SHORT_HEADERS.get(b0)
    if headers is None or b0 & 0x7F != opcode:
        if opcode in (8, 9, 10):
            raise LocalProtocolError("control frames cannot be fragmented (RFC 6455 5.5)")
        raise LocalProtocolError(f"invalid opcode {opcode!r}")
    if opcode >= 8 and n > MAX_CONTROL_PAYLOAD:
        # RFC 6455 section 5.5: control frame payloads are at most 125 bytes.
        raise LocalProtocolError(f"control frame payload of {n} bytes exceeds 125")
    if mask is None:
        # Server side, the hot path: RFC 6455 section 5.2 length encoding.
        if n < 126:
            return headers[n] + payload
        if n < 65536:
            return _pack_16(b0, 126, n) + payload
        return _pack_64(b0, 127, n) + payload
    if len(mask) != 4:
        raise LocalProtocolError(f"a masking key is 4 bytes, got {len(mask)}")
    if n < 126:
        header = bytes((b0, 0x80 | n))
    elif n < 65536:
        header = _pack_16(b0, 0xFE, n)
    else:
        header = _pack_64(b0, 0xFF, n)
    return b"".join((header, mask, apply_mask(payload, mask)))


def encode_close_payload(code: int = 1000, reason: str = "") -> bytes:
    """Return the payload of a CLOSE frame (RFC 6455 section 5.5.1).

    ``code=1005`` (NO_STATUS) with no reason gives the empty payload: a close
    frame without a status code, as :func:`decode_close_payload` reads it back.
    """
    if code == CloseCode.NO_STATUS:
        if reason:
            raise LocalProtocolError("a close reason needs a close code")
        return b""
    if not _close_code_allowed(code):
        raise LocalProtocolError(f"close code {code} cannot be sent (RFC 6455 7.4)")
    data = reason.encode("utf-8")
    if len(data) > MAX_CONTROL_PAYLOAD - 2:
        raise LocalProtocolError(f"close reason of {len(data)} bytes exceeds 123 bytes")
    return code.to_bytes(2, "big") + data


def decode_close_payload(payload: bytes) -> tuple[int, str]:
    """Return ``(code, reason)`` from a CLOSE payload; ``b""`` gives ``(1005, "")``.

    Raises :class:`WebSocketProtocolError` (1002) for a one-byte payload or a
    code not allowed on the wire, and (1007) for a reason that is not UTF-8.
    """
    n = len(payload)
    if n == 0:
        # RFC 6455 section 7.1.5: no status code -> 1005.
        return CloseCode.NO_STATUS, ""
    if n == 1:
        # RFC 6455 section 5.5.1: a body starts with a 2-byte status code.
        raise WebSocketProtocolError(1002, "close frame payload of one byte")
    code = (payload[0] << 8) | payload[1]
    if not _close_code_allowed(code):
        # RFC 6455 section 7.4.1 / 7.4.2: reserved or out-of-range code.
        raise WebSocketProtocolError(1002, f"invalid close code {code}")
    try:
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        # RFC 6455 section 5.5.1: the reason is UTF-8 encoded.
        raise WebSocketProtocolError(1007, "close reason is not valid UTF-8") from None
    return code, reason


class FrameReader:
    """Incremental parser of a WebSocket byte stream into messages.

    :meth:`feed` accepts the stream cut anywhere and returns the messages
    completed by the new bytes: ``(Opcode.TEXT | Opcode.BINARY, payload)`` for
    whole reassembled data messages and ``(Opcode.PING | PONG | CLOSE,
    payload)`` for control frames, in stream order.  Payloads are unmasked
    ``bytes``; text is validated but not decoded.

    ``client_side=False`` (a server) requires masked frames,
    ``client_side=True`` requires unmasked ones (RFC 6455 section 5.1).

    A CLOSE payload is validated (see :func:`decode_close_payload`) but
    returned raw.  The reader keeps parsing after a CLOSE: stopping is the
    caller's decision.  Once a :class:`WebSocketProtocolError` was raised,
    every later :meth:`feed` raises it again.
    """

    __slots__ = (
        "_buf",
        "_client_side",
        "_error",
        "_flen",
        "_frag_opcode",
        "_frag_size",
        "_max",
        "_msg",
        "_validate_utf8",
    )

    def __init__(
        self, *, max_message_size: int, client_side: bool = False, validate_utf8: bool = True
    ) -> None:
        if max_message_size < 0:
            raise LocalProtocolError("max_message_size must be >= 0")
        self._max = max_message_size
        self._client_side = client_side
        self._validate_utf8 = validate_utf8
        self._error: WebSocketProtocolError | None = None
        # Bytes of one incomplete frame split across feed() calls: a bytearray
        # while there are some, else the shared empty bytes (an idle connection
        # keeps no buffer: two empty bytearrays cost it 112 bytes).
        self._buf: bytearray | bytes = b""
        # Total size of the frame in _buf once its header is known, else 0.
        self._flen = 0
        # Fragmented message in progress (RFC 6455 section 5.4): opcode
        # (0 = none), payload so far (a bytearray from the first fragment on),
        # and its size.
        self._frag_opcode = 0
        self._msg: bytearray | bytes = b""
        self._frag_size = 0

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Consume ``data`` and return the messages it completes, in order."""
        out: list[tuple[int, bytes]] = []
        self.feed_into(data, out)
        return out

    def feed_into(self, data: bytes, out: list[tuple[int, bytes]]) -> None:
        """:meth:`feed`, appending to ``out``: when ``data`` breaks the protocol,
        ``out`` still holds the messages completed before the violation."""
        if self._error is not None:
            raise self._error
        try:
            pos = 0
            if self._buf:
                pos = self._fill(data, out)
                if self._buf:
                    return
            pos = self._parse(data, pos, out)
            if pos < len(data):
                # Keep only the incomplete frame: its header, if complete, was
                # already checked, so this is at most max_message_size + 14 bytes.
                # (_buf is empty here: _fill returned early otherwise.)
                self._buf = bytearray(data[pos:])
        except WebSocketProtocolError as exc:
            self._error = exc
            raise

    def _fill(self, data: bytes, out: list[tuple[int, bytes]]) -> int:
        """Complete the frame held in ``_buf`` from ``data``; return bytes used.

        Takes only what the pending frame needs (at most up to a full header
        while the header is incomplete), so the buffer never grows past one
        frame, whatever the size of ``data``.
        """
        buf = self._buf
        assert isinstance(buf, bytearray)  # only called while it holds bytes
        n = len(data)
        used = 0
        while buf and used < n:
            flen = self._flen
            take = (flen or MAX_HEADER_SIZE) - len(buf)
            chunk = data[used : used + take]
            buf += chunk
            used += len(chunk)
            if flen and len(buf) < flen:
                break  # payload still incomplete; all of data used
            consumed = self._parse(bytes(buf), 0, out)
            del buf[:consumed]
        if not buf:
            self._buf = b""
        return used

    def _parse(self, data: bytes, pos: int, out: list[tuple[int, bytes]]) -> int:
        """Parse the whole frames of ``data[pos:]`` into ``out``.

        Returns the position of the first incomplete frame and sets ``_flen``
        to its total size once its length is known (header checked), else 0.
        """
        end = len(data)
        client_side = self._client_side
        flen = 0
        while end - pos >= 2:
            # RFC 6455 section 5.2: FIN, RSV1-3, opcode | MASK, payload length.
            b0 = data[pos]
            b1 = data[pos + 1]
            if b0 & 0x70:
                # Section 5.2: RSV bits must be 0 unless an extension says otherwise.
                raise WebSocketProtocolError(1002, "reserved bits set, no extension negotiated")
            opcode = b0 & 0x0F
            length = b1 & 0x7F
            if opcode >= 8:
                if opcode > 10:
                    # Section 5.2: 0xB-0xF are reserved control opcodes.
                    raise WebSocketProtocolError(1002, f"reserved opcode {opcode:#x}")
                if not b0 & 0x80:
                    # Section 5.5: control frames must not be fragmented.
                    raise WebSocketProtocolError(1002, "fragmented control frame")
                if length > MAX_CONTROL_PAYLOAD:
                    # Section 5.5: control payloads are at most 125 bytes.
                    raise WebSocketProtocolError(1002, "control frame payload over 125 bytes")
            elif opcode == 0:
                if not self._frag_opcode:
                    # Section 5.4: a continuation needs a message in progress.
                    raise WebSocketProtocolError(1002, "continuation frame with no message")
            elif opcode > 2:
                # Section 5.2: 0x3-0x7 are reserved data opcodes.
                raise WebSocketProtocolError(1002, f"reserved opcode {opcode:#x}")
            elif self._frag_opcode:
                # Section 5.4: fragments of one message are not interleaved.
                raise WebSocketProtocolError(1002, "new data frame inside a fragmented message")
            if b1 & 0x80:
                if client_side:
                    # Section 5.1: a server must not mask the frames it sends.
                    raise WebSocketProtocolError(1002, "masked frame from the server")
            elif not client_side:
                # Section 5.1: a client must mask every frame it sends.
                raise WebSocketProtocolError(1002, "unmasked frame from the client")
            hp = pos + 2
            if length >= 126:
                if length == 126:
                    if end - hp < 2:
                        break
                    length = (data[hp] << 8) | data[hp + 1]
                    hp += 2
                else:
                    if end - hp < 8:
                        break
                    length = int.from_bytes(data[hp : hp + 8], "big")
                    if length >> 63:
                        # Section 5.2: the most significant bit must be 0.
                        raise WebSocketProtocolError(1002, "64-bit frame length has its MSB set")
                    hp += 8
            if opcode < 8 and self._frag_size + length > self._max:
                # Checked from the header, before any payload is buffered.
                raise WebSocketProtocolError(
                    1009, f"message over {self._max} bytes (max_message_size)"
                )
            if not client_side:
                hp += 4  # the masking key
            stop = hp + length
            if stop > end:
                # Header checked: keep waiting for exactly this frame's bytes.
                flen = stop - pos
                break
            payload = data[hp:stop]
            if not client_side and length:
                mask = data[hp - 4 : hp]
                if mask != ZERO_MASK:
                    payload = xor_unchecked(payload, mask)  # section 5.3
            pos = stop

            if opcode >= 8:
                if opcode == 8:
                    decode_close_payload(payload)  # validates; raises 1002 / 1007
                out.append((_OPCODE_BY_VALUE[opcode], payload))
            elif b0 & 0x80:
                if opcode == 0:
                    msg = self._msg
                    msg += payload
                    payload = bytes(msg)
                    opcode = self._frag_opcode
                    self._msg = b""
                    self._frag_opcode = 0
                    self._frag_size = 0
                if opcode == 1 and self._validate_utf8 and not payload.isascii():
                    try:
                        payload.decode("utf-8")
                    except UnicodeDecodeError:
                        # Section 8.1: text must be valid UTF-8.
                        raise WebSocketProtocolError(1007, "text message is not UTF-8") from None
                out.append((_OPCODE_BY_VALUE[opcode], payload))
            elif opcode == 0:
                self._msg += payload
                self._frag_size += length
            else:
                self._frag_opcode = opcode
                self._msg = bytearray(payload)
                self._frag_size = length
        self._flen = flen
        return pos
