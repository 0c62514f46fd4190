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
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import deque
from collections.abc import Callable, Generator
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, overload

from socketwire.client.listeners import EventEmitter, F, Handler, Listener, dispatch, spawn
from socketwire.client.manager import lookup
from socketwire.core.socketio.packet import Packet, PacketType, encode_ack, encode_event
from socketwire.errors import AckTimeout, ConnectionRefused, Disconnected

if TYPE_CHECKING:
    from socketwire.client.manager import Manager

__all__ = ["Client", "EmitOptions"]

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


def ack_value(args: tuple[Any, ...]) -> Any:
    """The value of an acknowledgement: its argument, a tuple of several, or None."""
    if len(args) == 1:
        return args[0]
    return args if args else None


class _Ack:
    """A pending acknowledgement; ``with_error`` callbacks take an error first."""

    __slots__ = ("fn", "timer", "with_error")

    def __init__(
        self, fn: Callable[..., Any], with_error: bool, timer: asyncio.TimerHandle | None
    ) -> None:
        self.fn = fn
        self.with_error = with_error
        self.timer = timer


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


class _Queued:
    """An emit of the retry queue (``retries``): sent until acknowledged."""

    __slots__ = ("args", "callback", "event", "id", "pending", "timeout", "try_count")

    def __init__(
        self,
        seq: int,
        event: str,
        args: tuple[Any, ...],
        callback: Callable[..., Any] | None,
        timeout: float | None,
    ) -> None:
        self.id = seq
        self.event = event
        self.args = args
        self.callback = callback
        self.timeout = timeout
        self.try_count = 0
        self.pending = False


class _Closing:
    """What :meth:`Client.disconnect` returns: await it to wait for the sockets to close."""

    __slots__ = ("_manager",)

    def __init__(self, manager: Manager) -> None:
        self._manager = manager

    def __await__(self) -> Generator[Any, None, None]:
        return self._manager.wait_closed().__await__()


