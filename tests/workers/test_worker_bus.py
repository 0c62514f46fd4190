"""The workers' bus in one process: a mesh of Unix sockets in a directory.

Three buses join one directory; each pair shares one connection, even when two
of them connect to each other at once; a message reaches the workers subscribed
to its channel or to a matching pattern, once, in order; ``numsub`` counts
subscribers as Redis does; a worker that leaves stops being counted. Also the
pure helpers: session ids that name their worker, and the worker's command line.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from socketwire.adapters.worker_bus import (
    _HELLO,
    _MESSAGE,
    _SUBSCRIBE,
    WorkerBus,
    _frame,
    bus_socket_path,
)
from socketwire.serve.forward import http_socket_path, owned_id, owner_of
from socketwire.workers import worker_arguments
from tests.waits import WAIT


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.changed = asyncio.Event()

    def __call__(self, channel: str, payload: bytes) -> None:
        self.messages.append((channel, payload))
        self.changed.set()

    async def wait(self, count: int) -> list[tuple[str, bytes]]:
        async with asyncio.timeout(WAIT):
            while len(self.messages) < count:
                self.changed.clear()
                await self.changed.wait()
        return self.messages


async def until(check: object) -> None:
    """Wait (bounded) until ``check()`` is true, one loop turn at a time."""
    async with asyncio.timeout(WAIT):
        while not check():  # type: ignore[operator]
            await asyncio.sleep(0)


@pytest.fixture
async def buses(tmp_path: Path) -> AsyncIterator[list[WorkerBus]]:
    made = [WorkerBus(tmp_path, worker) for worker in (1, 2, 3)]
    for bus in made:
        await bus.start()
    await until(lambda: all(len(bus.peers) == 2 for bus in made))
    yield made
    for bus in made:
        await bus.close()


async def test_a_mesh_with_one_connection_per_pair(buses: list[WorkerBus]) -> None:
    for bus in buses:
        assert sorted(bus.peers) == sorted({1, 2, 3} - {bus.worker})
    assert Path(bus_socket_path(buses[0].directory, 1)).exists()


async def test_simultaneous_joins_keep_one_connection(tmp_path: Path) -> None:
    a, b = WorkerBus(tmp_path, 7), WorkerBus(tmp_path, 8)
    # Both listening before either connects: both connect to the other.
    await asyncio.gather(a.start(), b.start())
    try:
        await until(lambda: 8 in a.peers and 7 in b.peers)
        inbox = Inbox()
        await b.subscribe(["ch"], [], inbox)
        await until(lambda: a.peers[8].wants("ch"))
        for n in range(5):
            a.publish("ch", str(n).encode())
        messages = await inbox.wait(5)
        assert [p for _, p in messages] == [b"0", b"1", b"2", b"3", b"4"]
    finally:
        await a.close()
        await b.close()


async def test_channels_patterns_and_numsub(buses: list[WorkerBus]) -> None:
    one, two, three = buses
    exact, pattern = Inbox(), Inbox()
    await two.subscribe(["req#/#"], [], exact)
    await three.subscribe([], ["bc#/#*"], pattern)
    await one.subscribe(["req#/#"], [], Inbox())
    await until(lambda: one.peers[2].wants("req#/#") and one.peers[3].wants("bc#/#room#"))
    assert await one.numsub("req#/#") == 2
    assert await three.numsub("req#/#") == 2
    one.publish("req#/#", b"request")
    one.publish("bc#/#room#", b"to a room")
    one.publish("bc#/other#", b"another namespace")  # nobody wants it
    assert await exact.wait(1) == [("req#/#", b"request")]
    assert await pattern.wait(1) == [("bc#/#room#", b"to a room")]
    # A worker that leaves is no longer counted, nor written to.
    await two.close()
    await until(lambda: 2 not in one.peers)
    assert await one.numsub("req#/#") == 1


async def test_unsubscribe(buses: list[WorkerBus]) -> None:
    one, two, _ = buses
    inbox = Inbox()
    await two.subscribe(["ch"], [], inbox)
    await until(lambda: one.peers[2].wants("ch"))
    await two.unsubscribe(["ch"], [])
    await until(lambda: not one.peers[2].wants("ch"))
    assert await one.numsub("ch") == 0


async def test_a_worker_that_leaves_is_read_to_the_end_by_a_peer_still_writing(
    tmp_path: Path,
) -> None:
    # The peer is a plain socket, so that the test decides when it reads and
    # writes: a worker busy broadcasting writes to the one that leaves before it
    # reads what that one sent last (the sessions it handed over).
    leaving = WorkerBus(tmp_path, 1)
    await leaving.start()
    loop = asyncio.get_running_loop()
    peer = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    peer.setblocking(False)
    try:
        await loop.sock_connect(peer, leaving.path)
        await loop.sock_sendall(peer, _frame(_HELLO, "2", b"") + _frame(_SUBSCRIBE, "s", b"c"))
        await until(lambda: 2 in leaving.peers and leaving.peers[2].wants("s"))
        leaving.publish("s", b"handed over")
        # What the peer wrote last is still unread when the worker leaves.
        await loop.sock_sendall(peer, _frame(_MESSAGE, "ch", b"tick"))
        closing = asyncio.ensure_future(leaving.close())
        received = bytearray()
        async with asyncio.timeout(WAIT):
            while chunk := await loop.sock_recv(peer, 65536):
                received += chunk
        assert _frame(_MESSAGE, "s", b"handed over") in received
        # The end of the stream is an end of file, not a reset: the peer may
        # still write (it reads what it was sent whenever it gets to it).
        await loop.sock_sendall(peer, _frame(_MESSAGE, "ch", b"another tick"))
        assert not closing.done()
        peer.close()
        await asyncio.wait_for(closing, WAIT)
    finally:
        peer.close()
        await leaving.close()


def test_session_ids_name_their_worker() -> None:
    sid = owned_id(12, "AbC-_x")
    assert sid == "12.AbC-_x" and owner_of(sid) == 12
    for foreign in ("AbCdef", ".x", "x.y", "1234567890.y", "-1.y", ""):
        assert owner_of(foreign) is None
    assert http_socket_path("/run/w", 3) == "/run/w/http-3.sock"


def test_worker_command_line() -> None:
    argv = [
        "chat:sio",
        "--workers",
        "2",
        "--port=0",
        "--fd",
        "5",
        "--workers=3",
        "--log-level",
        "debug",
    ]
    command = worker_arguments(argv, 4, 9, "/tmp/d")
    assert command[:3] == [sys.executable, "-m", "socketwire"]
    assert command[3:] == [
        "chat:sio",
        "--port=0",
        "--log-level",
        "debug",
        "--worker-id",
        "4",
        "--worker-channel",
        "9",
        "--worker-dir",
        "/tmp/d",
    ]
