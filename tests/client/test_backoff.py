"""The reconnection backoff: the JavaScript client's formula, made deterministic by an injected RNG."""

from __future__ import annotations

import itertools
import json
import math
import random
import subprocess

import pytest

from socketwire.client.backoff import Backoff, backoff_delays, backoff_ms

from .peers import NODE_MODULES


def test_without_jitter_doubles_up_to_the_maximum() -> None:
    delays = [backoff_ms(n, min_ms=1000, max_ms=5000, jitter=0) for n in range(6)]
    assert delays == [1000, 2000, 4000, 5000, 5000, 5000]


@pytest.mark.parametrize(
    ("attempt", "rand", "expected"),
    [
        # floor(rand * 10) even: ms - floor(rand * jitter * ms)
        (0, 0.0, 1000),
        (0, 0.25, 1000 - 125),  # floor(2.5) = 2, even
        (1, 0.05, 2000 - 50),  # floor(0.5) = 0, even
        # floor(rand * 10) odd: ms + deviation
        (0, 0.1, 1000 + 50),  # floor(1.0) = 1, odd
        (1, 0.35, 2000 + 350),  # floor(3.5) = 3, odd
        (2, 0.99, 5000),  # 4000 + 1980, capped
        (2, 0.8, 4000 - 1600),  # floor(8.0) = 8, even
    ],
)
def test_jitter_as_the_javascript_client(attempt: int, rand: float, expected: int) -> None:
    assert backoff_ms(attempt, min_ms=1000, max_ms=5000, jitter=0.5, rand=rand) == expected


def test_result_is_truncated_to_whole_milliseconds() -> None:
    # 150 * 2 = 300; deviation floor(0.15 * 0.3 * 300) = 13; floor(1.5) = 1: odd, +13
    assert backoff_ms(1, min_ms=150, max_ms=10_000, jitter=0.3, rand=0.15) == 313
    assert backoff_ms(0, min_ms=100.7, max_ms=10_000, jitter=0) == 100


def test_jitter_outside_0_1_is_ignored() -> None:
    for jitter in (0, -1, 1.5):
        assert backoff_ms(1, min_ms=100, max_ms=1000, jitter=jitter, rand=0.7) == 200
    # jitter 1 is allowed
    assert backoff_ms(1, min_ms=100, max_ms=1000, jitter=1, rand=0.7) == 200 + 140


def test_huge_attempts_stay_at_the_maximum() -> None:
    assert backoff_ms(5000, min_ms=1000, max_ms=5000, jitter=0.5, rand=0.3) == 5000
    assert backoff_ms(10**6, min_ms=1000, max_ms=5000, jitter=1, rand=0.99) == 5000


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        backoff_ms(-1)
    with pytest.raises(ValueError):
        backoff_ms(1, max_ms=math.inf)
    with pytest.raises(ValueError):
        Backoff(max_ms=math.inf)


def test_delays_iterator_draws_once_per_attempt() -> None:
    draws = iter([0.0, 0.1, 0.25, 0.35, 0.8])
    delays = backoff_delays(min_ms=1000, max_ms=5000, jitter=0.5, rng=lambda: next(draws))
    assert list(itertools.islice(delays, 5)) == [1000, 2100, 4000 - 500, 5000, 5000]


def test_delays_iterator_without_jitter_does_not_draw() -> None:
    def rng() -> float:
        raise AssertionError("no draw without jitter")

    delays = backoff_delays(min_ms=10, max_ms=50, jitter=0, rng=rng)
    assert list(itertools.islice(delays, 4)) == [10, 20, 40, 50]


def test_backoff_object_counts_and_resets() -> None:
    values = iter([0.0, 0.0, 0.1, 0.0])
    backoff = Backoff(min_ms=100, max_ms=1000, jitter=0.5, rng=lambda: next(values))
    assert backoff.attempts == 0
    assert [backoff.duration() for _ in range(3)] == [100, 200, 400 + 20]
    assert backoff.attempts == 3
    backoff.reset()
    assert backoff.attempts == 0
    assert backoff.duration() == 100


def test_defaults_are_the_javascript_clients() -> None:
    backoff = Backoff(rng=lambda: 0.0)
    assert (backoff.min_ms, backoff.max_ms, backoff.factor, backoff.jitter) == (1000, 5000, 2, 0.5)
    assert [backoff.duration() for _ in range(4)] == [1000, 2000, 4000, 5000]


# Feeds the official client's backo2.js the given random draws and prints its durations.
_BACKO2 = """
const { Backoff } = require(process.argv[1]);
const cases = JSON.parse(process.argv[2]);
const out = cases.map(([min, max, jitter, draws]) => {
  let i = 0;
  Math.random = () => draws[i++];
  const b = new Backoff({ min, max, jitter });
  return draws.map(() => b.duration());
});
process.stdout.write(JSON.stringify(out));
"""


def test_same_delays_as_the_official_client() -> None:
    """Cross-check with socket.io-client's own backo2.js, random draws injected."""
    rng = random.Random(1234)
    cases = [
        (min_ms, max_ms, jitter, [rng.random() for _ in range(12)])
        for min_ms, max_ms, jitter in [
            (1000, 5000, 0.5),
            (100, 400, 0.5),
            (50, 60_000, 0.25),
            (333, 10_000, 1),
            (1000, 5000, 0),
        ]
    ]
    script = NODE_MODULES / "socket.io-client" / "build" / "cjs" / "contrib" / "backo2.js"
    proc = subprocess.run(
        ["node", "-e", _BACKO2, str(script), json.dumps(cases)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    expected = json.loads(proc.stdout)
    for (min_ms, max_ms, jitter, draws), js in zip(cases, expected, strict=True):
        ours = list(
            itertools.islice(
                backoff_delays(
                    min_ms=min_ms, max_ms=max_ms, jitter=jitter, rng=iter(draws).__next__
                ),
                len(draws),
            )
        )
        assert ours == js, (min_ms, max_ms, jitter)
