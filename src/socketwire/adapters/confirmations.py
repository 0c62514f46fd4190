"""Redis's confirmations of (un)subscriptions, awaited (layer 1, asyncio).

Redis answers each channel of a ``SUBSCRIBE`` (``PSUBSCRIBE``, ``SSUBSCRIBE``
and their opposites) on the subscriber connection, with a message whose type is
the command's name. ``Confirmations`` gives the buses a future for each answer
they expect, keyed by that type and the channel, and completes it when the
answer is read: until Redis has confirmed a subscription, other servers neither
count this one nor reach it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Final

__all__ = ["CONFIRM_TIMEOUT", "Confirmations"]

#: How long Redis may take to confirm a (un)subscription, in seconds.
CONFIRM_TIMEOUT: Final = 10.0


class Confirmations:
    """The futures of the confirmations a subscriber connection waits for, by
    ``(kind, channel)``."""

    __slots__ = ("_waiting",)

    def __init__(self) -> None:
        self._waiting: dict[tuple[str, bytes], list[asyncio.Future[None]]] = {}

    def expect(self, confirmations: Iterable[tuple[str, bytes]]) -> list[asyncio.Future[None]]:
        """A future for each ``(kind, channel)`` that Redis is about to confirm."""
        loop = asyncio.get_running_loop()
        futures = []
        for confirmation in confirmations:
            fut: asyncio.Future[None] = loop.create_future()
            self._waiting.setdefault(confirmation, []).append(fut)
            futures.append(fut)
        return futures

    def confirm(self, kind: str, channel: bytes) -> None:
        """Redis confirmed ``kind`` for ``channel`` once: the oldest command still
        waiting for it is the one answered (Redis answers in order)."""
        waiting = self._waiting.get((kind, channel))
        while waiting:
            fut = waiting.pop(0)
            if not fut.done():
                fut.set_result(None)
                break
        if waiting is not None and not waiting:
            del self._waiting[(kind, channel)]

    def confirm_all(self, kind: str, channel: bytes) -> None:
        """Redis confirmed ``kind`` for ``channel``: every command waiting for it
        is answered."""
        for fut in self._waiting.pop((kind, channel), ()):
            if not fut.done():
                fut.set_result(None)

    def fail_all(self, error: BaseException) -> None:
        """The connection was lost: what it was to confirm never will be."""
        pending, self._waiting = self._waiting, {}
        for waiting in pending.values():
            for fut in waiting:
                if not fut.done():
                    fut.set_exception(error)

    async def wait(self, futures: Sequence[asyncio.Future[None]]) -> None:
        """Wait for ``futures`` (from ``expect``); TimeoutError after ``CONFIRM_TIMEOUT``."""
        await asyncio.wait_for(asyncio.gather(*futures), CONFIRM_TIMEOUT)
