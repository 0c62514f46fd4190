"""The client's Engine.IO transports: HTTP long-polling and WebSocket (Engine.IO v4, "Transports").

A transport moves Engine.IO packets and reports to its owner through callbacks:
``on_open()`` when it can carry packets, ``on_packet(type, data, is_binary)`` for each
packet received, ``on_drain()`` when what ``send`` was given is written,
``on_error(reason, description)`` and ``on_close(description)`` when it fails or the
server ends it.  Packets to send are ``(data, is_binary)``: a text packet with its
type digit (``b"42[...]"``) or the bytes of a binary message.

Polling keeps one ``GET`` and one ``POST`` in flight at most, each on its own
keep-alive connection; ``pause`` stops it for an upgrade once both are done
(Engine.IO v4, "Upgrade").  ``close`` is silent (no callbacks): it sends the
``close`` packet when the transport is open, then releases the connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import ssl as ssl_module
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from socketwire.client.http import DEFAULT_MAX_BODY, HttpChannel
from socketwire.client.url import engine_target
from socketwire.client.websocket import PacketLane, WebSocketConnection, connect_websocket
from socketwire.core.engineio.packet import (
    CLOSE,
    MESSAGE_PREFIX,
    SEPARATOR,
    EnginePacketType,
    decode_payload,
    encode_polling_binary,
    parse_text_packet,
)
from socketwire.core.engineio.transport import POLLING, WEBSOCKET
from socketwire.core.reasons import DisconnectReason
from socketwire.core.websocket.frames import Opcode
from socketwire.errors import RemoteProtocolError

__all__ = [
    "POLLING",
    "WEBSOCKET",
    "EngineTransport",
    "PollingTransport",
    "TransportOptions",
    "WebSocketTransport",
    "create_transport",
]

log = logging.getLogger("socketwire.client")


# Bound on the work done while closing (sending the close packet, the last POST).
CLOSE_TIMEOUT: Final = 2.0
# A WebSocket with more than this many bytes not yet handed to the kernel is not
# "writable" for volatile packets.
VOLATILE_HIGH_WATER: Final = 64 * 1024

_OPEN = EnginePacketType.OPEN
_CLOSE = EnginePacketType.CLOSE
_MESSAGE = EnginePacketType.MESSAGE
_TEXT = Opcode.TEXT

Packets = list[tuple[bytes, bool]]

_counter = itertools.count()
_STAMP_PREFIX = os.urandom(3).hex()


def _timestamp() -> str:
    """A cache-busting value for the ``t`` query parameter (unique per request)."""
    return f"{_STAMP_PREFIX}{next(_counter):x}"


@dataclass(slots=True)
class TransportOptions:
    """Where and how a transport connects."""

    host: str
    port: int
    host_header: str
    path: str = "/socket.io"
    secure: bool = False
    ssl: ssl_module.SSLContext | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    timestamp_requests: bool = True
    timestamp_param: str = "t"
    # The largest poll response body accepted (the whole payload of one poll).
    max_http_buffer_size: int = DEFAULT_MAX_BODY


def _nothing() -> None:
    return None


def _ignore_packet(ptype: int, data: bytes, binary: bool) -> None:
    return None


def _ignore_error(reason: str, description: Any, context: Any) -> None:
    return None


def _ignore_close(description: Any) -> None:
    return None


class EngineTransport:
    """What the Engine.IO client needs from a transport."""

    name: str = ""

    __slots__ = (
        "_tasks",
        "on_close",
        "on_drain",
        "on_error",
        "on_open",
        "on_packet",
        "opts",
        "query",
        "state",
        "writable",
    )

    def __init__(self, opts: TransportOptions, query: dict[str, str]) -> None:
        self.opts = opts
        self.query = query
        self.state = "closed"  # opening, open, pausing, paused, closed
        self.writable = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self.on_open: Callable[[], None] = _nothing
        self.on_packet: Callable[[int, bytes, bool], None] = _ignore_packet
        self.on_drain: Callable[[], None] = _nothing
        self.on_error: Callable[[str, Any, Any], None] = _ignore_error
        self.on_close: Callable[[Any], None] = _ignore_close

    # -- for subclasses ------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _target(self) -> str:
        query = dict(self.query)
        if self.opts.timestamp_requests:
            query[self.opts.timestamp_param] = _timestamp()
        return engine_target(self.opts.path, query)

    def _opened(self) -> None:
        self.state = "open"
        self.writable = True
        self.on_open()

    def _error(self, reason: str, description: Any = None, context: Any = None) -> None:
        """A failure: report it once (the owner then closes the transport).

        ``context``: the body of an HTTP error answer, as the JavaScript client
        gives its request as the context.
        """
        if self.state == "closed":
            return
        self.on_error(reason, description, context)

    def _closed_by_peer(self, description: str) -> None:
        if self.state == "closed":
            return
        self.state = "closed"
        self.writable = False
        on_close = self.on_close
        self.detach()
        on_close(description)
        self._release()

    def _release(self) -> None:
        """Free the transport's resources once closed (no close packet)."""

    # -- interface -------------------------------------------------------------------------

    def detach(self) -> None:
        """Forget every callback: nothing is reported any more."""
        self.on_open = _nothing
        self.on_packet = _ignore_packet
        self.on_drain = _nothing
        self.on_error = _ignore_error
        self.on_close = _ignore_close

    @property
    def volatile_writable(self) -> bool:
        """Whether a volatile packet would go out now rather than wait."""
        return self.writable

    def set_lane(self, lane: PacketLane | None) -> None:
        """Give the Socket.IO events and acks on ``/`` of whole reads to ``lane``
        instead of ``on_packet`` (None: stop).

        Only a transport that reads WebSocket frames itself can; the others
        ignore it (every packet goes to ``on_packet``).
        """
        return None

    def open(self) -> None:
        """Start connecting; ``on_open`` follows (or ``on_error``)."""
        raise NotImplementedError

    def send(self, packets: Packets) -> None:
        """Send packets (only while open and ``writable``); ``on_drain`` follows."""
        raise NotImplementedError

    def pause(self, on_paused: Callable[[], None]) -> None:
        """Stop receiving and sending for an upgrade, then call ``on_paused``."""
        raise NotImplementedError

    def close(self) -> None:
        """Close quietly: the ``close`` packet when open, then release the sockets."""
        raise NotImplementedError

    async def wait_closed(self) -> None:
        """Wait for the work started by ``close`` (bounded)."""
        tasks = [t for t in self._tasks if not t.done()]
        if tasks:
            with contextlib.suppress(Exception):
                await asyncio.wait(tasks, timeout=CLOSE_TIMEOUT + 1)


