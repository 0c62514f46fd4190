"""Connection state recovery across workers, in one process: real Servers, each
with a ``WorkersAdapter`` on its own ``WorkerBus`` in one directory.

What a rolling restart does to a client that moves, step by step: the worker it
left and the workers that had its offset stop before it comes back, and a
worker restores it that joined after the broadcasts it received, after its
session was left behind, or both. Its session and the broadcasts sent while it
was away (one sent as its restore is answered by another worker included) must
reach it, each once, in order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import socketwire
from socketwire.adapters.session_aware import SessionAwareAdapter
from socketwire.adapters.worker_bus import WorkerBus
from socketwire.adapters.workers import WorkersAdapter, create_adapter
from tests.waits import WAIT

from .test_worker_bus import until


class Worker:
    """One worker: a Server whose root namespace is on the workers' bus."""

    def __init__(self, directory: Path, worker: int) -> None:
        self.bus = WorkerBus(directory, worker)
        self.sio: socketwire.Server | None = None
        self.stopped = False

    @property
    def adapter(self) -> WorkersAdapter:
        assert self.sio is not None
        adapter = self.sio.sockets.adapter
        assert isinstance(adapter, WorkersAdapter)
        return adapter

    async def start(self) -> Worker:
        # As a worker process does: the bus, then the adapters (a Server made in
        # a running loop starts them at once), then serving.
        await self.bus.start()
        self.sio = socketwire.Server(
            adapter=create_adapter(self.bus, recovery=60, requests_timeout=WAIT),
            connection_state_recovery={"max_disconnection_duration": 60},
        )
        await self.sio.init_adapters()
        return self

    async def stop(self) -> None:
        if not self.stopped and self.sio is not None:
            self.stopped = True
            await self.sio.close()
            await self.bus.close()

    def tick(self, n: int) -> str:
        """Broadcast ``tick n`` from here; its offset."""
        assert self.sio is not None
        self.sio.emit("tick", n)
        offset: str = self.adapter.export_history()[-1][0]
        return offset

    def knows(self, offset: str) -> bool:
        return self.adapter.knows_offset(offset)


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[Any]:
    started: list[Worker] = []

    async def start_worker(worker: int) -> Worker:
        started.append(Worker(tmp_path, worker))
        return await started[-1].start()

    yield start_worker
    for worker in started:
        await worker.stop()


def ticks(missed: list[list[Any]]) -> list[Any]:
    return [data[1] for data in missed]


async def test_the_history_outlives_the_workers_that_filed_it(start: Any) -> None:
    one, two = await start(1), await start(2)
    seen = one.tick(1)  # the last broadcast the client received
    await until(lambda: two.knows(seen))
    three = await start(3)  # joins after it
    # The client's worker drains: its session goes to the others.
    one.adapter.persist_session("sid", "pid", ["sid"], {"name": "a"})
    await until(lambda: three.adapter.holds_session("pid"))
    away = two.tick(2)  # while the client is away
    await until(lambda: three.knows(away))
    await one.stop()
    await two.stop()  # the last worker that received tick 1 as it was sent
    session = await three.adapter.restore_session("pid", seen)
    assert session is not None
    assert (session.sid, session.rooms, session.data) == ("sid", ["sid"], {"name": "a"})
    assert ticks(session.missed) == [2]


async def test_a_worker_that_joins_takes_the_sessions_the_others_keep(start: Any) -> None:
    one, two = await start(1), await start(2)
    seen = one.tick(1)
    # The client's connection is cut: its session is kept by both workers.
    one.adapter.persist_session("sid", "pid", ["sid", "room"], None)
    await until(lambda: two.adapter.holds_session("pid"))
    away = [one.tick(2), two.tick(3), one.tick(4)]
    await until(lambda: all(map(two.knows, away)))
    three = await start(3)
    await one.stop()
    await two.stop()
    assert three.adapter.holds_session("pid") and three.knows(seen)
    session = await three.adapter.restore_session("pid", seen)
    assert session is not None and session.rooms == ["sid", "room"]
    assert ticks(session.missed) == [2, 3, 4]


async def test_a_broadcast_filed_while_another_worker_answers_a_restore(start: Any) -> None:
    one, two = await start(1), await start(2)
    seen = one.tick(1)
    one.adapter.persist_session("sid", "pid", ["sid"], None)
    await until(lambda: two.adapter.holds_session("pid") and two.knows(seen))
    two.adapter.drop_session("pid")  # its copy never arrived: it asks worker 1
    restoring = asyncio.ensure_future(two.adapter.restore_session("pid", seen))
    # Worker 1 answered (it gave the session away); worker 2 broadcasts before
    # it reads the answer, and before the socket is back in its rooms.
    await until(lambda: not one.adapter.holds_session("pid"))
    assert not restoring.done()
    two.tick(2)
    session = await asyncio.wait_for(restoring, WAIT)
    assert session is not None
    assert ticks(session.missed) == [2]
    assert not one.adapter.holds_session("pid") and not two.adapter.holds_session("pid")


async def test_a_broadcast_to_a_room_no_socket_of_the_worker_is_in(start: Any) -> None:
    one, two = await start(1), await start(2)
    seen = one.tick(1)
    # The client was in "room" on worker 1; nobody on worker 2 is.
    one.adapter.persist_session("sid", "pid", ["sid", "room"], None)
    assert one.sio is not None
    one.sio.to("room").emit("tick", 2)
    one.sio.to("elsewhere").emit("tick", 3)
    later = one.tick(4)
    await until(lambda: two.adapter.holds_session("pid") and two.knows(later))
    await one.stop()
    session = await two.adapter.restore_session("pid", seen)
    assert session is not None
    assert ticks(session.missed) == [2, 4]


async def test_histories_merged_before_the_broadcasts_filed_here() -> None:
    sio = socketwire.Server(connection_state_recovery={"max_disconnection_duration": 60})
    adapter = sio.sockets.adapter
    assert isinstance(adapter, SessionAwareAdapter)
    adapter.add_offset_to_history(["tick", 9, "c-9"], frozenset(), frozenset())  # live
    adapter.persist_session("sid", "pid", ["sid"], None)
    now = time.monotonic()

    def entry(offset: str, at: float, rooms: list[str] | None = None) -> list[Any]:
        return [offset, rooms or [], [], ["tick", offset, offset], at]

    # Two workers' histories: worker "a" is gone, and the two that received its
    # broadcasts filed them a little apart (a-2 before a-1, by the times): each
    # sender's broadcasts in the order of their offsets, in the places its
    # broadcasts take by time; "c-9" came here live; one expired.
    merged = adapter.merge_history(
        [
            entry("a-1", now - 0.002),
            entry("a-2", now - 0.005),
            entry("b-1", now - 0.004, ["room"]),
            entry("a-1", now - 0.003),
            entry("c-9", now - 0.001),
            entry("old-1", now - 61),
        ]
    )
    assert merged == 3
    assert [e[0] for e in adapter.export_history()] == ["a-1", "b-1", "a-2", "c-9"]
    session = await adapter.restore_session("pid", "a-1")
    assert session is not None
    assert [data[-1] for data in session.missed] == ["a-2", "c-9"]  # not in "room"
