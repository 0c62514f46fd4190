"""The RFC 6455 WebSocket protocol of one connection, for either side: layer 0, sans-I/O.

:class:`WebSocketProtocol` holds every rule of a WebSocket connection once the
opening handshake is done. The built-in server (:mod:`socketwire.serve`) and the
client (:mod:`socketwire.client.websocket`) both drive it and know no control
frame themselves:

* **input**: :meth:`~WebSocketProtocol.receive_data` (bytes from the peer) and
  :meth:`~WebSocketProtocol.receive_eof` (the peer ended the TCP connection);
* **output**: the events ``receive_data`` returns, the bytes of
  :meth:`~WebSocketProtocol.data_to_send`, and the close state (``state``,
  ``close_code``/``close_reason``, ``should_end_transport``,
  :meth:`~WebSocketProtocol.close_expected`);
* **commands**: ``send_text``, ``send_binary``, ``send_ping``, ``send_pong`` and
  ``close(code, reason)``; misuse (sending after our close frame, a close code
  that may not go on the wire, an oversized control payload) raises
  :class:`~socketwire.errors.LocalProtocolError` at once, before anything changes.

The protocol answers pings (section 5.5.2) and the peer's close frame (section
5.5.1) by itself, and fails the connection on any frame the peer gets wrong
(section 7.1.7). Framing and unmasking are
:class:`~socketwire.core.websocket.frames.FrameReader` and ``encode_frame``
underneath. Nothing here reads a clock or draws randomness: a client passes the
function that draws its masking keys, and how long to wait for the peer is the
I/O layer's choice (``close_expected()`` says when a wait starts).

The protocol extends ``FrameReader`` rather than holding one: a connection is one
object, and the fast path of :meth:`~WebSocketProtocol.receive_data` (one whole
small masked text frame per read, the bulk of a server's traffic) reads the
parser's state directly, without a call. ``feed`` is the parser underneath; a
caller drives the protocol through ``receive_data`` only.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum
from typing import Final, Protocol, TypeVar

from socketwire.core.websocket.frames import (
    MAX_CONTROL_PAYLOAD,
    ZERO_MASK,
    CloseCode,
    FrameReader,
    Opcode,
    decode_close_payload,
    encode_close_payload,
    encode_frame,
    xor_unchecked,
)
from socketwire.errors import LocalProtocolError, WebSocketProtocolError

__all__ = ["Scanner", "WebSocketProtocol", "WebSocketState"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Scanner(Protocol[T_co]):
    """What ``WebSocketProtocol.receive_scanned`` calls."""

    def __call__(
        self, data: bytes, max_message_size: int, validate_utf8: bool = True, /
    ) -> T_co | None: ...


class WebSocketState(IntEnum):
    """Where a connection is in its life (RFC 6455 section 7)."""

    #: Data flows both ways.
    OPEN = 1
    #: Our close frame is sent, the peer's has not come yet (section 7.1.2).
    CLOSING = 2
    #: Both close frames went by, the connection was failed, or the TCP
    #: connection ended.
    CLOSED = 3


_OPEN: Final = WebSocketState.OPEN
_CLOSING: Final = WebSocketState.CLOSING
_CLOSED: Final = WebSocketState.CLOSED
_TEXT: Final = Opcode.TEXT
_BINARY: Final = Opcode.BINARY
_CLOSE: Final = Opcode.CLOSE
_PING: Final = Opcode.PING
_PONG: Final = Opcode.PONG

# A close frame's reason fits in the 125 bytes of a control payload after the
# 2-byte code (section 5.5.1).
_MAX_REASON: Final = MAX_CONTROL_PAYLOAD - 2


def _wire_reason(reason: str) -> str:
    """``reason`` cut to what a close frame can carry, on a UTF-8 character boundary."""
    data = reason.encode("utf-8")
    if len(data) <= _MAX_REASON:
        return reason
    return data[:_MAX_REASON].decode("utf-8", "ignore")


class WebSocketProtocol(FrameReader):
    """One WebSocket connection after its opening handshake (RFC 6455 sections 5-7).

    ``client_side=False`` is a server: it reads masked frames and writes unmasked
    ones; ``client_side=True`` is a client, which masks each frame it writes with
    a key from ``mask_key()`` (4 fresh unpredictable bytes, section 5.3). A
    message over ``max_message_size`` bytes fails the connection with 1009; a text
    message that is not UTF-8 fails it with 1007 (section 8.1) unless
    ``validate_utf8`` is False.

    :meth:`receive_data` returns the events its bytes complete, in order:
    ``(Opcode.TEXT | Opcode.BINARY, payload)`` for each whole data message,
    ``(Opcode.PING | Opcode.PONG, payload)`` for control frames (a pong is already
    queued for a ping), and a last ``(Opcode.CLOSE, payload)`` when the incoming
    stream ends: the peer's close frame payload (its answer is already queued), or,
    when the peer broke the protocol, the payload of the close frame that fails
    the connection (``error`` then holds the violation; the messages the same
    read completed before the violation come first). Events are returned
    rather than queued for a second call: one list per read, which the hot path
    hands on as is.

    After each call, the caller writes :meth:`data_to_send`, and ends the TCP
    connection once ``should_end_transport`` is set. When :meth:`close_expected`
    is True, the peer is expected to finish (its close frame, or a server ending
    the TCP connection): the caller bounds that wait with its own timer.
    """

    __slots__ = ("_close", "_mask_key", "_out", "should_end_transport", "state")

    def __init__(
        self,
        *,
        client_side: bool,
        max_message_size: int,
        mask_key: Callable[[], bytes] | None = None,
        validate_utf8: bool = True,
    ) -> None:
        if client_side and mask_key is None:
            raise LocalProtocolError("a client masks every frame: give mask_key (RFC 6455 5.3)")
        if not client_side and mask_key is not None:
            raise LocalProtocolError("a server never masks its frames (RFC 6455 5.1)")
        super().__init__(
            max_message_size=max_message_size,
            client_side=client_side,
            validate_utf8=validate_utf8,
        )
        self._mask_key = mask_key
        # Bytes queued for data_to_send(); created on first use, so an idle
        # connection keeps no list.
        self._out: list[bytes] | None = None
        self.state = _OPEN
        # What the closing handshake said; created when it starts, so an open
        # connection holds one slot for it (see the properties below).
        self._close: _CloseInfo | None = None
        #: Whether this side should end the TCP connection now, after writing
        #: ``data_to_send()``.
        self.should_end_transport = False

    # -- the close state ---------------------------------------------------------------

    def _closing(self) -> _CloseInfo:
        info = self._close
        if info is None:
            info = self._close = _CloseInfo()
        return info

    @property
    def close_sent(self) -> tuple[int, str] | None:
        """``(code, reason)`` of our close frame once it is queued, else None."""
        return None if self._close is None else self._close.sent

    @property
    def close_received(self) -> tuple[int, str] | None:
        """``(code, reason)`` of the peer's close frame once it arrived, else None."""
        return None if self._close is None else self._close.received

    @property
    def close_code(self) -> int | None:
        """Why the connection ends (section 7.1.5): the code of the peer's close
        frame (1005 when it had none), else the code we failed the connection
        with, else 1006 once the TCP connection ended without either."""
        return None if self._close is None else self._close.code

    @property
    def close_reason(self) -> str:
        """The reason that goes with ``close_code`` (``""`` when none)."""
        return "" if self._close is None else self._close.reason

    @property
    def error(self) -> WebSocketProtocolError | None:
        """The peer's protocol violation that failed the connection, if any."""
        return None if self._close is None else self._close.error

    @property
    def client_side(self) -> bool:
        """Whether this is the client end of the connection."""
        return self._mask_key is not None

    # -- input -------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[tuple[int, bytes]]:
        """Take bytes from the peer; return the events they complete (see the class).

        Never raises for what the peer sends: a violation fails the connection
        (a close frame with the code RFC 6455 names is queued) and ends the events.
        Bytes after the peer's close frame, or after the end, are dropped
        (section 5.5.1: the close frame is the last frame an endpoint sends).
        """
        if self.state is _CLOSED:
            return []
        # Fast path: ``data`` is exactly one whole masked text frame of at most 125
        # bytes, FIN set, nothing pending (a small emit from a client). Anything
        # else, errors included, takes the general parser, which decides exactly
        # as RFC 6455 says.
        n = len(data)
        if (
            6 <= n <= 131
            and data[0] == 0x81
            and data[1] - 0x80 == n - 6
            and not self._buf
            and not self._frag_opcode
            and not self._client_side
            and n - 6 <= self._max
        ):
            payload = data[6:]
            mask = data[2:6]
            if mask != ZERO_MASK and n > 6:
                payload = xor_unchecked(payload, mask)  # section 5.3
            if not self._validate_utf8 or payload.isascii():
                return [(_TEXT, payload)]
            try:
                payload.decode("utf-8")
            except UnicodeDecodeError:
                pass  # the general parser fails the connection with 1007
            else:
                return [(_TEXT, payload)]
        frames: list[tuple[int, bytes]] = []
        try:
            self.feed_into(data, frames)
        except WebSocketProtocolError as exc:
            # What the read completed before the violation is delivered (as
            # Node's ws does); after the peer's close frame, the rest of the
            # read is dropped unread (section 5.5.1), violation included.
            frames = self._control(frames)
            if frames and frames[-1][0] == _CLOSE:
                return frames
            frames.append(self._fail(exc))
            return frames
        # One data message per read, the common case: nothing to answer.
        if len(frames) == 1 and frames[0][0] < _CLOSE:
            return frames
        return self._control(frames)

    def receive_scanned(self, data: bytes, scan: Scanner[T]) -> T | None:
        """``scan(data, max_message_size, validate_utf8)`` when the reader is
        between frames, else None.

        Between frames: no partial frame held, no fragmented message begun, the
        connection open. A scanner that reads whole frames itself may then take
        the read without the general parser, which is only right when ``data``
        starts a frame. The scanner must read frames as this side receives them:
        masked on a server (``socketwire.core.wire.scan_events``, the events of
        a read of small text frames), unmasked on a client
        (``socketwire.core.wire.scan_packets``, its events and acks), and leave
        any frame masked the other way to the general parser, which fails the
        connection (RFC 6455 section 5.1). It decides by the same rules as
        ``receive_data``, or returns None; on None the caller gives the same
        bytes to ``receive_data``.
        """
        if self._buf or self._frag_opcode or self.state is not _OPEN:
            return None
        return scan(data, self._max, self._validate_utf8)

    def receive_eof(self) -> None:
        """The peer ended the TCP connection (or it broke).

        Without a close frame before it, the connection closed abnormally: 1006
        (section 7.1.5), a code that is only ever reported, never sent.
        """
        info = self._closing()
        if info.code is None:
            info.code = CloseCode.ABNORMAL
            info.reason = ""
        self.state = _CLOSED
        self.should_end_transport = True

    def _control(self, frames: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
        """Answer the control frames among ``frames``; cut the events at a close."""
        for i, (opcode, payload) in enumerate(frames):
            if opcode == _PING:
                # Section 5.5.2: a ping gets a pong with the same payload, unless
                # the peer's close frame came first (then nothing reaches here).
                self._queue(self._frame(_PONG, payload))
            elif opcode == _CLOSE:
                self._close_frame_received(payload)
                del frames[i + 1 :]
                break
        return frames

    def _close_frame_received(self, payload: bytes) -> None:
        # The reader validated the payload (1002 / 1007 otherwise).
        code, reason = decode_close_payload(payload)
        info = self._closing()
        info.received = (code, reason)
        info.code = code
        info.reason = reason
        if info.sent is None:
            # Section 5.5.1: answer with a close frame echoing the status code; a
            # close without one (1005, section 7.1.5) gets a close without one.
            self._queue(self._frame(_CLOSE, encode_close_payload(code, "")))
            info.sent = (code, "")
        self._handshake_done()

    def _fail(self, exc: WebSocketProtocolError) -> tuple[int, bytes]:
        """Section 7.1.7, Fail the WebSocket Connection: close frame, then end TCP."""
        info = self._closing()
        info.error = exc
        info.code = exc.code
        info.reason = exc.reason
        reason = _wire_reason(exc.reason)
        payload = encode_close_payload(exc.code, reason)
        if info.sent is None:
            self._queue(self._frame(_CLOSE, payload))
            info.sent = (exc.code, reason)
        self.state = _CLOSED
        # Both sides end the TCP connection at once: no closing handshake with a
        # peer that breaks the protocol.
        self.should_end_transport = True
        return (_CLOSE, payload)

    def _handshake_done(self) -> None:
        """Both close frames went by (section 7.1.2 / 7.1.3)."""
        self.state = _CLOSED
        # Section 7.1.1: the server ends the TCP connection first (it keeps the
        # TIME_WAIT state); the client waits for that (close_expected()).
        self.should_end_transport = self._mask_key is None

    # -- output ------------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        """The bytes to write to the peer now, in order (``b""`` when none)."""
        out = self._out
        if not out:
            return b""
        # Dropped, not cleared: an idle connection keeps no empty list around.
        self._out = None
        return out[0] if len(out) == 1 else b"".join(out)

    def _queue(self, data: bytes) -> None:
        out = self._out
        if out is None:
            self._out = [data]
        else:
            out.append(data)

    def close_expected(self) -> bool:
        """Whether the peer is expected to finish the close: its close frame after
        ours, or (client side) the server ending the TCP connection.

        The I/O layer bounds that wait with a timer and ends the connection itself
        when it runs out.
        """
        state = self.state
        return state is _CLOSING or (state is _CLOSED and not self.should_end_transport)

    # -- commands ----------------------------------------------------------------------

    def send_text(self, payload: bytes) -> None:
        """Queue one text message; ``payload`` is UTF-8 (not checked: it is ours)."""
        self._check_sendable()
        self._queue(self._frame(_TEXT, payload))

    def send_binary(self, payload: bytes) -> None:
        """Queue one binary message."""
        self._check_sendable()
        self._queue(self._frame(_BINARY, payload))

    def send_ping(self, payload: bytes = b"") -> None:
        """Queue a ping (at most 125 bytes of payload, section 5.5)."""
        self._check_sendable()
        self._queue(self._frame(_PING, payload))

    def send_pong(self, payload: bytes = b"") -> None:
        """Queue an unsolicited pong: a one-way heartbeat (section 5.5.3)."""
        self._check_sendable()
        self._queue(self._frame(_PONG, payload))

    def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Queue our close frame (section 7.1.2).

        ``code=1005`` sends a close frame without a status code. Codes that never
        go on the wire (1004, 1006, 1015, out of range) and reasons over 123 bytes
        raise ``LocalProtocolError``, as does a second close: the peer's close
        frame is answered by the protocol itself.
        """
        if self.state is not _OPEN:
            raise LocalProtocolError("the close frame was already sent (RFC 6455 5.5.1)")
        payload = encode_close_payload(code, reason)
        self._queue(self._frame(_CLOSE, payload))
        self._closing().sent = (code, reason)
        # Section 7.1.2: wait for the peer's close frame.
        self.state = _CLOSING

    def _check_sendable(self) -> None:
        state = self.state
        if state is not _OPEN:
            # Section 5.5.1: nothing follows our close frame.
            raise LocalProtocolError(f"cannot send on a WebSocket in state {state.name}")

    def _frame(self, opcode: int, payload: bytes) -> bytes:
        mask_key = self._mask_key
        if mask_key is None:
            return encode_frame(opcode, payload)
        return encode_frame(opcode, payload, mask=mask_key())


class _CloseInfo:
    """The closing handshake of one connection (section 7): what each side said."""

    __slots__ = ("code", "error", "reason", "received", "sent")

    def __init__(self) -> None:
        self.sent: tuple[int, str] | None = None
        self.received: tuple[int, str] | None = None
        self.code: int | None = None
        self.reason = ""
        self.error: WebSocketProtocolError | None = None
