"""Emit to a cluster's clients from a process that has none (layer 1).

An emitter publishes to the Redis channels of a cluster's adapters, as Node's
``@socket.io/redis-emitter`` 5.x does: a worker, a cron job or a web app without
Socket.IO can broadcast to the clients of every server, make sockets join or
leave rooms, disconnect them, and send server-side events. It publishes only:
nothing comes back, so acknowledgements are not supported.

::

    import redis
    from socketwire.emitter import Emitter

    emitter = Emitter(redis.Redis())
    emitter.to("room1").emit("hello", "world")
    emitter.of("/admin").except_("banned").emit("notice", {"level": 2})

Four classes, one API; they differ only in the client and the publish call:

* :class:`Emitter` (``redis.Redis``) and :class:`AsyncEmitter`
  (``redis.asyncio.Redis``) reach servers with the classic Redis adapter,
  socketwire's or Node's ``createAdapter``;
* :class:`ShardedEmitter` (``redis.Redis``) and :class:`AsyncShardedEmitter`
  (``redis.asyncio.Redis``) reach servers with Node's ``createShardedAdapter``.

A blocking emitter's operations return the number of Redis subscribers that
received the message (``PUBLISH``'s answer); an asyncio emitter's return an
awaitable of it, and send nothing until awaited. Arguments are checked when the
operation is called, before any I/O: a reserved event name raises ValueError, an
ack (a callable last argument) TypeError, and a value that cannot be encoded
``LocalProtocolError``.

The messages themselves are built by :mod:`socketwire.core.cluster.emitter`.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar

from socketwire.core.cluster.emitter import (
    ClassicFormat,
    EmitterFormat,
    Publication,
    ShardedFormat,
    event_data,
)
from socketwire.core.cluster.message_format import DEFAULT_CHANNEL_PREFIX, SubscriptionMode
from socketwire.core.cluster.redis_format import DEFAULT_KEY
from socketwire.rooms import Rooms, room_name

__all__ = [
    "AsyncEmitter",
    "AsyncShardedEmitter",
    "BaseEmitter",
    "Emitter",
    "EmitterOperator",
    "PublishingClient",
    "ShardPublishingClient",
    "ShardedEmitter",
]

R = TypeVar("R")


class PublishingClient(Protocol):
    """What a classic emitter needs of its Redis client: ``publish``."""

    def publish(self, channel: Any, message: Any, /) -> Any:
        """``PUBLISH channel message`` (a result, or an awaitable of it)."""


class ShardPublishingClient(Protocol):
    """What a sharded emitter needs of its Redis client: ``spublish``."""

    def spublish(self, channel: Any, message: Any, /) -> Any:
        """``SPUBLISH channel message`` (a result, or an awaitable of it)."""


def _ordered_names(current: tuple[str, ...], rooms: Rooms) -> tuple[str, ...]:
    # Node's operator keeps its rooms in a Set: first-added order, no duplicates.
    # The order is kept because it is the order of the message's lists.
    names = list(current)
    for name in _names(rooms):
        if name not in names:
            names.append(name)
    return tuple(names)


def _names(rooms: Rooms) -> list[str]:
    if isinstance(rooms, (str, int)):
        return [room_name(rooms)]
    # bytes are iterable, but of numbers: never a list of rooms.
    if not isinstance(rooms, Iterable) or isinstance(rooms, (bytes, bytearray, memoryview)):
        raise TypeError(
            f"rooms are a str, an int or an iterable of them, got {type(rooms).__name__} {rooms!r}"
        )
    return [room_name(room) for room in rooms]


class EmitterOperator(Generic[R]):
    """The sockets an operation reaches and the flags of a broadcast.

    ``to``/``in_``/``except_``/``volatile``/``compress`` return a new operator;
    ``emit``, ``sockets_join``, ``sockets_leave`` and ``disconnect_sockets``
    publish. ``R`` is what publishing returns: the number of subscribers that
    received the message, or an awaitable of it with an asyncio client.
    """

    __slots__ = ("_except", "_flags", "_format", "_rooms", "_send")

    def __init__(
        self,
        fmt: EmitterFormat,
        send: Callable[[Publication], R],
        rooms: tuple[str, ...] = (),
        except_rooms: tuple[str, ...] = (),
        flags: Mapping[str, bool] | None = None,
    ) -> None:
        self._format = fmt
        self._send = send
        self._rooms = rooms
        self._except = except_rooms
        self._flags: dict[str, bool] = dict(flags or {})

    def _with(
        self,
        rooms: tuple[str, ...] | None = None,
        except_rooms: tuple[str, ...] | None = None,
        flags: Mapping[str, bool] | None = None,
    ) -> EmitterOperator[R]:
        return EmitterOperator(
            self._format,
            self._send,
            self._rooms if rooms is None else rooms,
            self._except if except_rooms is None else except_rooms,
            self._flags if flags is None else flags,
        )

    # -- selection and flags ---------------------------------------------------------------

    def to(self, room: Rooms) -> EmitterOperator[R]:
        """Reach the sockets in ``room`` (a room, or several), besides those
        already targeted; a number names the room of its decimal string."""
        return self._with(rooms=_ordered_names(self._rooms, room))

    def in_(self, room: Rooms) -> EmitterOperator[R]:
        """The same as :meth:`to` (Node's ``in``)."""
        return self.to(room)

    def except_(self, room: Rooms) -> EmitterOperator[R]:
        """Leave out the sockets in ``room`` (a room, or several)."""
        return self._with(except_rooms=_ordered_names(self._except, room))

    @property
    def volatile(self) -> EmitterOperator[R]:
        """The event may be lost for a client that is not ready to receive it."""
        return self._with(flags={**self._flags, "volatile": True})

    def compress(self, value: bool = True) -> EmitterOperator[R]:
        """Node's ``compress`` flag, passed on to the servers."""
        return self._with(flags={**self._flags, "compress": bool(value)})

    @property
    def rooms(self) -> tuple[str, ...]:
        """The targeted rooms (none: every socket)."""
        return self._rooms

    @property
    def except_rooms(self) -> tuple[str, ...]:
        """The rooms left out."""
        return self._except

    @property
    def flags(self) -> dict[str, bool]:
        """The flags set so far (a copy), in the order they were first set."""
        return dict(self._flags)

    # -- publishing ------------------------------------------------------------------------

    def emit(self, event: str, *args: Any) -> R:
        """Send ``event`` with ``args`` to the targeted sockets of every server.

        Arguments are what a server's ``emit`` takes (bytes included); a reserved
        event name raises ValueError, a callable last argument (an ack)
        TypeError.
        """
        data = event_data(event, args)
        return self._send(self._format.broadcast(data, self._rooms, self._except, self._flags))

    def sockets_join(self, rooms: Rooms) -> R:
        """Make the targeted sockets join ``rooms``."""
        pub = self._format.sockets_join(self._rooms, self._except, self._flags, _names(rooms))
        return self._send(pub)

    def sockets_leave(self, rooms: Rooms) -> R:
        """Make the targeted sockets leave ``rooms``."""
        pub = self._format.sockets_leave(self._rooms, self._except, self._flags, _names(rooms))
        return self._send(pub)

    def disconnect_sockets(self, close: bool = False) -> R:
        """Disconnect the targeted sockets (``close=True`` also closes their
        connections)."""
        pub = self._format.disconnect_sockets(self._rooms, self._except, self._flags, close)
        return self._send(pub)


class BaseEmitter(EmitterOperator[R]):
    """An emitter of one namespace: an operator reaching every socket, plus
    :meth:`of` and :meth:`server_side_emit`. Use one of its four subclasses."""

    __slots__ = ("client",)
    client: Any
    # Whether the client is redis-py's asyncio one (operations return awaitables).
    _asyncio: ClassVar[bool] = False

    def _connect(self, client: Any, command: str, fmt: EmitterFormat) -> None:
        """Publish the messages of ``fmt`` with ``client``'s ``command`` (``publish``
        or ``spublish``), checked to be the kind of client this class takes."""
        cls = _public_name(type(self))
        _check_client(client, command, self._asyncio, cls)
        publish = getattr(client, command)
        send: Callable[[Publication], Any] = (
            _asyncio_send(publish, cls) if self._asyncio else _blocking_send(publish, cls)
        )
        EmitterOperator.__init__(self, fmt, send)
        self.client = client

    @property
    def nsp(self) -> str:
        """The namespace this emitter reaches."""
        return self._format.nsp

    def of(self, nsp: str) -> Self:
        """An emitter of the namespace ``nsp`` (``"chat"`` is ``"/chat"``), on the
        same client."""
        other = object.__new__(type(self))
        EmitterOperator.__init__(other, self._format.of(nsp), self._send)
        other.client = self.client
        return other

    def server_side_emit(self, event: str, *args: Any) -> R:
        """Send ``event`` to the server-side handlers of every server of the
        namespace (socketwire's ``on_server_side_emit``, Node's
        ``io.on(event)``).

        Without acknowledgements: a callable last argument raises TypeError, as
        Node's emitter refuses one.
        """
        return self._send(self._format.server_side_emit(event_data(event, args)))


# -- the publish calls ---------------------------------------------------------------------


def _is_asyncio_client(client: object) -> bool | None:
    """Whether a redis-py client is the asyncio one (None: cannot tell)."""
    execute = getattr(client, "execute_command", None)
    if execute is None:
        return None
    return inspect.iscoroutinefunction(execute)


def _public_name(cls: type) -> str:
    """The emitter class of this module that ``cls`` is, or derives from."""
    return next(
        c.__name__
        for c in cls.__mro__
        if c.__module__ == __name__ and not c.__name__.startswith("_")
    )


def _type_name(obj: object) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _check_client(client: object, command: str, asyncio: bool, cls: str) -> None:
    if not callable(getattr(client, command, None)):
        raise TypeError(f"{cls} needs a Redis client with {command}(), got {_type_name(client)}")
    kind = _is_asyncio_client(client)
    if kind is not None and kind != asyncio:
        hint = "redis.asyncio.Redis" if asyncio else "a blocking client such as redis.Redis"
        raise TypeError(f"{cls} needs {hint}, got {_type_name(client)}")


def _blocking_send(publish: Callable[[str, bytes], Any], cls: str) -> Callable[[Publication], int]:
    def send(pub: Publication) -> int:
        result = publish(pub.channel, pub.payload)
        if inspect.isawaitable(result):
            if inspect.iscoroutine(result):
                result.close()  # nothing was sent; no "never awaited" warning
            raise TypeError(f"{cls} needs a blocking Redis client: this one is asyncio")
        return int(result)

    return send


def _asyncio_send(
    publish: Callable[[str, bytes], Any], cls: str
) -> Callable[[Publication], Awaitable[int]]:
    async def send(pub: Publication) -> int:
        result = publish(pub.channel, pub.payload)
        if not inspect.isawaitable(result):
            raise TypeError(f"{cls} needs an asyncio Redis client: this one is blocking")
        return int(await result)

    return send


class _ClassicEmitter(BaseEmitter[R]):
    """An emitter to servers with the classic Redis adapter (``Emitter``,
    ``AsyncEmitter``)."""

    __slots__ = ()

    def __init__(self, client: PublishingClient, *, key: str = DEFAULT_KEY, nsp: str = "/") -> None:
        self._connect(client, "publish", ClassicFormat(nsp, key))


class _ShardedEmitter(BaseEmitter[R]):
    """An emitter to servers with Node's sharded Redis adapter (``ShardedEmitter``,
    ``AsyncShardedEmitter``)."""

    __slots__ = ()

    def __init__(
        self,
        client: ShardPublishingClient,
        *,
        channel_prefix: str = DEFAULT_CHANNEL_PREFIX,
        subscription_mode: SubscriptionMode | str = SubscriptionMode.DYNAMIC,
        nsp: str = "/",
    ) -> None:
        self._connect(client, "spublish", ShardedFormat(nsp, channel_prefix, subscription_mode))


class Emitter(_ClassicEmitter[int]):
    """An emitter to servers with the classic Redis adapter, on a blocking client.

    ``client`` is a ``redis.Redis`` (or ``redis.cluster.RedisCluster``); ``key``
    is the servers' ``key`` (``socket.io`` by default), ``nsp`` the namespace.
    Each operation publishes at once and returns the number of subscribers that
    received the message.
    """

    __slots__ = ()


class AsyncEmitter(_ClassicEmitter[Awaitable[int]]):
    """An emitter to servers with the classic Redis adapter, on an asyncio client.

    As :class:`Emitter`, with a ``redis.asyncio.Redis``: each operation returns
    an awaitable that publishes and gives the number of subscribers that
    received the message.
    """

    __slots__ = ()
    _asyncio = True


class ShardedEmitter(_ShardedEmitter[int]):
    """An emitter to servers with Node's sharded Redis adapter, on a blocking client.

    Publishes with ``SPUBLISH`` (Redis 7 or later). ``channel_prefix`` and
    ``subscription_mode`` must be those of the servers (Node's defaults:
    ``socket.io`` and ``dynamic``): the mode decides which broadcasts go on a
    room's own channel. In the dynamic modes a server subscribes to a room's
    channel just after one of its sockets joins the room, so a broadcast
    published right after ``sockets_join`` may miss that room's new members (as
    it would from a Node server).
    """

    __slots__ = ()


class AsyncShardedEmitter(_ShardedEmitter[Awaitable[int]]):
    """An emitter to servers with Node's sharded Redis adapter, on an asyncio client.

    As :class:`ShardedEmitter`, with a ``redis.asyncio.Redis``: each operation
    returns an awaitable.
    """

    __slots__ = ()
    _asyncio = True
