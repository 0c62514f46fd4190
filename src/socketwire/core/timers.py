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

T = TypeVar("T")


class DeadlineQueue(Generic[T]):
    """A FIFO of ``(deadline, item)`` for one constant delay.

    ``push`` takes ``now`` and computes ``now + delay``; ``now`` must not go
    backwards between pushes (use a monotonic clock), which keeps the queue sorted.
    """

    __slots__ = ("_entries", "delay")

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self._entries: deque[tuple[float, T]] = deque()

    def __len__(self) -> int:
        return len(self._entries)

    def push(self, now: float, item: T) -> float:
        """Schedule ``item`` at ``now + delay``; returns that deadline."""
        deadline = now + self.delay
        self._entries.append((deadline, item))
        return deadline

    def next_deadline(self) -> float | None:
        """The earliest deadline still queued, or ``None``."""
        return self._entries[0][0] if self._entries else None

    def expired(self, now: float) -> list[tuple[float, T]]:
        """Pop and return every entry whose deadline is at or before ``now``."""
        entries = self._entries
        out: list[tuple[float, T]] = []
        while entries and entries[0][0] <= now:
            out.append(entries.popleft())
        return out

    def clear(self) -> None:
        self._entries.clear()
