"""Connection state recovery across nodes behind a real nginx round robin.

Two nodes (``--session-routing``) on one real redis-server, their app with the
Redis adapter's ``recovery=True`` and ``connection_state_recovery``. The
official JS client (``js/recovering.js``, WebSocket or polling) connects
through nginx, in a room, with ``socket.data``; it loses its connection; while
it is away, a client straight on the other node broadcasts to its room; it
comes back through nginx:

* its connection cut (the node lives on), it comes back on the other node;
* its node killed (SIGKILL: no session written at the disconnection), it comes
  back on the other node, which finds the session in the dead node's live hash;
* its node drained (SIGTERM) and started again on the same port, it comes back
  on the restarted node (WebSocket; polling: nginx takes the node out of its
  round robin for a while after the polling request that failed during the
  drain, so the client comes back on the other node, as it would in production);
* having received no broadcast before (no offset to send, socket.io#5538).

Each time ``socket.recovered`` is true, the id, the rooms and ``socket.data``
are the same, and every broadcast reaches it once, in order: the ones before,
the missed ones, then a live one. The client never reconnects by itself: the
test lets it come back once the broadcasts were sent and the next request
through nginx goes where the test wants it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from socketwire.client import Client
from socketwire.nodes import node_of
from tests.client.helpers import Events, watch
from tests.cluster.conftest import RedisServer
from tests.conftest import NODE_MODULES
from tests.waits import WAIT

from .conftest import Cluster, cluster
from .test_nodes import http

DRIVER = Path(__file__).resolve().parent / "js" / "recovering.js"

APP = """
import os
import socketwire
from socketwire.adapters.redis import create_adapter

sio = socketwire.Server(
    adapter=create_adapter({url!r}, key={key!r}, requests_timeout=5, recovery=True),
    connection_state_recovery={{"max_disconnection_duration": 60}},
)


@sio.on("connection")
def connection(socket):
    if not socket.recovered:
        auth = socket.handshake.auth or {{}}
        socket.data = {{"name": auth.get("name")}}
        for room in auth.get("rooms", ()):
            socket.join(room)

    def gone(reason):
        # Published after the session was written (one ordered queue to Redis).
        sio.to("watchers").emit("gone", socket.id, reason)

    socket.on("disconnect", gone)


@sio.on("whoami")
def whoami(socket):
    return dict(
        node=sio.session_routing.node_id,
        pid=os.getpid(),
        sid=socket.id,
        recovered=socket.recovered,
        rooms=sorted(socket.rooms),
        data=socket.data,
    )


@sio.on("shout")
def shout(socket, room, *args):
    sio.to(room).emit("news", *args)
    return True
"""


@pytest.fixture
def recovery_app(tmp_path: Path, redis_server: RedisServer, key: str) -> Path:
    (tmp_path / "app.py").write_text(APP.format(url=redis_server.url, key=key))
    return tmp_path


class Official:
    """The official client in ``js/recovering.js``, steered line by line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[dict[str, Any]] = []
        self.ended = False
        self.changed = asyncio.Event()
        self.tags = itertools.count()
        self.reader = asyncio.ensure_future(self.read())

    async def read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            if raw.strip():
                self.lines.append(json.loads(raw))
                self.changed.set()
        self.ended = True
        self.changed.set()

    def send(self, cmd: str, **fields: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"cmd": cmd, **fields}).encode() + b"\n")

    def seen(self, **match: Any) -> list[dict[str, Any]]:
        return [x for x in self.lines if all(x.get(k) == v for k, v in match.items())]

    async def wait(self, count: int = 1, **match: Any) -> dict[str, Any]:
        """The ``count``-th line that has ``match``'s fields."""
        try:
            async with asyncio.timeout(WAIT):
                while len(self.seen(**match)) < count and not self.ended:
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            pass
        found = self.seen(**match)
        assert len(found) >= count, f"no {match} (#{count}) in {self.lines}"
        return found[count - 1]

    async def ask(self, event: str, *args: Any) -> Any:
        tag = f"t{next(self.tags)}"
        self.send("ask", tag=tag, event=event, args=list(args))
        answer = await self.wait(tag=tag)
        assert "error" not in answer, answer
        return answer["args"][0]

    def news(self) -> list[Any]:
        return [line["args"][0] for line in self.seen(event="news")]

    async def close(self) -> None:
        if self.proc.returncode is None:
            self.send("exit")
            try:
                await asyncio.wait_for(self.proc.wait(), WAIT)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        await self.reader