class PollingTransport(EngineTransport):
    """HTTP long-polling (Engine.IO v4, "HTTP long-polling")."""

    name = POLLING

    __slots__ = (
        "_get",
        "_pause_cb",
        "_pause_on_drain",
        "_pause_on_poll",
        "_poll_task",
        "_polling",
        "_post",
        "_post_task",
    )

    def __init__(self, opts: TransportOptions, query: dict[str, str]) -> None:
        super().__init__(opts, query)
        channel_args: dict[str, Any] = {
            "host_header": opts.host_header,
            "ssl": opts.ssl,
            "max_body": opts.max_http_buffer_size,
        }
        self._get = HttpChannel(opts.host, opts.port, **channel_args)
        self._post = HttpChannel(opts.host, opts.port, **channel_args)
        self._polling = False
        self._poll_task: asyncio.Task[None] | None = None
        self._post_task: asyncio.Task[None] | None = None
        self._pause_cb: Callable[[], None] | None = None
        self._pause_on_poll = False
        self._pause_on_drain = False

    def _headers(self) -> list[tuple[str, str]]:
        return [("Accept", "*/*"), *self.opts.headers]

    # -- receiving -----------------------------------------------------------------------

    def open(self) -> None:
        self.state = "opening"
        self._poll()

    def _poll(self) -> None:
        self._polling = True
        self._poll_task = self._spawn(self._do_poll())

    async def _do_poll(self) -> None:
        try:
            response = await self._get.request("GET", self._target(), self._headers())
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._error("xhr poll error", exc)
            return
        if self.state == "closed":
            return
        if response.status != 200:
            self._error("xhr poll error", response.status, response.body)
            return
        self._on_data(response.body)

    def _on_data(self, body: bytes) -> None:
        try:
            packets = decode_payload(body)
        except RemoteProtocolError as exc:
            self._error(DisconnectReason.PARSE_ERROR, exc)
            return
        for ptype, data, binary in packets:
            if self.state == "opening" and ptype == _OPEN:
                self._opened()
            if ptype == _CLOSE:
                self._closed_by_peer("transport closed by the server")
                return
            self.on_packet(ptype, data, binary)
            if self.state == "closed":
                return
        self._polling = False
        if self._pause_on_poll:
            self._pause_on_poll = False
            self._maybe_paused()
        if self.state == "open":
            self._poll()

    # -- sending ---------------------------------------------------------------------------

    def send(self, packets: Packets) -> None:
        if self.state != "open":
            return
        self.writable = False
        body = SEPARATOR.join(encode_polling_binary(d) if b else d for d, b in packets)
        self._post_task = self._spawn(self._do_post(body))

    async def _do_post(self, body: bytes) -> None:
        headers = [*self._headers(), ("Content-Type", "text/plain;charset=UTF-8")]
        try:
            response = await self._post.request("POST", self._target(), headers, body)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._error("xhr post error", exc)
            return
        if self.state == "closed":
            return
        if response.status != 200:
            self._error("xhr post error", response.status, response.body)
            return
        self.writable = True
        # The owner learns first that these packets went out, then a pause waiting
        # for this POST completes (its buffer must not be sent again elsewhere).
        self.on_drain()
        if self._pause_on_drain:
            self._pause_on_drain = False
            self._maybe_paused()

    # -- pausing (for an upgrade) -----------------------------------------------------------

    def pause(self, on_paused: Callable[[], None]) -> None:
        self.state = "pausing"
        self._pause_cb = on_paused
        self._pause_on_poll = self._polling
        self._pause_on_drain = not self.writable
        self._maybe_paused()

    def _maybe_paused(self) -> None:
        if self.state != "pausing" or self._pause_on_poll or self._pause_on_drain:
            return
        self.state = "paused"
        cb, self._pause_cb = self._pause_cb, None
        if cb is not None:
            cb()

    # -- closing ---------------------------------------------------------------------------

    def close(self) -> None:
        if self.state == "closed":
            return
        send_close = self.state == "open"
        self.state = "closed"
        self.writable = False
        self.detach()
        self._spawn(self._shutdown(send_close))

    def _release(self) -> None:
        self._spawn(self._shutdown(False))

    async def _shutdown(self, send_close: bool) -> None:
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                post = self._post_task
                if post is not None and not post.done():
                    # One POST at a time: let the last one finish first.
                    await asyncio.wait([post])
                if send_close:
                    headers = [*self._headers(), ("Content-Type", "text/plain;charset=UTF-8")]
                    await self._post.request("POST", self._target(), headers, CLOSE)
        except (Exception, asyncio.CancelledError):
            pass
        finally:
            for task in (self._poll_task, self._post_task):
                if task is not None and not task.done():
                    task.cancel()
            self._get.close()
            self._post.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await self._get.wait_closed()
                    await self._post.wait_closed()


