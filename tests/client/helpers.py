"""Test helpers: record what a client or manager emits and wait for it, with bounded timeouts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from socketwire.client import Client
from socketwire.client.socket import ManagerPort
from tests.waits import WAIT as WAIT


class Events:
    """An ordered log of ``(name, args)`` with awaitable lookups."""

    def __init__(self) -> None:
        self.items: list[tuple[str, tuple[Any, ...]]] = []
        self._waiters: list[tuple[Callable[[], tuple[Any, ...] | None], asyncio.Future[Any]]] = []

    def add(self, name: str, *args: Any) -> None:
        self.items.append((name, args))
        still = []
        for check, fut in self._waiters:
            if fut.done():
                continue
            found = check()
            if found is None:
                still.append((check, fut))
            else:
                fut.set_result(found)
        self._waiters = still

    def named(self, name: str) -> list[tuple[Any, ...]]:
        return [args for n, args in self.items if n == name]

    def names(self) -> list[str]:
        return [n for n, _ in self.items]

    async def wait(self, name: str, count: int = 1, timeout: float = WAIT) -> tuple[Any, ...]:
        """The arguments of the ``count``-th ``name`` (waiting for it if needed)."""

        def check() -> tuple[Any, ...] | None:
            got = self.named(name)
            return got[count - 1] if len(got) >= count else None

        found = check()
        if found is not None:
            return found
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters.append((check, fut))
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise AssertionError(
                f"no {name!r} #{count} within {timeout} s; got {self.items!r}"
            ) from None


def watch(client: Client, events: Events | None = None) -> Events:
    """Record every event a client receives, and connect / disconnect / connect_error."""
    events = events or Events()
    client.on_any(lambda event, *args: events.add(event, *args))
    client.on("connect", lambda: events.add("connect"))
    client.on("disconnect", lambda reason: events.add("disconnect", reason))
    client.on("connect_error", lambda err: events.add("connect_error", err))
    return events


MANAGER_EVENTS = (
    "open",
    "close",
    "error",
    "reconnect_attempt",
    "reconnect",
    "reconnect_error",
    "reconnect_failed",
    "upgrading",
    "upgrade",
)


def watch_manager(manager: ManagerPort, events: Events | None = None) -> Events:
    """Record the manager's events."""
    events = events or Events()
    for name in MANAGER_EVENTS:
        manager.on(name, lambda *args, name=name: events.add(name, *args))
    return events
