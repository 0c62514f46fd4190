"""``RoomSubscriptions`` on an in-process port that records its commands.

The port answers like a Redis connection would: each command is recorded in
order, its confirmation completes when the test says so, and while it is "down"
every command fails. The rules under test: batching per loop turn, nothing sent
for a room that came and went, the last word winning while commands are on their
way, retries after failures, and what ``wait`` promises.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from socketwire.adapters.room_subscriptions import RoomSubscriptions

from .conftest import TIMEOUT

log = logging.getLogger("tests.room_subscriptions")


class RecordingPort:
    """Records (command, channels); confirmations wait for ``confirm()``."""

    def __init__(self) -> None:
        self.commands: list[tuple[str, list[str]]] = []
        self.unconfirmed: list[asyncio.Future[None]] = []
        self.down = False
        self.sent = asyncio.Event()

    async def subscribe(self, channels: list[str]) -> asyncio.Future[None] | None:
        return self._record("subscribe", channels)

    async def unsubscribe(self, channels: list[str]) -> None:
        self._record("unsubscribe", channels)

    def _record(self, command: str, channels: list[str]) -> asyncio.Future[None]:
        if self.down:
            raise ConnectionError("down")
        self.commands.append((command, sorted(channels)))
        self.sent.set()
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.unconfirmed.append(fut)
        return fut

    def confirm(self) -> None:
        for fut in self.unconfirmed:
            if not fut.done():
                fut.set_result(None)
        self.unconfirmed.clear()

    async def next_command(self) -> tuple[str, list[str]]:
        await asyncio.wait_for(self.sent.wait(), TIMEOUT)
        self.sent.clear()
        return self.commands[-1]


async def idle(subs: RoomSubscriptions, port: RecordingPort) -> None:
    """Until the tracker has nothing left to send (confirming as it goes)."""

    async def loop() -> None:
        while not subs.settled:
            port.confirm()
            await asyncio.sleep(0)

    await asyncio.wait_for(loop(), TIMEOUT)


async def test_one_command_per_turn_and_nothing_for_what_came_and_went() -> None:
    port = RecordingPort()
    subs = RoomSubscriptions(port, log)
    subs.add("a")  # before start: recorded, not sent
    subs.start()
    for c in ("b", "c", "gone"):
        subs.add(c)
    subs.discard("gone")
    subs.add("a")  # twice: once
    assert await port.next_command() == ("subscribe", ["a", "b", "c"])
    await idle(subs, port)
    subs.discard("b")
    subs.add("b")  # left and back in one turn: no command at all
    subs.discard("c")
    assert await port.next_command() == ("unsubscribe", ["c"])
    await idle(subs, port)
    assert port.commands == [("subscribe", ["a", "b", "c"]), ("unsubscribe", ["c"])]
    assert subs.wanted == {"a", "b"}
    assert (subs.subscribe_commands, subs.unsubscribe_commands) == (1, 1)


async def test_the_last_word_wins_while_commands_are_on_their_way() -> None:
    port = RecordingPort()
    subs = RoomSubscriptions(port, log)
    subs.start()
    subs.add("x")
    assert await port.next_command() == ("subscribe", ["x"])
    subs.discard("x")  # its SUBSCRIBE is not confirmed yet
    assert await port.next_command() == ("unsubscribe", ["x"])
    subs.add("x")
    assert await port.next_command() == ("subscribe", ["x"])
    waiting = asyncio.get_running_loop().create_task(subs.wait(["x"], TIMEOUT))
    await asyncio.sleep(0)
    assert not waiting.done()
    port.confirm()
    assert await waiting
    assert subs.settled and subs.wanted == {"x"}


async def test_failed_commands_are_retried() -> None:
    port = RecordingPort()
    subs = RoomSubscriptions(port, log)
    subs.start()
    subs.add("kept")
    await port.next_command()
    await idle(subs, port)
    port.down = True
    subs.add("new")
    subs.discard("kept")
    await asyncio.sleep(0)  # the task tries and fails (no command recorded)
    assert not subs.settled and len(port.commands) == 1
    port.down = False
    # The backoff's first pause, then the same difference again, as two commands.
    assert await port.next_command() == ("subscribe", ["new"])
    assert port.commands[-2:] == [("unsubscribe", ["kept"]), ("subscribe", ["new"])]
    await idle(subs, port)


async def test_wait() -> None:
    port = RecordingPort()
    subs = RoomSubscriptions(port, log)
    subs.start()
    assert await subs.wait(["never wanted"], 0.01)  # nothing to wait for
    subs.add("slow")
    await port.next_command()
    assert not await subs.wait(["slow"], 0.01)  # not confirmed in time...
    port.confirm()
    assert await subs.wait(["slow"], TIMEOUT)  # ...and the future still works
    subs.add("lost")
    await port.next_command()
    port.unconfirmed[-1].set_exception(ConnectionError("lost"))
    assert not await subs.wait(["lost"], TIMEOUT)


@pytest.mark.parametrize("started", [True, False])
async def test_close_gives_back_the_channels(started: bool) -> None:
    port = RecordingPort()
    subs = RoomSubscriptions(port, log)
    if started:
        subs.start()
    subs.add("a")
    subs.add("b")
    waiting = asyncio.get_running_loop().create_task(subs.wait(["a"], TIMEOUT))
    await asyncio.sleep(0)
    assert await subs.close() == ["a", "b"]
    assert not await waiting
    subs.add("c")  # closed: ignored
    subs.start()
    assert subs.wanted == frozenset()
