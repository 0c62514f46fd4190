"""Socket.IO v4 server features, proven with the official ``socket.io-client`` 4.8.4.

Each test starts a server (most of them one of the ``examples/v4_*.py`` recipes,
with extra listeners that record what the server saw), then steers a real client
through ``js/v4_driver.js``: Python sends one command per line and waits, with a
deadline, for the lines the client prints (events, acks, disconnections). Tests
where the transport matters run over WebSocket only and over polling upgraded to
WebSocket; a few speak raw HTTP or WebSocket (``rawclient``) to reach states the
official client never produces (a frozen engine, a session with no namespace).
Where the behaviour is Node's, the test says which part of socket.io 4.8 it follows.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

import socketwire
from socketwire.server.parent_namespace import ParentNamespace
from tests.conftest import NODE_MODULES, ServerStarter, create_example_server, load_example
from tests.integration.rawclient import WebSocketClient, WebSocketClosed, http_request
from tests.waits import WAIT

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
DRIVER = Path(__file__).resolve().parent / "js" / "v4_driver.js"


POLLING = "/socket.io/?EIO=4&transport=polling"
WEBSOCKET = "/socket.io/?EIO=4&transport=websocket"
RESERVED = (
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
)


# -- helpers ---------------------------------------------------------------------------


example = load_example
create = create_example_server


@pytest.fixture(params=["websocket", "polling,websocket"], ids=["websocket", "upgrade"])
def mode(request: pytest.FixtureRequest) -> str:
    """The client's ``transports`` option."""
    value: str = request.param
    return value


class Recorder:
    """A listener that keeps its calls' arguments; ``await wait(n)`` for n calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self._changed = asyncio.Event()

    def __call__(self, *args: Any) -> None:
        self.calls.append(args)
        self._changed.set()

    async def wait(self, count: int = 1, timeout: float = WAIT) -> list[tuple[Any, ...]]:
        try:
            async with asyncio.timeout(timeout):
                while len(self.calls) < count:
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(
                f"waited {timeout} s for {count} calls, got {self.calls!r}"
            ) from None
        return self.calls


class Client:
    """An official socket.io-client process steered through ``js/v4_driver.js``."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[dict[str, Any]] = []
        self.stderr = b""
        self.ended = False
        self._changed = asyncio.Event()
        self._tags = itertools.count()
        self._readers = [
            asyncio.create_task(self._read_stdout()),
            asyncio.create_task(self._read_stderr()),
        ]

    @classmethod
    async def start(cls, url: str, mode: str) -> Client:
        proc = await asyncio.create_subprocess_exec(
            "node",
            str(DRIVER),
            url,
            mode,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(os.environ, NODE_PATH=str(NODE_MODULES)),
        )
        return cls(proc)

    async def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        async for line in self.proc.stdout:
            if line.strip():
                self.lines.append(json.loads(line))
                self._changed.set()
        self.ended = True
        self._changed.set()

    async def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        self.stderr = await self.proc.stderr.read()

    def send(self, cmd: str, **fields: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"cmd": cmd, **fields}).encode() + b"\n")

    def found(self, **match: Any) -> list[dict[str, Any]]:
        """The lines printed so far whose fields include ``match``."""
        return [x for x in self.lines if all(k in x and x[k] == v for k, v in match.items())]

    def failures(self) -> list[dict[str, Any]]:
        """The ``{"error": ...}`` lines of commands the driver could not run."""
        return [x for x in self.lines if "error" in x and "id" not in x and "conn" not in x]

    def events(self, sid_label: str, event: str | None = None) -> list[list[Any]]:
        """``[event, *args]`` of every application event the socket received."""
        return [
            [x["event"], *x["args"]]
            for x in self.lines
            if x.get("id") == sid_label and "args" in x and "event" in x
            if event is None or x["event"] == event
        ]

    async def wait(self, count: int = 1, timeout: float = WAIT, **match: Any) -> dict[str, Any]:
        """The ``count``-th line matching ``match`` (waiting up to ``timeout`` s)."""
        try:
            async with asyncio.timeout(timeout):
                while len(self.found(**match)) < count and not self.ended:
                    assert not self.failures(), f"driver command failed: {self.failures()}"
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            pass
        got = self.found(**match)
        if len(got) < count:
            raise AssertionError(
                f"waited {timeout} s for {count} line(s) {match}; the client printed "
                f"{self.lines}\nstderr: {self.stderr.decode(errors='replace')}"
            )
        return got[count - 1]

    # -- commands --------------------------------------------------------------------

    def socket(self, label: str, nsp: str = "/", *, conn: str | None = None, **opts: Any) -> None:
        """Open (or reuse: same ``conn``) a Manager and connect ``nsp``; no wait."""
        self.send("socket", id=label, nsp=nsp, conn=conn or label, **opts)

    async def connect(
        self, label: str, nsp: str = "/", *, conn: str | None = None, **opts: Any
    ) -> str:
        """Connect and return the socket id; fails on ``connect_error``."""
        self.socket(label, nsp, conn=conn, **opts)
        line = await self.wait(id=label, event="connect")
        assert not self.found(id=label, event="connect_error")
        sid: str = line["sid"]
        return sid

    async def refused(self, label: str, nsp: str = "/", **opts: Any) -> dict[str, Any]:
        """Connect, expecting a ``connect_error`` line (returned)."""
        self.socket(label, nsp, **opts)
        line = await self.wait(id=label, event="connect_error")
        assert not self.found(id=label, event="connect")
        return line

    def emit(self, label: str, event: str, *args: Any) -> None:
        self.send("emit", id=label, event=event, args=list(args))

    async def ask(
        self, label: str, event: str, *args: Any, timeout_ms: int = 4000
    ) -> dict[str, Any]:
        """Emit with an ack; the answer line (``error`` set on the client's timeout)."""
        tag = f"ack-{next(self._tags)}"
        self.send("emit", id=label, event=event, args=list(args), ack=tag, timeout=timeout_ms)
        return await self.wait(id=label, ack=tag, timeout=timeout_ms / 1000 + WAIT)

    async def answer(self, label: str, event: str, *args: Any) -> list[Any]:
        """The ack arguments of an emit the server must answer."""
        line = await self.ask(label, event, *args)
        assert line["error"] is None, line
        answer: list[Any] = line["args"]
        return answer

    async def upgraded(self, conn: str) -> None:
        """Wait until the connection runs on WebSocket (at once when it already does)."""
        self.send("wait_upgrade", conn=conn)
        await self.wait(conn=conn, upgraded="websocket")

    async def close(self) -> None:
        assert self.proc.stdin is not None
        if self.proc.returncode is None:
            self.send("exit")
            try:
                await asyncio.wait_for(self.proc.wait(), 3.0)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        self.proc.stdin.close()
        await asyncio.gather(*self._readers, return_exceptions=True)


