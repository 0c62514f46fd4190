"""The bounded publishing queue of the Redis buses (layer 1, asyncio).

``WriteQueue`` is what ``RedisBus``, ``ShardedBus`` and ``StreamsBus`` share on
their writing side: an item is queued without waiting, and one task hands
everything that is ready at once to the bus's ``_write_batch``, in order, so that
a burst costs one round trip (one pipeline) and queueing never makes an ``emit``
wait.

The queue is bounded: each item weighs some bytes, and an item that would take
``pending_bytes`` beyond ``max_pending_bytes`` is dropped, counted in
``dropped`` and logged (the first time, then every thousandth). A batch being
written is either released when it is taken (the bus gives up on a failed
write) or, with ``count_in_flight``, stays counted until ``_write_batch``
returns (the bus retries it) and goes back to the front of the queue if the
write is cancelled.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Generic, TypeVar

__all__ = ["WriteQueue"]

T = TypeVar("T")


class WriteQueue(Generic[T]):
    """A bounded queue of items written in batches by a single task (see the
    module docstring); a bus derives from it and provides ``_write_batch``.

    ``full_warning`` is the log message of a drop, with the placeholders
    ``%(bytes)d`` (what is pending) and ``%(dropped)d`` (the count), logged to
    ``log``.
    """

    def __init__(
        self,
        max_pending_bytes: int,
        *,
        log: logging.Logger,
        full_warning: str,
        count_in_flight: bool = False,
    ) -> None:
        self.max_pending_bytes = max_pending_bytes
        #: Items dropped because the queue was full (a counter).
        self.dropped = 0
        self._queue: list[T] = []
        self._queued_bytes = 0
        self._in_flight_bytes = 0
        self._writer: asyncio.Task[None] | None = None
        self._wakeup: asyncio.Event | None = None
        self._queue_log = log
        self._full_warning = full_warning
        self._count_in_flight = count_in_flight

    @property
    def pending_bytes(self) -> int:
        """Bytes queued and not yet written (with ``count_in_flight``, the batches
        being written included)."""
        return self._queued_bytes + self._in_flight_bytes

    def _enqueue(self, item: T, size: int) -> bool:
        """Queue ``item`` weighing ``size`` bytes and wake the writer task up
        (started on first use); False when the queue is full (dropped)."""
        if self._queued_bytes + self._in_flight_bytes + size > self.max_pending_bytes:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                self._queue_log.warning(
                    self._full_warning, {"bytes": self.pending_bytes, "dropped": self.dropped}
                )
            return False
        self._queue.append(item)
        self._queued_bytes += size
        if self._writer is None:
            self._wakeup = asyncio.Event()
            self._writer = asyncio.get_running_loop().create_task(self._write_loop())
        wakeup = self._wakeup
        assert wakeup is not None
        if not wakeup.is_set():
            wakeup.set()
        return True

    async def _write_loop(self) -> None:
        wakeup = self._wakeup
        assert wakeup is not None
        while True:
            await wakeup.wait()
            wakeup.clear()
            while self._queue:
                await self._flush_once()

    async def _flush_once(self) -> None:
        """Write what is queued now, as one batch."""
        batch, self._queue = self._queue, []
        size, self._queued_bytes = self._queued_bytes, 0
        if not self._count_in_flight:
            await self._write_batch(batch)
            return
        self._in_flight_bytes += size
        try:
            await self._write_batch(batch)
        except asyncio.CancelledError:
            # Closing: what was not written stays queued (and counted), first.
            self._queue[:0] = batch
            self._queued_bytes += size
            raise
        finally:
            self._in_flight_bytes -= size

    async def flush(self) -> None:
        """Write everything queued now (before a close)."""
        while self._queue:
            await self._flush_once()

    async def _write_batch(self, batch: list[T]) -> None:
        """Write ``batch`` to Redis, in order (the bus's part). It handles its own
        failures: only a cancellation propagates."""
        raise NotImplementedError
