"""The per-socket limit on incoming events: ``Server(event_rate_limit=...)`` (layer 2).

A token bucket per socket: ``events`` per ``interval`` seconds, with bursts up
to ``events``.  Over the limit, the server's ``on_rate_limit(socket, event)``
decides: return ``"drop"`` (the default), ``"disconnect"``, or ``"allow"``; it
may also emit a warning to the client itself.

The bucket reads a monotonic clock (``clock``, injected so that tests drive
time); it knows nothing of the socket but what the :class:`Limited` port gives,
and reads ``on_rate_limit`` from its :class:`Policy` (the server) when it needs
it, so that a hook set after the socket connected applies too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["EventRateLimit", "Limited", "Policy"]

log = logging.getLogger("socketwire.server")


class Limited(Protocol):
    """The socket a bucket limits: its id (for logs) and how to disconnect it."""

    @property
    def id(self) -> str: ...

    def disconnect(self, close: bool = False) -> object: ...


class Policy(Protocol):
    """Who decides about an event over the limit (the server)."""

    @property
    def on_rate_limit(self) -> Callable[[Any, Any], Any] | None: ...


class EventRateLimit:
    """A token bucket on one socket's incoming events."""

    __slots__ = ("_clock", "_last", "_policy", "_rate", "_tokens", "capacity")

    def __init__(
        self,
        events: int,
        interval: float,
        policy: Policy,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capacity = float(events)
        self._rate = events / interval
        self._tokens = float(events)
        self._policy = policy
        self._clock = clock
        self._last = clock()

    def allow(self, socket: Limited, event: Any) -> bool:
        """Whether ``socket`` may handle ``event`` now (takes a token when it may)."""
        now = self._clock()
        tokens = min(self.capacity, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            return True
        self._tokens = tokens
        action: Any = "drop"
        decide = self._policy.on_rate_limit
        if decide is not None:
            try:
                action = decide(socket, event) or "drop"
            except Exception:
                log.exception("on_rate_limit failed (sid=%s)", socket.id)
        if action == "allow":
            return True
        if action == "disconnect":
            log.info("sid=%s over the event rate limit: disconnecting", socket.id)
            socket.disconnect()
        else:
            log.info("sid=%s over the event rate limit: %r dropped", socket.id, event)
        return False