NodeStarter = Callable[..., Awaitable[Client]]


@pytest.fixture
async def node() -> AsyncIterator[NodeStarter]:
    """``client = await node(url, mode)``: a driver process, ended after the test."""
    started: list[Client] = []

    async def start(url: str, mode: str = "websocket") -> Client:
        client = await Client.start(url, mode)
        started.append(client)
        return client

    yield start
    for client in started:
        await client.close()
    for client in started:
        assert not client.failures(), f"{client.failures()}\n{client.stderr.decode()}"


def server_socket(nsp: socketwire.Namespace, sid: str) -> socketwire.Socket:
    socket = nsp.sockets.get(sid)
    assert socket is not None, f"{sid} is not connected to {nsp.name}"
    return socket


# -- 1. Connection middlewares ----------------------------------------------------------


async def test_middlewares_run_in_order_and_fill_data(
    start_server: ServerStarter, node: NodeStarter, mode: str
) -> None:
    sio = create("v4_middlewares")
    admin = sio.of("/admin")
    auths: list[Any] = []

    def step(name: str) -> Callable[[socketwire.Socket], None]:
        def middleware(socket: socketwire.Socket) -> None:
            socket.data["trail"].append(name)
            auths.append((socket.nsp.name, name, socket.handshake.auth))

        return middleware

    def async_step(name: str) -> Callable[[socketwire.Socket], Awaitable[None]]:
        async def middleware(socket: socketwire.Socket) -> None:
            await asyncio.sleep(0)
            step(name)(socket)

        return middleware

    # Added after the example's own: they run after them, sync and async alike.
    sio.use(async_step("main async"))
    sio.use(step("main sync"))
    admin.use(step("admin sync"))
    admin.use(async_step("admin async"))
    connected = Recorder()
    sio.on("connection", connected)
    url = await start_server(sio)
    client = await node(url, mode)

    sid = await client.connect("alice", auth={"token": "alice-token"})
    admin_sid = await client.connect(
        "alice/admin", "/admin", conn="alice", auth={"token": "alice-token"}
    )

    main_trail = ["log_handshake", "authenticate", "main async", "main sync"]
    welcome = await client.wait(id="alice", event="welcome")
    assert welcome["args"] == [{"trail": main_trail, "user": "alice"}]
    # /admin runs only its own middlewares (not those of /), on the same connection.
    admin_welcome = await client.wait(id="alice/admin", event="welcome")
    assert admin_welcome["args"] == [
        {"trail": ["admin_user", "only_admins", "admin sync", "admin async"], "user": "alice"}
    ]
    token = {"token": "alice-token"}
    assert auths == [
        ("/", "main async", token),
        ("/", "main sync", token),
        ("/admin", "admin sync", token),
        ("/admin", "admin async", token),
    ]
    ((socket,),) = connected.calls
    assert socket.id == sid and socket.handshake.auth == token
    assert socket.data == {"trail": main_trail, "user": "alice"}
    assert server_socket(admin, admin_sid).conn is socket.conn
    if mode != "websocket":
        await client.upgraded("alice")


async def test_middleware_refusals_reach_connect_error(
    start_server: ServerStarter, node: NodeStarter, mode: str
) -> None:
    sio = create("v4_middlewares")
    after_auth: list[str] = []
    sio.use(lambda socket: after_auth.append(socket.id))
    connected = Recorder()
    sio.on("connection", connected)
    sio.of("/admin").on("connection", connected)

    def boom(socket: socketwire.Socket) -> None:
        raise ValueError("boom")

    sio.of("/boom").use(boom)
    url = await start_server(sio)
    client = await node(url, mode)

    # ConnectionRefused from an async middleware: message and data.
    no_token = await client.refused("nobody")
    assert (no_token["message"], no_token["data"]) == (
        "not authorized",
        {"reason": "unknown token"},
    )
    wrong = await client.refused("wrong", auth={"token": "guess"})
    assert (wrong["message"], wrong["data"]) == ("not authorized", {"reason": "unknown token"})
    # A plain exception is the server's failure: a generic message, no data.
    boomed = await client.refused("boomed", "/boom")
    assert (boomed["message"], boomed["data"]) == ("Internal server error", None)

    # bob gets / but not /admin (ConnectionRefused("admins only")), on one connection.
    bob = await client.connect("bob", auth={"token": "bob-token"})
    not_admin = await client.refused("bob/admin", "/admin", conn="bob", auth={"token": "bob-token"})
    assert (not_admin["message"], not_admin["data"]) == ("admins only", None)

    # Refused connections ran no later middleware and no connection handler.
    assert after_auth == [bob]
    assert [call[0].id for call in connected.calls] == [bob]
    assert list(sio.sockets.sockets) == [bob]
    assert not sio.of("/admin").sockets and not sio.of("/boom").sockets
    # bob's connection is still up for /.
    sio.emit("still there", 1)
    assert (await client.wait(id="bob", event="still there"))["args"] == [1]


# -- 2. Per-packet middlewares ------------------------------------------------------------


