"""The built-in server's WebSocket connection (layer 3, asyncio).

Once the opening handshake is accepted, :class:`WebSocketConnection` carries the
TCP connection: the sans-I/O ``WebSocketProtocol`` of
``socketwire.core.websocket.protocol`` reads the frames and answers pings and
the closing handshake, and this class moves its bytes, reports messages and the
end to the Engine.IO handler (``engine.ports.WebSocketHandler``), writes the
frames the engine built once per message, and holds a peer that does not read to
the write-buffer cap. It implements ``engine.ports.WebSocketPort``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import Any

from socketwire.core.engineio.message import (
    TEXT_MESSAGE_HEADERS,
    OutgoingMessage,
    frame_text_message,
)
from socketwire.core.reasons import DisconnectReason
from socketwire.core.websocket.frames import Opcode, encode_frame
from socketwire.core.websocket.protocol import WebSocketProtocol
from socketwire.core.wire import scan_events
from socketwire.engine.ports import EventLane, WebSocketHandler

__all__ = ["WebSocketConnection"]

log = logging.getLogger("socketwire.http")

_TEXT = Opcode.TEXT
_BINARY = Opcode.BINARY
_CLOSE = Opcode.CLOSE

# ``WebSocketConnection._fd`` before its first broadcast: not looked up yet.
_UNRESOLVED = -2

# Batched writes up to this size are joined into one system call.
_CORK_JOIN_MAX = 64 * 1024


def _plain_descriptor(transport: asyncio.BaseTransport) -> int:
    """The socket descriptor of a plain TCP (or Unix) stream transport, else -1.

    A TLS transport's socket carries encrypted records: never written around.
    """
    if os.name != "posix" or transport.get_extra_info("sslcontext") is not None:
        return -1
    if transport.get_extra_info("ssl_object") is not None:
        return -1
    sock = transport.get_extra_info("socket")
    if sock is None or sock.type != socket.SOCK_STREAM:
        return -1
    fd: int = sock.fileno()
    return fd


class WebSocketConnection(asyncio.Protocol):
    """A server-side WebSocket on a connection (implements ``WebSocketPort``).

    Its ``WebSocketProtocol`` reads the frames, answers pings and the closing
    handshake; this class writes what the protocol and the engine give it,
    reports messages and the end to the handler, and holds a peer that does not
    read to the write-buffer cap.
    """

    __slots__ = (
        "_closed",
        "_cork",
        "_fd",
        "_limit",
        "_protocol",
        "direct",
        "handler",
        "lane",
        "paused",
        "remote_address",
        "transport",
    )

    def __init__(
        self,
        transport: asyncio.Transport,
        remote_address: str,
        handler: WebSocketHandler,
        *,
        max_message_size: int,
        write_buffer_limit: int,
    ) -> None:
        self.transport = transport
        self.remote_address = remote_address
        self.handler = handler
        self._protocol = WebSocketProtocol(client_side=False, max_message_size=max_message_size)
        # Set once the connection is closing: nothing more is written or reported.
        self._closed = False
        # While a batch of messages is handled, writes are collected and sent
        # with one system call (acks to several pipelined emits, say).
        self._cork: list[bytes] | None = None
        # Set while the transport's buffer is over its high-water mark; only then
        # is the buffer measured against the cap (nothing to pay otherwise).
        self.paused = False
        self._limit = write_buffer_limit
        # Where the Socket.IO events of whole reads go straight (``set_lane``).
        self.lane: EventLane | None = None
        # The descriptor a broadcast may write to around the transport
        # (``engine.fanout``): only a plain TCP connection's, since TLS frames
        # its writes itself. ``direct`` holds it while writes may go straight
        # (open, not corked), else a negative number. Looked up at the first
        # broadcast that reaches the connection (``send_message``): asking the
        # transport for its socket costs a system call and an object kept for
        # the connection's life, which a connection that never gets a
        # broadcast does without.
        self._fd = _UNRESOLVED
        self.direct = _UNRESOLVED

    # -- WebSocketPort -------------------------------------------------------------------

    def set_handler(self, handler: WebSocketHandler) -> None:
        self.handler = handler

    def set_lane(self, lane: EventLane | None) -> None:
        self.lane = None if self._closed else lane

    def buffered(self) -> int:
        return self.transport.get_write_buffer_size()

    def send(self, data: bytes, binary: bool) -> None:
        if self._closed:
            return
        # Open (``_closed`` is set as soon as the protocol leaves OPEN): the frame
        # the protocol's send_text / send_binary would queue, written at once.
        self._write(encode_frame(_BINARY if binary else _TEXT, data))

    # Server frames are unmasked (RFC 6455 section 5.1), so an Engine.IO message is
    # framed once, by the engine's core, and the same bytes go to every recipient:
    # the two hot paths below write them as they are. ``_closed`` is set as soon as
    # the protocol leaves OPEN, so nothing follows a close frame (section 5.5.1).
    # Both inline ``_write``: a call less per message.

    def send_message(self, message: OutgoingMessage) -> None:
        if self._fd == _UNRESOLVED:
            self._resolve_direct()
        # Built by the first recipient, read as an attribute by the others.
        data = message.framed or message.frames
        cork = self._cork
        if cork is not None:
            cork.append(data)
        elif not self._closed:
            if self.paused and self.transport.get_write_buffer_size() + len(data) > self._limit:
                self._overflow()
                return
            self.transport.write(data)

    def send_frames(self, frames: bytes) -> bool:
        self._write(frames)
        return True

    def send_text_message(self, text: bytes) -> None:
        n = len(text)
        data = TEXT_MESSAGE_HEADERS[n] + text if n < 125 else frame_text_message(text)
        cork = self._cork
        if cork is not None:
            cork.append(data)
        elif not self._closed:
            if self.paused and self.transport.get_write_buffer_size() + len(data) > self._limit:
                self._overflow()
                return
            self.transport.write(data)

    def close(self, code: int = 1000, reason: str = "") -> None:
        if self._closed:
            return
        self.uncork()
        protocol = self._protocol
        # Raises LocalProtocolError for a code or reason that cannot be sent,
        # before anything changed.
        protocol.close(code, reason)
        self._shut()
        transport = self.transport
        if not transport.is_closing():
            transport.write(protocol.data_to_send())
            # The server ends the TCP connection right after its close frame
            # (RFC 6455 section 7.1.1 gives the server that end) rather than hold
            # the socket for a peer's answer that changes nothing.
            transport.close()
        self.handler.ws_closed(code, reason)

    # -- writing ---------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        cork = self._cork
        if cork is not None:
            cork.append(data)
        elif not self._closed:
            if self.paused and self.transport.get_write_buffer_size() + len(data) > self._limit:
                self._overflow()
                return
            self.transport.write(data)

    def _shut(self) -> bool:
        """Mark the connection closed: no lane, no direct writes. Returns whether
        it was closed already."""
        was_closed = self._closed
        self._closed = True
        self.direct = self._fd = -1
        self.lane = None
        return was_closed

    def _resolve_direct(self) -> None:
        self._fd = fd = _plain_descriptor(self.transport)
        if not self._closed and self._cork is None:
            self.direct = fd

    def write_rest(self, data: bytes, sent: int) -> None:
        """Write what a direct write (``engine.fanout.send_all``) left of ``data``
        after its first ``sent`` bytes: it goes first, before anything else."""
        self._write(data[sent:] if sent else data)

    def _overflow(self) -> None:
        log.info(
            "closing slow consumer %s: write buffer over %d bytes",
            self.remote_address,
            self._limit,
        )
        # Drop what is queued: the peer is not reading it anyway.
        self.transport.abort()
        if not self._shut():
            self.handler.ws_closed(1008, DisconnectReason.SLOW_CONSUMER)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if not self._closed:
            self.handler.ws_drained()

    def cork(self, first: bytes) -> None:
        """Hold writes (starting with ``first``) until ``uncork``: they leave in one
        system call."""
        self._cork = [first]
        self.direct = -1

    def uncork(self) -> None:
        """Write what was held since ``cork``, in one system call where it fits."""
        cork, self._cork = self._cork, None
        if self._closed:
            return
        self.direct = self._fd
        if not cork:
            return
        if len(cork) == 1 or sum(map(len, cork)) <= _CORK_JOIN_MAX:
            self._write(cork[0] if len(cork) == 1 else b"".join(cork))
        else:
            # A big batch goes piece by piece through the checked path, so a peer
            # that does not read is still held to the cap.
            for data in cork:
                self._write(data)
                if self._closed:
                    return

    # -- reading ---------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Bytes from the peer (the protocol never raises for what they hold)."""
        lane = self.lane
        if lane is not None:
            # The commonest read: nothing but Socket.IO events on "/", decoded
            # at once (core.wire); anything else takes the general path below.
            scanned = self._protocol.receive_scanned(data, scan_events)
            if scanned is not None:
                try:
                    if len(scanned) == 2:
                        lane(scanned[0], scanned[1])
                    else:
                        self._lane_batch(scanned, data)
                except Exception:
                    log.exception("internal error on a WebSocket from %s", self.remote_address)
                    self.close(1011, "internal error")
                return
        events = self._protocol.receive_data(data)
        if not events:
            return
        try:
            if len(events) == 1:
                opcode, payload = events[0]
                if opcode <= _BINARY:
                    # One data message per read (the common case): no batch to walk.
                    self.handler.ws_message(opcode, payload)
                    return
            self._handle(events)
        except Exception:
            # Never let a handler's failure escape into the event loop's protocol
            # machinery: log it and fail this connection only (1011).
            log.exception("internal error on a WebSocket from %s", self.remote_address)
            self.close(1011, "internal error")

    #: The transport's protocol calls this (``HttpConnection`` hands the transport over).
    data_received = feed

    def _lane_batch(self, scanned: list[Any], data: bytes) -> None:
        """Several events of one read: the replies they cause leave in one write."""
        self._cork = []
        self.direct = -1
        try:
            for i in range(0, len(scanned), 2):
                if self._closed:
                    # Nothing is delivered after the connection closes.
                    return
                lane = self.lane
                if lane is None:
                    # The lane closed under a handler (its socket left the
                    # namespace, a message listener was added), the connection
                    # still open: the rest of the read goes the general way.
                    self._rest_of(data, i // 2)
                    return
                lane(scanned[i], scanned[i + 1])
        finally:
            self.uncork()

    def _rest_of(self, data: bytes, done: int) -> None:
        """The messages of ``data`` after its first ``done`` ones, to the handler.

        ``data`` is whole text frames (the scan took it) and the reader was
        between frames: read again, it gives the same messages, and leaves the
        reader as the general path would have.
        """
        for opcode, payload in self._protocol.receive_data(data)[done:]:
            self.handler.ws_message(opcode, payload)
            if self._closed:
                return
            # (Not re-checked: the lane, if it opens again, takes the next read.)

    def _handle(self, events: list[tuple[int, bytes]]) -> None:
        if events[-1][0] == _CLOSE:
            self._closing(events)
            return
        # Several events: the replies they cause leave in one write.
        self._cork = []
        self.direct = -1
        try:
            handler = self.handler
            for opcode, payload in events:
                if opcode <= _BINARY:
                    handler.ws_message(opcode, payload)
                    if self._closed:
                        return
                    handler = self.handler
            # Pongs the protocol queued for pings (RFC 6455 section 5.5.2).
            out = self._protocol.data_to_send()
            if out:
                self._write(out)
        finally:
            self.uncork()

    def _closing(self, events: list[tuple[int, bytes]]) -> None:
        """The events end with the peer's close frame, or a violation that failed
        the connection: the protocol has queued our close frame."""
        self.uncork()
        self._shut()
        error = self._protocol.error
        if error is not None:
            log.info("WebSocket protocol error from %s: %s", self.remote_address, error.reason)
        # The messages that came before the close are still the peer's (a last
        # Engine.IO close packet, say); nothing written in reply can follow the
        # close frame (section 5.5.1), so it is dropped.
        try:
            for opcode, payload in events:
                if opcode <= _BINARY:
                    self.handler.ws_message(opcode, payload)
        finally:
            self._end_closing()

    def _end_closing(self) -> None:
        protocol = self._protocol
        error = protocol.error
        transport = self.transport
        if not transport.is_closing():
            out = protocol.data_to_send()
            if out:
                transport.write(out)
            # Section 7.1.1: the server ends the TCP connection once the closing
            # handshake is done; section 7.1.7: at once when failing it.
            if protocol.should_end_transport:
                transport.close()
        code = protocol.close_code
        self.handler.ws_closed(
            1006 if code is None else code, error.reason[:120] if error is not None else ""
        )

    # -- asyncio.Protocol (the transport's protocol once upgraded) ---------------------

    def eof_received(self) -> None:
        # The peer ended its side: the transport closes (then ``connection_lost``).
        return None

    def connection_lost(self, exc: Exception | None = None) -> None:
        protocol = self._protocol
        protocol.receive_eof()
        if not self._shut():
            code = protocol.close_code
            self.handler.ws_closed(1006 if code is None else code, "")
