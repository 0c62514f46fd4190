"""Deadlines for timers of one constant duration (layer 0, sans-I/O).

Every Engine.IO session of a server uses the same ``ping_interval`` and
``ping_timeout``, and every Socket.IO connection the same ``connect_timeout``. When
the duration is constant, deadlines are pushed in non-decreasing order, so a FIFO
queue is already sorted: scheduling is an append, expiry pops from the left, and
one clock callback per queue (not one timer per connection) drives them all.

Cancelling is lazy: an owner keeps its current deadline in ``owner.deadline``-like
state and ignores entries that no longer match it (see ``expired``).
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

__all__ = ["DeadlineQueue"]

T = TypeVar("T")


class DeadlineQueue(Generic[T]):
    """A FIFO of ``(deadline, item)`` for one constant delay.

    ``push`` takes ``now`` and computes ``now + delay``; ``now`` must not go
    backwards between pushes (use a monotonic clock), which keeps the queue sorted.
    Deadlines and items sit in two parallel deques rather than as pairs: a queued
    entry then allocates nothing the cycle collector has to walk (a server keeps
    one ping entry per connection queued at all times).
    """

    __slots__ = ("_deadlines", "_items", "delay")

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self._deadlines: deque[float] = deque()
        self._items: deque[T] = deque()

    def __len__(self) -> int:
        return len(self._items)

    def push(self, now: float, item: T) -> float:
        """Schedule ``item`` at ``now + delay``; returns that deadline."""
        deadline = now + self.delay
        self._deadlines.append(deadline)
        self._items.append(item)
        return deadline

    def next_deadline(self) -> float | None:
        """The earliest deadline still queued, or ``None``."""
        return self._deadlines[0] if self._deadlines else None

    def expired(self, now: float) -> list[tuple[float, T]]:
        """Pop and return every entry whose deadline is at or before ``now``."""
        deadlines = self._deadlines
        items = self._items
        out: list[tuple[float, T]] = []
        while deadlines and deadlines[0] <= now:
            out.append((deadlines.popleft(), items.popleft()))
        return out

    def clear(self) -> None:
        self._deadlines.clear()
        self._items.clear()