async def test_packet_middlewares(
    start_server: ServerStarter, node: NodeStarter, mode: str
) -> None:
    sio = create("v4_packet_middlewares")
    seen: list[list[Any]] = []
    errors = Recorder()
    handled = Recorder()
    sockets: dict[str, socketwire.Socket] = {}

    @sio.on("connection")
    def more_middlewares(socket: socketwire.Socket) -> None:
        sockets[socket.id] = socket
        socket.on("error", errors)

        @socket.use
        async def shout(packet: list[Any]) -> None:
            await asyncio.sleep(0)
            if packet[0] == "shout":
                packet[1] = packet[1].upper()
                packet.append("!")

        @socket.use
        def record(packet: list[Any]) -> None:
            seen.append(list(packet))

    sio.on("shout", lambda socket, *args: handled("shout", *args))
    sio.on("admin:reset", lambda socket: handled("admin:reset"))
    url = await start_server(sio)
    client = await node(url, mode)
    sid = await client.connect("a")

    # The example's sync middleware strips, ours (async) rewrites in place.
    assert await client.answer("a", "message", "  hi  ") == ["hi"]
    client.emit("a", "shout", "hey")
    await handled.wait(1)
    assert handled.calls == [("shout", "HEY", "!")]

    # Refused by the example's async middleware: no handler, no ack, the error
    # handlers got the exception.
    refused = await client.ask("a", "admin:reset", timeout_ms=300)
    assert refused["error"] == "operation has timed out"
    assert (await client.wait(id="a", event="refused"))["args"] == ["admin:reset is for admins"]
    ((err,),) = await errors.wait(1)
    assert isinstance(err, PermissionError) and str(err) == "admin:reset is for admins"
    assert handled.calls == [("shout", "HEY", "!")]

    # The same packet passes once the socket is allowed.
    sockets[sid].data["admin"] = True
    assert await client.answer("a", "admin:reset") == ["reset done"]
    assert handled.calls[-1] == ("admin:reset",)
    assert seen == [["message", "hi"], ["shout", "HEY", "!"], ["admin:reset"]]
    assert len(errors.calls) == 1


# -- 3. Dynamic namespaces ----------------------------------------------------------------


async def test_dynamic_namespaces(
    start_server: ServerStarter, node: NodeStarter, mode: str
) -> None:
    sio = create("v4_dynamic_namespaces")
    url = await start_server(sio)
    client = await node(url, mode)

    d1 = await client.connect("d1", "/dyn-1")
    d2 = await client.connect("d2", "/dyn-2")
    await client.connect("static", "/dyn-0")
    team = await client.connect("team", "/team-blue", auth={"member": True})
    await client.connect("project", "/project-x", auth={"key": "secret"})
    # The parent's connection handler ran for each child.
    for label, name in [
        ("d1", "/dyn-1"),
        ("d2", "/dyn-2"),
        ("static", "static"),
        ("team", "/team-blue"),
        ("project", "/project-x"),
    ]:
        assert (await client.wait(id=label, event="welcome"))["args"] == [name]

    # Not matching (the pattern, or a predicate because of the auth): refused.
    for label, nsp, auth in [
        ("nowhere", "/nowhere", None),
        ("dyn-x", "/dyn-x", None),
        ("outsider", "/team-red", {"member": False}),
        ("leaker", "/project-y", {"key": "guess"}),
    ]:
        line = await client.refused(label, nsp, **({"auth": auth} if auth else {}))
        assert (line["message"], line["data"]) == ("Invalid namespace", None)
    for name in ("/nowhere", "/dyn-x", "/team-red", "/project-y"):
        assert name not in sio.namespaces

    # The children, their parent, and the static namespace that won over the pattern.
    child1, child2 = sio.namespaces["/dyn-1"], sio.namespaces["/dyn-2"]
    parent = child1.parent
    assert isinstance(parent, ParentNamespace) and child2.parent is parent
    assert parent.children == {child1, child2}
    assert sio.namespaces["/dyn-0"].parent is None
    assert isinstance(sio.namespaces["/team-blue"].parent, ParentNamespace)
    assert sio.namespaces["/team-blue"].parent is not parent
    assert list(child1.sockets) == [d1] and list(child2.sockets) == [d2]

    # A handler added to the parent later applies to the existing children.
    joined = Recorder()
    parent.on("connection", joined)
    d1b = await client.connect("d1b", "/dyn-1")
    ((socket,),) = await joined.wait(1)
    assert (socket.id, socket.nsp) == (d1b, child1)

    # An event handled by the parent broadcasts through the parent: every child.
    client.emit("d1", "shout", "hello")
    for label in ("d1", "d2", "d1b"):
        assert (await client.wait(id=label, event="shout"))["args"] == ["/dyn-1", "hello"]
    parent.emit("news", 42)
    for label in ("d1", "d2", "d1b"):
        assert (await client.wait(id=label, event="news"))["args"] == [42]
    # Nothing reached the static namespace or another parent's children (a later
    # emit on their connections arrived first).
    sio.of("/dyn-0").emit("marker")
    sio.namespaces["/team-blue"].emit("marker")
    await client.wait(id="static", event="marker")
    await client.wait(id="team", event="marker")
    assert [e[0] for e in client.events("static")] == ["welcome", "marker"]
    assert [e[0] for e in client.events("team")] == ["welcome", "marker"]

    # Without cleanup_empty_child_namespaces an empty child stays.
    gone = Recorder()
    parent.on("disconnect", gone)
    client.send("disconnect", id="d2")
    ((socket, reason),) = await gone.wait(1)
    assert (socket.id, reason) == (d2, "client namespace disconnect")
    assert sio.namespaces["/dyn-2"] is child2 and not child2.sockets
    assert team in sio.namespaces["/team-blue"].sockets


async def test_dynamic_namespace_cleanup(
    start_server: ServerStarter, node: NodeStarter, mode: str
) -> None:
    sio = create("v4_dynamic_namespaces", cleanup_empty_child_namespaces=True)
    url = await start_server(sio)
    client = await node(url, mode)

    a = await client.connect("a", "/dyn-5")
    b = await client.connect("b", "/dyn-5")
    child = sio.namespaces["/dyn-5"]
    parent = child.parent
    assert isinstance(parent, ParentNamespace)
    assert set(child.sockets) == {a, b}
    gone = Recorder()
    parent.on("disconnect", gone)

    client.send("disconnect", id="a")
    await gone.wait(1)
    assert sio.namespaces["/dyn-5"] is child  # b is still there

    client.send("disconnect", id="b")
    await gone.wait(2)
    assert "/dyn-5" not in sio.namespaces
    assert child not in parent.children

    # The next client re-creates it (the parent's handlers still apply).
    await client.connect("c", "/dyn-5")
    again = sio.namespaces["/dyn-5"]
    assert again is not child and again.parent is parent and again in parent.children
    assert (await client.wait(id="c", event="welcome"))["args"] == ["/dyn-5"]
    client.emit("c", "shout", "back")
    assert (await client.wait(id="c", event="shout"))["args"] == ["/dyn-5", "back"]


