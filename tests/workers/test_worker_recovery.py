"""Connection state recovery across workers, in one process: real Servers, each
with a ``WorkersAdapter`` on its own ``WorkerBus`` in one directory.

What a rolling restart does to a client that moves, step by step: the worker it
left and the workers that had its offset stop before it comes back, and a
worker restores it that joined after the broadcasts it received, after its
session was left behind, or both. Its session and the broadcasts sent while it
was away (one sent as its restore is answered by another worker included) must
reach it, each once, in order.

A client that received no broadcast before it left sends no offset
(socket.io#5538): the session copies say where the session started, so the other
worker replays what was sent from there on, with or without the worker the
client left. Real clients reach the workers through ``Front``, which passes
each connection to the worker the test points it at, as the supervisor does.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import socketwire
from socketwire.adapters.session_aware import SessionAwareAdapter
from socketwire.adapters.worker_bus import WorkerBus
from socketwire.adapters.workers import WorkersAdapter, create_adapter
from socketwire.client import Client
from tests.client.helpers import watch
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

    async def listen(self) -> int:
        """Serve on a port of 127.0.0.1; the port."""
        assert self.sio is not None
        return await self.sio.listen(0, "127.0.0.1")

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


class Front:
    """A port whose connections go to the worker of ``port`` (set by the test),
    once ``gate`` is open: what the supervisor does for real workers."""

    def __init__(self) -> None:
        self.port = 0
        self.gate = asyncio.Event()
        self.gate.set()
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def start(self) -> Front:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self.gate.wait()
            upstream, downstream = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            writer.close()
            return
        pipes = [
            asyncio.ensure_future(_pipe(reader, downstream)),
            asyncio.ensure_future(_pipe(upstream, writer)),
        ]
        self._pipes.update(pipes)
        try:
            # Either side closing closes the other: the client sees its worker go.
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pipes:
                task.cancel()
                self._pipes.discard(task)
            writer.close()
            downstream.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._pipes):
            task.cancel()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()


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


@pytest.mark.parametrize("earlier", [False, True], ids=["empty history", "earlier broadcast"])
@pytest.mark.parametrize("owner", ["stays", "gone"])
async def test_a_client_that_received_nothing_recovers_on_the_other_worker(
    start: Any, earlier: bool, owner: str
) -> None:
    one, two = await start(1), await start(2)
    one_port, two_port = await one.listen(), await two.listen()
    if earlier:
        # Sent before the client connected: not part of what it missed.
        before = two.tick(0)
        await until(lambda: one.knows(before))
    front = await Front().start()
    front.port = one_port
    client = Client(
        front.url, transports=["websocket"], reconnection_delay=0.05, reconnection_delay_max=0.1
    )
    events = watch(client)
    try:
        await asyncio.wait_for(client.connect(), WAIT)
        assert client.recovered is False and client.id is not None
        sid = client.id
        assert one.sio is not None and sid in one.sio.sockets.sockets
        # Its connection is cut before it received any broadcast; it comes back
        # to the other worker once the test lets it.
        front.gate.clear()
        front.port = two_port
        one.sio.sockets.sockets[sid].conn.engine.close()
        assert await events.wait("disconnect") == ("transport close",)
        pid = one.adapter.export_sessions()[-1][1]
        await until(lambda: two.adapter.holds_session(pid))
        # While it is away: a broadcast from each worker (the second once the
        # first is filed on both), and one to a room it is not in.
        away = [one.tick(1)]
        await until(lambda: two.knows(away[0]))
        away.append(two.tick(2))
        assert two.sio is not None
        two.sio.to("elsewhere").emit("tick", "not for you")
        if owner == "gone":
            await one.stop()
        front.gate.set()
        await events.wait("connect", 2)
        assert client.recovered is True
        assert client.id == sid and sid in two.sio.sockets.sockets
        later = two.tick(3)
        await events.wait("tick", 3)
        assert [args[0] for args in events.named("tick")] == [1, 2, 3]
        assert [args[1] for args in events.named("tick")] == [*away, later]
        assert not two.adapter.holds_session(pid)
        if owner == "stays":
            await until(lambda: not one.adapter.holds_session(pid))
    finally:
        await client.disconnect()
        await front.stop()


async def test_a_worker_that_joins_takes_where_the_sessions_started(start: Any) -> None:
    one, two = await start(1), await start(2)
    before = one.tick(0)
    await until(lambda: two.knows(before))
    # The socket connects after tick 0, receives nothing, and leaves.
    one.adapter.start_session("sid", None)
    one.adapter.persist_session("sid", "pid", ["sid"], None)
    await until(lambda: two.adapter.holds_session("pid"))
    away = two.tick(1)
    await until(lambda: one.knows(away))
    three = await start(3)  # takes the session and its start from the others
    await one.stop()
    await two.stop()
    session = await three.adapter.restore_session("pid", None)
    assert session is not None and session.sid == "sid"
    assert ticks(session.missed) == [1]


async def test_what_the_restoring_worker_sent_before_the_session_started(start: Any) -> None:
    one, two = await start(1), await start(2)
    assert two.sio is not None
    two.sio.local.emit("tick", 0)  # never reached worker 1: its history is empty
    one.adapter.start_session("sid", None)
    one.adapter.persist_session("sid", "pid", ["sid"], None)
    away = one.tick(1)
    await until(lambda: two.adapter.holds_session("pid") and two.knows(away))
    await one.stop()
    session = await two.adapter.restore_session("pid", None)
    assert session is not None
    assert ticks(session.missed) == [1]


async def test_a_start_that_only_the_owner_knows(start: Any) -> None:
    one, two = await start(1), await start(2)
    assert one.sio is not None
    one.sio.local.emit("tick", 0)  # the last broadcast when the session started
    one.adapter.start_session("sid", None)
    one.adapter.persist_session("sid", "pid", ["sid"], None)
    away = one.tick(1)
    await until(lambda: two.adapter.holds_session("pid") and two.knows(away))
    assert not two.adapter.can_restore("pid", None)
    # Worker 2 asks; worker 1 replays from its own history.
    session = await two.adapter.restore_session("pid", None)
    assert session is not None
    assert ticks(session.missed) == [1]
    assert not one.adapter.holds_session("pid") and not two.adapter.holds_session("pid")


async def test_no_replay_from_a_start_whose_broadcasts_expired() -> None:
    sio = socketwire.Server(connection_state_recovery={"max_disconnection_duration": 60})
    adapter = sio.sockets.adapter
    assert isinstance(adapter, SessionAwareAdapter)
    now = time.monotonic()
    # Sessions copied from another worker: one started 70 s ago with an empty
    # history, the other 50 s ago after broadcast "a-1"; both left just now.
    sessions = [["s1", "p1", ["s1"], None, now], ["s2", "p2", ["s2"], None, now]]
    starts = {"p1": [None, now - 70], "p2": ["a-1", now - 50]}
    assert adapter.merge_sessions(sessions, (), starts) == 2
    # The others' history: "a-1" is there; "a-0", filed after the first session
    # started, has expired (as may have others that this adapter never saw).
    adapter.merge_history(
        [
            ["a-0", [], [], ["tick", 0, "a-0"], now - 65],
            ["a-1", [], [], ["tick", 1, "a-1"], now - 55],
            ["a-2", [], [], ["tick", 2, "a-2"], now - 1],
        ]
    )
    assert not adapter.can_restore("p1", None)
    assert await adapter.restore_session("p1", None) is None
    session = await adapter.restore_session("p2", None)
    assert session is not None
    assert ticks(session.missed) == [2]