class Client:
    """A Socket.IO client connected to one namespace.

    ::

        client = socketwire.Client("http://localhost:3000/chat", auth={"token": "..."})

        @client.on("message")
        def message(text):
            return "got it"                      # the ack, if the server asked for one

        await client.connect()
        answer = await client.emit_with_ack("hello", "world", timeout=5)
        await client.disconnect()

    Namespaces opened on the same URL share one Engine.IO connection (one
    :class:`~socketwire.client.manager.Manager`) unless ``force_new=True`` (or
    ``multiplex=False``).  Other keyword options are the manager's (``transports``,
    ``path``, ``query``, ``headers``, ``ssl``, ``reconnection``..., see
    :class:`~socketwire.client.manager.Manager`); they apply when this client creates
    the connection.

    Socket options: ``auth`` (a dict, or a sync or async callable returning one,
    evaluated at every connection), ``retries`` (resend each emit until
    acknowledged, up to this many extra times; emits then go out one at a time) and
    ``ack_timeout`` (default timeout of acknowledgements, seconds).
    """

    __slots__ = (
        "__weakref__",
        "_acks",
        "_active",
        "_any",
        "_any_outgoing",
        "_auth_task",
        "_done",
        "_emitter",
        "_ids",
        "_last_offset",
        "_pid",
        "_queue",
        "_queue_seq",
        "_receive_buffer",
        "_send_buffer",
        "_waiters",
        "ack_timeout",
        "auth",
        "connected",
        "id",
        "manager",
        "namespace",
        "recovered",
        "retries",
    )

    def __init__(
        self,
        url: str = "http://localhost",
        *,
        auth: Any = None,
        retries: int = 0,
        ack_timeout: float | None = None,
        force_new: bool = False,
        multiplex: bool = True,
        **options: Any,
    ) -> None:
        manager, namespace = lookup(url, force_new, multiplex, options)
        self._setup(manager, namespace, auth, retries, ack_timeout)
        manager.nsps.setdefault(namespace, self)

    @classmethod
    def _create(
        cls,
        manager: Manager,
        namespace: str,
        auth: Any,
        retries: int,
        ack_timeout: float | None,
    ) -> Client:
        self = cls.__new__(cls)
        self._setup(manager, namespace, auth, retries, ack_timeout)
        return self

    def _setup(
        self,
        manager: Manager,
        namespace: str,
        auth: Any,
        retries: int,
        ack_timeout: float | None,
    ) -> None:
        self.manager = manager
        self.namespace = namespace
        self.auth = auth
        self.retries = retries
        self.ack_timeout = ack_timeout
        self.id: str | None = None
        self.connected = False
        self.recovered = False
        self._active = False
        self._emitter = EventEmitter()
        self._any: list[Callable[..., Any]] | None = None
        self._any_outgoing: list[Callable[..., Any]] | None = None
        self._acks: dict[int, _Ack] = {}
        self._ids = 0
        self._send_buffer: list[_Outgoing] = []
        self._receive_buffer: list[tuple[list[Any], int | None]] = []
        self._queue: deque[_Queued] = deque()
        self._queue_seq = 0
        self._pid: str | None = None
        self._last_offset: str | None = None
        self._waiters: list[asyncio.Future[None]] = []
        self._done = asyncio.Event()
        self._done.set()
        self._auth_task: asyncio.Task[Any] | None = None

    def __repr__(self) -> str:
        return (
            f"<Client {self.manager.url.id} nsp={self.namespace!r} "
            f"id={self.id!r} connected={self.connected}>"
        )

    # -- state ---------------------------------------------------------------------------------

    @property
    def io(self) -> Manager:
        """The :class:`Manager` (the shared Engine.IO connection), as ``socket.io`` in JavaScript."""
        return self.manager

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
        return self.manager.transport

    # -- listeners -------------------------------------------------------------------------------

    @overload
    def on(self, event: str, handler: F) -> F: ...

    @overload
    def on(self, event: str, handler: None = None) -> Callable[[F], F]: ...

    def on(self, event: str, handler: Handler | None = None) -> Any:
        """Register a handler of an event from the server (or ``connect``, ``connect_error``,
        ``disconnect``); without a handler, a decorator.

        The handler's return value acknowledges the event when the server asked for an
        ack (a tuple spreads into several arguments); a handler with an ``ack`` parameter
        gets the ack callable instead.  Sync or async.
        """
        return self._emitter.on(event, handler)

    @overload
    def once(self, event: str, handler: F) -> F: ...

    @overload
    def once(self, event: str, handler: None = None) -> Callable[[F], F]: ...

    def once(self, event: str, handler: Handler | None = None) -> Any:
        """Like :meth:`on`, removed after the first call."""
        return self._emitter.once(event, handler)

    def off(self, event: str | None = None, handler: Handler | None = None) -> None:
        """Remove a handler, every handler of ``event``, or every handler."""
        self._emitter.off(event, handler)

    def listeners(self, event: str) -> list[Handler]:
        """The handlers of ``event``."""
        return self._emitter.listeners(event)

    def on_any(self, handler: F) -> F:
        """Call ``handler(event, *args)`` for every event received (before its handlers)."""
        if self._any is None:
            self._any = []
        self._any.append(handler)
        return handler

    def prepend_any(self, handler: F) -> F:
        """Like :meth:`on_any`, called before the catch-all handlers already registered."""
        if self._any is None:
            self._any = []
        self._any.insert(0, handler)
        return handler

    def off_any(self, handler: Handler | None = None) -> None:
        """Remove one catch-all handler, or all of them."""
        if handler is None or self._any is None:
            self._any = None
            return
        self._any = [h for h in self._any if h is not handler] or None

    def listeners_any(self) -> list[Handler]:
        """The catch-all handlers of incoming events."""
        return list(self._any or ())

    def on_any_outgoing(self, handler: F) -> F:
        """Call ``handler(event, *args)`` for every event sent (acks excluded)."""
        if self._any_outgoing is None:
            self._any_outgoing = []
        self._any_outgoing.append(handler)
        return handler

    def prepend_any_outgoing(self, handler: F) -> F:
        """Like :meth:`on_any_outgoing`, called first."""
        if self._any_outgoing is None:
            self._any_outgoing = []
        self._any_outgoing.insert(0, handler)
        return handler

    def off_any_outgoing(self, handler: Handler | None = None) -> None:
        """Remove one outgoing catch-all handler, or all of them."""
        if handler is None or self._any_outgoing is None:
            self._any_outgoing = None
            return
        self._any_outgoing = [h for h in self._any_outgoing if h is not handler] or None

    def listeners_any_outgoing(self) -> list[Handler]:
        """The catch-all handlers of outgoing events."""
        return list(self._any_outgoing or ())

    def _emit_reserved(self, event: str, *args: Any) -> None:
        self._emitter.emit_local(event, *args)

    # -- connecting ------------------------------------------------------------------------------

    async def connect(self) -> Client:
        """Connect to the namespace and wait until the server accepted it.

        Raises :class:`~socketwire.errors.ConnectionRefused` when the server refuses
        the namespace (CONNECT_ERROR: its ``message`` and ``data``).  Connection
        failures are retried as configured (``reconnection``...), each one reported
        by a ``connect_error`` event; the last failure is raised once no more attempt
        will be made (``reconnection=False``, or ``reconnection_attempts`` spent).
        Cancelling the call abandons the connection (as :meth:`disconnect`).
        """
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
        """Start connecting without waiting (the JavaScript ``socket.connect()``)."""
        manager = self.manager
        if self.connected or (self._active and manager.ready_state != "closed"):
            return self  # connected, or connecting already
        self._done.clear()
        self._active = True
        if not manager.reconnecting:
            manager.open()
        if manager.ready_state == "open":
            self._on_open()
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

    def _on_open(self) -> None:
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
        self.manager._packet(Packet(_CONNECT, self.namespace, data))

    def _on_error(self, err: BaseException) -> None:
        """The connection failed (or could not open)."""
        if not self.connected:
            self._emit_reserved("connect_error", err)

    def _on_close(self, reason: str) -> None:
        """The Engine.IO connection closed."""
        was_connected = self.connected
        self.connected = False
        self.id = None
        if was_connected:
            self._emit_reserved("disconnect", reason)
        self._clear_acks()

    def _on_given_up(self, err: BaseException | None) -> None:
        """The manager will not reconnect by itself."""
        self._fail_waiters(err or Disconnected("connection closed"))
        self._done.set()

    def _fail_waiters(self, err: BaseException) -> None:
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_exception(err)

    # -- receiving -------------------------------------------------------------------------------

    def _on_packet(self, packet: Packet) -> None:
        ptype = packet.type
        if ptype == _EVENT or ptype == _BINARY_EVENT:
            if self.connected:
                self._on_event(packet.data, packet.id)
            else:
                self._receive_buffer.append((packet.data, packet.id))
        elif ptype == _ACK or ptype == _BINARY_ACK:
            self._on_ack(packet)
        elif ptype == _CONNECT:
            data = packet.data
            if isinstance(data, dict) and isinstance(data.get("sid"), str):
                pid = data.get("pid")
                self._on_connect(data["sid"], pid if isinstance(pid, str) else None)
            else:
                self._emit_reserved("connect_error", ConnectionRefused(_V2_MESSAGE))
        elif ptype == _DISCONNECT:
            self._destroy()
            self._on_close("io server disconnect")
            self._fail_waiters(Disconnected("io server disconnect"))
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
        self.connected = True
        self._emit_buffered()
        self._drain_queue(force=True)
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
        for out in buffered:
            self._notify_outgoing(out.data)
            manager._write(out.text, out.attachments)

    def _on_event(self, data: list[Any], ack_id: int | None) -> None:
        event = data[0]
        args = tuple(data[1:])
        if self._any is not None:
            for fn in list(self._any):
                try:
                    fn(event, *args)
                except Exception:
                    log.exception("catch-all handler failed (event %r)", event)
        listeners: list[Listener] | None = (
            self._emitter.take(event) if isinstance(event, str) else None
        )
        if listeners:
            dispatch(
                listeners, args, self._make_ack(ack_id) if ack_id is not None else None, repr(event)
            )
        if self._pid and args and ack_id is None and type(args[-1]) is str:
            # Connection state recovery: broadcasts carry their offset last.
            self._last_offset = args[-1]

    def _make_ack(self, ack_id: int) -> Callable[..., None]:
        sent = False

        def ack(*args: Any) -> None:
            nonlocal sent
            if sent:
                return
            sent = True
            text, attachments = encode_ack(self.namespace, list(args), ack_id)
            self.manager._write(text, attachments)

        return ack

    def _on_ack(self, packet: Packet) -> None:
        ack_id = packet.id
        pending = self._acks.pop(ack_id, None) if ack_id is not None else None
        if pending is None:
            log.debug("ack %s matches no pending emit: ignored", ack_id)
            return
        if pending.timer is not None:
            pending.timer.cancel()
        args = packet.data
        try:
            if pending.with_error:
                pending.fn(None, *args)
            else:
                pending.fn(*args)
        except Exception:
            log.exception("ack callback failed (%s)", self.namespace)

    # -- emitting --------------------------------------------------------------------------------

    def emit(self, event: str, *args: Any, callback: Callable[..., Any] | None = None) -> None:
        """Send ``event`` with ``args`` (``bytes`` anywhere are sent as binary).

        While disconnected the event is buffered and sent on (re)connection.
        ``callback(*ack_args)`` is called with the server's acknowledgement; when a
        timeout applies (``timeout(s)``, ``ack_timeout``) or ``retries`` is set, it is
        called as ``callback(err, *ack_args)`` with ``err`` None, or an
        :class:`~socketwire.errors.AckTimeout` / :class:`~socketwire.errors.Disconnected`.
        """
        self._emit(event, args, callback, None, False, None)

    def send(self, *args: Any, callback: Callable[..., Any] | None = None) -> None:
        """Emit a ``message`` event (the WebSocket-like API)."""
        self._emit("message", args, callback, None, False, None)

    write = send

    async def emit_with_ack(self, event: str, *args: Any, timeout: float | None = None) -> Any:
        """Emit and wait for the acknowledgement; return its argument (a tuple when
        several, None when none).

        Raises :class:`~socketwire.errors.AckTimeout` after ``timeout`` seconds (default
        ``ack_timeout``; none when both are None) and
        :class:`~socketwire.errors.Disconnected` if the connection is lost first (an
        emit still buffered keeps waiting for the reconnection instead).
        """
        return await self._emit_with_ack(event, args, False, timeout)

    def _emit_with_ack(
        self, event: str, args: tuple[Any, ...], volatile: bool, timeout: float | None
    ) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def done(err: BaseException | None, *response: Any) -> None:
            if fut.done():
                return
            if err is not None:
                fut.set_exception(err)
            else:
                fut.set_result(ack_value(response))

        self._emit(event, args, done, True, volatile, timeout)
        return fut

    @property
    def volatile(self) -> EmitOptions:
        """Emit without buffering: dropped unless connected with a writable transport."""
        return EmitOptions(self, volatile=True)

    def timeout(self, seconds: float) -> EmitOptions:
        """Emit with an acknowledgement deadline (the callback then takes an error first)."""
        return EmitOptions(self, timeout=seconds)

    def _emit(
        self,
        event: str,
        args: tuple[Any, ...],
        callback: Callable[..., Any] | None,
        with_error: bool | None,
        volatile: bool,
        timeout: float | None,
        from_queue: bool = False,
    ) -> None:
        if event in RESERVED_EVENTS:
            raise ValueError(f'"{event}" is a reserved event name')
        if self.retries and not from_queue and not volatile:
            self._add_to_queue(event, args, callback, timeout)
            return
        data = [event, *args]
        ack_id: int | None = None
        if callback is not None:
            ack_id = self._ids
        text, attachments = encode_event(self.namespace, data, ack_id)
        if callback is not None:
            self._ids += 1
            if timeout is None:
                timeout = self.ack_timeout
            if with_error is None:
                with_error = timeout is not None
            self._register_ack(ack_id, callback, with_error, timeout)  # type: ignore[arg-type]
        engine = self.manager.engine
        if volatile and (engine is None or not engine.writable):
            log.debug("volatile %r dropped: transport not writable", event)
        elif self.connected and engine is not None and not engine.has_ping_expired():
            if self._any_outgoing is not None:
                self._notify_outgoing(data)
            self.manager._write(text, attachments)
        else:
            self._send_buffer.append(_Outgoing(data, ack_id, text, attachments))

    def _notify_outgoing(self, data: list[Any]) -> None:
        for fn in list(self._any_outgoing or ()):
            try:
                fn(*data)
            except Exception:
                log.exception("outgoing catch-all handler failed")

    def _register_ack(
        self, ack_id: int, fn: Callable[..., Any], with_error: bool, timeout: float | None
    ) -> None:
        timer = None
        if timeout is not None:
            timer = asyncio.get_running_loop().call_later(timeout, self._ack_timed_out, ack_id)
        self._acks[ack_id] = _Ack(fn, with_error or timer is not None, timer)

    def _ack_timed_out(self, ack_id: int) -> None:
        pending = self._acks.pop(ack_id, None)
        if pending is None:
            return
        self._send_buffer = [out for out in self._send_buffer if out.ack_id != ack_id]
        try:
            pending.fn(AckTimeout("operation has timed out"))
        except Exception:
            log.exception("ack callback failed (%s)", self.namespace)

    def _clear_acks(self) -> None:
        """On disconnection: acks of emits already sent will never come."""
        buffered = {out.ack_id for out in self._send_buffer}
        for ack_id in list(self._acks):
            if ack_id in buffered:
                continue
            pending = self._acks.pop(ack_id)
            if pending.timer is not None:
                pending.timer.cancel()
            if pending.with_error:
                try:
                    pending.fn(Disconnected("socket has been disconnected"))
                except Exception:
                    log.exception("ack callback failed (%s)", self.namespace)

    # -- retries (at-least-once delivery) ------------------------------------------------------

    def _add_to_queue(
        self,
        event: str,
        args: tuple[Any, ...],
        callback: Callable[..., Any] | None,
        timeout: float | None,
    ) -> None:
        packet = _Queued(self._queue_seq, event, args, callback, timeout)
        self._queue_seq += 1
        self._queue.append(packet)
        self._drain_queue()

    def _on_queue_ack(self, packet: _Queued, err: BaseException | None, *response: Any) -> None:
        queue = self._queue
        if not queue or queue[0] is not packet:
            return  # already acknowledged
        if err is not None:
            if packet.try_count > self.retries:
                log.debug("packet %d discarded after %d tries", packet.id, packet.try_count)
                queue.popleft()
                if packet.callback is not None:
                    packet.callback(err)
        else:
            queue.popleft()
            if packet.callback is not None:
                packet.callback(None, *response)
        packet.pending = False
        self._drain_queue()

    def _drain_queue(self, force: bool = False) -> None:
        if not self.connected or not self._queue:
            return
        packet = self._queue[0]
        if packet.pending and not force:
            return
        packet.pending = True
        packet.try_count += 1
        self._emit(
            packet.event,
            packet.args,
            partial(self._on_queue_ack, packet),
            True,
            False,
            packet.timeout,
            from_queue=True,
        )

    # -- disconnecting ---------------------------------------------------------------------------

    def _destroy(self) -> None:
        """Stop following the connection: no more reconnection for this socket."""
        if self._active:
            self._active = False
            self.manager._destroy(self)
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
            self.manager._packet(Packet(_DISCONNECT, self.namespace))
        self._destroy()
        if was_connected:
            self._on_close("io client disconnect")
        self._fail_waiters(Disconnected("io client disconnect"))
        return _Closing(self.manager)

    close = disconnect

    async def wait(self) -> None:
        """Return once the client is disconnected for good (no reconnection coming)."""
        await self._done.wait()


