"""``socketwire APP --workers 2`` in a subprocess, against real clients.

The supervisor passes connections to its workers in turn, so consecutive
connections reach different workers: the tests rely on that order to put
clients where they want them (``whoami`` says which worker serves a socket).

* The official JS client (npm) over polling only, WebSocket only and polling
  with upgrade: several clients at once, requests spread over both workers,
  polling requests and upgrades of sessions owned by the other worker passed
  to their owner (the workers' counters say so), and not one request failed.
* The cluster across the two workers: broadcasts to rooms, ``fetch_sockets``,
  ``server_side_emit`` with acks, broadcasts with acks.
* Connection state recovery on the other worker, with an offset and without
  (a client that received no broadcast); a worker killed (SIGKILL) is
  started again and its clients reconnect; SIGTERM lets an ack in flight
  arrive; SIGHUP replaces the workers one at a time while a client keeps
  emitting with acks (none lost, every broadcast it triggered received), a
  client that only listens moves and recovers the broadcasts sent while it was
  away (each once, in order), and a connect loop never sees a refused
  connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from socketwire.client import Client
from tests.certificates import self_signed
from tests.client.helpers import watch
from tests.conftest import run_node
from tests.test_cli import Cli, env
from tests.waits import WAIT, scaled

JS = Path(__file__).resolve().parent / "js"

APP = """
import asyncio
import os
import socketwire
from socketwire.workers import current_worker

sio = socketwire.Server(connection_state_recovery={"max_disconnection_duration": 60})


def me():
    worker = current_worker()
    stats = worker.stats() if worker is not None else {}
    return dict(stats, pid=os.getpid())


@sio.on("echo")
def echo(socket, *args):
    return list(args)


@sio.on("whoami")
def whoami(socket):
    return dict(me(), sid=socket.id, recovered=socket.recovered)


@sio.on("stats")
async def stats(socket):
    others = await sio.server_side_emit_with_ack("stats", timeout=5)
    return [me(), *others]


@sio.on_server_side_emit("stats")
def on_stats():
    return me()


@sio.on("join")
def join(socket, room):
    socket.join(room)
    return True


@sio.on("shout")
def shout(socket, room, *args):
    sio.to(room).emit("news", *args)
    return True


@sio.on("tick_all")
def tick_all(socket, n):
    sio.emit("tick", n)
    return n


@sio.on("count")
async def count(socket, room=None):
    found = await (sio.in_(room) if room else sio.sockets).fetch_sockets()
    return sorted(s.id for s in found)


@sio.on("ask_all")
async def ask_all(socket):
    return sorted(await sio.timeout(5).emit_with_ack("question"))


@sio.on("close_then_broadcast")
def close_then_broadcast(socket, *args):
    socket.conn.engine.close()
    sio.emit("tick", *args)


@sio.on("slow")
async def slow(socket):
    socket.emit("started")
    await asyncio.sleep(0.5)  # work in flight when SIGTERM comes
    return "done"
