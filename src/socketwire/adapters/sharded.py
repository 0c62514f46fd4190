"""The sharded Redis adapter: a cluster of servers over Redis Cluster sharded pub/sub
(layer 1).

Wire-compatible with ``createShardedAdapter`` of Node's
``@socket.io/redis-adapter`` 8.x, in its three subscription modes: socketwire
and Node servers share one Redis Cluster and one Socket.IO cluster. Messages go
with ``SPUBLISH`` and arrive through ``SSUBSCRIBE``, so each channel lives on
one shard of the Redis Cluster and its traffic does not cross the whole Redis
bus (as classic pub/sub does).

::

    from redis.asyncio.cluster import RedisCluster

    import socketwire
    from socketwire.adapters.sharded import create_sharded_adapter

    redis = RedisCluster(host="127.0.0.1", port=7000)
    sio = socketwire.Server(adapter=create_sharded_adapter(redis))

Channels, for the namespace ``/`` and the default ``channel_prefix``:
``socket.io#/#`` carries every message, ``socket.io#/#<uid>#`` the responses to
one server, and in the dynamic modes ``socket.io#/#<room>#`` the broadcasts to
one room, subscribed by the servers that have the room (the
``subscription_mode``: ``"static"``, ``"dynamic"``, the default, or
``"dynamic-private"``; see ``SubscriptionMode``). Every server of a cluster must
use the same prefix and mode: a server in static mode would not hear a room's
channel. The room channels follow the rooms through
``socketwire.adapters.room_subscriptions`` (as the Redis adapter's interest
mode does): changes are batched and applied in order, and
``wait_until_subscribed(*rooms)`` waits for Redis's confirmation.

``ShardedAdapter`` is the ``MessageClusterAdapter`` template
(``socketwire.adapters.message_cluster``: what the servers do for each other,
in ``socket.io-adapter``'s message format) on a ``ShardedBus``
(``socketwire.adapters.sharded_bus``: the connections, and the repair after a
master failover). ``server_count`` is the sum over the masters of
``PUBSUB SHARDNUMSUB <prefix>#<nsp>#``, as in Node: each server subscribes to
that channel once per namespace, so ``fetch_sockets`` waits for an answer from
every server of the namespace, Node's included.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from socketwire.adapters.factory import adapter_factory, own_client
from socketwire.adapters.message_cluster import MessageClusterAdapter
from socketwire.adapters.ports import NamespacePort
from socketwire.adapters.room_subscriptions import RoomSubscriptions
from socketwire.adapters.sharded_bus import MessageHandler, ShardedBus
from socketwire.core.cluster.message_format import (
    DEFAULT_CHANNEL_PREFIX,
    MessageType,
    ShardedChannels,
    SubscriptionMode,
    decode_message,
    encode_message,
)
from socketwire.errors import ProtocolError
from socketwire.handlers import Runner

if TYPE_CHECKING:
    from redis.asyncio.cluster import RedisCluster

__all__ = [
    "ShardedAdapter",
    "ShardedBus",
    "SubscriptionMode",
    "create_sharded_adapter",
]


class _RoomPort:
    """The room channels' way to the sharded bus (a ``ChannelPort``): its
    subscriptions return once confirmed."""

    __slots__ = ("bus", "handler")

    def __init__(self, bus: ShardedBus, handler: MessageHandler) -> None:
        self.bus = bus
        self.handler = handler

    async def subscribe(self, channels: list[str]) -> None:
        await self.bus.subscribe(channels, self.handler)

    async def unsubscribe(self, channels: list[str]) -> None:
        await self.bus.unsubscribe(channels)


class ShardedAdapter(MessageClusterAdapter):
    """A namespace's adapter in a Redis Cluster with sharded pub/sub (see the module
    docstring). ``bus`` is shared by every namespace's adapter of a server."""

    log: ClassVar[logging.Logger] = logging.getLogger("socketwire.adapters.sharded")
    runner: ClassVar[Runner] = Runner(log, log_task_failures=True)

    def __init__(
        self,
        nsp: NamespacePort,
        bus: ShardedBus,
        *,
        channel_prefix: str = DEFAULT_CHANNEL_PREFIX,
        subscription_mode: SubscriptionMode | str = SubscriptionMode.DYNAMIC,
        requests_timeout: float = 5.0,
    ) -> None:
        super().__init__(nsp, requests_timeout=requests_timeout)
        self.bus = bus
        self.channel_prefix = channel_prefix
        self.channels = ShardedChannels(
            nsp.name, self.uid, channel_prefix, SubscriptionMode(subscription_mode)
        )
        self._subscribed = False
        # The room channels (dynamic modes).
        self.room_subscriptions: RoomSubscriptions | None = None
        if self.channels.mode is not SubscriptionMode.STATIC:
            self.room_subscriptions = RoomSubscriptions(
                _RoomPort(bus, self.on_raw_message), self.log
            )

    @property
    def subscription_mode(self) -> SubscriptionMode:
        """Which channels this server subscribes to."""
        return self.channels.mode

    @property
    def ready(self) -> bool:
        """Subscribed: the other servers count this one and reach it."""
        return self._subscribed

    # -- the transport ------------------------------------------------------------------

    def do_publish(self, kind: MessageType, data: dict[str, Any] | None) -> None:
        """Publish a message on its channel: a room's own, or the namespace's."""
        channel = self.channels.main
        if kind is MessageType.BROADCAST and data is not None:
            channel = self.channels.for_broadcast(
                data["opts"]["rooms"], with_ack="requestId" in data
            )
        self.bus.publish(channel, encode_message(kind, self.uid, self.nsp.name, data))

    def do_publish_response(
        self, requester_uid: str, kind: MessageType, data: dict[str, Any]
    ) -> None:
        """Publish a response on the requester's own channel."""
        self.bus.publish(
            self.channels.response_to(requester_uid),
            encode_message(kind, self.uid, self.nsp.name, data),
        )

    async def server_count(self) -> int:
        """The servers of the namespace, this one included: the subscribers of its
        main channel, over every master."""
        return max(await self.bus.shard_numsub(self.channels.main), 1)

    def on_raw_message(self, channel: str, payload: bytes) -> None:
        """A message of one of this adapter's channels (never raises: a malformed
        message is logged and ignored)."""
        try:
            msg = decode_message(payload)
        except ProtocolError as exc:
            self.log.info("invalid message on %s ignored: %s", channel, exc)
            return
        if channel == self.channels.response:
            self.on_response(msg)
        else:
            self.on_message(msg)

    # -- lifecycle ----------------------------------------------------------------------

    async def init(self) -> None:
        """Subscribe (returns once Redis confirmed: other servers count this one)."""
        self.bus.add_user()
        channels = [self.channels.main, self.channels.response]
        await self.bus.subscribe(channels, self.on_raw_message)
        self._subscribed = True
        if self.room_subscriptions is not None:
            # Rooms made before the adapter started (a mounted app's early sockets).
            self.room_subscriptions.start()

    async def close(self) -> None:
        """Give up waiting requests, unsubscribe (the last adapter closes the bus)."""
        if not self._subscribed:
            return
        self._subscribed = False
        await super().close()
        channels = [self.channels.main, self.channels.response]
        if self.room_subscriptions is not None:
            channels += await self.room_subscriptions.close()
        await self.bus.unsubscribe(channels)
        await self.bus.remove_user()

    # -- dynamic subscriptions -----------------------------------------------------------

    def on_create_room(self, room: str) -> None:
        """Subscribe to the room's channel, in the dynamic modes (a socket's own
        room in dynamic-private mode only); batched and in order."""
        subs = self.room_subscriptions
        if subs is not None and self.channels.subscribes(room in self.sids):
            subs.add(self.channels.room(room))

    def on_delete_room(self, room: str) -> None:
        """Unsubscribe from the room's channel, if this server subscribed to it."""
        subs = self.room_subscriptions
        if subs is not None:
            subs.discard(self.channels.room(room))

    async def wait_until_subscribed(self, *rooms: str) -> bool:
        """Wait until Redis confirmed this server's subscription to the channel of
        each of ``rooms`` that it subscribes (it holds the room, in a dynamic mode);
        False when that took longer than ``requests_timeout``."""
        subs = self.room_subscriptions
        if subs is None:
            return True
        room = self.channels.room
        return await subs.wait([room(r) for r in rooms], self.requests_timeout)


