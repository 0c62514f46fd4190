"""The client's connection to one namespace (the JavaScript client's ``Socket``).

:class:`Client` emits and receives events, carries acknowledgements both ways,
buffers what is emitted while disconnected (volatile emits are dropped instead),
retries unacknowledged emits when ``retries`` is set, and keeps what connection
state recovery needs (the ``pid`` the server gave and the offset of the last
broadcast received) to send it back in the CONNECT packet of a reconnection.

Events reserved to the client: ``connect``, ``connect_error`` (the error: a
:class:`~socketwire.errors.ConnectionRefused` carrying the server's CONNECT_ERROR
``message`` and ``data``, or a :class:`~socketwire.client.errors.TransportError`)
and ``disconnect`` (the reason, as the JavaScript client words it).

The listener registry, the catch-all listeners, the emit API and the way handlers
are called and answer acks are the server's too (:mod:`socketwire.listeners`,
:mod:`socketwire.emit_options`, :mod:`socketwire.handlers`, :mod:`socketwire.acks`).

A client talks to its :class:`~socketwire.client.manager.Manager` (the shared
Engine.IO connection) through :class:`ManagerPort` only.  The manager module
creates its namespace sockets with :class:`Client` and so imports this module;
this module never imports it back: a ``Client`` given a URL finds its manager
through the lookup that the manager module installs (:func:`use_manager_lookup`).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Generator
from types import TracebackType
from typing import Any, ClassVar, Final, Protocol, overload

from socketwire.acks import CallbackAck, ErrorFirstAck, FutureAck, PendingAck, ack_value
from socketwire.client.engine import EngineClient
from socketwire.client.listeners import runner, spawn
from socketwire.client.retry import RetryQueue
from socketwire.client.url import ParsedUrl
from socketwire.core.reasons import DisconnectReason
from socketwire.core.socketio.packet import Packet, PacketType
from socketwire.core.socketio.parser import Parser, resolve_parser
from socketwire.durations import check_seconds
from socketwire.emit_options import EmitMethods
from socketwire.errors import ConnectionRefused, Disconnected, LocalProtocolError
from socketwire.handlers import F, Handler, Runner
from socketwire.listeners import SocketListeners

__all__ = ["Client", "ManagerLookup", "ManagerPort", "use_manager_lookup"]

log = logging.getLogger("socketwire.client")

# Events a client may not emit (the JavaScript client's RESERVED_EVENTS).
RESERVED_EVENTS: Final = frozenset(
    ("connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener")
)

_CONNECT = PacketType.CONNECT
_DISCONNECT = PacketType.DISCONNECT
_EVENT = PacketType.EVENT
_BINARY_EVENT = PacketType.BINARY_EVENT
_ACK = PacketType.ACK
_BINARY_ACK = PacketType.BINARY_ACK
_CONNECT_ERROR = PacketType.CONNECT_ERROR

_V2_MESSAGE: Final = (
    "It seems you are trying to reach a Socket.IO server in v2.x with a v3.x client, "
    "but they are not compatible"
)

_NO_URL: Final = "no URL to connect to: pass one to Client(url) or connect(url)"

# What an ack deadline's error says (the JavaScript client's words).
_ACK_TIMEOUT: Final = "operation has timed out"

# Options of the socket itself; any other option is the connection's (the manager's).
_SOCKET_OPTIONS: Final = frozenset(("auth", "retries", "ack_timeout"))


class ManagerPort(Protocol):
    """A :class:`Client`'s view of its manager (``client.manager``).

    What the client itself uses (``write_encoded``, ``send_packet``,
    ``remove_socket``), and the public face of
    :class:`~socketwire.client.manager.Manager` for code that reaches the manager
    through a client.
    """

    url: ParsedUrl
    engine: EngineClient | None
    parser: Parser
    nsps: dict[str, Client]

    @property
    def ready_state(self) -> str: ...

    @property
    def reconnecting(self) -> bool: ...

    @property
    def transport(self) -> str | None: ...

    def socket(
        self,
        namespace: str = "/",
        *,
        auth: Any = None,
        retries: int = 0,
        ack_timeout: float | None = None,
    ) -> Client: ...

    @overload
    def on(self, event: str, handler: F) -> F: ...

    @overload
    def on(self, event: str, handler: None = None) -> Callable[[F], F]: ...

    def once(self, event: str, handler: Handler | None = None) -> Any: ...

    def off(self, event: str | None = None, handler: Handler | None = None) -> None: ...

    def open(self, callback: Callable[[BaseException | None], None] | None = None) -> None: ...

    def close(self) -> None: ...

    async def wait_closed(self) -> None: ...

    def write_encoded(self, text: bytes, attachments: list[bytes]) -> None:
        """Send one packet already encoded by the parser."""

    def send_packet(self, packet: Packet) -> None:
        """Encode and send one packet."""

    def remove_socket(self, sock: Client) -> None:
        """``sock`` became inactive: the connection closes after its last socket."""


class ManagerLookup(Protocol):
    """Finds the manager of a URL: ``(manager, namespace)``, as the JavaScript ``io()``."""

    def __call__(
        self, url: str, force_new: bool, multiplex: bool, options: dict[str, Any]
    ) -> tuple[ManagerPort, str]: ...


def _no_lookup(
    url: str, force_new: bool, multiplex: bool, options: dict[str, Any]
) -> tuple[ManagerPort, str]:
    # Never reached through the package: socketwire.client imports the manager module.
    raise RuntimeError("socketwire.client.manager is not imported")


_find_manager: ManagerLookup = _no_lookup


def use_manager_lookup(lookup: ManagerLookup) -> None:
    """Install how a :class:`Client` finds the manager of its URL (done by the manager module)."""
    global _find_manager
    _find_manager = lookup


class _Outgoing:
    """An event emitted while disconnected, encoded, waiting for the connection."""

    __slots__ = ("ack_id", "attachments", "data", "text")

    def __init__(
        self, data: list[Any], ack_id: int | None, text: bytes, attachments: list[bytes]
    ) -> None:
        self.data = data
        self.ack_id = ack_id
        self.text = text
        self.attachments = attachments


class _Closing:
    """What :meth:`Client.disconnect` returns: await it to wait for the sockets to close."""

    __slots__ = ("_manager",)

    def __init__(self, manager: ManagerPort | None) -> None:
        self._manager = manager

    def __await__(self) -> Generator[Any, None, None]:
        if self._manager is None:
            return _nothing().__await__()
        return self._manager.wait_closed().__await__()


async def _nothing() -> None:
    return None


class Client(SocketListeners, EmitMethods):
    """A Socket.IO client connected to one namespace.

    ::

        client = socketwire.Client("http://localhost:3000/chat", auth={"token": "..."})

        @client.on("message")
        def message(text):
            return "got it"                      # the ack, if the server asked for one

        await client.connect()
        answer = await client.emit_with_ack("hello", "world", timeout=5)
        await client.disconnect()

    The URL (its path is the namespace) may also come later, as python-socketio
    has it: ``client = Client()`` then ``await client.connect("http://...")``.

    Namespaces opened on the same URL share one Engine.IO connection (one
    :class:`~socketwire.client.manager.Manager`) unless ``force_new=True`` (or
    ``multiplex=False``).  Other keyword options are the manager's (``transports``,
    ``path``, ``query``, ``headers``, ``ssl``, ``parser``, ``reconnection``..., see
    :class:`~socketwire.client.manager.Manager`); they apply when this client creates
    the connection.  ``parser="msgpack"`` speaks the format of the npm package
    ``socket.io-msgpack-parser``, for a server that uses it.

    Socket options: ``auth`` (a dict, or a sync or async callable returning one,
    evaluated at every connection), ``retries`` (resend each emit until
    acknowledged, up to this many extra times; emits then go out one at a time) and
    ``ack_timeout`` (default timeout of acknowledgements, seconds).

    While disconnected, emits are buffered and sent on (re)connection.  An emit's
    ``callback`` is called error first (``callback(err, *args)``) when a timeout
    applies (``timeout(s)``, ``ack_timeout``) or ``retries`` is set, ``err`` being
    None, an :class:`~socketwire.errors.AckTimeout` or a
    :class:`~socketwire.errors.Disconnected`; ``emit_with_ack`` waits for the
    reconnection while its emit is still buffered.
    """

    __slots__ = (
        "_acks",
        "_active",
        "_auth_task",
        "_connection",
        "_done",
        "_ids",
        "_io",
        "_last_offset",
        "_loop",
        "_parser",
        "_pid",
        "_queue",
        "_receive_buffer",
        "_send_buffer",
        "_url",
        "_waiters",
        "ack_timeout",
        "auth",
        "connected",
        "id",
        "namespace",
        "recovered",
        "retries",
    )

    runner: ClassVar[Runner] = runner

    def __init__(
        self,
        url: str | None = None,
        *,
        auth: Any = None,
        retries: int = 0,
        ack_timeout: float | None = None,
        force_new: bool = False,
        multiplex: bool = True,
        **options: Any,
    ) -> None:
        super().__init__()
        self.auth = auth
        self.retries = retries
        check_seconds(ack_timeout, "ack_timeout={}")
        self.ack_timeout = ack_timeout
        self.namespace = "/"
        self.id: str | None = None
        self.connected = False
        self.recovered = False
        self._url: str | None = None
        self._io: ManagerPort | None = None
        # How to find or open the connection: lookup's flags and the manager's options.
        self._connection: dict[str, Any] = {
            "force_new": force_new,
            "multiplex": multiplex,
            **options,
        }
        self._parser: Parser = resolve_parser(options.get("parser"))
        self._active = False
        self._acks: dict[int, PendingAck] = {}
        self._ids = 0
        self._send_buffer: list[_Outgoing] = []
        self._receive_buffer: list[tuple[list[Any], int | None]] = []
        self._queue = RetryQueue()
        self._pid: str | None = None
        self._last_offset: str | None = None
        self._waiters: list[asyncio.Future[None]] = []
        self._done = asyncio.Event()
        self._done.set()
        self._auth_task: asyncio.Task[Any] | None = None
        # The event loop of the connection, known once connected: emits then
        # create their futures there without asking asyncio for it.
        self._loop: asyncio.AbstractEventLoop | None = None
        if url is not None:
            self._bind(url)

    def __repr__(self) -> str:
        where = self._io.url.id if self._io is not None else "(no URL)"
        return f"<Client {where} nsp={self.namespace!r} id={self.id!r} connected={self.connected}>"

    def _prepare(self, event: str, handler: Handler) -> Handler | None:
        """Refuse ``on("*")``: here it would name an event, never a catch-all."""
        if event == "*":
            raise ValueError(
                '"*" is an ordinary event name in socketwire, not a catch-all: use '
                "client.on_any(fn), fn(event, *args) then sees every event"
            )
        return None

    # -- the manager ---------------------------------------------------------------------------

    def _bind(self, url: str) -> None:
        """Take the manager of ``url`` (shared or new) and the namespace of its path."""
        options = dict(self._connection)
        force_new = bool(options.pop("force_new"))
        multiplex = bool(options.pop("multiplex"))
        manager, namespace = _find_manager(url, force_new, multiplex, options)
        manager.nsps.setdefault(namespace, self)
        self._url = url
        self.attach(manager, namespace)

    def attach(self, manager: ManagerPort, namespace: str) -> None:
        """Become ``manager``'s socket of ``namespace`` (also what ``Manager.socket`` does)."""
        changed = manager.parser is not self._parser or namespace != self.namespace
        self._io = manager
        self.namespace = namespace
        self._parser = manager.parser
        if changed:
            # Emits buffered before the URL was known: encode them for this connection.
            for out in self._send_buffer:
                out.text, out.attachments = self._parser.encode_event(
                    namespace, out.data, out.ack_id
                )

    def _unbind(self) -> None:
        io, self._io = self._io, None
        if io is not None and io.nsps.get(self.namespace) is self:
            del io.nsps[self.namespace]

    def _configure(self, url: str | None, options: dict[str, Any]) -> None:
        """``connect(url, **options)``: socket options, and maybe a new connection."""
        for name in _SOCKET_OPTIONS & options.keys():
            setattr(self, name, options.pop(name))
        if url is None and not options:
            return
        if url is None:
            url = self._url
        if url is None:
            raise ValueError(_NO_URL)
        if self._io is not None and url == self._url and not options:
            return  # the connection already chosen
        if self._active:
            raise RuntimeError(
                "the client is connected or connecting: disconnect before connecting elsewhere"
            )
        self._connection.update(options)
        self._unbind()
        self._bind(url)

    @property
    def manager(self) -> ManagerPort:
        """The :class:`~socketwire.client.manager.Manager`: the (shared) Engine.IO connection.

        Raises ``RuntimeError`` before a URL was given.
        """
        io = self._io
        if io is None:
            raise RuntimeError(_NO_URL)
        return io

    @property
    def url(self) -> str | None:
        """The URL given to the constructor or to :meth:`connect` (None before one is).

        A socket made by ``Manager.socket`` has none of its own: see ``manager.url``.
        """
        return self._url

    @property
    def io(self) -> ManagerPort:
        """The manager, as ``socket.io`` in JavaScript."""
        return self.manager

    @property
    def parser(self) -> Parser:
        """The Socket.IO parser of this client's connection (the ``parser`` option)."""
        return self._parser

    # -- state ---------------------------------------------------------------------------------

    @property
    def disconnected(self) -> bool:
        """Whether the socket is not connected."""
        return not self.connected

    @property
    def active(self) -> bool:
        """Whether the socket will (re)connect by itself when its connection (re)opens."""
        return self._active

    @property
    def transport(self) -> str | None:
        """The Engine.IO transport in use (``polling`` or ``websocket``), if connected."""
        return self._io.transport if self._io is not None else None

    def _emit_reserved(self, event: str, *args: Any) -> None:
        self._emit_local(event, *args, where=self)

    # -- connecting ------------------------------------------------------------------------------

    async def connect(self, url: str | None = None, **options: Any) -> Client:
        """Connect to the namespace and wait until the server accepted it.

        ``url`` (its path is the namespace) is needed when the client was created
        without one; given to a client that has one, it moves the client to that
        URL (when not connected).  ``options`` are the constructor's: ``auth``,
        ``retries`` and ``ack_timeout`` update this client; the connection options
        (``transports``, ``headers``, ``parser``, ``force_new``...) choose the
        connection, with the URL.

        Raises :class:`~socketwire.errors.ConnectionRefused` when the server refuses
        the namespace (CONNECT_ERROR: its ``message`` and ``data``).  Connection
        failures are retried as configured (``reconnection``...), each one reported
        by a ``connect_error`` event; the last failure is raised once no more attempt
        will be made (``reconnection=False``, or ``reconnection_attempts`` spent).
        Cancelling the call abandons the connection (as :meth:`disconnect`).
        Raises ``ValueError`` when neither the constructor nor this call gave a URL.
        """
        if url is not None or options:
            self._configure(url, options)
        if self._io is None:
            raise ValueError(_NO_URL)
        if self.connected:
            return self
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        self._done.clear()
        self.open()
        try:
            await fut
        except asyncio.CancelledError:
            if not self.connected:
                self.disconnect()
            raise
        return self

    def open(self) -> Client:
        """Start connecting without waiting (the JavaScript ``socket.connect()``).

        Raises ``ValueError`` when the client has no URL yet.
        """
        manager = self._io
        if manager is None:
            raise ValueError(_NO_URL)
        if self.connected or (self._active and manager.ready_state != "closed"):
            return self  # connected, or connecting already
        self._done.clear()
        self._active = True
        if not manager.reconnecting:
            manager.open()
        if manager.ready_state == "open":
            self.handle_open()
        return self

    async def __aenter__(self) -> Client:
        return await self.connect()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.disconnect()

    def handle_open(self) -> None:
        """The Engine.IO connection is open: send CONNECT (with the auth payload)."""
        auth = self.auth
        if not callable(auth):
            self._send_connect_packet(auth)
            return
        try:
            result = auth()
        except Exception as exc:
            self._auth_failed(exc)
            return
        if inspect.isawaitable(result):
            self._auth_task = spawn(self._await_auth(result))
        else:
            self._send_connect_packet(result)

    async def _await_auth(self, pending: Any) -> None:
        try:
            data = await pending
        except Exception as exc:
            self._auth_failed(exc)
            return
        if self._active and self.manager.ready_state == "open" and not self.connected:
            self._send_connect_packet(data)

    def _auth_failed(self, exc: Exception) -> None:
        log.exception("the auth callable of %s failed", self.namespace, exc_info=exc)
        self._emit_reserved("connect_error", exc)
        self._destroy()
        self._fail_waiters(exc)

    def _send_connect_packet(self, data: Any) -> None:
        if data is not None and not isinstance(data, dict):
            raise TypeError(f"auth must be a dict, got {type(data).__name__}")
        if self._pid:
            # Connection state recovery: the session id and the last offset seen.
            payload: dict[str, Any] = {"pid": self._pid}
            if self._last_offset is not None:
                payload["offset"] = self._last_offset
            payload.update(data or {})
            data = payload
        self.manager.send_packet(Packet(_CONNECT, self.namespace, data))

    def handle_error(self, err: BaseException) -> None:
        """The connection failed (or could not open)."""
        if not self.connected:
            self._emit_reserved("connect_error", err)

    def handle_close(self, reason: str) -> None:
        """The Engine.IO connection closed."""
        was_connected = self.connected
        self.connected = False
        self.id = None
        if was_connected:
            self._emit_reserved("disconnect", reason)
        self._clear_acks()

    def handle_given_up(self, err: BaseException | None) -> None:
        """The manager will not reconnect by itself."""
        self._fail_waiters(err or Disconnected("connection closed"))
        self._done.set()

    def _fail_waiters(self, err: BaseException) -> None:
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_exception(err)

    # -- receiving -------------------------------------------------------------------------------

    def handle_packet(self, packet: Packet) -> None:
        """Handle one Socket.IO packet of this namespace (called by the manager)."""
        ptype = packet.type
        if ptype == _EVENT or ptype == _BINARY_EVENT:
            self.handle_event(packet.data, packet.id)
        elif ptype == _ACK or ptype == _BINARY_ACK:
            ack_id = packet.id
            if ack_id is None:
                log.debug("ack without an id: ignored")
                return
            self.handle_ack(ack_id, packet.data)
        elif ptype == _CONNECT:
            data = packet.data
            if isinstance(data, dict) and isinstance(data.get("sid"), str):
                pid = data.get("pid")
                self._on_connect(data["sid"], pid if isinstance(pid, str) else None)
            else:
                self._emit_reserved("connect_error", ConnectionRefused(_V2_MESSAGE))
        elif ptype == _DISCONNECT:
            self._destroy()
            self.handle_close(DisconnectReason.IO_SERVER_DISCONNECT)
            self._fail_waiters(Disconnected(DisconnectReason.IO_SERVER_DISCONNECT))
        elif ptype == _CONNECT_ERROR:
            data = packet.data
            if isinstance(data, dict):
                err = ConnectionRefused(str(data.get("message", "")), data.get("data"))
            else:
                err = ConnectionRefused(str(data))
            self._destroy()
            self._emit_reserved("connect_error", err)
            self._fail_waiters(err)

    def _on_connect(self, sid: str, pid: str | None) -> None:
        self.id = sid
        self.recovered = bool(pid) and self._pid == pid
        self._pid = pid  # only given when the server recovers connection state
        self._loop = asyncio.get_running_loop()
        self.connected = True
        self._emit_buffered()
        self._queue.drain(self, force=True)
        self._emit_reserved("connect")
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    def _emit_buffered(self) -> None:
        received, self._receive_buffer = self._receive_buffer, []
        for data, ack_id in received:
            self._on_event(data, ack_id)
        buffered, self._send_buffer = self._send_buffer, []
        manager = self.manager
        acks = self._acks
        for out in buffered:
            if out.ack_id is not None and out.ack_id not in acks:
                continue  # its ack timed out while it waited: not sent any more
            if self._any_out is not None:
                self._notify_outgoing(out.data)
            manager.write_encoded(out.text, out.attachments)

    def _on_event(self, data: list[Any], ack_id: int | None) -> None:
        event = data[0]
        if self._any is not None:
            self._notify_any(data)
        args = tuple(data[1:])
        listeners = self._take(event) if isinstance(event, str) else None
        if listeners:
            runner.dispatch(listeners, event, args, ack_id, self, self)
        if self._pid and args and ack_id is None and type(args[-1]) is str:
            # Connection state recovery: broadcasts carry their offset last.
            self._last_offset = args[-1]

    def send_ack(self, ack_id: int, args: list[Any]) -> None:
        """Answer the server's ``ack_id`` (the AckSink port of the handlers)."""
        io = self._io
        if io is None:
            return
        try:
            text, attachments = self._parser.encode_ack(self.namespace, args, ack_id)
        except LocalProtocolError as exc:
            # A handler's return value that cannot travel: the server gets no ack.
            log.error("%r: ack %d not sent: %s", self, ack_id, exc)
            return
        io.write_encoded(text, attachments)

    def handle_event(self, data: list[Any], ack_id: int | None) -> None:
        """One EVENT of the server, ``data = [name, *args]`` (called by the manager:
        ``handle_packet``, and its lane of packets decoded in one step)."""
        if self.connected:
            self._on_event(data, ack_id)
        else:
            self._receive_buffer.append((data, ack_id))

    def handle_ack(self, ack_id: int, data: list[Any]) -> None:
        """The server's ACK of the emit ``ack_id`` (called by the manager, as
        ``handle_event``); an ack that matches no pending emit is ignored."""
        pending = self._acks.pop(ack_id, None)
        if pending is None:
            log.debug("ack %s matches no pending emit: ignored", ack_id)
            return
        pending.resolve(data)

    # -- emitting (EmitMethods: emit, send, emit_with_ack, volatile, timeout) ------------------

    def emit_flagged(
        self,
        event: str,
        args: tuple[Any, ...],
        callback: Callable[..., Any] | None,
        volatile: bool,
        timeout: float | None,
    ) -> None:
        """``emit`` with its flags spelled out (the ``EmitPort`` of
        ``socketwire.emit_options``)."""
        self.send_event(event, args, callback, None, volatile, timeout)

    def emit_flagged_with_ack(
        self, event: str, args: tuple[Any, ...], volatile: bool, timeout: float | None
    ) -> Awaitable[Any]:
        """``emit_with_ack`` with its flags spelled out (the ``EmitPort`` of
        ``socketwire.emit_options``)."""
        loop = self._loop
        if loop is None or not self.connected:
            loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        if not self.retries or volatile:
            # The ack resolves the future itself.
            self.send_event(event, args, None, True, volatile, timeout, future=fut)
            return fut

        # The retry queue reports error first, to a callback.
        def done(err: BaseException | None, *response: Any) -> None:
            if fut.done():
                return
            if err is not None:
                fut.set_exception(err)
            else:
                fut.set_result(ack_value(response))

        self.send_event(event, args, done, True, volatile, timeout)
        return fut

    def send_event(
        self,
        event: str,
        args: tuple[Any, ...],
        callback: Callable[..., Any] | None,
        with_error: bool | None,
        volatile: bool,
        timeout: float | None,
        from_queue: bool = False,
        *,
        future: asyncio.Future[Any] | None = None,
    ) -> None:
        """Encode and send one EVENT (the port of the retry queue).

        ``with_error``: the callback takes an error first (None: only with a
        timeout); ``from_queue``: sent by the retry queue, so not queued again;
        ``future`` (instead of a callback): set to the ack's value, or failed.
        """
        if event in RESERVED_EVENTS:
            raise ValueError(f'"{event}" is a reserved event name')
        if self.retries and not from_queue and not volatile:
            self._queue.add(self, event, args, callback, timeout)
            return
        data = [event, *args]
        ack_id = self._ids if callback is not None or future is not None else None
        text, attachments = self._parser.encode_event(self.namespace, data, ack_id)
        if ack_id is not None:
            self._ids += 1
            if timeout is None:
                timeout = self.ack_timeout
            if callback is not None:
                if with_error or timeout is not None:
                    self._acks[ack_id] = ErrorFirstAck(
                        self._acks, ack_id, callback, timeout, log, report_drop=True
                    )
                else:
                    self._acks[ack_id] = CallbackAck(callback, log)
            elif future is not None:
                self._acks[ack_id] = FutureAck(
                    self._acks, ack_id, future, timeout, event, _ACK_TIMEOUT
                )
        io = self._io
        engine = io.engine if io is not None else None
        if volatile and (engine is None or not engine.writable):
            log.debug("volatile %r dropped: transport not writable", event)
        elif (
            self.connected
            and io is not None
            and engine is not None
            and not engine.has_ping_expired()
        ):
            if self._any_out is not None:
                self._notify_outgoing(data)
            if attachments:
                io.write_encoded(text, attachments)
            else:
                # One text message, the commonest emit: straight to the engine
                # (all that the manager's write_encoded would do).
                engine.write_text(text)
        else:
            self._send_buffer.append(_Outgoing(data, ack_id, text, attachments))

    def _clear_acks(self) -> None:
        """On disconnection: acks of emits already sent will never come."""
        buffered = {out.ack_id for out in self._send_buffer}
        for ack_id in list(self._acks):
            if ack_id not in buffered:
                self._acks.pop(ack_id).drop("socket has been disconnected")

    # -- disconnecting ---------------------------------------------------------------------------

    def _destroy(self) -> None:
        """Stop following the connection: no more reconnection for this socket."""
        if self._active:
            self._active = False
            self.manager.remove_socket(self)
        task, self._auth_task = self._auth_task, None
        if task is not None and not task.done():
            task.cancel()
        self._done.set()

    def disconnect(self) -> _Closing:
        """Leave the namespace; no reconnection.  The connection closes when this
        was its last namespace.

        Returns at once; the result can be awaited to wait until the underlying
        connection has closed its sockets.
        """
        was_connected = self.connected
        if was_connected:
            self.manager.send_packet(Packet(_DISCONNECT, self.namespace))
        self._destroy()
        if was_connected:
            self.handle_close(DisconnectReason.IO_CLIENT_DISCONNECT)
        self._fail_waiters(Disconnected(DisconnectReason.IO_CLIENT_DISCONNECT))
        return _Closing(self._io)

    close = disconnect

    async def wait(self) -> None:
        """Return once the client is disconnected for good (no reconnection coming)."""
        await self._done.wait()
