"""One clock callback driving a constant-delay deadline queue (layer 1, asyncio)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Generic, TypeVar

from socketwire.core.timers import DeadlineQueue

log = logging.getLogger("socketwire.engine")

T = TypeVar("T")


class Ticker(Generic[T]):
    """Drives one ``DeadlineQueue`` with a single ``loop.call_at`` at a time.

    ``fire(item, deadline)`` runs for each expired entry; the item checks whether
    the deadline is still its own (lazy cancelling).
    """

    __slots__ = ("_fire", "_handle", "_loop", "queue")

    def __init__(self, delay: float, fire: Callable[[T, float], None]) -> None:
        self.queue: DeadlineQueue[T] = DeadlineQueue(delay)
        self._fire = fire
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def push(self, loop: asyncio.AbstractEventLoop, item: T) -> float:
        deadline = self.queue.push(loop.time(), item)
        if self._handle is None:
            self._loop = loop
            self._handle = loop.call_at(deadline, self._run)
        return deadline

    def _run(self) -> None:
        loop = self._loop
        assert loop is not None
        self._handle = None
        fire = self._fire
        for deadline, item in self.queue.expired(loop.time()):
            try:
                fire(item, deadline)
            except Exception:
                log.exception("timer callback failed for %r", item)
        nxt = self.queue.next_deadline()
        if nxt is not None:
            self._handle = loop.call_at(nxt, self._run)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self.queue.clear()


__all__ = [
    "Ticker",
]