def create_sharded_adapter(
    redis_client: RedisCluster | str = "redis://127.0.0.1:7000",
    subscriber: RedisCluster | None = None,
    *,
    channel_prefix: str = DEFAULT_CHANNEL_PREFIX,
    subscription_mode: SubscriptionMode | str = SubscriptionMode.DYNAMIC,
    requests_timeout: float = 5.0,
    max_pending_bytes: int = 64 * 1024 * 1024,
) -> Callable[[NamespacePort], ShardedAdapter]:
    """The ``adapter`` option of a server in a Redis Cluster, with sharded pub/sub.

    ``redis_client`` is a ``redis.asyncio.cluster.RedisCluster`` (it publishes and
    counts servers), or the URL of a node of the cluster for a client that the
    adapter creates and closes. ``subscriber`` (by default the same client) gives
    the slot table and the settings of the subscriber connections, one per
    master. Options are those of Node's ``createShardedAdapter``
    (``channelPrefix``, ``subscriptionMode``) in snake case, with
    ``requests_timeout`` in seconds.
    """
    from redis.asyncio.cluster import RedisCluster as _RedisCluster

    mode = SubscriptionMode(subscription_mode)
    client, owned = own_client(redis_client, _RedisCluster.from_url)
    bus = ShardedBus(client, subscriber, owns_client=owned, max_pending_bytes=max_pending_bytes)
    make = partial(
        ShardedAdapter,
        bus=bus,
        channel_prefix=channel_prefix,
        subscription_mode=mode,
        requests_timeout=requests_timeout,
    )
    return adapter_factory(make, bus)
