"""The Redis connections of a server's Redis Streams adapters (layer 1, asyncio).

``StreamsBus`` is the transport under ``socketwire.adapters.streams``, shared
by every namespace's adapter of a server:

* **Appending.** One queue written by a single task: the entries ready at once
  go in one pipeline of ``XADD <stream> MAXLEN ~ <max_len> *``, in order, so an
  ``emit`` never waits for Redis. An entry may ask for its id (the offset of a
  recoverable broadcast): its callback runs with it, in the order of the
  queue, or with ``None`` if Redis failed. While Redis is away, entries beyond
  ``max_pending_bytes`` are dropped and logged.
* **Reading.** One task per stream, each on a connection of its own (a blocked
  ``XREAD`` holds its connection, and streams must not wait for each other):
  ``XREAD BLOCK <block_time> COUNT <read_count> STREAMS <stream> <last id>``,
  each entry handed to the adapter of its namespace. Node starts from ``$``;
  this reader first asks for the stream's last id, so that ``watch`` returns
  once nothing appended afterwards can be missed.
* **Pub/sub.** The ephemeral messages go through a ``RedisBus``
  (``socketwire.adapters.redis_bus``) on the same client.

It knows streams, fields and channels; what the messages mean is the adapter's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from socketwire.adapters.redis_bus import RedisBus
from socketwire.adapters.write_queue import WriteQueue

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["EntryHandler", "IdCallback", "StreamsBus"]

log = logging.getLogger("socketwire.adapters.streams")

#: ``handler(fields, entry_id)`` for an entry of a watched namespace.
EntryHandler = Callable[[Mapping[bytes, bytes], str], None]
#: Called with an appended entry's id, or ``None`` when it was not appended.
IdCallback = Callable[[str | None], None]
# A queued entry: its stream, its fields and who wants its id.
_Entry = tuple[str, dict[str, str], IdCallback | None]

_MAX_RETRY_DELAY = 2.0
# Seconds beyond the XREAD block time before a silent connection counts as dead.
_READ_MARGIN = 10.0


class _Reader:
    """The reading task of one stream and the namespaces it serves."""

    __slots__ = ("client", "handlers", "started", "task")

    def __init__(self, client: Redis) -> None:
        self.client = client
        self.handlers: dict[str, EntryHandler] = {}
        self.task: asyncio.Task[None] | None = None
        self.started: asyncio.Future[None] = asyncio.get_running_loop().create_future()


class StreamsBus(WriteQueue[_Entry]):
    """The stream readers, the append queue and the pub/sub of a server's streams
    adapters (see the module docstring).

    ``client`` must return bytes (``decode_responses=False``, redis-py's
    default). Each stream's reader gets a connection pool of its own with the
    client's settings.
    """

    def __init__(
        self,
        client: Redis,
        *,
        owns_client: bool = False,
        max_len: int = 10_000,
        read_count: int = 100,
        block_time: float = 5.0,
        max_pending_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        super().__init__(
            max_pending_bytes,
            log=log,
            full_warning="redis stream queue full: %(dropped)d entries dropped",
        )
        self.client = client
        self.pubsub = RedisBus(client, max_pending_bytes=max_pending_bytes)
        self._owns_client = owns_client
        self.max_len = max_len
        self.read_count = read_count
        self.block_ms = max(int(block_time * 1000), 1)
        self._readers: dict[str, _Reader] = {}
        self._users = 0

    # -- users --------------------------------------------------------------------------

    def add_user(self) -> None:
        """One more adapter uses the bus."""
        self._users += 1

    async def remove_user(self) -> None:
        """One adapter less; the last one closes the bus."""
        self._users -= 1
        if self._users <= 0:
            await self.close()

    # -- appending ----------------------------------------------------------------------

    def append(self, stream: str, fields: dict[str, str], on_id: IdCallback | None = None) -> None:
        """Queue an entry; ``on_id`` (if any) gets its id once Redis has it."""
        size = sum(len(k) + len(v) for k, v in fields.items())
        if not self._enqueue((stream, fields, on_id), size) and on_id is not None:
            on_id(None)

    async def _write_batch(self, batch: list[_Entry]) -> None:
        ids: list[Any]
        try:
            pipe = self.client.pipeline(transaction=False)
            for stream, fields, _ in batch:
                pipe.xadd(stream, fields, maxlen=self.max_len, approximate=True)  # type: ignore[arg-type]
            ids = await pipe.execute(raise_on_error=False)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("redis XADD of %d entries failed: %s", len(batch), exc)
            ids = [exc] * len(batch)
        for (_, _, on_id), result in zip(batch, ids, strict=True):
            if isinstance(result, Exception):
                entry_id = None
            else:
                entry_id = result.decode() if isinstance(result, bytes) else str(result)
            if on_id is not None:
                try:
                    on_id(entry_id)
                except Exception:
                    log.exception("handling an appended entry's id failed")

    # -- reading ------------------------------------------------------------------------

    async def watch(self, stream: str, nsp: str, handler: EntryHandler) -> None:
        """Hand ``stream``'s entries of namespace ``nsp`` to ``handler``; returns once
        every entry appended from now on will be read."""
        reader = self._readers.get(stream)
        if reader is None:
            reader = self._readers[stream] = _Reader(self._dedicated_client())
            reader.task = asyncio.get_running_loop().create_task(self._read_loop(stream, reader))
        reader.handlers[nsp] = handler
        await asyncio.shield(reader.started)

    def unwatch(self, stream: str, nsp: str) -> None:
        """Stop handing ``nsp``'s entries (the reader stops with the bus)."""
        reader = self._readers.get(stream)
        if reader is not None:
            reader.handlers.pop(nsp, None)

    def _dedicated_client(self) -> Redis:
        from redis.asyncio import ConnectionPool, Redis

        pool = self.client.connection_pool
        kwargs = dict(pool.connection_kwargs)
        # redis-py's read timeout (5 s by default) must outlast a blocked XREAD.
        kwargs["socket_timeout"] = self.block_ms / 1000 + _READ_MARGIN
        own = ConnectionPool(connection_class=pool.connection_class, **kwargs)
        return Redis(connection_pool=own)

    async def _last_id(self, stream: str, client: Redis) -> str:
        last = await client.xrevrange(stream, "+", "-", count=1)
        # An empty (or missing) stream: every future entry comes after 0-0.
        return _id(last[0][0]) if last else "0-0"

    async def _read_loop(self, stream: str, reader: _Reader) -> None:
        client = reader.client
        delay = 0.1
        offset: str | None = None
        while True:
            try:
                if offset is None:
                    offset = await self._last_id(stream, client)
                    reader.started.set_result(None)
                response: Any = await client.xread(
                    {stream: offset}, count=self.read_count, block=self.block_ms
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("reading redis stream %r failed: %s (retrying)", stream, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _MAX_RETRY_DELAY)
                continue
            delay = 0.1
            for _, entries in response or ():
                for raw_id, fields in entries:
                    offset = _id(raw_id)
                    nsp = fields.get(b"nsp")
                    if not nsp:
                        continue
                    handler = reader.handlers.get(nsp.decode("utf-8", "replace"))
                    if handler is None:
                        continue
                    try:
                        handler(fields, offset)
                    except Exception:
                        log.exception("handling entry %s of %r failed", offset, stream)

    # -- lifecycle ----------------------------------------------------------------------

    async def close(self) -> None:
        """Append what is queued, stop the readers and close the connections."""
        if self._writer is not None:
            with contextlib.suppress(Exception):
                await self.flush()
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
        readers, self._readers = self._readers, {}
        for reader in readers.values():
            if reader.task is not None:
                reader.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader.task
            with contextlib.suppress(Exception):
                await reader.client.aclose()
        if self._owns_client:
            await self.client.aclose()


def _id(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)