# -- 4. Catch-all listeners ----------------------------------------------------------------


async def test_catch_all_incoming(
    start_server: ServerStarter, node: NodeStarter, mode: str
) -> None:
    sio = create("v4_catch_all")
    log: list[tuple[Any, ...]] = []
    sockets: dict[str, socketwire.Socket] = {}

    @sio.on("connection")
    def listen_to_everything(socket: socketwire.Socket) -> None:
        sockets[socket.id] = socket

        def first(event: str, *args: Any) -> None:
            log.append(("first", event, *args))

        def second(event: str, *args: Any) -> None:
            log.append(("second", event, *args))

        def front(event: str, *args: Any) -> None:
            log.append(("front", event, *args))

        socket.on_any(first)
        socket.on_any(second)
        socket.prepend_any(front)
        socket.data["second"] = second

    @sio.on("drop second")
    def drop_second(socket: socketwire.Socket) -> str:
        socket.off_any(socket.data["second"])
        return "dropped"

    url = await start_server(sio)
    client = await node(url, mode)
    sid = await client.connect("a")

    client.emit("a", "unhandled", 1, {"x": [2]})  # no handler: still seen
    assert await client.answer("a", "drop second") == ["dropped"]
    assert await client.answer("a", "chat", "hi") == []
    everyone = ["front", "first", "second"]
    assert log == [
        *[(who, "unhandled", 1, {"x": [2]}) for who in everyone],
        *[(who, "drop second") for who in everyone],  # before the handler ran
        ("front", "chat", "hi"),
        ("first", "chat", "hi"),
    ]
    # off_any() without a listener removes them all.
    sockets[sid].off_any()
    assert await client.answer("a", "chat", "bye") == []
    assert len(log) == 8
    assert [e[1:] for e in client.events("a", "chat")] == [[sid, "hi"], [sid, "bye"]]


async def test_catch_all_outgoing(
    start_server: ServerStarter, node: NodeStarter, mode: str
) -> None:
    sio = create("v4_catch_all")
    logs: dict[str, list[tuple[Any, ...]]] = {}
    sockets: dict[str, socketwire.Socket] = {}

    @sio.on("connection")
    def listen_to_everything_sent(socket: socketwire.Socket) -> None:
        sockets[socket.id] = socket
        entries = logs.setdefault(socket.id, [])

        def later(event: str, *args: Any) -> None:
            entries.append(("later", event, *args))

        def front(event: str, *args: Any) -> None:
            entries.append(("front", event, *args))

        socket.on_any_outgoing(later)
        socket.prepend_any_outgoing(front)
        socket.data["later"] = later

    url = await start_server(sio)
    client = await node(url, mode)
    a = await client.connect("a")
    b = await client.connect("b")
    sa, sb = sockets[a], sockets[b]

    sa.emit("direct", 1)  # the socket's own emit
    sio.emit("everyone", 2)  # a broadcast reaching both
    sio.except_(a).emit("not a", 3)  # a broadcast that skips a
    sb.join("room")
    sa.to("room").emit("to room", 4)  # from a to b's room
    assert await client.answer("b", "chat", "hi") == []  # the handler broadcasts
    await client.wait(id="a", event="chat")

    sa.off_any_outgoing(sa.data["later"])
    sa.emit("direct", 5)
    sa.off_any_outgoing()
    sa.emit("direct", 6)
    sio.emit("everyone", 7)
    await client.wait(id="a", event="everyone", count=2)
    await client.wait(id="b", event="everyone", count=2)

    def both(event: str, *args: Any) -> list[tuple[Any, ...]]:
        return [("front", event, *args), ("later", event, *args)]

    assert logs[a] == [
        *both("direct", 1),
        *both("everyone", 2),
        *both("chat", b, "hi"),
        ("front", "direct", 5),
    ]
    # Acks sent to the client are not events: not seen.
    assert logs[b] == [
        *both("everyone", 2),
        *both("not a", 3),
        *both("to room", 4),
        *both("chat", b, "hi"),
        *both("everyone", 7),
    ]
    assert [e[0] for e in client.events("a")] == [
        "welcome",
        "direct",
        "everyone",
        "chat",
        "direct",
        "direct",
        "everyone",
    ]


async def test_catch_all_outgoing_sees_broadcast_with_ack(
    start_server: ServerStarter, node: NodeStarter
) -> None:
    sio = socketwire.Server()
    url = await start_server(sio)
    client = await node(url)
    sid = await client.connect("a", replies={"q": ["yes"]})
    outgoing = Recorder()
    server_socket(sio.sockets, sid).on_any_outgoing(outgoing)

    assert await sio.timeout(2).emit_with_ack("q", 1) == ["yes"]
    assert (await client.wait(id="a", event="q"))["ack"] is True
    assert outgoing.calls == [("q", 1)]


# -- 5. Acknowledgements with timeouts ------------------------------------------------------


