"""The Redis pub/sub bus of a server's Redis adapters (layer 1, asyncio).

``RedisBus`` is the transport under ``socketwire.adapters.redis``: one
subscriber connection for every namespace's adapter of a server, and one
publishing queue written by a single task, pipelined when several messages are
ready, so a burst of broadcasts costs one round trip and publishing never makes
an ``emit`` wait. Other commands (the scripts of connection state recovery)
may join the same queue, so they run in Redis in the order they were issued
relative to the broadcasts.

When Redis is away (stopped, restarting, paused), local delivery goes on and
what is queued waits: a write that fails for want of a connection is kept, in
order, and tried again with a backoff; it is flushed once Redis answers. The
queue is bounded (``max_pending_bytes``, the batch being written included):
beyond it, messages are dropped, counted in ``dropped`` and logged (the first
time, then every thousandth). redis-py reconnects (and resubscribes what it
knows of) by itself; the reader backs off between failed reads meanwhile.

Subscriptions. An adapter subscribes its own channels once (``subscribe``, which
counts it as a user of the bus) and may add and remove channels later
(``subscribe_channels``, ``unsubscribe_channels``: the room channels of the
Redis adapter's interest mode), each call one command. The bus keeps the
channels it was asked for; after the subscriber connection was lost, the first
message read on the new one makes it compare that set with what redis-py
subscribed again, and subscribe (or unsubscribe) the difference: what changed
while Redis was away is applied once it is back. ``received_messages`` and
``received_bytes`` count what the subscriber connection delivered.

It knows channels and bytes only; what the messages mean is the adapter's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from socketwire.adapters.confirmations import CONFIRM_TIMEOUT, Confirmations
from socketwire.adapters.write_queue import WriteQueue

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub

__all__ = ["MessageHandler", "RedisBus"]

# The Redis adapter's logger: one name for everything a Redis cluster logs.
log = logging.getLogger("socketwire.adapters.redis")

MessageHandler = Callable[[str, bytes], None]
# A queued command: its arguments and the future of its reply (None: not awaited).
_Command = tuple[tuple[Any, ...], asyncio.Future[Any] | None]


class RedisBus(WriteQueue[_Command]):
    """One subscriber connection and one publishing queue for a server's adapters.

    ``client`` publishes (and answers ``PUBSUB NUMSUB``); ``sub_client`` (by
    default ``client``) provides the dedicated subscriber connection. Both must
    return bytes (``decode_responses=False``, redis-py's default).
    """

    def __init__(
        self,
        client: Redis,
        sub_client: Redis | None = None,
        *,
        owns_client: bool = False,
        max_pending_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        for c in (client, sub_client):
            kwargs = c.get_connection_kwargs() if c is not None else {}  # type: ignore[no-untyped-call]
            if kwargs.get("decode_responses"):
                raise ValueError("the Redis client must not decode responses (binary messages)")
        # A batch that waits for Redis stays counted (and queued, if cancelled).
        super().__init__(
            max_pending_bytes,
            log=log,
            full_warning="redis publish queue full (%(bytes)d bytes): "
            "%(dropped)d message(s) dropped",
            count_in_flight=True,
        )
        self.client = client
        self._sub_client = sub_client or client
        self._owns_client = owns_client
        self._pubsub: PubSub | None = None
        self._channels: dict[bytes, MessageHandler] = {}
        self._patterns: dict[bytes, MessageHandler] = {}
        self._confirmations = Confirmations()
        self._reader: asyncio.Task[None] | None = None
        self._users = 0
        #: Writes that failed because Redis was unreachable (each retried later).
        self.failed_writes = 0
        #: Messages the subscriber connection delivered (a counter).
        self.received_messages = 0
        #: Their payload bytes (a counter).
        self.received_bytes = 0
        self._lost = False  # the subscriber connection failed; not read from since
        self._restoring: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    @property
    def connected(self) -> bool:
        """Whether the subscriber connection is up, as far as its reader knows."""
        return self._reader is not None and not self._lost

    # -- subscriptions ------------------------------------------------------------------

    async def subscribe(
        self, channels: Iterable[str], patterns: Iterable[str], handler: MessageHandler
    ) -> None:
        """Route messages of ``channels`` and ``patterns`` to ``handler(channel, payload)``."""
        # One (un)subscription at a time: redis-py's PubSub opens its connection on
        # the first command, and two first commands at once would open two.
        async with self._lock:
            await self._subscribe(channels, patterns, handler)

    async def _subscribe(
        self, channels: Iterable[str], patterns: Iterable[str], handler: MessageHandler
    ) -> None:
        if self._pubsub is None:
            self._pubsub = self._sub_client.pubsub()
        self._users += 1
        chans = [c.encode() for c in channels]
        pats = [p.encode() for p in patterns]
        for c in chans:
            self._channels[c] = handler
        for p in pats:
            self._patterns[p] = handler
        # Redis confirms each subscription on the subscriber connection; until it
        # has, other servers neither count this one nor reach it.
        waits = self._confirmations.expect(("subscribe", c) for c in chans)
        waits += self._confirmations.expect(("psubscribe", p) for p in pats)
        if chans:
            await self._pubsub.subscribe(*chans)
        if pats:
            await self._pubsub.psubscribe(*pats)
        if self._reader is None:
            self._reader = asyncio.get_running_loop().create_task(self._read_loop())
        await self._confirmations.wait(waits)

    async def unsubscribe(self, channels: Iterable[str], patterns: Iterable[str]) -> None:
        """Stop routing these (once Redis confirmed); the last user closes the connections."""
        async with self._lock:
            await self._unsubscribe(channels, patterns)

    async def _unsubscribe(self, channels: Iterable[str], patterns: Iterable[str]) -> None:
        chans = [c.encode() for c in channels]
        pats = [p.encode() for p in patterns]
        for c in chans:
            self._channels.pop(c, None)
        for p in pats:
            self._patterns.pop(p, None)
        self._users -= 1
        pubsub = self._pubsub
        if pubsub is not None and self._reader is not None:
            # Waiting for the confirmations makes a closed server leave the count
            # (PUBSUB NUMSUB) before ``close`` returns.
            waits = self._confirmations.expect(("unsubscribe", c) for c in chans)
            waits += self._confirmations.expect(("punsubscribe", p) for p in pats)
            try:
                if chans:
                    await pubsub.unsubscribe(*chans)
                if pats:
                    await pubsub.punsubscribe(*pats)
                await self._confirmations.wait(waits)
            except Exception as exc:
                log.warning("redis unsubscribe failed: %s", exc)
        if self._users <= 0:
            await self.close()

    async def subscribe_channels(
        self, channels: Sequence[str], handler: MessageHandler
    ) -> asyncio.Future[None]:
        """Subscribe to more ``channels`` (one ``SUBSCRIBE``) for an adapter that
        already uses the bus; returns once the command is written, with a future
        of Redis's confirmation of all of them (it fails if the connection is lost
        first). Raises when the command could not be written."""
        chans = [c.encode() for c in channels]
        async with self._lock:
            pubsub = self._pubsub
            if pubsub is None:
                pubsub = self._pubsub = self._sub_client.pubsub()
            for c in chans:
                self._channels[c] = handler
            waits = self._confirmations.expect(("subscribe", c) for c in chans)
            try:
                await pubsub.subscribe(*chans)
            except BaseException:
                # Not sent: whoever asked tries again (redis-py did not record them).
                for c in chans:
                    self._channels.pop(c, None)
                for fut in waits:
                    fut.cancel()
                raise
            if self._reader is None:
                self._reader = asyncio.get_running_loop().create_task(self._read_loop())
        confirmed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        asyncio.gather(*waits).add_done_callback(lambda all_: _pass_on(all_, confirmed))
        return confirmed

    async def unsubscribe_channels(self, channels: Sequence[str]) -> None:
        """Unsubscribe from ``channels`` (one ``UNSUBSCRIBE``, not waited for);
        their messages are not routed any more from now on."""
        chans = [c.encode() for c in channels]
        async with self._lock:
            for c in chans:
                self._channels.pop(c, None)
            pubsub = self._pubsub
            if pubsub is not None and self._reader is not None:
                await pubsub.unsubscribe(*chans)

    async def _restore(self) -> None:
        """After a reconnection: subscribe what redis-py did not subscribe again (the
        channels added while Redis was away), unsubscribe what it should not have."""
        async with self._lock:
            pubsub = self._pubsub
            if pubsub is None:
                return
            have, have_patterns = set(pubsub.channels), set(pubsub.patterns)
            missing = [c for c in self._channels if c not in have]
            extra = [c for c in have if c not in self._channels]
            missing_patterns = [p for p in self._patterns if p not in have_patterns]
            extra_patterns = [p for p in have_patterns if p not in self._patterns]
            try:
                if missing:
                    await pubsub.subscribe(*missing)
                if missing_patterns:
                    await pubsub.psubscribe(*missing_patterns)
                if extra:
                    await pubsub.unsubscribe(*extra)
                if extra_patterns:
                    await pubsub.punsubscribe(*extra_patterns)
            except Exception as exc:
                # The connection failed again: the next reconnection restores.
                log.warning("restoring redis subscriptions failed: %s", exc)
                self._lost = True
                return
        if missing or extra or missing_patterns or extra_patterns:
            log.info(
                "redis subscriptions restored: %d subscribed again, %d dropped",
                len(missing) + len(missing_patterns),
                len(extra) + len(extra_patterns),
            )

    async def close(self) -> None:
        """Flush what is queued, then close the subscriber (and an owned client)."""
        if self._writer is not None and self._queue:
            # Bounded: a Redis that is away must not hold the server's shutdown.
            try:
                await asyncio.wait_for(self._flush_once(), CONFIRM_TIMEOUT)
            except TimeoutError:
                self.dropped += len(self._queue)
                log.warning(
                    "redis unavailable at close: %d queued message(s) dropped", len(self._queue)
                )
        for task in (self._reader, self._writer, self._restoring):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._reader = self._writer = self._restoring = None
        if self._pubsub is not None:
            try:
                await self._pubsub.aclose()
            except Exception as exc:
                log.warning("closing the redis subscriber failed: %s", exc)
            self._pubsub = None
        if self._owns_client:
            await self.client.aclose()

    async def _read_loop(self) -> None:
        pubsub = self._pubsub
        assert pubsub is not None
        channels = self._channels
        patterns = self._patterns
        delay = 0.1
        while True:
            try:
                message = await pubsub.get_message(timeout=None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # redis-py reconnects (and resubscribes) on the next read.
                log.warning("redis subscriber error: %s (retrying in %.1f s)", exc, delay)
                self._connection_lost()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.1
            if self._lost:
                # Read from a new connection: make it subscribe what it should.
                self._lost = False
                self._restoring = asyncio.get_running_loop().create_task(self._restore())
            if message is None:
                continue
            kind = message["type"]
            if kind == "pmessage":
                handler = patterns.get(message["pattern"])
            elif kind == "message":
                handler = channels.get(message["channel"])
            else:
                self._confirmations.confirm(kind, message["channel"])
                continue
            data = message["data"]
            self.received_messages += 1
            self.received_bytes += len(data)
            if handler is None:
                continue
            channel = message["channel"]
            try:
                handler(channel.decode("utf-8", "replace"), data)
            except Exception:
                log.exception("handling a redis message on %r failed", channel)

    def _connection_lost(self) -> None:
        self._lost = True
        self._confirmations.fail_all(ConnectionError("the redis subscriber connection was lost"))

    # -- publishing -----------------------------------------------------------------------

    def publish(self, channel: str, payload: bytes) -> None:
        """Queue a message; the writer task publishes it (in order, pipelined)."""
        self._enqueue((("PUBLISH", channel, payload), None), len(payload))

    def command(self, *args: Any, size: int = 0) -> asyncio.Future[Any] | None:
        """Queue any Redis command behind what is already queued; its reply, or
        None when the queue is full (the command is dropped and counted).

        ``size`` is what it weighs against ``max_pending_bytes``. Keeping one
        queue for publishes and commands keeps their order: a script queued after
        a broadcast runs after it in Redis.
        """
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if not self._enqueue((args, fut), size):
            return None
        return fut

    async def _write_batch(self, batch: list[_Command]) -> None:
        delay = 0.05
        while True:
            try:
                replies = await self._execute(batch)
                break
            except Exception as exc:
                if not _unreachable(exc):
                    # Not a connection failure (a command Redis refused): retrying
                    # would fail the same way.
                    log.warning("redis write of %d command(s) failed: %s", len(batch), exc)
                    replies = [exc] * len(batch)
                    break
                # Redis is away (stopped, restarting, unreachable): keep the batch,
                # in order, ahead of what comes meanwhile, and try again. The
                # queue's bound still holds, since the batch stays counted.
                self.failed_writes += 1
                if self.failed_writes == 1 or self.failed_writes % 100 == 0:
                    log.warning(
                        "redis unavailable (%s): %d message(s) (%d bytes) kept for later",
                        exc,
                        len(batch) + len(self._queue),
                        self.pending_bytes,
                    )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
        for (_, fut), reply in zip(batch, replies, strict=True):
            if fut is None or fut.done():
                continue
            if isinstance(reply, BaseException):
                fut.set_exception(reply)
            else:
                fut.set_result(reply)

    async def _execute(self, batch: list[_Command]) -> list[Any]:
        if len(batch) == 1:
            args = batch[0][0]
            try:
                return [await self.client.execute_command(*args)]  # type: ignore[no-untyped-call]
            except Exception as exc:
                if _unreachable(exc):
                    raise
                return [exc]
        pipe = self.client.pipeline(transaction=False)
        for args, _ in batch:
            pipe.execute_command(*args)
        return list(await pipe.execute(raise_on_error=False))

    async def numsub(self, channel: str) -> int:
        """How many connections subscribe to ``channel`` (``PUBSUB NUMSUB``)."""
        result = await self.client.pubsub_numsub(channel)
        return int(result[0][1]) if result else 0


def _pass_on(done: asyncio.Future[Any], to: asyncio.Future[None]) -> None:
    """Complete ``to`` as ``done`` completed (its error retrieved: nobody may wait)."""
    error = done.exception() if not done.cancelled() else ConnectionError("cancelled")
    if to.done():
        return
    if error is None:
        to.set_result(None)
    else:
        to.set_exception(error)
        to.add_done_callback(_retrieve)


def _retrieve(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()


def _unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says Redis could not be reached (rather than refused a command)."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    return isinstance(exc, (RedisConnectionError, OSError))
