"""The Redis adapter: a cluster of servers over Redis pub/sub (layer 1).

Wire-compatible with Node's ``@socket.io/redis-adapter`` 8.x (classic, not
sharded): socketwire and Node servers can share one Redis and one cluster, and
the Node ``@socket.io/redis-emitter`` reaches socketwire's clients unchanged.

::

    import socketwire
    from socketwire.adapters.redis import create_adapter

    sio = socketwire.Server(adapter=create_adapter("redis://127.0.0.1:6379"))

``RedisAdapter`` is the ``ClusterAdapter`` template (``socketwire.adapters.cluster``:
what the servers of a cluster do for each other) on a ``RedisBus``
(``socketwire.adapters.redis_bus``: the connections). Every namespace gets its
adapter; all of a server's adapters share one bus, so one subscriber connection
and one pipelined, bounded publisher.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, ClassVar, Protocol

from socketwire.adapters.cluster import ClusterAdapter
from socketwire.adapters.ports import NamespacePort
from socketwire.adapters.redis_bus import MessageHandler, RedisBus
from socketwire.core.cluster.redis_format import DEFAULT_KEY
from socketwire.handlers import Runner

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["Bus", "RedisAdapter", "RedisBus", "create_adapter"]


class Bus(Protocol):
    """What a ``RedisAdapter`` needs of its bus (``RedisBus`` is the real one)."""

    def publish(self, channel: str, payload: bytes) -> None:
        """Queue a message (in order; never blocks)."""

    async def numsub(self, channel: str) -> int:
        """How many subscribers ``channel`` has (``PUBSUB NUMSUB``)."""

    async def subscribe(
        self, channels: Iterable[str], patterns: Iterable[str], handler: MessageHandler
    ) -> None:
        """Route the messages of ``channels`` and ``patterns`` to ``handler``."""

    async def unsubscribe(self, channels: Iterable[str], patterns: Iterable[str]) -> None:
        """Stop routing them."""


class RedisAdapter(ClusterAdapter):
    """A namespace's adapter in a Redis cluster: ``ClusterAdapter`` on a bus.

    ``bus`` is shared by every namespace's adapter of a server (``create_adapter``
    builds one); ``key`` and the options are Node's.
    """

    log: ClassVar[logging.Logger] = logging.getLogger("socketwire.adapters.redis")
    runner: ClassVar[Runner] = Runner(log, log_task_failures=True)

    def __init__(
        self,
        nsp: NamespacePort,
        bus: Bus,
        *,
        key: str = DEFAULT_KEY,
        requests_timeout: float = 5.0,
        publish_on_specific_response_channel: bool = False,
    ) -> None:
        super().__init__(
            nsp,
            key=key,
            requests_timeout=requests_timeout,
            publish_on_specific_response_channel=publish_on_specific_response_channel,
        )
        self.bus = bus
        self._subscribed = False

    @property
    def ready(self) -> bool:
        """Subscribed: the other servers count this one and reach it."""
        return self._subscribed

    def publish(self, channel: str, payload: bytes) -> None:
        """Queue a message on the bus (its one writer task publishes it)."""
        self.bus.publish(channel, payload)

    async def server_count(self) -> int:
        """The servers of the cluster serving this namespace, this one included:
        the subscribers of its request channel."""
        return await self.bus.numsub(self.channels.request)

    async def init(self) -> None:
        """Subscribe (returns once Redis confirmed: other servers count this one)."""
        channels, patterns = self.subscriptions
        await self.bus.subscribe(channels, patterns, self.on_message)
        self._subscribed = True

    async def close(self) -> None:
        """Give up waiting requests and unsubscribe (the last adapter closes the bus)."""
        if not self._subscribed:
            return
        self._subscribed = False
        await super().close()
        channels, patterns = self.subscriptions
        await self.bus.unsubscribe(channels, patterns)


def create_adapter(
    redis: Redis | str = "redis://127.0.0.1:6379",
    *,
    sub_client: Redis | None = None,
    key: str = DEFAULT_KEY,
    requests_timeout: float = 5.0,
    publish_on_specific_response_channel: bool = False,
    max_pending_bytes: int = 64 * 1024 * 1024,
) -> Callable[[NamespacePort], RedisAdapter]:
    """The ``adapter`` option of a server in a Redis cluster.

    ``redis`` is a ``redis.asyncio.Redis`` client (publishing and counting
    servers) or a URL for one that the adapter creates and closes; the subscriber
    uses a connection of ``sub_client`` (by default of the same client). Options
    are those of Node's ``createAdapter``, in seconds.
    """
    from redis.asyncio import Redis as _Redis

    if isinstance(redis, str):
        bus = RedisBus(
            _Redis.from_url(redis),
            sub_client,
            owns_client=True,
            max_pending_bytes=max_pending_bytes,
        )
    else:
        bus = RedisBus(redis, sub_client, max_pending_bytes=max_pending_bytes)

    def factory(nsp: NamespacePort) -> RedisAdapter:
        return RedisAdapter(
            nsp,
            bus,
            key=key,
            requests_timeout=requests_timeout,
            publish_on_specific_response_channel=publish_on_specific_response_channel,
        )

    factory.bus = bus  # type: ignore[attr-defined]
    return factory
