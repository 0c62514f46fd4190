"""The Redis Cluster sharded pub/sub bus of a server's sharded adapters (layer 1, asyncio).

``ShardedBus`` is the transport under ``socketwire.adapters.sharded``: it
publishes with ``SPUBLISH`` through a ``redis.asyncio.cluster.RedisCluster``
client and subscribes with ``SSUBSCRIBE``, for every namespace's adapter of a
server.

**Publishing.** One bounded queue written by a single task, pipelined when
several messages are ready (the cluster client sends each to the master that
owns its channel's slot), so that an ``emit`` never waits for Redis. While the
cluster is away, messages beyond ``max_pending_bytes`` are dropped and logged.

**Subscribing: one connection per shard.** A shard channel lives on the master
that owns its hash slot, and ``SSUBSCRIBE`` must reach that master. redis-py's
cluster ``PubSub`` polls its per-node connections in turn with a slice of a
timeout each, so a message waits for the other nodes' slices; here each master
that owns one of our channels gets its own subscriber connection and its own
reader task, blocked on that connection alone, and every message is handed on
the moment it arrives. The owner of each channel comes from the cluster
client's slot table.

**Failover.** When a master dies its connection ends; when a slot moves (a
failover that this server's master saw, or a resharding), Redis ends the
subscription with an unsolicited ``SUNSUBSCRIBE``. Either way the channels
concerned are re-placed by a repair task: it refreshes the slot table and
subscribes each channel on its new owner, retrying with a growing pause (at
most one second) until the cluster has elected a new master. Sharded pub/sub
keeps no messages: what is published before a channel is subscribed again is
not delivered (as with Node). ``settled`` tells when every channel is placed.

It knows channels and bytes only; what the messages mean is the adapter's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from socketwire.adapters.confirmations import Confirmations
from socketwire.adapters.write_queue import WriteQueue

if TYPE_CHECKING:
    from redis.asyncio.client import PubSub
    from redis.asyncio.cluster import ClusterNode, RedisCluster

__all__ = ["MessageHandler", "ShardedBus"]

log = logging.getLogger("socketwire.adapters.sharded")

MessageHandler = Callable[[str, bytes], None]
# The longest pause between two repairs while the cluster elects a new master.
_MAX_REPAIR_DELAY = 1.0


class _Shard:
    """The subscriber connection to one master, and the channels placed on it."""

    __slots__ = ("channels", "name", "pool", "pubsub", "reader")

    def __init__(self, name: str, pool: Any, pubsub: PubSub) -> None:
        self.name = name
        self.pool = pool
        self.pubsub = pubsub
        self.channels: set[bytes] = set()
        self.reader: asyncio.Task[None] | None = None


class ShardedBus(WriteQueue[tuple[str, bytes]]):
    """Sharded pub/sub on a Redis Cluster for a server's adapters (see the module
    docstring).

    ``client`` publishes and counts subscribers; ``subscriber`` (by default
    ``client``) gives the slot table and the connection settings of the
    subscriber connections. Both must return bytes (``decode_responses=False``,
    redis-py's default).
    """

    def __init__(
        self,
        client: RedisCluster,
        subscriber: RedisCluster | None = None,
        *,
        owns_client: bool = False,
        max_pending_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        for c in (client, subscriber):
            if c is not None and c.get_connection_kwargs().get("decode_responses"):
                raise ValueError("the Redis client must not decode responses (binary messages)")
        super().__init__(
            max_pending_bytes,
            log=log,
            full_warning="redis publish queue full (%(bytes)d bytes): "
            "%(dropped)d message(s) dropped",
        )
        self.client = client
        self.topology = subscriber or client
        self._owns_client = owns_client
        self._handlers: dict[bytes, MessageHandler] = {}
        self._placement: dict[bytes, str] = {}  # channel -> name of its shard
        self._shards: dict[str, _Shard] = {}
        self._leaving: set[bytes] = set()
        self._confirmations = Confirmations()
        self._lock = asyncio.Lock()
        self._repair: asyncio.Task[None] | None = None
        self._repair_again = False
        self._users = 0
        self._closed = False

    # -- users --------------------------------------------------------------------------

    def add_user(self) -> None:
        """One more adapter uses the bus."""
        self._users += 1

    async def remove_user(self) -> None:
        """One adapter less; the last one closes the bus."""
        self._users -= 1
        if self._users <= 0:
            await self.close()

    # -- subscriptions ------------------------------------------------------------------

    async def subscribe(self, channels: Iterable[str], handler: MessageHandler) -> None:
        """Route the messages of ``channels`` to ``handler(channel, payload)``;
        returns once Redis confirmed (other servers count this one then)."""
        chans = [c.encode() for c in channels]
        async with self._lock:
            await self._ensure_topology()
            waits = []
            for channel in chans:
                self._handlers[channel] = handler
                self._leaving.discard(channel)
                if channel in self._placement:
                    continue
                waits += self._confirmations.expect((("ssubscribe", channel),))
                try:
                    await self._place(channel)
                except Exception:
                    # Repaired in the background; this call still fails.
                    self._schedule_repair()
                    raise
        await self._confirmations.wait(waits)

    async def unsubscribe(self, channels: Iterable[str]) -> None:
        """Stop routing ``channels`` (returns once Redis confirmed)."""
        chans = [c.encode() for c in channels]
        waits: list[asyncio.Future[None]] = []
        async with self._lock:
            for channel in chans:
                self._handlers.pop(channel, None)
                name = self._placement.pop(channel, None)
                shard = self._shards.get(name) if name is not None else None
                if shard is None:
                    continue
                shard.channels.discard(channel)
                self._leaving.add(channel)
                waits += self._confirmations.expect((("sunsubscribe", channel),))
                try:
                    await shard.pubsub.sunsubscribe(channel)
                except Exception as exc:
                    log.warning("redis sunsubscribe failed on %s: %s", shard.name, exc)
        if waits:
            try:
                await self._confirmations.wait(waits)
            except Exception as exc:
                log.info("redis sunsubscribe not confirmed: %s", exc)

    async def _ensure_topology(self) -> None:
        if self.topology.nodes_manager.slots_cache:
            return
        await self.topology.initialize()

    def _owner(self, channel: bytes) -> ClusterNode:
        node = self.topology.get_node_from_key(channel.decode("utf-8", "surrogateescape"))
        if node is None:
            raise ConnectionError(f"no master owns the slot of {channel!r} yet")
        return node

    async def _place(self, channel: bytes) -> None:
        """Subscribe ``channel`` on the master that owns its slot (lock held)."""
        node = self._owner(channel)
        current = self._placement.get(channel)
        if current == node.name:
            return
        if current is not None:
            old = self._shards.get(current)
            if old is not None:
                old.channels.discard(channel)
                with contextlib.suppress(Exception):
                    await old.pubsub.sunsubscribe(channel)
            del self._placement[channel]
        shard = self._shards.get(node.name)
        if shard is None:
            shard = self._open_shard(node)
        await shard.pubsub.ssubscribe(channel)
        shard.channels.add(channel)
        self._placement[channel] = node.name
        if shard.reader is None:
            shard.reader = asyncio.get_running_loop().create_task(self._read_loop(shard))

    def _open_shard(self, node: ClusterNode) -> _Shard:
        from redis.asyncio.client import PubSub
        from redis.asyncio.connection import ConnectionPool
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        # The node's own settings (password, TLS, ...), but: no read timeout (a
        # subscriber waits for messages as long as it takes) and no retries (a
        # lost master is replaced by the repair, not reconnected to).
        kwargs = dict(node.connection_kwargs)
        kwargs.update(socket_timeout=None, retry=Retry(NoBackoff(), 0))
        pool = ConnectionPool(connection_class=node.connection_class, **kwargs)
        shard = _Shard(node.name, pool, PubSub(pool))
        self._shards[node.name] = shard
        return shard

    async def _read_loop(self, shard: _Shard) -> None:
        pubsub = shard.pubsub
        handlers = self._handlers
        placement = self._placement
        name = shard.name
        try:
            while True:
                message = await pubsub.get_message(timeout=None)
                if message is None:
                    continue
                kind = message["type"]
                channel = message["channel"]
                if kind == "smessage":
                    handler = handlers.get(channel)
                    if handler is None or placement.get(channel) != name:
                        continue
                    try:
                        handler(channel.decode("utf-8", "replace"), message["data"])
                    except Exception:
                        log.exception("handling a redis message on %r failed", channel)
                elif kind == "ssubscribe":
                    self._confirmations.confirm_all(kind, channel)
                elif kind == "sunsubscribe":
                    self._confirmations.confirm_all(kind, channel)
                    if channel in self._leaving:
                        self._leaving.discard(channel)
                    elif placement.get(channel) == name:
                        # Unasked: the slot moved to another master.
                        log.info("redis channel %r left %s: re-subscribing it", channel, name)
                        del placement[channel]
                        shard.channels.discard(channel)
                        self._schedule_repair()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if self._shards.get(name) is shard:
                log.warning(
                    "redis cluster node %s lost (%s): re-subscribing its channels", name, exc
                )
                self._drop_shard(shard)
                self._schedule_repair()

    def _drop_shard(self, shard: _Shard) -> None:
        if self._shards.get(shard.name) is shard:
            del self._shards[shard.name]
        for channel in shard.channels:
            if self._placement.get(channel) == shard.name:
                del self._placement[channel]
        shard.channels.clear()
        asyncio.get_running_loop().create_task(self._close_shard(shard))

    @staticmethod
    async def _close_shard(shard: _Shard) -> None:
        task = shard.reader
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await shard.pubsub.aclose()
        with contextlib.suppress(Exception):
            await shard.pool.aclose()

    # -- repair -------------------------------------------------------------------------

    @property
    def settled(self) -> bool:
        """Whether every channel is subscribed on a live master (no repair pending)."""
        return all(c in self._placement for c in self._handlers) and (
            self._repair is None or self._repair.done()
        )

    def _schedule_repair(self) -> None:
        if self._closed:
            return
        self._repair_again = True
        if self._repair is None or self._repair.done():
            self._repair = asyncio.get_running_loop().create_task(self._repair_loop())

    async def _repair_loop(self) -> None:
        delay = 0.05
        while self._repair_again and not self._closed:
            self._repair_again = False
            try:
                # A fresh slot table: who owns each slot after the failover.
                await self.topology.nodes_manager.initialize()
                async with self._lock:
                    for channel in list(self._handlers):
                        await self._place(channel)
                # A shard left without channels has nothing to read.
                for shard in list(self._shards.values()):
                    if not shard.channels:
                        self._drop_shard(shard)
                log.info("redis cluster channels re-subscribed")
                delay = 0.05
            except Exception as exc:
                log.info("redis cluster repair failed (%s): retrying in %.2f s", exc, delay)
                self._repair_again = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, _MAX_REPAIR_DELAY)

    # -- publishing -----------------------------------------------------------------------

    def publish(self, channel: str, payload: bytes) -> None:
        """Queue a message; the writer task sends it with ``SPUBLISH`` (in order, pipelined)."""
        self._enqueue((channel, payload), len(payload))

    async def _write_batch(self, batch: list[tuple[str, bytes]]) -> None:
        try:
            if len(batch) == 1:
                await self.client.spublish(*batch[0])
            else:
                # Grouped by master; each master gets its messages in order.
                pipe = self.client.pipeline(transaction=False)
                for channel, payload in batch:
                    pipe.spublish(channel, payload)
                await pipe.execute()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("redis spublish of %d message(s) failed: %s", len(batch), exc)

    async def shard_numsub(self, channel: str) -> int:
        """How many connections subscribe to ``channel``: ``PUBSUB SHARDNUMSUB``
        asked of every master and summed, as Node does (a master that cannot be
        reached counts nothing)."""
        client = self.client
        await self._ensure_topology()
        nodes = client.get_primaries()

        async def one(node: ClusterNode) -> int:
            result = await client.execute_command("PUBSUB SHARDNUMSUB", channel, target_nodes=node)
            return int(result[0][1]) if result else 0

        counts = await asyncio.gather(*(one(n) for n in nodes), return_exceptions=True)
        found = [c for c in counts if isinstance(c, int)]
        if not found:
            error = next(c for c in counts if isinstance(c, BaseException))
            raise error
        return sum(found)

    async def close(self) -> None:
        """Flush what is queued, then close the subscriber connections (and an owned client)."""
        self._closed = True
        if self._writer is not None and self._queue:
            await self._flush_once()
        tasks = [t for t in (self._writer, self._repair) if t is not None]
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._writer = self._repair = None
        for shard in list(self._shards.values()):
            self._shards.pop(shard.name, None)
            await self._close_shard(shard)
        self._placement.clear()
        if self._owns_client:
            await self.client.aclose()
