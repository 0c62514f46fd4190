"""The one handler dispatch of both sides (socketwire.handlers.Runner) and the ack shapes.

Handlers are called through ``Runner.dispatch`` with a recording ``AckSink``, the
port a socket implements to send its ACK packets; spawned handlers are awaited
through the sink (each ACK sets an event), never by sleeping.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest

from socketwire.acks import ack_args, ack_value
from socketwire.handlers import Listener, Runner
from tests.waits import WAIT


class RecordingSink:
    """An AckSink that keeps every ACK it is asked to send."""

    def __init__(self) -> None:
        self.acks: list[tuple[int, list[Any]]] = []
        self._sent = asyncio.Event()

    def send_ack(self, ack_id: int, args: list[Any]) -> None:
        self.acks.append((ack_id, args))
        self._sent.set()

    async def next_ack(self) -> tuple[int, list[Any]]:
        await asyncio.wait_for(self._sent.wait(), WAIT)
        self._sent.clear()
        return self.acks[-1]


@pytest.fixture
def runner() -> Runner:
    return Runner(logging.getLogger("socketwire.test"), log_task_failures=True)


def listeners(*fns: Callable[..., Any]) -> list[Listener]:
    return [Listener(fn) for fn in fns]


@pytest.mark.parametrize(
    ("answer", "args"),
    [
        (None, []),
        ((1, "two", b"3"), [1, "two", b"3"]),
        ("text", ["text"]),
        (4.5, [4.5]),
        ({"a": [1]}, [{"a": [1]}]),
        ([1, 2], [[1, 2]]),
        (b"\x00", [b"\x00"]),
    ],
)
async def test_plain_handler_return_value_is_the_ack(
    runner: Runner, answer: Any, args: list[Any]
) -> None:
    sink = RecordingSink()
    assert runner.dispatch(listeners(lambda *a: answer), "ev", (1,), 7, sink, "test") is None
    assert sink.acks == [(7, args)]
    assert ack_args(answer) == args


async def test_first_listener_answers(runner: Runner) -> None:
    sink = RecordingSink()
    seen: list[str] = []

    def first(x: int) -> int:
        seen.append("first")
        return x + 1

    def second(x: int) -> int:
        seen.append("second")
        return x + 2

    runner.dispatch(listeners(first, second), "ev", (1,), 3, sink, "test")
    assert seen == ["first", "second"]
    assert sink.acks == [(3, [2])]


async def test_no_listener_leaves_the_ack_pending(runner: Runner) -> None:
    sink = RecordingSink()
    assert runner.dispatch([], "ev", (), 9, sink, "test") == 9
    assert sink.acks == []


async def test_async_handler_acks_with_its_result(runner: Runner) -> None:
    sink = RecordingSink()

    async def handler(x: int) -> tuple[int, int]:
        await asyncio.sleep(0)
        return x, x * 2

    runner.dispatch(listeners(handler), "ev", (5,), 1, sink, "test")
    assert await sink.next_ack() == (1, [5, 10])


async def test_awaitable_returned_by_a_sync_handler_is_awaited(runner: Runner) -> None:
    sink = RecordingSink()
    done = asyncio.Event()

    async def later(x: int) -> int:
        done.set()
        return x

    # With an ack: its result is the answer.
    runner.dispatch(listeners(lambda x: later(x)), "ev", (8,), 2, sink, "test")
    assert await sink.next_ack() == (2, [8])
    # Without: it still runs to the end.
    done.clear()
    runner.dispatch(listeners(lambda x: later(x)), "ev", (8,), None, sink, "test")
    await asyncio.wait_for(done.wait(), WAIT)
    assert len(sink.acks) == 1


async def test_explicit_ack_is_sent_once(runner: Runner) -> None:
    sink = RecordingSink()
    given: list[Any] = []

    def handler(x: int, ack: Any) -> str:
        given.append(ack)
        ack("a", x)
        ack("again")
        return "the return value is not the ack"

    runner.dispatch(listeners(handler), "ev", (1,), 4, sink, "test")
    assert sink.acks == [(4, ["a", 1])]
    # No ack requested: the handler gets None.
    runner.dispatch(listeners(handler), "ev", (1,), None, sink, "test")
    assert given[1] is None


async def test_failing_handler_is_logged_and_sends_no_ack(
    runner: Runner, caplog: pytest.LogCaptureFixture
) -> None:
    sink = RecordingSink()

    def broken(x: int) -> int:
        raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR, logger="socketwire.test"):
        runner.dispatch(listeners(broken, lambda x: x), "ev", (1,), 6, sink, "where")
    assert sink.acks == []  # the first listener answers, and it failed
    (record,) = caplog.records
    assert "broken" in record.getMessage() and "where" in record.getMessage()


def test_ack_value_shapes() -> None:
    assert ack_value([]) is None
    assert ack_value([1]) == 1
    assert ack_value((1, 2)) == (1, 2)
    assert ack_value([None]) is None
