"""The narrow ports between the Engine.IO runtime and its front doors (layer 1).

A front door (the built-in HTTP server, the ASGI app) turns network traffic into
``HttpRequest`` objects and WebSocket connections; the Engine.IO runtime answers
them through these methods only, so it never knows which front door it serves.
Inside the runtime, ``EngineServerPort`` is all that an Engine.IO socket asks of
its server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from socketwire.core.engineio.errors import EngineErrorCode

if TYPE_CHECKING:
    from socketwire.engine.socket import EngineSocket

from socketwire.core.engineio.message import OutgoingMessage

#: ``lane(ack_id, data)``: one Socket.IO EVENT on ``/`` (``data`` is ``[name, *args]``).
EventLane = Callable[[int | None, list[Any]], object]


class WebSocketHandler(Protocol):
    """What a WebSocket connection reports to (an Engine.IO socket or a probe)."""

    def ws_message(self, opcode: int, payload: bytes) -> None:
        """A whole data message (``Opcode.TEXT`` or ``Opcode.BINARY``)."""

    def ws_closed(self, code: int, reason: str) -> None:
        """The connection is gone (close frame, error or lost TCP connection)."""

    def ws_drained(self) -> None:
        """The write buffer went back under its high-water mark."""


class WebSocketPort(Protocol):
    """An accepted server-side WebSocket connection.

    Each Engine.IO packet travels as one WebSocket message. A port takes a
    pre-encoded ``OutgoingMessage`` whole: the built-in server writes its
    ``frames`` (server frames are unmasked, so one framing serves every
    recipient of a broadcast), an ASGI server is handed its ``packets`` to frame.
    """

    def send(self, data: bytes, binary: bool) -> None:
        """Send one Engine.IO packet (type digit included) as one message."""

    def send_message(self, message: OutgoingMessage) -> None:
        """Send every packet of a pre-encoded message, in order (the broadcast path)."""

    def send_text_message(self, text: bytes) -> None:
        """Send one Engine.IO ``message`` packet of UTF-8 ``text``, given without its
        type digit (the per-socket emit: no ``OutgoingMessage`` to build)."""

    def send_frames(self, frames: bytes) -> bool:
        """Write ready-made unmasked WebSocket frames, each one Engine.IO packet
        (``socketwire.core.wire.ack_frame``); False when the port frames its
        messages itself (ASGI): nothing was sent, send the packets instead."""

    def write_rest(self, data: bytes, sent: int) -> None:
        """Write ``data`` after its first ``sent`` bytes, which a direct write
        (``engine.fanout.send_all``) already gave the kernel: before anything else."""

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame and end the connection."""

    def set_handler(self, handler: WebSocketHandler) -> None:
        """Route the connection's events to ``handler`` from now on."""

    def set_lane(self, lane: EventLane | None) -> None:
        """Give the Socket.IO events on ``/`` of whole reads to ``lane(ack_id, data)``
        instead of ``handler.ws_message``, or stop (None).

        A port that reads the frames itself decodes a read that is nothing but
        such events in one step (``socketwire.core.wire.scan_events``) and calls
        the lane once per event, in order; anything else still goes to the
        handler. A port whose frames are read by someone else (ASGI) ignores it.
        """

    def buffered(self) -> int:
        """Bytes written but not yet taken by the operating system."""

    @property
    def paused(self) -> bool:
        """Whether the write buffer is over its high-water mark (backpressure)."""


class HttpRequest(Protocol):
    """One HTTP request that the Engine.IO runtime answers exactly once."""

    @property
    def method(self) -> str:
        """The HTTP method."""

    @property
    def path(self) -> str:
        """The path, without the query string."""

    @property
    def headers(self) -> Mapping[str, str]:
        """Request headers with lower-case names."""

    @property
    def body(self) -> bytes:
        """The whole request body."""

    @property
    def remote_address(self) -> str:
        """The client's IP address."""

    @property
    def secure(self) -> bool:
        """Whether the request came over TLS."""

    @property
    def url(self) -> str:
        """The request target as sent (path and query)."""

    @property
    def query(self) -> Mapping[str, str]:
        """The query string's parameters (the last value of a repeated name)."""

    def respond(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        """Send the response (Content-Length is added by the front door)."""

    def on_abort(self, callback: Callable[[], None] | None) -> None:
        """Call ``callback`` if the client goes away before the response."""

    def is_websocket(self) -> bool:
        """Whether this is a WebSocket upgrade request."""

    def accept_websocket(
        self, handler: WebSocketHandler, headers: list[tuple[str, str]]
    ) -> WebSocketPort | None:
        """Complete the WebSocket handshake (RFC 6455 section 4.2.2).

        Returns None when the request is not a valid WebSocket handshake; the
        front door has then answered it with HTTP 400 itself.
        """


class EngineServerPort(Protocol):
    """What an Engine.IO socket needs from the server that owns it.

    ``EngineServer`` implements it: the socket answers polling requests, keeps
    its heartbeat and reports its upgrade and its end through these methods, so
    the socket never reaches into the server's own state.
    """

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the sessions run on."""

    @property
    def upgrade_timeout(self) -> float:
        """Seconds an upgrade may take from the probe to the ``upgrade`` packet."""

    @property
    def write_buffer_limit(self) -> int:
        """Bytes a session may have waiting before it is closed as a slow consumer."""

    def respond_ok(self, req: HttpRequest) -> None:
        """Answer a polling ``POST`` whose packets were taken (``200 ok``)."""

    def respond_payload(self, req: HttpRequest, body: bytes) -> None:
        """Answer a polling ``GET`` with an encoded payload (compressed when worth it)."""

    def respond_error(
        self,
        req: HttpRequest,
        code: EngineErrorCode,
        message: str | None = None,
        context: dict[str, Any] | None = None,
    ) -> None:
        """Refuse a request with one of Node's Engine.IO error codes."""

    def schedule_ping(self, sock: EngineSocket) -> None:
        """Start the wait for the next ping of ``sock`` (Engine.IO v4 "Heartbeat")."""

    def schedule_pong_deadline(self, sock: EngineSocket) -> None:
        """A ping went out: start the wait for its pong."""

    def socket_upgraded(self, sock: EngineSocket) -> None:
        """``sock`` now runs on WebSocket."""

    def socket_closed(self, sock: EngineSocket) -> None:
        """``sock`` is closed: the server forgets its session id."""


__all__ = [
    "EngineServerPort",
    "HttpRequest",
    "WebSocketHandler",
    "WebSocketPort",
]