class EmitOptions:
    """``client.volatile`` / ``client.timeout(s)``: one emit with flags."""

    __slots__ = ("_client", "_timeout", "_volatile")

    def __init__(
        self, client: Client, volatile: bool = False, timeout: float | None = None
    ) -> None:
        self._client = client
        self._volatile = volatile
        self._timeout = timeout

    @property
    def volatile(self) -> EmitOptions:
        """The same, volatile."""
        return EmitOptions(self._client, True, self._timeout)

    def timeout(self, seconds: float) -> EmitOptions:
        """The same, with an acknowledgement deadline."""
        return EmitOptions(self._client, self._volatile, seconds)

    def emit(self, event: str, *args: Any, callback: Callable[..., Any] | None = None) -> None:
        """Emit with these flags (see :meth:`Client.emit`)."""
        self._client._emit(event, args, callback, None, self._volatile, self._timeout)

    def send(self, *args: Any, callback: Callable[..., Any] | None = None) -> None:
        """Emit a ``message`` event with these flags."""
        self.emit("message", *args, callback=callback)

    async def emit_with_ack(self, event: str, *args: Any) -> Any:
        """Emit with these flags and wait for the acknowledgement (see :meth:`Client.emit_with_ack`)."""
        return await self._client._emit_with_ack(event, args, self._volatile, self._timeout)