async def test_socket_acks_with_timeout(
    start_server: ServerStarter, node: NodeStarter, mode: str
) -> None:
    sio = create("v4_ack_timeouts")
    url = await start_server(sio)
    client = await node(url, mode)
    replies = {"ping": ["pong", 7], "question": [42], "reminder": ["ok"]}
    sid = await client.connect("a", replies=replies)
    silent = await client.connect("silent")  # acks nothing
    socket = server_socket(sio.sockets, sid)
    quiet = server_socket(sio.sockets, silent)
    loop = asyncio.get_running_loop()

    # Callback style: cb(None, *answer) or cb(AckTimeout).
    answered, timed_out = Recorder(), Recorder()
    start = loop.time()
    socket.timeout(0.5).emit("ping", "x", callback=answered)
    socket.timeout(0.5).emit("silent", callback=timed_out)
    assert await answered.wait(1) == [(None, "pong", 7)]
    ((err,),) = await timed_out.wait(1)
    assert isinstance(err, socketwire.AckTimeout)
    assert loop.time() - start >= 0.45
    assert (await client.wait(id="a", event="silent"))["ack"] is True

    # Awaitable style: the answer (a tuple for several values) or AckTimeout.
    assert await socket.timeout(0.5).emit_with_ack("ping") == ("pong", 7)
    assert await socket.timeout(0.5).emit_with_ack("question") == 42
    with pytest.raises(socketwire.AckTimeout):
        await socket.timeout(0.3).emit_with_ack("silent")
    assert len(answered.calls) == len(timed_out.calls) == 1  # each callback once

    # The example: the server asks back within its deadline, or reports a timeout.
    got = await asyncio.gather(
        client.answer("a", "ask", "meaning?"),
        client.answer("silent", "ask", "meaning?"),
        client.answer("a", "remind", "milk"),
        client.answer("silent", "remind", "milk"),
    )
    assert list(got) == [[{"answer": 42}], [{"timeout": True}], [], []]
    assert (await client.wait(id="a", event="reminded"))["args"] == [["ok"]]
    assert (await client.wait(id="silent", event="reminded"))["args"] == ["timeout"]
    assert (await client.wait(id="silent", event="question"))["args"] == ["meaning?"]
    assert quiet.connected


async def test_emit_with_ack_fails_when_the_client_leaves(
    start_server: ServerStarter, node: NodeStarter, mode: str
) -> None:
    sio = socketwire.Server()
    url = await start_server(sio)
    client = await node(url, mode)
    sid = await client.connect("a")
    socket = server_socket(sio.sockets, sid)

    pending = asyncio.ensure_future(socket.emit_with_ack("never answered"))
    timed = asyncio.ensure_future(socket.timeout(WAIT).emit_with_ack("never answered"))
    await client.wait(id="a", event="never answered", count=2)
    client.send("disconnect", id="a")
    for fut in (pending, timed):
        with pytest.raises(socketwire.Disconnected) as exc:
            await asyncio.wait_for(fut, WAIT)
        assert exc.value.reason == "client namespace disconnect"
    # Once disconnected, at once.
    with pytest.raises(socketwire.Disconnected):
        await asyncio.wait_for(socket.emit_with_ack("late"), WAIT)


async def test_broadcast_acks(start_server: ServerStarter, node: NodeStarter, mode: str) -> None:
    sio = create("v4_ack_timeouts")
    url = await start_server(sio)
    client = await node(url, mode)
    sids = {}
    for label in ("a", "b", "c"):
        sids[label] = await client.connect(label, replies={"q": [label], "vote": [f"{label}:yes"]})

    assert sorted(await sio.timeout(2).emit_with_ack("q")) == ["a", "b", "c"]
    for label in ("a", "b"):
        server_socket(sio.sockets, sids[label]).join("room")
    assert sorted(await sio.to("room").timeout(2).emit_with_ack("q", 1)) == ["a", "b"]
    await client.wait(id="a", event="q", count=2)
    sio.emit("marker")  # c's stream: the room's q would have come before this
    await client.wait(id="c", event="marker")
    assert client.events("c", "q") == [["q"]]
    assert client.events("a", "q") == [["q"], ["q", 1]]

    done = Recorder()
    sio.timeout(1).emit("q", "cb", callback=done)
    ((err, responses),) = await done.wait(1)
    assert err is None and sorted(responses) == ["a", "b", "c"]
    assert await client.answer("a", "poll", "lunch?") == [{"votes": ["a:yes", "b:yes", "c:yes"]}]

    # A client that never answers: AckTimeout with the answers that came.
    await client.connect("mute")
    late = Recorder()
    sio.timeout(0.5).emit("q", "late", callback=late)
    results = await asyncio.gather(
        sio.timeout(0.5).emit_with_ack("q", "strict"),
        client.answer("b", "poll", "dinner?"),
        return_exceptions=True,
    )
    err = results[0]
    assert isinstance(err, socketwire.AckTimeout)
    assert sorted(err.responses) == ["a", "b", "c"]
    assert results[1] == [{"partial": ["a:yes", "b:yes", "c:yes"]}]
    ((err, responses),) = await late.wait(1)
    assert isinstance(err, socketwire.AckTimeout) and sorted(responses) == ["a", "b", "c"]
    assert (await client.wait(id="mute", event="q", count=2))["ack"] is True


# -- 6. Remote-socket operations ---------------------------------------------------------------