"""

WORKER_SERVING = re.compile(r"worker (\d+) serving")


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(APP)
    return tmp_path


@contextlib.asynccontextmanager
async def workers(directory: Path, *args: str) -> AsyncIterator[tuple[Cli, str]]:
    proc = Cli(directory, "app:sio", "--port", "0", "--workers", "2", *args)
    await proc.start()
    try:
        url = await proc.url()
        yield proc, url
    finally:
        await proc.stop()


async def connected(url: str, **options: Any) -> Client:
    options.setdefault("transports", ["websocket"])
    client = Client(url, force_new=True, **options)
    await asyncio.wait_for(client.connect(), WAIT)
    return client


async def ack(client: Client, event: str, *args: Any) -> Any:
    return await client.emit_with_ack(event, *args, timeout=WAIT)


@pytest.mark.parametrize("transports", ["polling", "websocket", "polling,websocket"])
async def test_the_official_client_on_any_worker(app_dir: Path, transports: str) -> None:
    async with workers(app_dir) as (proc, url):
        (result,) = await run_node(JS / "spread.js", url, transports, timeout=scaled(40))
    assert result["errors"] == []
    assert sorted(i for i, _ in result["news"]) == list(range(6))
    expected = "polling" if transports == "polling" else "websocket"
    assert result["transports"] == [expected] * 6
    stats = {s["id"]: s for s in result["stats"]}
    assert len(stats) == 2  # the other worker answered the server-side emit
    # Both workers were given connections and served requests themselves.
    assert all(s["connections"] > 0 and s["served"] > 0 for s in stats.values())
    assert all(s["gone"] == 0 for s in stats.values())
    if transports == "polling":
        # Polling requests reached the worker that does not own their session.
        assert sum(s["forwarded"] for s in stats.values()) > 0
    if transports == "polling,websocket":
        # Upgrades reached the worker that does not own their session.
        assert sum(s["spliced"] for s in stats.values()) > 0
    assert "Session ID unknown" not in "\n".join(proc.lines)


async def test_one_cluster_across_the_workers(app_dir: Path) -> None:
    async with workers(app_dir) as (_, url):
        a = await connected(url)
        b = await connected(url)
        try:
            who_a, who_b = await ack(a, "whoami"), await ack(b, "whoami")
            assert who_a["id"] != who_b["id"]
            events_b = watch(b)
            # A room joined on one worker, reached from the other.
            assert await ack(b, "join", "room") is True
            assert await ack(a, "shout", "room", "hi", {"n": 1}) is True
            # (with recovery on, a broadcast ends with its offset)
            assert (await events_b.wait("news"))[:2] == ("hi", {"n": 1})
            # fetch_sockets sees both workers' sockets, and rooms across them.
            assert await ack(a, "count") == sorted([who_a["sid"], who_b["sid"]])
            assert await ack(a, "count", "room") == [who_b["sid"]]
            # server_side_emit with acks: the other worker answers.
            stats = await ack(a, "stats")
            assert sorted(s["id"] for s in stats) == sorted([who_a["id"], who_b["id"]])
            # A broadcast with acks collects the answers of both workers' clients.
            a.on("question", lambda: "from a")
            b.on("question", lambda: "from b")
            assert await ack(b, "ask_all") == ["from a", "from b"]
        finally:
            await a.disconnect()
            await b.disconnect()


async def test_recovery_on_the_other_worker(app_dir: Path) -> None:
    async with workers(app_dir) as (_, url):
        other = await connected(url)
        client = await connected(url, reconnection_delay=0.05, reconnection_delay_max=0.1)
        try:
            events = watch(client)
            first = await ack(client, "whoami")
            assert await ack(other, "tick_all", 1) == 1
            value, offset = await events.wait("tick")
            assert value == 1 and isinstance(offset, str)
            # Its worker drops the connection, then broadcasts while it is away;
            # the next connection the supervisor passes goes to the other worker.
            client.emit("close_then_broadcast", 2)
            assert await events.wait("disconnect") == ("transport close",)
            await events.wait("connect")
            assert client.recovered is True
            missed = await events.wait("tick", 2)
            assert missed[0] == 2 and missed[1] != offset
            again = await ack(client, "whoami")
            assert again["id"] != first["id"]
            assert again["sid"] == first["sid"] and again["recovered"] is True
        finally:
            await client.disconnect()
            await other.disconnect()


async def test_recovery_on_the_other_worker_without_an_offset(app_dir: Path) -> None:
    async with workers(app_dir) as (_, url):
        client = await connected(url, reconnection_delay=0.05, reconnection_delay_max=0.1)
        try:
            events = watch(client)
            first = await ack(client, "whoami")
            # It received no broadcast: it comes back with its pid and no offset
            # (socket.io#5538), to the other worker.
            client.emit("close_then_broadcast", 1)
            assert await events.wait("disconnect") == ("transport close",)
            await events.wait("connect")
            assert client.recovered is True
            again = await ack(client, "whoami")
            assert again["id"] != first["id"]
            assert again["sid"] == first["sid"] and again["recovered"] is True
            other = await connected(url)
            try:
                assert await ack(other, "tick_all", 2) == 2
                await events.wait("tick", 2)
            finally:
                await other.disconnect()
            assert [args[0] for args in events.named("tick")] == [1, 2]
        finally:
            await client.disconnect()


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_a_killed_worker_is_restarted_and_its_clients_reconnect(
    app_dir: Path, transport: str
) -> None:
    async with workers(app_dir) as (proc, url):
        client = await connected(
            url, transports=[transport], reconnection_delay=0.05, reconnection_delay_max=0.2
        )
        try:
            events = watch(client)
            killed = await ack(client, "whoami")
            os.kill(killed["pid"], signal.SIGKILL)
            await events.wait("disconnect")
            await proc.wait_line(WORKER_SERVING, 3)  # its replacement serves
            await events.wait("connect")
            now = await ack(client, "whoami")
            assert now["pid"] != killed["pid"]
            # Two workers again: the replacement answers server-side emits.
            fresh = await connected(url)
            try:
                stats = await ack(fresh, "stats")
                assert len(stats) == 2 and killed["id"] not in {s["id"] for s in stats}
            finally:
                await fresh.disconnect()
        finally:
            await client.disconnect()


async def test_sigterm_lets_acks_in_flight_arrive(app_dir: Path) -> None:
    async with workers(app_dir) as (proc, url):
        a = await connected(url, reconnection=False)
        b = await connected(url, reconnection=False)
        try:
            events_a, events_b = watch(a), watch(b)
            answers = [
                asyncio.ensure_future(a.emit_with_ack("slow", timeout=WAIT)),
                asyncio.ensure_future(b.emit_with_ack("slow", timeout=WAIT)),
            ]
            await events_a.wait("started")
            await events_b.wait("started")
            proc.signal(signal.SIGTERM)
            assert await asyncio.gather(*answers) == ["done", "done"]
            assert await proc.wait(scaled(15)) == 0
        finally:
            await a.disconnect()
            await b.disconnect()
    assert any("stopped" in line for line in proc.lines)


async def exited(pid: int) -> None:
    """Wait (bounded) until process ``pid`` (not a child of this one) exits."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    loop = asyncio.get_running_loop()
    gone = loop.create_future()
    loop.add_reader(fd, gone.set_result, None)
    try:
        await asyncio.wait_for(gone, scaled(15))
    finally:
        loop.remove_reader(fd)
        os.close(fd)


