"""Reconnection delays: the exponential backoff of the JavaScript client (pure, no asyncio).

The official client (``socket.io-client``'s ``backo2``) waits, before reconnection
attempt ``n`` (counting from 0)::

    ms = min_ms * factor ** n
    if jitter:
        rand = random()                              # in [0, 1)
        deviation = floor(rand * jitter * ms)
        ms = ms - deviation if floor(rand * 10) is even else ms + deviation
    delay = min(ms, max_ms) truncated to an integer

with ``min_ms = reconnectionDelay`` (1000), ``max_ms = reconnectionDelayMax`` (5000),
``factor = 2`` and ``jitter = randomizationFactor`` (0.5; only used when it lies in
``(0, 1]``).  The same random draw decides the sign and the size of the deviation.

Everything here is deterministic once the random source is given: pass ``rng``
(any callable returning floats in ``[0, 1)``) to reproduce a sequence.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator

__all__ = ["Backoff", "backoff_delays", "backoff_ms"]

Rng = Callable[[], float]


def _effective_jitter(jitter: float) -> float:
    # backo2: ``opts.jitter > 0 && opts.jitter <= 1 ? opts.jitter : 0``
    return jitter if 0 < jitter <= 1 else 0.0


def backoff_ms(
    attempt: int,
    *,
    min_ms: float = 1000,
    max_ms: float = 5000,
    factor: float = 2,
    jitter: float = 0.5,
    rand: float = 0.0,
) -> int:
    """The delay in milliseconds before reconnection attempt ``attempt`` (from 0).

    ``rand`` is the one random draw in ``[0, 1)`` the JavaScript client takes for
    this attempt (ignored when the jitter is off).
    """
    if attempt < 0:
        raise ValueError(f"attempt must be >= 0, got {attempt}")
    if not math.isfinite(max_ms):
        raise ValueError(f"max_ms must be finite, got {max_ms}")
    try:
        ms = float(min_ms) * float(factor) ** attempt
    except OverflowError:
        ms = math.inf
    jitter = _effective_jitter(jitter)
    if jitter and math.isfinite(ms):
        deviation = math.floor(rand * jitter * ms)
        ms = ms - deviation if math.floor(rand * 10) & 1 == 0 else ms + deviation
    # ``Math.min(ms, max) | 0``: truncated towards zero.
    return int(min(ms, max_ms))


def backoff_delays(
    *,
    min_ms: float = 1000,
    max_ms: float = 5000,
    factor: float = 2,
    jitter: float = 0.5,
    rng: Rng = random.random,
) -> Iterator[int]:
    """The endless sequence of delays (ms) of successive attempts, drawing from ``rng``."""
    attempt = 0
    jitter_on = bool(_effective_jitter(jitter))
    while True:
        rand = rng() if jitter_on else 0.0
        yield backoff_ms(
            attempt, min_ms=min_ms, max_ms=max_ms, factor=factor, jitter=jitter, rand=rand
        )
        attempt += 1


class Backoff:
    """Stateful backoff as the JavaScript ``Backoff`` object: ``duration()`` then ``reset()``.

    ``attempts`` counts the durations handed out since the last reset.
    """

    __slots__ = ("attempts", "factor", "jitter", "max_ms", "min_ms", "rng")

    def __init__(
        self,
        *,
        min_ms: float = 1000,
        max_ms: float = 5000,
        factor: float = 2,
        jitter: float = 0.5,
        rng: Rng = random.random,
    ) -> None:
        if not math.isfinite(max_ms):
            raise ValueError(f"max_ms must be finite, got {max_ms}")
        self.min_ms = min_ms
        self.max_ms = max_ms
        self.factor = factor
        self.jitter = jitter
        self.rng = rng
        self.attempts = 0

    def duration(self) -> int:
        """The next delay in milliseconds (and count one more attempt)."""
        rand = self.rng() if _effective_jitter(self.jitter) else 0.0
        ms = backoff_ms(
            self.attempts,
            min_ms=self.min_ms,
            max_ms=self.max_ms,
            factor=self.factor,
            jitter=self.jitter,
            rand=rand,
        )
        self.attempts += 1
        return ms

    def reset(self) -> None:
        """Start again from the first attempt."""
        self.attempts = 0