class WebSocketTransport(EngineTransport):
    """One WebSocket, one Engine.IO packet per frame (Engine.IO v4, "WebSocket")."""

    name = WEBSOCKET

    __slots__ = ("_lane", "_max_message_size", "_open_task", "_ws")

    def __init__(
        self, opts: TransportOptions, query: dict[str, str], max_message_size: int
    ) -> None:
        super().__init__(opts, query)
        self._ws: WebSocketConnection | None = None
        self._open_task: asyncio.Task[None] | None = None
        self._max_message_size = max_message_size
        self._lane: PacketLane | None = None

    def set_lane(self, lane: PacketLane | None) -> None:
        self._lane = lane
        ws = self._ws
        if ws is not None:
            ws.set_lane(lane)

    def detach(self) -> None:
        super().detach()
        # The lane is a callback too: nothing goes to it any more.
        self.set_lane(None)

    def open(self) -> None:
        self.state = "opening"
        self._open_task = self._spawn(self._do_open())

    async def _do_open(self) -> None:
        opts = self.opts
        try:
            ws = await connect_websocket(
                opts.host,
                opts.port,
                self._target(),
                host_header=opts.host_header,
                headers=opts.headers,
                ssl=opts.ssl,
                max_message_size=self._max_message_size,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._error("websocket error", exc)
            return
        if self.state == "closed":
            ws.abort()
            return
        self._ws = ws
        self._opened()
        if self.state == "closed":
            return
        ws.set_handlers(self._on_message, self._on_ws_close)
        if self._lane is not None:
            ws.set_lane(self._lane)

    def _on_message(self, opcode: int, payload: bytes) -> None:
        if opcode == _TEXT:
            try:
                ptype, data = parse_text_packet(payload)
            except RemoteProtocolError as exc:
                self._error(DisconnectReason.PARSE_ERROR, exc)
                return
            self.on_packet(ptype, data, False)
        else:
            self.on_packet(_MESSAGE, payload, True)

    def _on_ws_close(self, code: int, reason: str) -> None:
        detail = f"code {code}: {reason}" if reason else f"code {code}"
        self._closed_by_peer(f"websocket connection closed ({detail})")

    @property
    def volatile_writable(self) -> bool:
        ws = self._ws
        return self.writable and ws is not None and ws.buffered() < VOLATILE_HIGH_WATER

    def send(self, packets: Packets) -> None:
        ws = self._ws
        if self.state != "open" or ws is None:
            return
        if len(packets) == 1:
            data, binary = packets[0]
            if binary:
                ws.send_binary(data)
            else:
                ws.send_text(data)
        else:
            ws.send_many(packets)
        # Frames are handed to the socket's buffer at once: drained.
        self.on_drain()

    def send_messages(self, messages: Sequence[tuple[bytes, bool]]) -> None:
        """Send Engine.IO messages at once (text without its ``"4"``, or binary).

        The engine's direct path: only while open, with nothing buffered before.
        """
        ws = self._ws
        if ws is None:
            return
        if len(messages) == 1:
            data, binary = messages[0]
            if binary:
                ws.send_binary(data)
            else:
                ws.send_message(data)
            return
        ws.send_many([(d, True) if b else (MESSAGE_PREFIX + d, False) for d, b in messages])

    def text_sender(self) -> Callable[[bytes], None] | None:
        """Where one Engine.IO message of UTF-8 ``text`` (without its ``"4"``) goes
        straight, framed in one step: the WebSocket's ``send_message`` once it is
        open, else None. The engine's direct path, as ``send_messages`` for one
        text message (the WebSocket itself sends nothing once closing)."""
        ws = self._ws
        return None if ws is None else ws.send_message

    def pause(self, on_paused: Callable[[], None]) -> None:
        # Nothing to upgrade to from a WebSocket (as the JavaScript client: never called back).
        return None

    def close(self) -> None:
        if self.state == "closed":
            return
        was_open = self.state == "open"
        self.state = "closed"
        self.writable = False
        self.detach()
        ws, self._ws = self._ws, None
        if ws is not None:
            if was_open:
                ws.send_text(CLOSE)
            ws.close(1000)
            self._spawn(_wait_ws_closed(ws))
        task = self._open_task
        if task is not None and not task.done():
            task.cancel()

    def _release(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            ws.close(1000)
            self._spawn(_wait_ws_closed(ws))


async def _wait_ws_closed(ws: WebSocketConnection) -> None:
    with contextlib.suppress(Exception):
        async with asyncio.timeout(CLOSE_TIMEOUT + 0.5):
            await ws.closed_event.wait()
    ws.abort()


def create_transport(
    name: str, opts: TransportOptions, query: dict[str, str], max_message_size: int
) -> EngineTransport:
    """A transport by name (``"polling"`` or ``"websocket"``)."""
    if name == POLLING:
        return PollingTransport(opts, query)
    if name == WEBSOCKET:
        return WebSocketTransport(opts, query, max_message_size)
    raise ValueError(f"unknown transport {name!r}")