async def test_fetch_sockets_and_views(
    start_server: ServerStarter, node: NodeStarter, mode: str
) -> None:
    sio = create("v4_remote_sockets")
    url = await start_server(sio)
    client = await node(url, mode)
    ann = await client.connect("ann", auth={"name": "ann", "vip": True})
    bob = await client.connect("bob", auth={"name": "bob"})
    cy = await client.connect("cy")
    nsp = sio.sockets

    views = {v.id: v for v in await sio.fetch_sockets()}
    assert set(views) == {ann, bob, cy}
    assert views[ann].data == {"name": "ann"} and views[cy].data == {"name": "anonymous"}
    assert views[ann].rooms == {ann, "vip", "everyone"}
    assert views[bob].rooms == {bob, "everyone"}
    handshake = views[ann].handshake
    assert handshake["auth"] == {"name": "ann", "vip": True}
    assert handshake["query"]["EIO"] == "4"
    assert handshake["address"] == "127.0.0.1" and handshake["secure"] is False
    assert handshake["url"].startswith("/socket.io/?")
    assert [v.id for v in await sio.in_("vip").fetch_sockets()] == [ann]

    # A view acts on its socket.
    views[bob].emit("direct", "for bob")
    assert (await client.wait(id="bob", event="direct"))["args"] == ["for bob"]
    views[bob].join("r2")
    assert "r2" in server_socket(nsp, bob).rooms
    assert [v.id for v in await sio.in_("r2").fetch_sockets()] == [bob]
    views[bob].leave("r2")
    assert server_socket(nsp, bob).rooms == {bob, "everyone"}

    # Operations on a whole selection.
    sio.sockets_join("all")
    assert all("all" in server_socket(nsp, sid).rooms for sid in (ann, bob, cy))
    sio.in_("vip").sockets_join("a")
    sio.to(bob).sockets_join("a")
    assert {v.id for v in await sio.in_("a").fetch_sockets()} == {ann, bob}
    sio.in_("a").sockets_leave("a")
    assert await sio.in_("a").fetch_sockets() == []
    assert "a" not in nsp.adapter.rooms
    sio.local.emit("local news", 1)
    for label in ("ann", "bob", "cy"):
        assert (await client.wait(id=label, event="local news"))["args"] == [1]
    assert await sio.server_side_emit_with_ack("x") == []

    # Through the example's handlers.
    who = (await client.answer("cy", "who"))[0]
    assert sorted(who, key=lambda p: p["name"]) == [
        {"id": ann, "name": "ann", "rooms": ["all", "everyone", "vip"]},
        {"id": cy, "name": "anonymous", "rooms": ["all", "everyone"]},
        {"id": bob, "name": "bob", "rooms": ["all", "everyone"]},
    ]
    assert await client.answer("bob", "greet vips") == [1]
    assert (await client.wait(id="ann", event="hello vip"))["args"] == ["ann"]
    assert client.events("bob", "hello vip") == []

    # view.disconnect(): "server namespace disconnect" on the server, the
    # client sees "io server disconnect".
    reasons = Recorder()
    sio.on("disconnect", reasons)
    views[cy].disconnect()
    assert (await client.wait(id="cy", event="disconnect"))["reason"] == "io server disconnect"
    ((socket, reason),) = await reasons.wait(1)
    assert (socket.id, reason) == (cy, "server namespace disconnect")
    assert set(nsp.sockets) == {ann, bob}


async def test_handshake_query_is_each_sockets_own(start_server: ServerStarter) -> None:
    # Sessions opened with the same query share one read-only parse of it; the
    # handshake a socket shows is its own copy, so a handler that changes it
    # changes nothing for the next connection.
    sio = socketwire.Server()
    connected = Recorder()

    @sio.on("connection")
    def on_connection(socket: socketwire.Socket) -> None:
        query = socket.handshake.query
        connected(socket.id, dict(query))
        query["room"] = "changed by " + socket.id

    url = await start_server(sio)
    clients = []
    for _ in range(2):
        ws = await WebSocketClient.connect(url, f"{WEBSOCKET}&room=lobby")
        assert (await ws.recv_text()).startswith("0{")
        ws.send_text("40")
        assert (await ws.recv_text()).startswith("40{")
        clients.append(ws)
    (first, seen1), (second, seen2) = await connected.wait(2)
    assert seen1 == seen2 == {"EIO": "4", "transport": "websocket", "room": "lobby"}
    assert sio.sockets.sockets[first].handshake.query["room"] == "changed by " + first
    assert sio.sockets.sockets[second].handshake.query["room"] == "changed by " + second
    for ws in clients:
        await ws.aclose()


async def test_disconnect_sockets(
    start_server: ServerStarter, node: NodeStarter, mode: str
) -> None:
    sio = create("v4_remote_sockets")
    other = sio.of("/other")
    reasons = Recorder()
    for namespace in (sio.sockets, other):
        namespace.on("disconnect", lambda s, r: reasons(s.nsp.name, s.id, r))
    url = await start_server(sio)
    client = await node(url, mode)
    ann = await client.connect("ann", auth={"name": "ann", "vip": True})
    ann_other = await client.connect("ann/other", "/other", conn="ann")
    bob = await client.connect("bob", auth={"name": "bob"})
    cy = await client.connect("cy")

    # sio.except_("vip").disconnect_sockets(), from the example's handler.
    client.emit("bob", "closing time")
    for label in ("bob", "cy"):
        line = await client.wait(id=label, event="disconnect")
        assert line["reason"] == "io server disconnect"
    await reasons.wait(2)
    assert sorted(reasons.calls) == sorted(
        [("/", bob, "server namespace disconnect"), ("/", cy, "server namespace disconnect")]
    )
    assert list(sio.sockets.sockets) == [ann]
    assert [p["id"] for p in (await client.answer("ann", "who"))[0]] == [ann]
    engine_id = server_socket(sio.sockets, ann).conn.engine.id
    assert len(sio.engine.clients) == 1 and engine_id in sio.engine.clients

    # close=True: the whole connection goes, with every namespace on it.
    sio.disconnect_sockets(close=True)
    for label in ("ann", "ann/other"):
        line = await client.wait(id=label, event="disconnect")
        assert line["reason"] == "io server disconnect"
    await client.wait(conn="ann", manager="close")
    await reasons.wait(4)
    assert sorted(reasons.calls[2:]) == [
        ("/", ann, "server namespace disconnect"),
        ("/other", ann_other, "server namespace disconnect"),
    ]
    assert not sio.engine.clients


# -- 7. Connection lifecycle -------------------------------------------------------------------


async def test_connect_timeout_closes_a_connection_without_namespace(
    start_server: ServerStarter, node: NodeStarter, mode: str
) -> None:
    sio = create("v4_connection_lifecycle", connect_timeout=0.3)
    url = await start_server(sio)
    client = await node(url, mode)
    loop = asyncio.get_running_loop()

    start = loop.time()
    client.send("open", conn="idle")  # an engine, no CONNECT
    opened = await client.wait(conn="idle", manager="open")
    busy = await client.connect("busy")
    assert opened["engine"] in sio.engine.clients

    closed = await client.wait(conn="idle", manager="close", timeout=3.0)
    assert loop.time() - start >= 0.29
    assert closed["reason"] == "transport close"
    assert opened["engine"] not in sio.engine.clients
    # The connection that joined a namespace in time stays.
    socket = server_socket(sio.sockets, busy)
    assert socket.conn.engine.id in sio.engine.clients
    socket.emit("still here")
    await client.wait(id="busy", event="still here")