@pytest.fixture
async def official() -> AsyncIterator[Any]:
    started: list[Official] = []

    async def start(url: str, transport: str) -> Official:
        proc = await asyncio.create_subprocess_exec(
            "node",
            str(DRIVER),
            url,
            transport,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=dict(os.environ, NODE_PATH=str(NODE_MODULES)),
        )
        started.append(Official(proc))
        return started[-1]

    yield start
    for client in started:
        await client.close()


class Watcher:
    """A client straight on one node (not through nginx): it shouts to rooms
    from there, hears, in room ``watchers``, which sockets went away, and, in
    room ``red``, the broadcasts the client should get."""

    def __init__(self, client: Client, events: Events, node: str) -> None:
        self.client = client
        self.events = events
        self.node = node

    @classmethod
    async def on(cls, port: int) -> Watcher:
        client = Client(
            f"http://127.0.0.1:{port}",
            transports=["websocket"],
            reconnection=False,
            auth={"rooms": ["watchers", "red"]},
        )
        events = watch(client)
        await asyncio.wait_for(client.connect(), WAIT)
        who = await client.emit_with_ack("whoami", timeout=WAIT)
        return cls(client, events, who["node"])

    async def shout(self, room: str, *args: Any) -> None:
        assert await self.client.emit_with_ack("shout", room, *args, timeout=WAIT) is True

    async def gone(self, sid: str) -> str:
        """The reason ``sid`` went away, once its node said so (through Redis)."""
        while True:
            for args in self.events.named("gone"):
                if args[0] == sid:
                    reason: str = args[1]
                    return reason
            await self.events.wait("gone", len(self.events.named("gone")) + 1)


async def aim(nodes: Cluster, node: str) -> bool:
    """Make nginx send its next request to ``node``: open polling sessions until
    one lands on ``node``, then until one lands on another (strict round robin).
    False if nginx sends none to ``node`` (it took it out after a failed request)."""
    seen = False
    for _ in range(6):
        status, body = await http(nodes.url, "GET", "/socket.io/?EIO=4&transport=polling")
        assert status == 200, body
        here = node_of(json.loads(body[1:])["sid"]) == node
        if seen and not here:
            return True
        seen = seen or here
    return False


async def start_client(
    start: Any, nodes: Cluster, transport: str, **auth: Any
) -> tuple[Official, dict[str, Any]]:
    client: Official = await start(nodes.url, transport)
    client.send("connect", auth=auth)
    connected = await client.wait(event="connect")
    assert connected["recovered"] is False and connected["transport"] == transport
    who = await client.ask("whoami")
    assert who["sid"] == connected["id"]
    return client, who


async def watchers(nodes: Cluster) -> dict[str, Watcher]:
    """A watcher on each node, by node id."""
    found = [await Watcher.on(port) for port in nodes.ports]
    return {w.node: w for w in found}


async def comes_back(client: Official, before: dict[str, Any]) -> dict[str, Any]:
    """Let the client reconnect; what it says of itself once recovered."""
    client.send("back")
    back = await client.wait(2, event="connect")
    assert back["recovered"] is True, client.lines
    assert back["id"] == before["sid"]
    now: dict[str, Any] = await client.ask("whoami")
    assert now["sid"] == before["sid"] and now["recovered"] is True
    assert now["rooms"] == before["rooms"] and now["data"] == before["data"]
    return now


