"""The Manager: one Engine.IO connection shared by every namespace, and reconnection.

As the JavaScript client's ``Manager``: it opens the Engine.IO connection
(:class:`~socketwire.client.engine.EngineClient`) with a connect ``timeout``, decodes
Socket.IO packets (with its ``parser``) and routes them to the
:class:`~socketwire.client.socket.Client` of their namespace, and when the connection is lost, reconnects with exponential
backoff (:mod:`socketwire.client.backoff`) until ``reconnection_attempts`` is
reached.  It emits ``open``, ``error``, ``close``, ``ping``, the reconnection
events ``reconnect_attempt``, ``reconnect``, ``reconnect_error`` and
``reconnect_failed``, and (an addition: the JavaScript client has them on its engine)
``upgrading`` and ``upgrade`` with the transport name.

It closes itself once no namespace socket is active any more.

This module creates the namespace sockets (:meth:`Manager.socket`, with the
``Client`` constructor) and keeps the managers shared by URL (:func:`lookup`,
which ``Client(url)`` reaches through the port it installs in
:mod:`socketwire.client.socket`); the socket module never imports this one.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import ssl as ssl_module
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any, overload

from socketwire.client.backoff import Backoff
from socketwire.client.engine import EngineClient
from socketwire.client.errors import TransportError
from socketwire.client.listeners import EventEmitter, F, Handler
from socketwire.client.socket import Client, use_manager_lookup
from socketwire.client.transports import TransportOptions
from socketwire.client.url import ParsedUrl, parse_url
from socketwire.core.engineio.transport import POLLING, WEBSOCKET
from socketwire.core.reasons import DisconnectReason
from socketwire.core.socketio.packet import Packet, PacketDecoder, PacketType
from socketwire.core.socketio.parser import DEFAULT_PARSER, Decoder, Parser, resolve_parser
from socketwire.errors import RemoteProtocolError

__all__ = ["Manager"]

log = logging.getLogger("socketwire.client")

# Managers shared by ``Client(url)`` (the JavaScript client's cache), by URL identity.
_cache: weakref.WeakValueDictionary[str, Manager] = weakref.WeakValueDictionary()


_EVENT = PacketType.EVENT
_ACK = PacketType.ACK


def _nothing(*args: Any) -> None:
    return None


class Manager:
    """One Engine.IO connection to a server, shared by the namespaces opened on it.

    ::

        manager = socketwire.client.Manager("http://localhost:3000", transports=["websocket"])
        chat = manager.socket("/chat")
        news = manager.socket("/news")
        await chat.connect()
        await news.connect()        # same Engine.IO connection

    Options (the JavaScript client's, snake_case, durations in seconds):

    * ``path`` (``"/socket.io"``), ``query`` (added to every Engine.IO request),
      ``headers`` (extra HTTP headers, sent with polling requests and the WebSocket
      handshake), ``transports`` (``["polling", "websocket"]``: polling first, then
      upgrade), ``upgrade`` (True), ``ssl`` (an ``ssl.SSLContext`` for https/wss;
      the default context when None), ``timestamp_requests`` (True),
      ``max_message_size`` (100 MiB: the largest WebSocket message and poll
      response body accepted from the server);
    * ``reconnection`` (True), ``reconnection_attempts`` (infinite),
      ``reconnection_delay`` (1), ``reconnection_delay_max`` (5),
      ``randomization_factor`` (0.5), ``timeout`` (20: the connect timeout, ``None``
      for none); ``rng`` draws the backoff's randomness (``random.random``);
    * ``parser``: how Socket.IO packets are encoded, as the server's option: None
      (socket.io-parser's format), ``"msgpack"`` (the npm package
      ``socket.io-msgpack-parser``'s, with the ``msgpack`` extra installed) or a
      parser object (see :mod:`socketwire.core.socketio.parser`).  The server must
      use the same one.
    """

    __slots__ = (
        "__weakref__",
        "_backoff",
        "_closing",
        "_decoder",
        "_emitter",
        "_lane_socket",
        "_loop",
        "_ready_state",
        "_reconnecting",
        "_skip_reconnect",
        "_timers",
        "engine",
        "headers",
        "last_error",
        "max_message_size",
        "nsps",
        "parser",
        "path",
        "query",
        "randomization_factor",
        "reconnection",
        "reconnection_attempts",
        "reconnection_delay",
        "reconnection_delay_max",
        "ssl",
        "timeout",
        "timestamp_requests",
        "transports",
        "upgrade",
        "url",
    )

    def __init__(
        self,
        url: str = "http://localhost",
        *,
        path: str = "/socket.io",
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        transports: Iterable[str] = (POLLING, WEBSOCKET),
        upgrade: bool = True,
        ssl: ssl_module.SSLContext | None = None,
        reconnection: bool = True,
        reconnection_attempts: float = math.inf,
        reconnection_delay: float = 1.0,
        reconnection_delay_max: float = 5.0,
        randomization_factor: float = 0.5,
        timeout: float | None = 20.0,
        timestamp_requests: bool = True,
        max_message_size: int = 100 * 1024 * 1024,
        rng: Callable[[], float] = random.random,
        parser: Any = None,
    ) -> None:
        self.url: ParsedUrl = parse_url(url, path)
        self.path = path
        merged = dict(self.url.query)
        merged.update(query or {})
        self.query: dict[str, str] = {str(k): str(v) for k, v in merged.items()}
        if headers is None:
            self.headers: list[tuple[str, str]] = []
        elif isinstance(headers, Mapping):
            self.headers = [(str(k), str(v)) for k, v in headers.items()]
        else:
            self.headers = [(str(k), str(v)) for k, v in headers]
        self.transports = tuple(transports)
        for name in self.transports:
            if name not in (POLLING, WEBSOCKET):
                raise ValueError(f"unknown transport {name!r} (polling or websocket)")
        self.upgrade = upgrade
        if ssl is None and self.url.secure:
            ssl = ssl_module.create_default_context()
        self.ssl = ssl if self.url.secure or ssl is not None else None
        self.reconnection = reconnection
        self.reconnection_attempts = reconnection_attempts
        self.reconnection_delay = reconnection_delay
        self.reconnection_delay_max = reconnection_delay_max
        self.randomization_factor = randomization_factor
        self.timeout = timeout
        self.timestamp_requests = timestamp_requests
        self.max_message_size = max_message_size
        self._backoff = Backoff(
            min_ms=round(reconnection_delay * 1000),
            max_ms=round(reconnection_delay_max * 1000),
            jitter=randomization_factor,
            rng=rng,
        )
        self.parser: Parser = resolve_parser(parser)
        self.nsps: dict[str, Client] = {}
        self.engine: EngineClient | None = None
        self.last_error: BaseException | None = None
        self._emitter = EventEmitter()
        self._decoder: Decoder = self.parser.decoder()
        # The socket on "/" while its events and acks take the lane (``_sync_lane``).
        self._lane_socket: Client | None = None
        self._ready_state = "closed"
        self._reconnecting = False
        self._skip_reconnect = not reconnection
        self._timers: list[asyncio.TimerHandle] = []
        self._closing: set[EngineClient] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"<Manager {self.url.id!r} state={self._ready_state}>"

    # -- events ------------------------------------------------------------------------------

    @overload
    def on(self, event: str, handler: F) -> F: ...

    @overload
    def on(self, event: str, handler: None = None) -> Callable[[F], F]: ...

    def on(self, event: str, handler: Handler | None = None) -> Any:
        """Listen to a manager event (``reconnect``, ``reconnect_attempt``...); a decorator too."""
        return self._emitter.on(event, handler)

    def once(self, event: str, handler: Handler | None = None) -> Any:
        """Like :meth:`on`, for one call only."""
        return self._emitter.once(event, handler)

    def off(self, event: str | None = None, handler: Handler | None = None) -> None:
        """Remove a handler, the handlers of ``event``, or every handler."""
        self._emitter.off(event, handler)

    def _emit(self, event: str, *args: Any) -> None:
        self._emitter.emit_local(event, *args)

    # -- state ---------------------------------------------------------------------------------

    @property
    def ready_state(self) -> str:
        """``"closed"``, ``"opening"`` or ``"open"``."""
        return self._ready_state

    @property
    def reconnecting(self) -> bool:
        """Whether a reconnection is scheduled or in progress."""
        return self._reconnecting

    @property
    def transport(self) -> str | None:
        """The Engine.IO transport in use (``polling`` or ``websocket``), if connected."""
        engine = self.engine
        return engine.transport_name if engine is not None and self._ready_state == "open" else None

    # -- namespaces ------------------------------------------------------------------------

    def socket(
        self,
        namespace: str = "/",
        *,
        auth: Any = None,
        retries: int = 0,
        ack_timeout: float | None = None,
    ) -> Client:
        """The :class:`Client` of ``namespace`` on this connection (created on first use).

        ``auth`` (a dict, or a sync or async callable returning one, evaluated at each
        connection), ``retries`` and ``ack_timeout`` apply to a new socket only.
        """
        if not namespace.startswith("/"):
            namespace = "/" + namespace
        sock = self.nsps.get(namespace)
        if sock is None:
            sock = Client(auth=auth, retries=retries, ack_timeout=ack_timeout)
            sock.attach(self, namespace)
            self.nsps[namespace] = sock
        return sock

    # -- opening ---------------------------------------------------------------------------

    def _transport_options(self) -> TransportOptions:
        url = self.url
        return TransportOptions(
            host=url.host,
            port=url.port,
            host_header=url.host_header,
            path=self.path,
            secure=url.secure,
            ssl=self.ssl,
            headers=list(self.headers),
            timestamp_requests=self.timestamp_requests,
            max_http_buffer_size=self.max_message_size,
        )

    def open(self, callback: Callable[[BaseException | None], None] | None = None) -> None:
        """Open the Engine.IO connection (no-op when opening or open).

        ``callback(err)`` is called once: with None when open, with the error otherwise.
        Without a callback, a failure starts the reconnection loop (when enabled).
        """
        if self._ready_state != "closed":
            return
        self._loop = asyncio.get_running_loop()
        engine = EngineClient(
            self._transport_options(),
            query=self.query,
            transports=self.transports,
            upgrade=self.upgrade,
            max_message_size=self.max_message_size,
        )
        self.engine = engine
        self._ready_state = "opening"
        self._skip_reconnect = False
        done = False

        def on_open() -> None:
            nonlocal done
            if done:
                return
            done = True
            self._on_open(engine)
            if callback is not None:
                callback(None)

        def on_error(err: BaseException) -> None:
            nonlocal done
            if done:
                return
            done = True
            self._cleanup()
            self._ready_state = "closed"
            self.last_error = err
            self._emit("error", err)
            self._for_sockets(lambda s: s.handle_error(err))
            if callback is not None:
                callback(err)
            else:
                self._maybe_reconnect_on_open(err)

        engine.on_open = on_open
        engine.on_error = on_error
        if self.timeout is not None:

            def on_timeout() -> None:
                if done:
                    return
                log.debug("connect attempt timed out after %s s", self.timeout)
                on_error(TransportError("timeout"))
                self._retire(engine)
                engine.close()

            self._timers.append(self._loop.call_later(self.timeout, on_timeout))
        engine.open()

    def _on_open(self, engine: EngineClient) -> None:
        self._cleanup()
        self._ready_state = "open"
        self._decoder = self.parser.decoder()
        engine.on_ping = self._on_ping
        engine.on_message = self._on_data
        engine.on_error = self._on_engine_error
        engine.on_close = self._on_engine_close
        engine.on_upgrading = self._on_upgrading
        engine.on_upgrade = self._on_upgrade
        self._emit("open")
        self._for_sockets(lambda s: s.handle_open())

    def _on_ping(self) -> None:
        self._emit("ping")

    def _on_upgrading(self, name: str) -> None:
        self._emit("upgrading", name)

    def _on_upgrade(self, name: str) -> None:
        self._emit("upgrade", name)

    def _on_engine_error(self, err: BaseException) -> None:
        self.last_error = err
        self._emit("error", err)
        self._for_sockets(lambda s: s.handle_error(err))

    def _on_engine_close(self, reason: str, description: Any) -> None:
        self._on_close(reason, description)

    def _for_sockets(self, fn: Callable[[Client], None]) -> None:
        for sock in list(self.nsps.values()):
            if sock.active:
                fn(sock)

    # -- receiving -------------------------------------------------------------------------

    def _on_data(self, data: bytes, binary: bool) -> None:
        decoder = self._decoder
        try:
            packet = decoder.feed_binary(data) if binary else decoder.feed_text(data)
        except RemoteProtocolError as exc:
            log.info("invalid Socket.IO packet from the server: %s", exc)
            self._on_close(DisconnectReason.PARSE_ERROR, exc)
            return
        if packet is None:
            # A binary packet awaits its attachments: until it is complete,
            # every message goes through the decoder (which refuses text).
            self._sync_lane()
            return
        sock = self.nsps.get(packet.nsp)
        if sock is not None and sock.active:
            sock.handle_packet(packet)
        ptype = packet.type
        if binary or (ptype != _EVENT and ptype != _ACK):
            # A binary packet completed, a namespace (dis)connected: the lane
            # may open or close.
            self._sync_lane()

    def _lane_client(self) -> Client | None:
        """The socket on "/" when its events and acks may skip the decoder: the
        default parser (``core.wire`` reads its JSON text), no binary packet half
        received, the socket active and connected."""
        if self._ready_state != "open" or self.parser is not DEFAULT_PARSER:
            return None
        decoder = self._decoder
        if not isinstance(decoder, PacketDecoder) or decoder.awaiting_attachments:
            return None
        sock = self.nsps.get("/")
        if sock is None or not sock.active or not sock.connected:
            return None
        return sock

    def _sync_lane(self) -> None:
        """Open the lane while ``_lane_client`` has a socket, close it otherwise.

        The engine uses it only while the session is open on a WebSocket.
        """
        sock = self._lane_client()
        if sock is self._lane_socket:
            return
        self._lane_socket = sock
        engine = self.engine
        if engine is not None:
            engine.set_lane(None if sock is None else self._on_packets)

    def _on_packets(self, packets: list[Any]) -> int:
        """The lane: the events and acks on "/" of one read, flat ``[ptype, ack_id,
        data, ...]`` (``core.wire.scan_packets``), each handled as ``_on_data``
        would; returns how many were.

        A callback may close the lane (a disconnect, the end of the connection):
        the packets after it then go the general way, which decides anew.
        """
        sock = self._lane_socket
        for i in range(0, len(packets), 3):
            if self._lane_socket is not sock or sock is None:
                return i // 3
            if packets[i] == 3:
                sock.handle_ack(packets[i + 1], packets[i + 2])
            else:
                sock.handle_event(packets[i + 2], packets[i + 1])
        return len(packets) // 3

    # -- sending -----------------------------------------------------------------------------

    def write_encoded(self, text: bytes, attachments: list[bytes]) -> None:
        """Send one packet already encoded by the parser (dropped while closed)."""
        engine = self.engine
        if engine is None:
            return
        if not attachments:
            engine.write(((text, False),))
        elif text:
            engine.write([(text, False), *((a, True) for a in attachments)])
        else:
            # A parser that sends binary messages only (msgpack): no text part.
            engine.write([(a, True) for a in attachments])

    def send_packet(self, packet: Packet) -> None:
        """Encode and send one packet."""
        text, attachments = self.parser.encode(packet)
        self.write_encoded(text, attachments)

    # -- closing -----------------------------------------------------------------------------

    def _cleanup(self) -> None:
        """Drop the timers and the engine callbacks of the current attempt."""
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        engine = self.engine
        if engine is not None:
            engine.on_open = _nothing
            engine.on_error = _nothing
            engine.on_ping = _nothing
            engine.on_message = _nothing
            engine.on_close = _nothing
            engine.on_upgrading = _nothing
            engine.on_upgrade = _nothing
            # Another callback of the engine's.
            engine.set_lane(None)
        self._lane_socket = None
        self._decoder.reset()

    def _retire(self, engine: EngineClient) -> None:
        """Keep track of a closing engine until its sockets are released."""
        self._closing.add(engine)

    def remove_socket(self, sock: Client) -> None:
        """A socket became inactive: close the connection when it was the last one."""
        self._sync_lane()
        for other in self.nsps.values():
            if other.active:
                return
        self._close()

    def _close(self) -> None:
        self._skip_reconnect = True
        self._reconnecting = False
        self._on_close(DisconnectReason.FORCED_CLOSE)

    def close(self) -> None:
        """Close the connection for every namespace; no reconnection."""
        self._close()

    disconnect = close

    def _on_close(self, reason: str, description: Any = None) -> None:
        log.debug("connection closed: %s", reason)
        self._cleanup()
        engine = self.engine
        if engine is not None:
            self._retire(engine)
            engine.close()
        self._backoff.reset()
        self._ready_state = "closed"
        self._emit("close", reason, description)
        self._for_sockets(lambda s: s.handle_close(reason))
        if self.reconnection and not self._skip_reconnect:
            self._reconnect()
        elif not self._reconnecting:
            self._give_up(None)

    async def wait_closed(self) -> None:
        """Wait until the connections this manager closed have released their sockets."""
        while self._closing:
            engine = self._closing.pop()
            await engine.wait_closed()

    # -- reconnection ---------------------------------------------------------------------

    def _maybe_reconnect_on_open(self, err: BaseException) -> None:
        if not self._reconnecting and self.reconnection and self._backoff.attempts == 0:
            self._reconnect()
        elif not self.reconnection:
            self._give_up(err)

    def _reconnect(self) -> None:
        if self._reconnecting or self._skip_reconnect:
            return
        if self._backoff.attempts >= self.reconnection_attempts:
            log.debug("reconnection failed")
            self._backoff.reset()
            self._emit("reconnect_failed")
            self._reconnecting = False
            self._give_up(self.last_error)
            return
        delay = self._backoff.duration() / 1000
        log.debug("reconnecting in %.3f s", delay)
        self._reconnecting = True
        loop = self._loop or asyncio.get_running_loop()
        self._timers.append(loop.call_later(delay, self._attempt))

    def _attempt(self) -> None:
        if self._skip_reconnect:
            return
        self._emit("reconnect_attempt", self._backoff.attempts)
        if self._skip_reconnect:
            return

        def done(err: BaseException | None) -> None:
            if err is not None:
                self._reconnecting = False
                self._reconnect()
                self._emit("reconnect_error", err)
            else:
                self._on_reconnect()

        self.open(done)

    def _on_reconnect(self) -> None:
        attempt = self._backoff.attempts
        self._reconnecting = False
        self._backoff.reset()
        self._emit("reconnect", attempt)

    def _give_up(self, err: BaseException | None) -> None:
        """No (re)connection will happen by itself: tell the sockets."""
        self._for_sockets(lambda s: s.handle_given_up(err))


def lookup(
    url: str, force_new: bool, multiplex: bool, options: dict[str, Any]
) -> tuple[Manager, str]:
    """The manager for ``url`` and the namespace, as the JavaScript ``io()`` picks it.

    Managers are shared by URL identity unless ``force_new`` or not ``multiplex``, or
    when the shared one already has a socket for that namespace or speaks another
    ``parser``.
    """
    parsed = parse_url(url, options.get("path", "/socket.io"))
    namespace = parsed.namespace
    cached = _cache.get(parsed.id)
    if cached is not None:
        loop = cached._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is not None and (loop.is_closed() or (running is not None and loop is not running)):
            cached = None
    unfit = cached is not None and (
        namespace in cached.nsps or cached.parser is not resolve_parser(options.get("parser"))
    )
    if force_new or not multiplex or unfit:
        return Manager(url, **options), namespace
    if cached is None:
        cached = Manager(url, **options)
        _cache[parsed.id] = cached
    return cached, namespace


# ``Client(url)`` and ``client.connect(url)`` find their manager here.
use_manager_lookup(lookup)
