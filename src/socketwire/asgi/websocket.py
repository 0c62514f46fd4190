"""An accepted WebSocket of the ASGI front door (layer 3, asyncio).

The ASGI server runs the WebSocket protocol and frames the messages itself, so
:class:`ASGIWebSocket` (``engine.ports.WebSocketPort``) queues whole messages,
the packets of each ``OutgoingMessage`` in order, and one writer task per
connection passes them to the ASGI ``send``. Over ``HIGH_WATER`` queued bytes it
reports backpressure; over the engine's ``write_buffer_limit`` it closes the
connection as a slow consumer.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from socketwire.asgi.types import Receive, Send
from socketwire.core.engineio.message import OutgoingMessage
from socketwire.core.engineio.packet import MESSAGE_PREFIX
from socketwire.core.reasons import DisconnectReason
from socketwire.core.websocket.frames import Opcode
from socketwire.engine.ports import EventLane, WebSocketHandler

__all__ = ["HIGH_WATER", "LOW_WATER", "ASGIWebSocket"]

log = logging.getLogger("socketwire.asgi")

# Bytes queued for a WebSocket before it counts as paused (backpressure), and the
# level under which it is drained again (as asyncio's transports: a quarter).
HIGH_WATER = 64 * 1024
LOW_WATER = HIGH_WATER // 4

_TEXT = Opcode.TEXT
_BINARY = Opcode.BINARY


class ASGIWebSocket:
    """An accepted ASGI WebSocket (implements ``engine.ports.WebSocketPort``).

    The send methods queue whole messages; one writer task passes them to the
    ASGI ``send`` in order, and ends with the close message when ``close`` was
    called.
    """

    __slots__ = (
        "_buffered",
        "_close",
        "_closed",
        "_limit",
        "_max_message",
        "_queue",
        "_send",
        "_wake",
        "_writer",
        "handler",
        "paused",
        "remote_address",
    )

    def __init__(
        self,
        handler: WebSocketHandler,
        send: Send,
        limit: int,
        max_message: int,
        remote_address: str,
    ) -> None:
        self.handler = handler
        self._send = send
        self._limit = limit
        self._max_message = max_message
        self.remote_address = remote_address
        self._queue: deque[tuple[bytes, bool]] = deque()
        self._buffered = 0
        self.paused = False
        self._closed = False
        # (code, reason) of the close message the writer sends after the queue.
        self._close: tuple[int, str] | None = None
        self._wake: asyncio.Future[None] | None = None
        self._writer: asyncio.Task[None] | None = None

    # -- WebSocketPort ---------------------------------------------------------------

    def set_handler(self, handler: WebSocketHandler) -> None:
        self.handler = handler

    def set_lane(self, lane: EventLane | None) -> None:
        # The ASGI server reads the frames: every message goes to the handler.
        pass

    def send_frames(self, frames: bytes) -> bool:
        # The ASGI server frames the messages: it is given packets, not frames.
        return False

    def write_rest(self, data: bytes, sent: int) -> None:
        # Never called: the ASGI server owns the socket, so this writer offers no
        # descriptor for a direct write (``engine.fanout``) to begin with.
        raise NotImplementedError("an ASGI WebSocket takes no direct writes")

    def buffered(self) -> int:
        return self._buffered

    def send(self, data: bytes, binary: bool) -> None:
        if self._closed:
            return
        n = len(data)
        if self.paused and self._buffered + n > self._limit:
            self._overflow()
            return
        self._queue.append((data, binary))
        self._buffered += n
        if self._buffered > HIGH_WATER:
            self.paused = True
        wake = self._wake
        if wake is not None:
            self._wake = None
            if not wake.done():
                wake.set_result(None)

    def send_message(self, message: OutgoingMessage) -> None:
        # The ASGI server frames each message itself: the packets, in order.
        for data, binary in message.packets:
            self.send(data, binary)

    def send_text_message(self, text: bytes) -> None:
        self.send(MESSAGE_PREFIX + text, False)

    def close(self, code: int = 1000, reason: str = "") -> None:
        if self._closed:
            return
        self._closed = True
        self._close = (code, reason)
        self._wake_writer()
        self.handler.ws_closed(code, reason)

    # -- internals ---------------------------------------------------------------------

    def _wake_writer(self) -> None:
        wake, self._wake = self._wake, None
        if wake is not None and not wake.done():
            wake.set_result(None)

    def _overflow(self) -> None:
        log.info(
            "closing slow consumer %s: more than %d bytes queued", self.remote_address, self._limit
        )
        # Drop what is queued: the peer is not reading it anyway. The writer sends
        # the close message once the message it is sending (if any) is taken.
        self._queue.clear()
        self._buffered = 0
        self._closed = True
        self._close = (1008, DisconnectReason.SLOW_CONSUMER)
        self._wake_writer()
        self.handler.ws_closed(1008, DisconnectReason.SLOW_CONSUMER)

    def start(self) -> None:
        """Start the writer (after ``websocket.accept`` went out)."""
        self._writer = asyncio.get_running_loop().create_task(self._write_loop())

    async def _write_loop(self) -> None:
        queue = self._queue
        send = self._send
        loop = asyncio.get_running_loop()
        try:
            while True:
                while queue:
                    data, binary = queue.popleft()
                    self._buffered -= len(data)
                    if binary:
                        await send({"type": "websocket.send", "bytes": data})
                    else:
                        await send({"type": "websocket.send", "text": data.decode()})
                    if self.paused and self._buffered <= LOW_WATER:
                        self.paused = False
                        if not self._closed:
                            self.handler.ws_drained()
                close = self._close
                if close is not None:
                    await send({"type": "websocket.close", "code": close[0], "reason": close[1]})
                    return
                wake = self._wake = loop.create_future()
                await wake
        except Exception as exc:
            # The connection is gone (the reader hears ``websocket.disconnect`` too).
            log.debug("WebSocket send to %s failed: %r", self.remote_address, exc)
            self._writer = None
            self.lost(1006)

    async def run(self, receive: Receive) -> None:
        """Feed the handler until ``websocket.disconnect``."""
        code = 1006
        try:
            while True:
                message = await receive()
                kind = message["type"]
                if kind == "websocket.receive":
                    if self._closed:
                        continue
                    text = message.get("text")
                    if text is not None:
                        opcode = _TEXT
                        payload = text.encode()
                    else:
                        opcode = _BINARY
                        payload = message.get("bytes") or b""
                    if len(payload) > self._max_message:
                        log.info("message too big from %s: closing", self.remote_address)
                        self.close(1009, "message too big")
                        continue
                    try:
                        self.handler.ws_message(opcode, payload)
                    except Exception:
                        log.exception("WebSocket handler failed for %s", self.remote_address)
                        self.close(1011, "internal error")
                elif kind == "websocket.disconnect":
                    code = message.get("code") or 1005
                    return
        finally:
            self.lost(code)

    def lost(self, code: int) -> None:
        """The connection is gone (``websocket.disconnect``, a failed send): stop the
        writer and report ``code`` unless the close was ours."""
        writer, self._writer = self._writer, None
        if writer is not None and not writer.done():
            writer.cancel()
        self._wake = None
        if not self._closed:
            self._closed = True
            self._queue.clear()
            self._buffered = 0
            self.handler.ws_closed(code, "")