class Scene:
    """A client through nginx, in room "red", and a watcher on each node."""

    def __init__(
        self, nodes: Cluster, client: Official, who: dict[str, Any], watching: dict[str, Watcher]
    ) -> None:
        self.nodes = nodes
        self.client = client
        self.who = who
        self.watching = watching
        (self.other,) = set(watching) - {who["node"]}
        self.here, self.there = watching[who["node"]], watching[self.other]
        self.index = next(
            i for i, n in enumerate(nodes.nodes) if n.proc is not None and n.proc.pid == who["pid"]
        )

    async def away(self, how: str) -> None:
        """The client loses its connection, ``how``; once its node wrote what it
        writes (or died), broadcasts reach its room from the other node."""
        client, node = self.client, self.nodes.nodes[self.index]
        if how == "cut":
            client.send("cut")
            await client.wait(event="disconnect")
            assert await self.there.gone(self.who["sid"]) == "transport close"
        elif how == "kill":
            os.kill(self.who["pid"], signal.SIGKILL)
            await client.wait(event="disconnect")
            assert await node.wait(WAIT) == -signal.SIGKILL
        else:
            assert how == "restart"
            node.signal(signal.SIGTERM)
            await client.wait(event="disconnect")
            assert await self.there.gone(self.who["sid"]) == "server shutting down"
            assert await node.wait(WAIT) == 0
        for n in range(3):
            await self.there.shout("red", f"missed {n}")
        # To a room the client is not in: never delivered to it.
        await self.there.shout("blue", "not for red")

    async def close(self) -> None:
        for watcher in self.watching.values():
            await watcher.client.disconnect()


@contextlib.asynccontextmanager
async def scene(
    app: Path, redis_server: RedisServer, key: str, start: Any, transport: str
) -> AsyncIterator[Scene]:
    async with cluster(app, redis_server.url, key) as nodes:
        client, who = await start_client(start, nodes, transport, name="ada", rooms=["red"])
        assert who["rooms"] == sorted([who["sid"], "red"]) and who["data"] == {"name": "ada"}
        found = Scene(nodes, client, who, await watchers(nodes))
        try:
            yield found
        finally:
            await found.close()


async def live_after(scene: Scene, before: list[str]) -> None:
    """A live broadcast arrives after the missed ones; each one once, in order."""
    await scene.there.shout("red", "live")
    expected = [*before, "missed 0", "missed 1", "missed 2", "live"]
    await scene.client.wait(len(expected), event="news")
    assert scene.client.news() == expected


@pytest.mark.parametrize("transport", ["websocket", "polling"])
@pytest.mark.parametrize("how", ["cut", "kill"])
async def test_the_client_recovers_on_the_other_node(
    recovery_app: Path,
    redis_server: RedisServer,
    key: str,
    official: Any,
    transport: str,
    how: str,
) -> None:
    async with scene(recovery_app, redis_server, key, official, transport) as s:
        await s.here.shout("red", "before")
        await s.client.wait(event="news")
        # Through Redis: recorded before the node can die (a broadcast a node
        # delivered but had not yet written when it died leaves its clients an
        # offset that no node knows: they start new sessions).
        await s.there.events.wait("news")
        await s.away(how)
        if how == "cut":
            assert await aim(s.nodes, s.other)
        now = await comes_back(s.client, s.who)
        assert now["node"] == s.other
        await live_after(s, ["before"])


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_a_client_of_a_restarted_node_recovers(
    recovery_app: Path,
    redis_server: RedisServer,
    key: str,
    official: Any,
    transport: str,
) -> None:
    async with scene(recovery_app, redis_server, key, official, transport) as s:
        await s.there.shout("red", "before")
        await s.client.wait(event="news")
        await s.away("restart")
        await s.nodes.restart(s.index)
        fresh = await Watcher.on(s.nodes.ports[s.index])
        try:
            assert fresh.node not in (s.who["node"], s.other)  # a new node id
            aimed = await aim(s.nodes, fresh.node)
            now = await comes_back(s.client, s.who)
            assert now["node"] == (fresh.node if aimed else s.other)
            if transport == "websocket":
                assert aimed
            await live_after(s, ["before"])
        finally:
            await fresh.client.disconnect()


@pytest.mark.parametrize("how", ["cut", "kill"])
async def test_a_client_that_received_nothing_recovers(
    recovery_app: Path, redis_server: RedisServer, key: str, official: Any, how: str
) -> None:
    """socket.io#5538: no broadcast before the disconnect, so no offset to send;
    the session recovers from where it started."""
    async with scene(recovery_app, redis_server, key, official, "websocket") as s:
        await s.away(how)
        if how == "cut":
            assert await aim(s.nodes, s.other)
        now = await comes_back(s.client, s.who)
        assert now["node"] == s.other
        await live_after(s, [])
