"""Acknowledgements of broadcasts, which only the server asks for (layer 2).

A broadcast with acks leaves one :class:`BroadcastMemberAck` on each socket it
reaches, all feeding one :class:`BroadcastAck` that collects the responses.
The ack entries of a single socket's emits are shared with the client
(:mod:`socketwire.acks`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from socketwire.acks import call_safely
from socketwire.errors import AckTimeout

__all__ = ["BroadcastAck", "BroadcastMemberAck"]

log = logging.getLogger("socketwire.server")


class BroadcastAck:
    """Collects the acks of a broadcast: one response per reached client.

    ``done(err, responses)`` runs once: when every expected client answered
    (clients that disconnect first are no longer expected), or at the deadline
    with ``AckTimeout`` carrying the responses so far. ``expect`` may be called
    several times (once per server in a cluster) before ``sealed``.
    """

    __slots__ = ("_done", "_finished", "_handle", "_pending_servers", "expected", "responses")

    def __init__(
        self, done: Callable[[AckTimeout | None, list[Any]], None], timeout: float | None
    ) -> None:
        self._done = done
        self._finished = False
        self.expected = 0
        self.responses: list[Any] = []
        self._pending_servers = 1
        self._handle = (
            asyncio.get_running_loop().call_later(timeout, self._expire)
            if timeout is not None
            else None
        )

    def member(self) -> BroadcastMemberAck:
        return BroadcastMemberAck(self)

    def expect(self, clients: int, servers: int = 1) -> None:
        """``clients`` more answers are due; ``servers`` more servers have reported."""
        self.expected += clients
        self._pending_servers -= servers
        self._check()

    def add_servers(self, count: int) -> None:
        """More servers (of a cluster) will report their client counts."""
        self._pending_servers += count

    def add(self, response: Any) -> None:
        self.responses.append(response)
        self._check()

    def lost(self) -> None:
        self.expected -= 1
        self._check()

    def _check(self) -> None:
        if (
            not self._finished
            and self._pending_servers <= 0
            and len(self.responses) >= self.expected
        ):
            self._finish(None)

    def _expire(self) -> None:
        self._finish(AckTimeout("operation has timed out", responses=list(self.responses)))

    def _finish(self, err: AckTimeout | None) -> None:
        if self._finished:
            return
        self._finished = True
        if self._handle is not None:
            self._handle.cancel()
        call_safely(log, self._done, err, list(self.responses))


class BroadcastMemberAck:
    """The entry a broadcast with acks leaves on each reached socket."""

    __slots__ = ("collector",)

    def __init__(self, collector: BroadcastAck) -> None:
        self.collector = collector

    def resolve(self, data: list[Any]) -> None:
        # Node keeps the first argument of each client's ack.
        self.collector.add(data[0] if data else None)

    def drop(self, reason: str) -> None:
        self.collector.lost()
