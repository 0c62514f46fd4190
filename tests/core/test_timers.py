"""Tests of the constant-delay deadline queue (socketwire.core.timers)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from socketwire.core.timers import DeadlineQueue


def test_empty_queue() -> None:
    q: DeadlineQueue[str] = DeadlineQueue(5.0)
    assert q.delay == 5.0
    assert len(q) == 0
    assert q.next_deadline() is None
    assert q.expired(1e9) == []


def test_push_returns_now_plus_delay() -> None:
    q: DeadlineQueue[str] = DeadlineQueue(5.0)
    assert q.push(10.0, "a") == 15.0
    assert q.push(10.0, "b") == 15.0
    assert q.push(12.5, "c") == 17.5
    assert len(q) == 3


def test_fifo_order() -> None:
    q: DeadlineQueue[str] = DeadlineQueue(1.0)
    for now, item in [(0.0, "a"), (0.0, "b"), (0.5, "c"), (2.0, "d")]:
        q.push(now, item)
    assert q.expired(100.0) == [(1.0, "a"), (1.0, "b"), (1.5, "c"), (3.0, "d")]
    assert len(q) == 0


def test_expired_boundaries() -> None:
    q: DeadlineQueue[str] = DeadlineQueue(10.0)
    q.push(0.0, "a")  # 10.0
    q.push(1.0, "b")  # 11.0
    q.push(1.0, "c")  # 11.0
    q.push(2.0, "d")  # 12.0
    assert q.expired(9.999) == []
    assert len(q) == 4
    # a deadline equal to now has expired
    assert q.expired(10.0) == [(10.0, "a")]
    assert q.expired(10.0) == []
    assert q.expired(10.5) == []
    assert q.expired(11.0) == [(11.0, "b"), (11.0, "c")]
    assert len(q) == 1
    assert q.next_deadline() == 12.0
    assert q.expired(11.9999) == []
    assert q.expired(12.0) == [(12.0, "d")]
    assert len(q) == 0


def test_next_deadline_tracks_the_head() -> None:
    q: DeadlineQueue[int] = DeadlineQueue(3.0)
    q.push(1.0, 1)
    q.push(2.0, 2)
    assert q.next_deadline() == 4.0
    # peeking does not pop
    assert q.next_deadline() == 4.0
    assert len(q) == 2
    q.expired(4.0)
    assert q.next_deadline() == 5.0
    q.expired(5.0)
    assert q.next_deadline() is None


def test_zero_delay_expires_at_push_time() -> None:
    q: DeadlineQueue[str] = DeadlineQueue(0.0)
    assert q.push(7.0, "now") == 7.0
    assert q.expired(7.0) == [(7.0, "now")]


def test_clear() -> None:
    q: DeadlineQueue[str] = DeadlineQueue(1.0)
    q.push(0.0, "a")
    q.push(1.0, "b")
    q.clear()
    assert len(q) == 0
    assert q.next_deadline() is None
    assert q.expired(1e9) == []
    # still usable after clear
    assert q.push(5.0, "c") == 6.0
    assert q.expired(6.0) == [(6.0, "c")]


def test_same_item_pushed_twice_pops_twice() -> None:
    """Cancelling is lazy: re-pushing an item leaves its stale entry in the queue."""
    q: DeadlineQueue[str] = DeadlineQueue(2.0)
    q.push(0.0, "s")
    q.push(1.0, "s")
    assert q.expired(3.0) == [(2.0, "s"), (3.0, "s")]


@given(
    delay=st.floats(min_value=0.0, max_value=1e3, allow_nan=False),
    start=st.floats(min_value=0.0, max_value=1e6, allow_nan=False),
    steps=st.lists(
        st.tuples(
            st.floats(min_value=0.0, max_value=10.0, allow_nan=False),  # time advance
            st.integers(min_value=0, max_value=3),  # pushes at that time
        ),
        max_size=40,
    ),
)
def test_popped_deadlines_are_sorted_and_every_item_pops_once(
    delay: float, start: float, steps: list[tuple[float, int]]
) -> None:
    q: DeadlineQueue[int] = DeadlineQueue(delay)
    now = start
    pushed: dict[int, float] = {}
    popped: list[tuple[float, int]] = []
    counter = 0
    for advance, count in steps:
        now += advance  # non-decreasing push times
        for _ in range(count):
            pushed[counter] = q.push(now, counter)
            counter += 1
        assert len(q) == len(pushed) - len(popped)
        head = q.next_deadline()
        batch = q.expired(now)
        # everything returned is due, and what is left is not
        assert all(d <= now for d, _ in batch)
        nxt = q.next_deadline()
        assert nxt is None or nxt > now
        if batch:
            assert batch[0][0] == head
        popped.extend(batch)
    popped.extend(q.expired(float("inf")))
    assert len(q) == 0
    assert q.next_deadline() is None

    deadlines = [d for d, _ in popped]
    assert deadlines == sorted(deadlines)
    items = [i for _, i in popped]
    assert sorted(items) == list(range(counter))
    assert len(set(items)) == len(items)
    assert all(pushed[i] == d for d, i in popped)
