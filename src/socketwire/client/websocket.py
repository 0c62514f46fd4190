"""A WebSocket client connection on an asyncio Protocol, framed by the sans-I/O core.

:func:`connect_websocket` opens the TCP (or TLS) connection, sends the opening
handshake built by :mod:`socketwire.core.websocket.handshake`, reads the ``101``
response with ``httptools`` and checks it.  :class:`WebSocketConnection` then drives
the sans-I/O ``WebSocketProtocol(client_side=True)`` of the core, which reads the
frames, masks every frame it writes with a fresh random key from this module's pool
(RFC 6455 section 5.3), answers pings and the closing handshake; this module moves
its bytes and bounds the wait for the server to end the connection.

Two shortcuts serve the commonest traffic of a Socket.IO client: a read that is
nothing but Socket.IO events and acks on ``/`` goes, decoded in one step
(``socketwire.core.wire.scan_packets``), to the :class:`PacketLane` its owner set
(:meth:`WebSocketConnection.set_lane`); and :meth:`WebSocketConnection.send_message`
writes one Engine.IO message as one masked frame built in one step
(``socketwire.core.wire.message_frame``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl as ssl_module
from collections.abc import Callable, Iterable
from typing import Any, Protocol, cast

import httptools

from socketwire.core.websocket import handshake
from socketwire.core.websocket.frames import CloseCode, Opcode
from socketwire.core.websocket.protocol import WebSocketProtocol, WebSocketState
from socketwire.core.wire import message_frame, scan_packets
from socketwire.errors import RemoteProtocolError

__all__ = ["PacketLane", "WebSocketConnection", "WebSocketHandshakeError", "connect_websocket"]

log = logging.getLogger("socketwire.client")

_BINARY = Opcode.BINARY
_OPEN = WebSocketState.OPEN

# Largest message accepted from the server (the ``ws`` package's default).
DEFAULT_MAX_MESSAGE_SIZE = 100 * 1024 * 1024
# How long to wait for the server to end the TCP connection after our close frame.
CLOSE_TIMEOUT = 2.0

_MASK_POOL_SIZE = 4096


class _MaskPool:
    """Masking keys cut from one ``os.urandom`` read (as the ``ws`` package pools them).

    Each key is 4 fresh bytes of the operating system's CSPRNG (RFC 6455 section
    5.3 wants unpredictable keys); reading them 4 KiB at a time saves a system
    call per frame.
    """

    __slots__ = ("_pool", "_pos")

    def __init__(self) -> None:
        self._pool = b""
        self._pos = _MASK_POOL_SIZE

    def next(self) -> bytes:
        """A fresh 4-byte masking key."""
        pos = self._pos
        if pos >= _MASK_POOL_SIZE:
            self._pool = os.urandom(_MASK_POOL_SIZE)
            pos = 0
        self._pos = pos + 4
        return self._pool[pos : pos + 4]


_masks = _MaskPool()
new_mask = _masks.next

MessageHandler = Callable[[int, bytes], None]
CloseHandler = Callable[[int, str], None]


class PacketLane(Protocol):
    """Where the Socket.IO packets on ``/`` of a whole read go, decoded at once.

    ``packets`` is what ``socketwire.core.wire.scan_packets`` gives: flat
    ``[ptype, ack_id, data, ...]`` triples, ``ptype`` 2 (EVENT) or 3 (ACK), in
    the order of the read. The lane handles them in order, each exactly as the
    message handler would the message ``4<ptype>[<ack_id>]<data>``, and returns
    how many it took: fewer than all when it stopped (its conditions no longer
    hold, say after a callback disconnected); the rest of the read then goes to
    the message handler.
    """

    def __call__(self, packets: list[Any], /) -> int: ...


class WebSocketHandshakeError(RemoteProtocolError):
    """The server did not accept the WebSocket (``status`` is its HTTP status, 0 if none)."""

    def __init__(self, message: str, status: int = 0, body: bytes = b"") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


def _ignore_message(opcode: int, payload: bytes) -> None:
    return None


def _ignore_close(code: int, reason: str) -> None:
    return None


class WebSocketConnection(asyncio.Protocol):
    """The client side of one WebSocket.

    Messages that arrive before :meth:`set_handlers` is called are kept and handed
    over by it, in order.  ``on_close(code, reason)`` is called once, whoever closes
    (1006 when the TCP connection ends without a close frame).
    """

    __slots__ = (
        "_body",
        "_close_timer",
        "_closed",
        "_handshake_waiter",
        "_headers",
        "_key",
        "_lane",
        "_loop",
        "_parser",
        "_peer_close",
        "_pending",
        "_protocol",
        "_status",
        "_transport",
        "closed_event",
        "on_close",
        "on_message",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, key: str, max_message_size: int) -> None:
        self._loop = loop
        self._key = key
        self._transport: asyncio.Transport | None = None
        self._parser: httptools.HttpResponseParser | None = httptools.HttpResponseParser(self)
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._status = 0
        self._handshake_waiter: asyncio.Future[None] = loop.create_future()
        self._protocol = WebSocketProtocol(
            client_side=True, max_message_size=max_message_size, mask_key=new_mask
        )
        self._pending: list[tuple[int, bytes]] | None = []
        self._peer_close: tuple[int, str] = (CloseCode.ABNORMAL, "")
        self._close_timer: asyncio.TimerHandle | None = None
        self._closed = False
        # Where whole reads of Socket.IO packets on "/" go (``set_lane``).
        self._lane: PacketLane | None = None
        self.closed_event = asyncio.Event()
        self.on_message: MessageHandler = _ignore_message
        self.on_close: CloseHandler = _ignore_close

    # -- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's do not subclass asyncio.Transport).
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        lane = self._lane
        if lane is not None:
            # (Only ever set after the opening handshake.) The commonest read:
            # nothing but Socket.IO events and acks on "/", decoded at once
            # (core.wire); anything else takes the general path below.
            packets = self._protocol.receive_scanned(data, scan_packets)
            if packets is not None:
                done = lane(packets)
                if done * 3 < len(packets):
                    # The lane stopped (a callback disconnected, say): the rest of
                    # the read goes the general way. ``data`` is whole text frames
                    # and the reader was between frames: read again, it gives the
                    # same messages and leaves the reader as the general path would.
                    self._deliver(self._protocol.receive_data(data)[done:])
                elif self._protocol.state is not _OPEN:
                    # Closed by a callback: follow it as the general path would.
                    self._after_control()
                return
        elif self._parser is not None:
            self._handshake_data(data)
            return
        self._deliver(self._protocol.receive_data(data))

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        waiter = self._handshake_waiter
        if not waiter.done():
            waiter.set_exception(
                WebSocketHandshakeError(
                    f"connection closed during the WebSocket handshake{f': {exc}' if exc else ''}",
                    self._status,
                    b"".join(self._body),
                )
            )
        protocol = self._protocol
        protocol.receive_eof()
        code = protocol.close_code
        self._finish(CloseCode.ABNORMAL if code is None else code, protocol.close_reason)
        self.closed_event.set()

    # -- opening handshake (RFC 6455 section 4.1) ------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        previous = self._headers.get(key)
        self._headers[key] = text if previous is None else f"{previous}, {text}"

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        parser = self._parser
        assert parser is not None
        self._status = parser.get_status_code()
        if self._status != 101:
            # Refused (an Engine.IO error in JSON, typically).
            self._handshake_failed(
                WebSocketHandshakeError(
                    f"WebSocket refused with HTTP {self._status}",
                    self._status,
                    b"".join(self._body),
                )
            )

    def _handshake_data(self, data: bytes) -> None:
        parser = self._parser
        assert parser is not None
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            offset = int(exc.args[0]) if exc.args else len(data)
            self._status = parser.get_status_code()
            self._parser = None
            try:
                handshake.check_response(self._status, self._headers, self._key)
            except RemoteProtocolError as err:
                self._handshake_failed(WebSocketHandshakeError(str(err), self._status))
                return
            waiter = self._handshake_waiter
            if not waiter.done():
                waiter.set_result(None)
            rest = data[offset:]
            if rest:
                self._deliver(self._protocol.receive_data(rest))
        except httptools.HttpParserError as exc:
            self._handshake_failed(WebSocketHandshakeError(f"invalid HTTP response: {exc}"))

    def _handshake_failed(self, exc: WebSocketHandshakeError) -> None:
        self._parser = None
        waiter = self._handshake_waiter
        if not waiter.done():
            waiter.set_exception(exc)
        self.abort()

    # -- frames ------------------------------------------------------------------------

    def _deliver(self, events: list[tuple[int, bytes]]) -> None:
        """Hand the messages of ``events`` over; answer its control frames."""
        control = False
        for opcode, payload in events:
            if opcode > _BINARY:
                control = True
            elif not self._closed:
                pending = self._pending
                if pending is not None:
                    pending.append((opcode, payload))
                else:
                    self.on_message(opcode, payload)
        # A protocol error (a frame too big, a bad opcode) closes the protocol
        # without a control frame from the server: follow it at once too.
        if control or self._protocol.state is not _OPEN:
            self._after_control()

    def _after_control(self) -> None:
        """Write what the protocol answered (pongs, a close frame), and follow the close."""
        protocol = self._protocol
        self._flush()
        if protocol.state is _OPEN:
            return
        error = protocol.error
        code = protocol.close_code
        reason = protocol.close_reason
        if error is not None:
            log.info("invalid frame from the server: %s", error.reason)
            # The close is this side's: report why (RFC 6455 section 7.1.7).
            reason = error.reason
        self._finish(CloseCode.ABNORMAL if code is None else code, reason)
        self._follow_close()

    def _flush(self) -> None:
        data = self._protocol.data_to_send()
        transport = self._transport
        if data and transport is not None and not transport.is_closing():
            transport.write(data)

    def _follow_close(self) -> None:
        """End the TCP connection when the protocol says so; else bound the wait for
        the server to end it (RFC 6455 section 7.1.1: the server closes first)."""
        protocol = self._protocol
        transport = self._transport
        if transport is None:
            return
        if protocol.should_end_transport:
            transport.close()
        elif protocol.close_expected() and self._close_timer is None:
            self._close_timer = self._loop.call_later(CLOSE_TIMEOUT, self.abort)

    def _finish(self, code: int, reason: str) -> None:
        if self._closed:
            return
        self._closed = True
        self._lane = None
        self._peer_close = (code, reason)
        on_close = self.on_close
        self.on_close = _ignore_close
        self.on_message = _ignore_message
        try:
            on_close(code, reason)
        except Exception:
            log.exception("WebSocket close handler failed")

    # -- public --------------------------------------------------------------------------

    async def wait_handshake(self) -> None:
        """Wait for the server's ``101`` (raises :class:`WebSocketHandshakeError`)."""
        await self._handshake_waiter

    def set_handlers(self, on_message: MessageHandler, on_close: CloseHandler) -> None:
        """Install the handlers; messages received so far are delivered now, in order."""
        early = self._pending or []
        self._pending = None
        if self._closed:
            # Closed before anyone listened: deliver what came, then the close.
            for opcode, payload in early:
                on_message(opcode, payload)
            on_close(*self._peer_close)
            return
        self.on_message = on_message
        self.on_close = on_close
        for opcode, payload in early:
            if self._closed:
                break
            on_message(opcode, payload)

    def set_lane(self, lane: PacketLane | None) -> None:
        """Give the Socket.IO events and acks on ``/`` of whole reads to ``lane``
        instead of the message handler, or stop (None).

        A read is scanned only while the reader is between frames, and only a
        read of nothing but such packets in unmasked text frames goes to the
        lane; anything else (pings, other namespaces, binary packets, any
        protocol error) still takes the general path. Ignored once closed, and
        before :meth:`set_handlers` (the messages kept until then come first).
        """
        self._lane = None if self._closed or self._pending is not None else lane

    @property
    def open(self) -> bool:
        """Whether messages can still be sent."""
        return not self._closed and self._transport is not None

    def buffered(self) -> int:
        """Bytes written but not yet handed to the kernel."""
        transport = self._transport
        return transport.get_write_buffer_size() if transport is not None else 0

    def _writable(self) -> asyncio.Transport | None:
        transport = self._transport
        if self._closed or transport is None or transport.is_closing():
            return None
        if self._protocol.state is not _OPEN:
            return None
        return transport

    def send_text(self, payload: bytes) -> None:
        """Send one text message (``payload`` is UTF-8)."""
        transport = self._writable()
        if transport is not None:
            protocol = self._protocol
            protocol.send_text(payload)
            transport.write(protocol.data_to_send())

    def send_message(self, text: bytes) -> None:
        """Send one Engine.IO message packet of UTF-8 ``text``, given without its
        type digit ``4``, as one text frame masked with a fresh key.

        What ``send_text(b"4" + text)`` sends, framed in one step; nothing is
        sent once closing.
        """
        transport = self._writable()
        if transport is None:
            return
        protocol = self._protocol
        frame = message_frame(text, new_mask())
        # What the protocol queued (a pong for a ping of the same read) leaves
        # first, as it would have through send_text.
        queued = protocol.data_to_send()
        transport.write(queued + frame if queued else frame)

    def send_binary(self, payload: bytes) -> None:
        """Send one binary message."""
        transport = self._writable()
        if transport is not None:
            protocol = self._protocol
            protocol.send_binary(payload)
            transport.write(protocol.data_to_send())

    def send_many(self, messages: Iterable[tuple[bytes, bool]]) -> None:
        """Send ``(payload, is_binary)`` messages with one write."""
        transport = self._writable()
        if transport is None:
            return
        protocol = self._protocol
        for data, binary in messages:
            if binary:
                protocol.send_binary(data)
            else:
                protocol.send_text(data)
        transport.write(protocol.data_to_send())

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake; ``on_close`` is not called for a local close.

        A code that cannot be sent (1005 with a reason, 1006, 1015, out of range)
        or a reason over 123 bytes raises ``LocalProtocolError`` before anything
        changes.
        """
        protocol = self._protocol
        if self._transport is not None and protocol.state is _OPEN:
            protocol.close(code, reason)
        self.on_close = _ignore_close
        self.on_message = _ignore_message
        self._closed = True
        self._lane = None
        self._pending = None
        if self._transport is None:
            return
        self._flush()
        self._follow_close()

    def abort(self) -> None:
        """Drop the TCP connection at once."""
        transport = self._transport
        if transport is not None:
            transport.abort()


async def connect_websocket(
    host: str,
    port: int,
    target: str,
    *,
    host_header: str,
    headers: Iterable[tuple[str, str]] = (),
    ssl: ssl_module.SSLContext | None = None,
    timeout: float | None = None,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
) -> WebSocketConnection:
    """Open a WebSocket to ``host:port`` at ``target`` and finish the opening handshake.

    Raises :class:`WebSocketHandshakeError` when the server answers anything but a
    valid ``101``, ``OSError`` when the connection fails, ``TimeoutError`` after
    ``timeout`` seconds.
    """
    loop = asyncio.get_running_loop()
    key = handshake.make_key(os.urandom(16))
    conn = WebSocketConnection(loop, key, max_message_size)
    request = handshake.client_request(host_header, target, key, headers)

    async def run() -> None:
        await loop.create_connection(
            lambda: conn, host, port, ssl=ssl, server_hostname=host if ssl is not None else None
        )
        transport = conn._transport
        assert transport is not None
        transport.write(request)
        await conn.wait_handshake()

    try:
        if timeout is None:
            await run()
        else:
            async with asyncio.timeout(timeout):
                await run()
    except BaseException:
        conn.abort()
        raise
    return conn
