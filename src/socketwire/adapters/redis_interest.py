"""Interest routing for the Redis adapter: the room channels of one namespace (layer 1).

Node's Redis adapter subscribes to the pattern ``<key>#<nsp>#*``, so every server
receives every broadcast, also those to rooms it does not have, and drops them
(``RedisSubscriptionMode.PATTERN``, the default). In interest mode
(``RedisSubscriptionMode.INTEREST``) a server subscribes to the namespace's
channel ``<key>#<nsp>#`` and to one channel ``<key>#<nsp>#<room>#`` per room it
holds, and never receives a broadcast to one room it does not have. Publishers
are unchanged (Node's already put a broadcast to exactly one room on the room's
channel, and the others on the namespace's), so the modes mix freely in one
cluster, Node servers and Node's emitter included. ``InterestRooms`` is what a
``RedisAdapter`` in interest mode adds:

* a room's channel is subscribed when the room gets its first local socket and
  unsubscribed when it loses its last, batched and in order
  (``socketwire.adapters.room_subscriptions``); the bus subscribes them again
  after a Redis reconnection (``socketwire.adapters.redis_bus``);
* private rooms (socket ids) are rooms like the others: ``to(sid)`` from a Node
  server, an emitter or a ``fetch_sockets`` result is published on the socket's
  own channel, so a server that did not subscribe it would never deliver it.
  They ride in the same batches as the joins;
* a socket's CONNECT is answered once Redis confirmed the subscription of its
  own room and of the rooms a middleware made it join (``connecting``, through
  ``Adapter.connecting``): whoever learns its id can reach it. The wait is
  bounded by the adapter's ``requests_timeout`` and skipped while the subscriber
  connection is down; once a wait ran out, the next connections do not wait
  until Redis confirms a subscription again (a paused or overloaded Redis
  delays one connection, not all of them);
* a room joined later is heard from the confirmation of its subscription on: a
  broadcast published by another server between the join and that confirmation
  does not reach this server (Redis pub/sub keeps nothing), unless it already
  held the room. ``wait`` (the adapter's ``wait_until_subscribed``) waits for
  the confirmation;
* connection state recovery is refused (``RECOVERY_NEEDS_PATTERN``): it follows
  the offset of every broadcast of the namespace, and an interest-mode server
  sees only those of its rooms.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from enum import StrEnum
from typing import Final, Protocol, runtime_checkable

from socketwire.adapters.room_subscriptions import RoomSubscriptions
from socketwire.core.cluster.redis_format import Channels

__all__ = ["RECOVERY_NEEDS_PATTERN", "InterestRooms", "RedisSubscriptionMode", "RoomBus"]

MessageHandler = Callable[[str, bytes], None]


class RedisSubscriptionMode(StrEnum):
    """Which broadcast channels a server of the Redis adapter subscribes to."""

    #: Node's: the pattern ``<key>#<nsp>#*``. Every server receives every broadcast.
    PATTERN = "pattern"
    #: The namespace's channel ``<key>#<nsp>#`` and one channel per room the server
    #: holds, socket ids included: a broadcast to one room reaches only the servers
    #: that hold it.
    INTEREST = "interest"


#: Why ``recovery=True`` is refused in interest mode (the ValueError's message).
RECOVERY_NEEDS_PATTERN: Final = (
    "recovery=True needs subscription_mode='pattern': recovery follows the offset of "
    "every broadcast of the namespace, and an interest-mode server receives only those "
    "of its rooms"
)


@runtime_checkable
class RoomBus(Protocol):
    """What interest mode needs of the Redis adapter's bus besides its ``Bus`` part:
    channels subscribed one command at a time (``RedisBus`` is one)."""

    @property
    def connected(self) -> bool:
        """Whether the subscriber connection is up."""

    async def subscribe_channels(
        self, channels: Sequence[str], handler: MessageHandler
    ) -> asyncio.Future[None]:
        """Subscribe ``channels`` (returns once sent, with the confirmation to come)."""

    async def unsubscribe_channels(self, channels: Sequence[str]) -> None:
        """Unsubscribe ``channels`` (returns once sent)."""


class _RoomPort:
    """The room channels' way to the bus (a ``ChannelPort``)."""

    __slots__ = ("bus", "handler")

    def __init__(self, bus: RoomBus, handler: MessageHandler) -> None:
        self.bus = bus
        self.handler = handler

    async def subscribe(self, channels: list[str]) -> asyncio.Future[None] | None:
        return await self.bus.subscribe_channels(channels, self.handler)

    async def unsubscribe(self, channels: list[str]) -> None:
        await self.bus.unsubscribe_channels(channels)