def test_a_target_that_does_not_load_stops_the_supervisor(app_dir: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "socketwire", "app:nothing", "--port", "0", "--workers", "2"],
        cwd=app_dir,
        env=env(),
        capture_output=True,
        text=True,
        timeout=scaled(30),
        check=False,
    )
    assert done.returncode == 1
    assert "has no attribute 'nothing'" in done.stderr
    assert "before serving" in done.stderr


async def test_workers_stop_when_the_supervisor_dies(app_dir: Path) -> None:
    async with workers(app_dir) as (proc, url):
        a, b = await connected(url), await connected(url)
        try:
            pids = {(await ack(a, "whoami"))["pid"], (await ack(b, "whoami"))["pid"]}
            assert len(pids) == 2
            proc.signal(signal.SIGKILL)
            for pid in pids:
                await exited(pid)
        finally:
            await a.disconnect()
            await b.disconnect()


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_sighup_replaces_the_workers_without_losing_anything(
    app_dir: Path, transport: str
) -> None:
    async with workers(app_dir) as (proc, url):
        host, port = url.removeprefix("http://").rsplit(":", 1)
        client = await connected(
            url,
            transports=[transport],
            reconnection_delay=0.05,
            reconnection_delay_max=0.2,
            retries=5,
            ack_timeout=2.0,
        )
        events = watch(client)
        first = await ack(client, "whoami")
        # A client that only listens: every worker is replaced, so it moves too,
        # and stays away a while each time (its reconnection delay) as the ticks
        # go on.
        idle = await connected(
            url,
            transports=[transport],
            reconnection_delay=0.3,
            reconnection_delay_max=0.3,
            randomization_factor=0.0,
        )
        idle_events = watch(idle)
        idle_first = await ack(idle, "whoami")
        recovered: list[bool] = []
        idle.on("connect", lambda: recovered.append(idle.recovered))
        away: list[int] = []  # ticks acked while the idle client was disconnected
        refused: list[BaseException] = []
        rolled = asyncio.Event()

        async def connect_loop() -> int:
            attempts = 0
            while not rolled.is_set():
                try:
                    _, writer = await asyncio.open_connection(host, int(port))
                except OSError as exc:
                    refused.append(exc)
                else:
                    writer.close()
                attempts += 1
                await asyncio.sleep(0.01)  # pacing, not waiting for anything
            return attempts

        async def emitter() -> list[int]:
            acked = []
            n = 0
            while not rolled.is_set() or n < 5 or not idle.connected:
                n += 1
                acked.append(await client.emit_with_ack("tick_all", n, timeout=scaled(30)))
                if not idle.connected:
                    away.append(n)
            return acked

        loop_task = asyncio.ensure_future(connect_loop())
        emit_task = asyncio.ensure_future(emitter())
        try:
            proc.signal(signal.SIGHUP)
            await proc.wait_line(re.compile("rolling restart done"))
            rolled.set()
            acked = await asyncio.wait_for(emit_task, scaled(30))
            attempts = await asyncio.wait_for(loop_task, WAIT)
            assert refused == []
            assert attempts > 0
            assert acked == list(range(1, len(acked) + 1))
            # Every broadcast it triggered reached it, the missed ones on recovery.
            ticks = {args[0] for args in events.named("tick")}
            assert set(acked) <= ticks
            assert client.connected
            now = await ack(client, "whoami")
            assert now["id"] not in (1, 2) and now["sid"] == first["sid"]
            # The client that moved while others broadcast recovered each time:
            # every tick, in order, the ones sent while it was away included, and
            # no broadcast twice.
            try:
                n = len(acked)
                while (await idle_events.wait("tick", n))[0] != acked[-1]:
                    n += 1
            except AssertionError:
                got = {args[0] for args in idle_events.named("tick")}
                missing = [v for v in acked if v not in got]
                pytest.fail(
                    f"the listening client never got {len(missing)} ticks, "
                    f"{missing[:1]}..{missing[-1:]}"
                )
            # (The emitting client resends an event whose ack a drain cut off, so a
            # worker may run one tick twice: two broadcasts, two offsets.)
            values = [args[0] for args in idle_events.named("tick")]
            offsets = [args[1] for args in idle_events.named("tick")]
            assert len(set(offsets)) == len(offsets)  # no broadcast twice
            assert sorted(set(values)) == acked and values == sorted(values)
            assert idle_events.named("disconnect") and recovered
            assert all(recovered) and len(recovered) == len(idle_events.named("disconnect"))
            assert away, "no tick was sent while the idle client was away"
            idle_now = await ack(idle, "whoami")
            assert idle_now["id"] not in (1, 2) and idle_now["sid"] == idle_first["sid"]
            assert idle_now["recovered"] is True
            serving = [m.group(1) for m in map(WORKER_SERVING.search, proc.lines) if m]
            assert sorted(serving) == ["1", "2", "3", "4"]
        finally:
            rolled.set()
            for task in (loop_task, emit_task):
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
            await client.disconnect()
            await idle.disconnect()


async def test_tls_with_forwarded_requests_and_upgrades(app_dir: Path) -> None:
    cert, key = self_signed(app_dir)
    tls = ("--ssl-certfile", str(cert), "--ssl-keyfile", str(key))
    async with workers(app_dir, *tls) as (_, url):
        assert url.startswith("https://")
        context = ssl.create_default_context(cafile=str(cert))
        clients = [
            await connected(url, transports=["polling", "websocket"], ssl=context) for _ in range(4)
        ]
        try:
            for client in clients:
                seen = await ack(client, "whoami")
                assert seen["id"] in (1, 2)
            stats = await ack(clients[0], "stats")
            # The workers terminate TLS and pass plain requests to the owners.
            assert sum(s["forwarded"] + s["spliced"] for s in stats) > 0
            assert sum(s["gone"] for s in stats) == 0
        finally:
            for client in clients:
                await client.disconnect()
