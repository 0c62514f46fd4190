"""What an emitter publishes, and where (layer 0: sans-I/O).

An emitter is a process without clients that speaks to the servers of a cluster
through Redis: it only publishes, and never hears back. Two formats:

* :class:`ClassicFormat`: the classic ``@socket.io/redis-adapter`` channels, byte
  for byte what ``@socket.io/redis-emitter`` 5.x publishes (uid ``"emitter"``,
  joins, leaves and disconnects without a uid); read by socketwire's Redis
  adapter and Node's ``createAdapter``.
* :class:`ShardedFormat`: what a server with Node's ``createShardedAdapter``
  publishes for the same operations (``ClusterAdapter`` messages, sent with
  ``SPUBLISH``), from the uid ``"emitter"``; Node's emitter has no such variant.

Each operation gives a :class:`Publication`, a channel and the bytes to publish
there; ``socketwire.emitter`` sends it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final, Protocol

from socketwire.core.cluster.message_format import (
    DEFAULT_CHANNEL_PREFIX,
    MessageType,
    ShardedChannels,
    SubscriptionMode,
    encode_message,
)
from socketwire.core.cluster.redis_format import (
    DEFAULT_KEY,
    EMITTER_UID,
    Channels,
    RequestType,
    encode_emitter_broadcast,
    encode_emitter_request,
    encode_request,
    targets,
)
from socketwire.core.socketio.packet import RESERVED_EVENTS
from socketwire.errors import LocalProtocolError

__all__ = [
    "ClassicFormat",
    "EmitterFormat",
    "Publication",
    "ShardedFormat",
    "event_data",
    "namespace_name",
]

_NO_ACKS: Final = (
    "acknowledgements are not supported: an emitter publishes and never hears back "
    "(the last argument is callable)"
)


@dataclass(frozen=True, slots=True)
class Publication:
    """One message to publish: ``payload`` on ``channel``."""

    channel: str
    payload: bytes


_BINARY: Final = (bytes, bytearray, memoryview)


def _has_binary(obj: Any) -> bool:
    """Whether ``obj`` holds bytes anywhere (in lists, tuples and dict values;
    not in keys, as Node's ``hasBinary``)."""
    if isinstance(obj, _BINARY):
        return True
    if isinstance(obj, (list, tuple)):
        return any(_has_binary(item) for item in obj)
    if isinstance(obj, dict):
        return any(_has_binary(value) for value in obj.values())
    return False


def namespace_name(nsp: str) -> str:
    """``nsp`` with its leading ``/`` (``"chat"`` is ``"/chat"``, ``""`` is ``"/"``)."""
    if type(nsp) is not str:
        raise TypeError(f"a namespace is a str, got {type(nsp).__name__} {nsp!r}")
    return nsp if nsp.startswith("/") else "/" + nsp


def event_data(event: str, args: Sequence[Any]) -> list[Any]:
    """``[event, *args]``, checked as Node's emitter checks it.

    A reserved event name (``connect``, ``disconnect``...) raises ValueError; a
    callable last argument (an ack) raises TypeError.
    """
    if not isinstance(event, str):
        raise TypeError(f"an event name is a str, got {type(event).__name__} {event!r}")
    if event in RESERVED_EVENTS:
        raise ValueError(f'"{event}" is a reserved event name')
    if args and callable(args[-1]):
        raise TypeError(_NO_ACKS)
    return [event, *args]


class EmitterFormat(Protocol):
    """The messages of one namespace's emitter, in one cluster format.

    ``rooms`` and ``except_rooms`` select the sockets (none: all of them);
    ``flags`` are the broadcast flags that were set, in the order they were.
    """

    @property
    def nsp(self) -> str:
        """The namespace (with its leading ``/``)."""

    def of(self, nsp: str) -> EmitterFormat:
        """The same format for the namespace ``nsp``."""

    def broadcast(
        self,
        data: list[Any],
        rooms: Sequence[str],
        except_rooms: Sequence[str],
        flags: Mapping[str, bool],
    ) -> Publication:
        """An event ``data`` (``[event, *args]``) to the selected sockets."""

    def sockets_join(
        self,
        rooms: Sequence[str],
        except_rooms: Sequence[str],
        flags: Mapping[str, bool],
        new_rooms: Sequence[str],
    ) -> Publication:
        """The selected sockets join ``new_rooms``."""

    def sockets_leave(
        self,
        rooms: Sequence[str],
        except_rooms: Sequence[str],
        flags: Mapping[str, bool],
        old_rooms: Sequence[str],
    ) -> Publication:
        """The selected sockets leave ``old_rooms``."""

    def disconnect_sockets(
        self,
        rooms: Sequence[str],
        except_rooms: Sequence[str],
        flags: Mapping[str, bool],
        close: bool,
    ) -> Publication:
        """The selected sockets are disconnected (``close``: their connections too)."""

    def server_side_emit(self, data: list[Any]) -> Publication:
        """An event ``data`` for the servers' server-side handlers (no answers)."""


class _Operation(Enum):
    """What a format's targeted message asks of the selected sockets."""

    JOIN = "join"
    LEAVE = "leave"
    DISCONNECT = "disconnect"


# The sockets an operation selects: rooms, rooms left out, and the flags set.
_Selection = tuple[Sequence[str], Sequence[str], Mapping[str, bool]]


class _TargetedFormat(ABC):
    """The socket operations of a format, each one targeted message (``_targeted``)
    with the operation's field after the ``opts``."""

    __slots__ = ()

    def sockets_join(
        self,
        rooms: Sequence[str],
        except_rooms: Sequence[str],
        flags: Mapping[str, bool],
        new_rooms: Sequence[str],
    ) -> Publication:
        """The selected sockets join ``new_rooms``."""
        selection = (rooms, except_rooms, flags)
        return self._targeted(_Operation.JOIN, selection, rooms=list(new_rooms))

    def sockets_leave(
        self,
        rooms: Sequence[str],
        except_rooms: Sequence[str],
        flags: Mapping[str, bool],
        old_rooms: Sequence[str],
    ) -> Publication:
        """The selected sockets leave ``old_rooms``."""
        selection = (rooms, except_rooms, flags)
        return self._targeted(_Operation.LEAVE, selection, rooms=list(old_rooms))

    def disconnect_sockets(
        self,
        rooms: Sequence[str],
        except_rooms: Sequence[str],
        flags: Mapping[str, bool],
        close: bool,
    ) -> Publication:
        """The selected sockets are disconnected (``close``: their connections too)."""
        selection = (rooms, except_rooms, flags)
        return self._targeted(_Operation.DISCONNECT, selection, close=bool(close))

    @abstractmethod
    def _targeted(
        self, operation: _Operation, selection: _Selection, /, **fields: Any
    ) -> Publication:
        """The message of ``operation`` for the ``selection``, with ``fields``."""


_REQUEST_TYPES: Final = {
    _Operation.JOIN: RequestType.REMOTE_JOIN,
    _Operation.LEAVE: RequestType.REMOTE_LEAVE,
    _Operation.DISCONNECT: RequestType.REMOTE_DISCONNECT,
}
_MESSAGE_TYPES: Final = {
    _Operation.JOIN: MessageType.SOCKETS_JOIN,
    _Operation.LEAVE: MessageType.SOCKETS_LEAVE,
    _Operation.DISCONNECT: MessageType.DISCONNECT_SOCKETS,
}


class ClassicFormat(_TargetedFormat):
    """``@socket.io/redis-emitter`` 5.x: the classic adapter's channels and messages.

    Broadcasts are msgpack on ``<key>#<nsp>#`` (or ``<key>#<nsp>#<room>#`` for
    exactly one room); requests are JSON on ``<key>-request#<nsp>#``. The
    emitter's joins, leaves and disconnects are REMOTE_JOIN, REMOTE_LEAVE and
    REMOTE_DISCONNECT requests without a uid (as Node's emitter), and carry no
    ``flags``: the classic adapter takes none there.
    """

    __slots__ = ("_channels", "key", "nsp")

    def __init__(self, nsp: str = "/", key: str = DEFAULT_KEY) -> None:
        self.nsp = namespace_name(nsp)
        self.key = key
        self._channels = Channels(self.nsp, EMITTER_UID, key)

    def of(self, nsp: str) -> ClassicFormat:
        """The same format for the namespace ``nsp``."""
        return ClassicFormat(nsp, self.key)

    def broadcast(
        self,
        data: list[Any],
        rooms: Sequence[str],
        except_rooms: Sequence[str],
        flags: Mapping[str, bool],
    ) -> Publication:
        """An event to the selected sockets (the emitter's ``emit``)."""
        payload = encode_emitter_broadcast(self.nsp, data, rooms, except_rooms, flags)
        return Publication(self._channels.for_rooms(rooms), payload)

    def _targeted(
        self, operation: _Operation, selection: _Selection, /, **fields: Any
    ) -> Publication:
        rooms, except_rooms, _ = selection
        payload = encode_emitter_request(
            _REQUEST_TYPES[operation], opts=targets(rooms, except_rooms), **fields
        )
        return Publication(self._channels.request, payload)

    def server_side_emit(self, data: list[Any]) -> Publication:
        """A SERVER_SIDE_EMIT request from the uid ``"emitter"``, without a request id.

        JSON, as Node sends it: bytes cannot travel there (Node's emitter would
        send a Buffer as ``{"type": "Buffer", "data": [...]}``), so they raise
        ``LocalProtocolError``.
        """
        if _has_binary(data):
            raise LocalProtocolError(
                "server-side events travel as JSON in the classic format: "
                "binary arguments cannot be sent"
            )
        payload = encode_request(EMITTER_UID, RequestType.SERVER_SIDE_EMIT, data=data)
        return Publication(self._channels.request, payload)


class ShardedFormat(_TargetedFormat):
    """The sharded adapter's ``ClusterAdapter`` messages, from the uid ``"emitter"``.

    ``subscription_mode`` must be that of the servers (Node's default is
    ``dynamic``): it decides which broadcasts go on a room's own channel.
    """

    __slots__ = ("_channels", "channel_prefix", "nsp", "subscription_mode")

    def __init__(
        self,
        nsp: str = "/",
        channel_prefix: str = DEFAULT_CHANNEL_PREFIX,
        subscription_mode: SubscriptionMode | str = SubscriptionMode.DYNAMIC,
    ) -> None:
        self.nsp = namespace_name(nsp)
        self.channel_prefix = channel_prefix
        self.subscription_mode = SubscriptionMode(subscription_mode)
        self._channels = ShardedChannels(
            self.nsp, EMITTER_UID, channel_prefix, self.subscription_mode
        )

    def of(self, nsp: str) -> ShardedFormat:
        """The same format for the namespace ``nsp``."""
        return ShardedFormat(nsp, self.channel_prefix, self.subscription_mode)

    def _message(self, mtype: MessageType, data: dict[str, Any], channel: str) -> Publication:
        return Publication(channel, encode_message(mtype, EMITTER_UID, self.nsp, data))

    @staticmethod
    def _opts(
        rooms: Sequence[str], except_rooms: Sequence[str], flags: Mapping[str, bool]
    ) -> dict[str, Any]:
        return {"rooms": list(rooms), "except": list(except_rooms), "flags": dict(flags)}

    def broadcast(
        self,
        data: list[Any],
        rooms: Sequence[str],
        except_rooms: Sequence[str],
        flags: Mapping[str, bool],
    ) -> Publication:
        """A BROADCAST without a request id; the packet has no ``nsp`` (as Node's)."""
        body = {"packet": {"type": 2, "data": data}, "opts": self._opts(rooms, except_rooms, flags)}
        channel = self._channels.for_broadcast(rooms, with_ack=False)
        return self._message(MessageType.BROADCAST, body, channel)

    def _targeted(
        self, operation: _Operation, selection: _Selection, /, **fields: Any
    ) -> Publication:
        body = {"opts": self._opts(*selection), **fields}
        return self._message(_MESSAGE_TYPES[operation], body, self._channels.main)

    def server_side_emit(self, data: list[Any]) -> Publication:
        """A SERVER_SIDE_EMIT message without a request id (msgpack if it holds bytes)."""
        return self._message(MessageType.SERVER_SIDE_EMIT, {"packet": data}, self._channels.main)