class InterestRooms:
    """The room channels of one namespace's adapter in interest mode, and the
    sockets whose own room is subscribed ahead of their connection."""

    __slots__ = ("_holds", "_stalled_at", "bus", "channels", "log", "subscriptions")

    def __init__(
        self, channels: Channels, bus: RoomBus, handler: MessageHandler, log: logging.Logger
    ) -> None:
        self.channels = channels
        self.bus = bus
        self.log = log
        self.subscriptions = RoomSubscriptions(_RoomPort(bus, handler), log)
        # Sockets connecting: their own room is wanted before the room exists.
        self._holds: set[str] = set()
        # After a wait ran out: the confirmations counted then (None: not stalled).
        self._stalled_at: int | None = None

    def start(self) -> None:
        """The adapter subscribed its own channels: send the rooms' (in one command)."""
        self.subscriptions.start()

    async def close(self) -> list[str]:
        """Stop; the room channels that may still be subscribed."""
        self._holds.clear()
        return await self.subscriptions.close()

    def room_created(self, room: str) -> None:
        self.subscriptions.add(self.channels.room(room))

    def room_deleted(self, room: str) -> None:
        if room not in self._holds:
            self.subscriptions.discard(self.channels.room(room))

    def connecting(
        self, sid: str, rooms: Iterable[str], wait: bool, timeout: float
    ) -> Awaitable[None] | None:
        """Subscribe the socket's own room (held until ``joined`` or ``gone``); with
        ``wait``, the wait for it and for ``rooms`` (the socket's rooms so far)."""
        own = self.channels.room(sid)
        self._holds.add(sid)
        subs = self.subscriptions
        subs.add(own)
        if self._stalled_at is not None:
            if subs.confirmed_commands == self._stalled_at:
                return None  # Redis has confirmed nothing since a wait ran out
            self._stalled_at = None
        if not wait or not self.bus.connected:
            return None
        room = self.channels.room
        return self._until_subscribed(sid, [own, *(room(r) for r in rooms)], timeout)

    async def _until_subscribed(self, sid: str, channels: list[str], timeout: float) -> None:
        if not await self.subscriptions.wait(channels, timeout):
            if self._stalled_at is None:
                self._stalled_at = self.subscriptions.confirmed_commands
            self.log.warning(
                "socket %s connects before Redis confirmed the subscription of its room: "
                "a message to it from another server may be missed meanwhile",
                sid,
            )

    def joined(self, sid: str) -> None:
        """Socket ``sid`` joined rooms (its own among them once it connected)."""
        if self._holds:
            self._holds.discard(sid)

    def gone(self, sid: str, has_room: bool) -> None:
        """Socket ``sid`` left every room; ``has_room``: its own room still exists."""
        if self._holds and sid in self._holds:
            # It went away before it connected: its own room's channel goes too.
            self._holds.discard(sid)
            if not has_room:
                self.room_deleted(sid)

    async def wait(self, rooms: Iterable[str], timeout: float) -> bool:
        """Wait until Redis confirmed the subscription of each of ``rooms`` held."""
        room = self.channels.room
        return await self.subscriptions.wait([room(r) for r in rooms], timeout)