async def test_connect_timeout_spares_a_connection_that_joined(
    start_server: ServerStarter,
) -> None:
    sio = socketwire.Server(connect_timeout=0.3, ping_interval=0.1, ping_timeout=1.0)
    reasons = Recorder()
    sio.on("disconnect", lambda socket, reason: reasons(reason))
    url = await start_server(sio)
    ws = await WebSocketClient.connect(url, WEBSOCKET)
    engine_id = json.loads((await ws.recv_text())[1:])["sid"]
    ws.send_text("40")
    while not (text := await ws.recv_text()).startswith("40{"):
        assert text == "2"
        ws.send_text("3")
    ws.send_text("41")  # leave the namespace, keep the connection
    assert await reasons.wait(1) == [("client namespace disconnect",)]

    # Answer the heartbeat for three times connect_timeout: the connection stays.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 0.9
    pings = 0
    closed_after: float | None = None
    try:
        while (left := deadline - loop.time()) > 0:
            try:
                text = await ws.recv_text(timeout=left)
            except TimeoutError:
                break
            except WebSocketClosed:
                closed_after = 0.9 - (deadline - loop.time())
                break
            assert text == "2"
            pings += 1
            ws.send_text("3")
    finally:
        await ws.aclose()
    assert closed_after is None, f"the server closed the connection after {closed_after:.2f} s"
    assert pings >= 3
    assert engine_id in sio.engine.clients


async def test_reserved_event_names_cannot_be_emitted(
    start_server: ServerStarter, node: NodeStarter
) -> None:
    sio = create("v4_connection_lifecycle")
    url = await start_server(sio)
    client = await node(url)
    sid = await client.connect("a")
    socket = server_socket(sio.sockets, sid)
    socket.join("room")

    def never(*args: Any) -> None:
        raise AssertionError("no ack can come for an emit that raised")

    for name in RESERVED:
        for emit in (
            socket.emit,
            socket.volatile.emit,
            sio.emit,
            sio.to("room").emit,
            sio.of("/chat").emit,
            socket.to("room").emit,
        ):
            with pytest.raises(ValueError, match="reserved event name"):
                emit(name, "x")
        with pytest.raises(ValueError, match="reserved event name"):
            socket.emit(name, callback=never)
        with pytest.raises(ValueError, match="reserved event name"):
            await sio.timeout(1).emit_with_ack(name)
    socket.emit("after", 1)
    await client.wait(id="a", event="after")
    assert client.events("a") == [["after", 1]]
    assert socket.connected


async def test_reserved_emit_with_timeout_never_calls_back(
    start_server: ServerStarter, node: NodeStarter
) -> None:
    sio = socketwire.Server()
    url = await start_server(sio)
    client = await node(url)
    sid = await client.connect("a")
    socket = server_socket(sio.sockets, sid)
    late = Recorder()
    with pytest.raises(ValueError, match="reserved event name"):
        socket.timeout(0.2).emit("disconnect", callback=late)
    # A later emit with a longer deadline: by its timeout the first one's is past.
    with pytest.raises(socketwire.AckTimeout):
        await socket.timeout(0.4).emit_with_ack("unanswered")
    assert late.calls == []


async def test_disconnect_one_namespace_or_the_connection(
    start_server: ServerStarter, node: NodeStarter, mode: str
) -> None:
    sio = create("v4_connection_lifecycle")
    chat = sio.of("/chat")
    reasons = Recorder()
    for nsp in (sio.sockets, chat):
        nsp.on("disconnect", lambda s, r: reasons(s.nsp.name, s.id, r))
    url = await start_server(sio)
    client = await node(url, mode)
    main = await client.connect("main", conn="k")
    room = await client.connect("chat", "/chat", conn="k")
    engine_id = server_socket(chat, room).conn.engine.id

    # socket.disconnect(): that namespace only.
    client.emit("main", "leave")
    assert (await client.wait(id="main", event="disconnect"))["reason"] == "io server disconnect"
    assert await reasons.wait(1) == [("/", main, "server namespace disconnect")]
    assert engine_id in sio.engine.clients and list(chat.sockets) == [room]
    chat.emit("still here")
    await client.wait(id="chat", event="still here")

    # Back on / (same connection), then disconnect(close=True) from /chat: both go.
    client.send("connect", id="main")
    main_again = (await client.wait(id="main", event="connect", count=2))["sid"]
    assert server_socket(sio.sockets, main_again).conn.engine.id == engine_id
    client.emit("chat", "leave all")
    for label in ("main", "chat"):
        line = await client.wait(id=label, event="disconnect", count=2 if label == "main" else 1)
        assert line["reason"] == "io server disconnect"
    await client.wait(conn="k", manager="close")
    await reasons.wait(3)
    # Node: Client._disconnect() disconnects every socket ("server namespace
    # disconnect"), then closes the engine ("forced server close" reaches no socket).
    assert sorted(reasons.calls[1:]) == [
        ("/", main_again, "server namespace disconnect"),
        ("/chat", room, "server namespace disconnect"),
    ]
    assert engine_id not in sio.engine.clients


