"""The per-socket event rate limit (socketwire.server.rate_limit), on an explicit clock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from socketwire.server.rate_limit import EventRateLimit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Policy:
    def __init__(self, hook: Callable[[Any, Any], Any] | None = None) -> None:
        self.on_rate_limit = hook
        self.calls: list[tuple[Any, Any]] = []


class Limited:
    def __init__(self) -> None:
        self.id = "sid1"
        self.disconnects = 0

    def disconnect(self, close: bool = False) -> Limited:
        self.disconnects += 1
        return self


def test_burst_then_refill() -> None:
    clock = Clock()
    bucket = EventRateLimit(4, 2.0, Policy(), clock)  # 2 per second, bursts of 4
    socket = Limited()
    assert [bucket.allow(socket, "e") for _ in range(5)] == [True] * 4 + [False]
    clock.now += 0.5  # one token back
    assert bucket.allow(socket, "e")
    assert not bucket.allow(socket, "e")
    clock.now += 60  # never more than the burst
    assert [bucket.allow(socket, "e") for _ in range(5)] == [True] * 4 + [False]
    assert socket.disconnects == 0


@pytest.mark.parametrize(
    ("answer", "allowed", "disconnects"),
    [("drop", False, 0), (None, False, 0), ("allow", True, 0), ("disconnect", False, 1)],
)
def test_on_rate_limit_decides(answer: Any, allowed: bool, disconnects: int) -> None:
    seen: list[tuple[Any, Any]] = []

    def hook(socket: Any, event: Any) -> Any:
        seen.append((socket, event))
        return answer

    policy = Policy()
    bucket = EventRateLimit(1, 60.0, policy, Clock())
    socket = Limited()
    assert bucket.allow(socket, "first")
    policy.on_rate_limit = hook  # read when needed: a hook set later applies
    assert bucket.allow(socket, "second") is allowed
    assert seen == [(socket, "second")]
    assert socket.disconnects == disconnects


def test_failing_hook_drops() -> None:
    def hook(socket: Any, event: Any) -> Any:
        raise RuntimeError("hook bug")

    bucket = EventRateLimit(1, 60.0, Policy(hook), Clock())
    socket = Limited()
    assert bucket.allow(socket, "e")
    assert not bucket.allow(socket, "e")
    assert socket.disconnects == 0