async def test_disconnect_reasons(
    start_server: ServerStarter, node: NodeStarter, mode: str
) -> None:
    sio = create("v4_connection_lifecycle")
    disconnecting: dict[str, str] = {}
    sio.on("disconnecting", lambda s, r: disconnecting.__setitem__(s.id, r))
    reasons = Recorder()
    sio.on("disconnect", lambda s, r: reasons(s.id, r))
    url = await start_server(sio)
    client = await node(url, mode)
    leaver = await client.connect("leaver")
    kicked = await client.connect("kicked")
    dropped = await client.connect("dropped")
    last = await client.connect("last")
    if mode != "websocket":
        await client.upgraded("dropped")

    client.send("disconnect", id="leaver")
    await reasons.wait(1)
    server_socket(sio.sockets, kicked).disconnect()
    await reasons.wait(2)
    client.send("close_engine", conn="dropped")
    await reasons.wait(3)
    await sio.close()
    await reasons.wait(4)

    expected = {
        leaver: "client namespace disconnect",
        kicked: "server namespace disconnect",
        dropped: "transport close",
        last: "server shutting down",
    }
    assert dict(reasons.calls) == expected
    assert disconnecting == expected
    # What the client saw.
    seen = {
        label: (await client.wait(id=label, event="disconnect"))["reason"]
        for label in ("leaver", "kicked", "dropped", "last")
    }
    assert seen == {
        "leaver": "io client disconnect",
        "kicked": "io server disconnect",
        "dropped": "forced close",
        "last": "transport close",
    }


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_ping_timeout_reason(start_server: ServerStarter, transport: str) -> None:
    sio = socketwire.Server(ping_interval=0.2, ping_timeout=0.2)
    reasons = Recorder()
    sio.on("disconnect", lambda socket, reason: reasons(socket.id, reason))
    url = await start_server(sio)

    if transport == "websocket":
        # A client whose engine is frozen: it never answers the "2" pings.
        ws = await WebSocketClient.connect(url, WEBSOCKET)
        try:
            engine_id = json.loads((await ws.recv_text())[1:])["sid"]
            ws.send_text("40")
            sid = json.loads((await ws.recv_text())[2:])["sid"]
            _, messages = await ws.wait_closed(timeout=3.0)
        finally:
            await ws.aclose()
        assert b"2" in messages  # pinged, never answered
    else:
        # A polling client that stops polling after its CONNECT.
        opened = await http_request(url, "GET", POLLING)
        engine_id = json.loads(opened.body[1:])["sid"]
        posted = await http_request(url, "POST", f"{POLLING}&sid={engine_id}", body="40")
        assert posted.body == b"ok"
        connected = await http_request(url, "GET", f"{POLLING}&sid={engine_id}")
        (answer,) = [p for p in connected.body.split(b"\x1e") if p.startswith(b"40")]
        sid = json.loads(answer[2:])["sid"]

    assert await reasons.wait(1, timeout=3.0) == [(sid, "ping timeout")]
    assert engine_id not in sio.engine.clients


# -- 8. Engine hooks ---------------------------------------------------------------------------


async def test_engine_generate_id(
    start_server: ServerStarter, node: NodeStarter, mode: str
) -> None:
    sio = create("v4_engine_hooks")
    url = await start_server(sio)
    client = await node(url, mode)

    first = await client.connect("first")
    await client.connect("second")
    for label, engine_id in (("first", "custom-1"), ("second", "custom-2")):
        assert (await client.wait(id=label, event="connect"))["engine"] == engine_id
        assert (await client.wait(id=label, event="engine id"))["args"] == [engine_id]
        assert engine_id in sio.engine.clients
    assert server_socket(sio.sockets, first).conn.engine.id == "custom-1"
    if mode != "websocket":
        # The id survives the upgrade: the WebSocket joined the same session.
        await client.upgraded("first")
        client.send("info", conn="first", tag="after upgrade")
        info = (await client.wait(conn="first", tag="after upgrade"))["info"]
        assert info == {"engine": "custom-1", "transport": "websocket", "readyState": "open"}


async def test_engine_header_hooks(start_server: ServerStarter) -> None:
    sio = create("v4_engine_hooks")
    seen: list[tuple[str, str, bool]] = []
    sio.engine.on(
        "initial_headers", lambda headers, req: seen.append(("initial", req.method, True))
    )
    sio.engine.on("headers", lambda headers, req: seen.append(("every", req.method, True)))
    url = await start_server(sio)
    initial = {"x-handshake": "welcome", "x-served-by": "socketwire-example"}

    # Polling: the handshake gets both headers, later responses only the second.
    opened = await http_request(url, "GET", POLLING)
    assert opened.status == 200 and opened.body.startswith(b'0{"sid":"custom-1"')
    assert {k: opened.headers.get(k) for k in initial} == initial
    posted = await http_request(url, "POST", f"{POLLING}&sid=custom-1", body="40")
    assert posted.body == b"ok"
    polled = await http_request(url, "GET", f"{POLLING}&sid=custom-1")
    assert polled.body.startswith(b"40{")
    for later in (posted, polled):
        assert later.headers.get("x-served-by") == "socketwire-example"
        assert "x-handshake" not in later.headers

    # WebSocket: the upgrade of that session (not initial), then a new session.
    response, ws = await WebSocketClient.open(url, f"{WEBSOCKET}&sid=custom-1")
    assert response.status == 101 and ws is not None
    assert response.headers.get("x-served-by") == "socketwire-example"
    assert "x-handshake" not in response.headers
    await ws.aclose()
    response, ws = await WebSocketClient.open(url, WEBSOCKET)
    assert response.status == 101 and ws is not None
    assert {k: response.headers.get(k) for k in initial} == initial
    assert (await ws.recv_text()).startswith('0{"sid":"custom-2"')
    await ws.aclose()
    assert seen[:3] == [("initial", "GET", True), ("every", "GET", True), ("every", "POST", True)]


async def test_engine_connection_error(start_server: ServerStarter) -> None:
    sio = create("v4_engine_hooks")
    errors = Recorder()
    sio.engine.on("connection_error", errors)
    url = await start_server(sio)

    unknown = await http_request(url, "GET", f"{POLLING}&sid=nope")
    assert unknown.status == 400
    assert unknown.json() == {"code": 1, "message": "Session ID unknown"}
    transport = await http_request(url, "GET", "/socket.io/?EIO=4&transport=pigeon")
    assert transport.json() == {"code": 0, "message": "Transport unknown"}
    version = await http_request(url, "GET", "/socket.io/?EIO=3&transport=polling")
    assert version.json() == {"code": 5, "message": "Unsupported protocol version"}

    (first,), (second,), (third,) = await errors.wait(3)
    assert (first.code, first.message) == (1, "Session ID unknown")
    assert first.req.method == "GET" and first.req.query["sid"] == "nope"
    assert (second.code, second.message) == (0, "Transport unknown")
    assert second.req.query["transport"] == "pigeon"
    assert (third.code, third.message) == (5, "Unsupported protocol version")
    # The refused requests made no session.
    assert not sio.engine.clients


async def test_engine_connection_error_context(start_server: ServerStarter) -> None:
    sio = socketwire.Server()
    errors = Recorder()
    sio.engine.on("connection_error", errors)
    url = await start_server(sio)
    await http_request(url, "GET", f"{POLLING}&sid=nope")
    ((err,),) = await errors.wait(1)
    assert err.context == {"sid": "nope"}
