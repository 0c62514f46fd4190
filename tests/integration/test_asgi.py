"""``socketwire.asgi.ASGIApp``: the ASGI front door.

Two kinds of tests:

* real ASGI servers, driven by the official ``socket.io-client`` 4.8.4
  (``js/asgi_scenario.js``): uvicorn in the test's event loop, and granian in a
  subprocess, each over WebSocket only, polling only and polling upgraded to
  WebSocket. The app is ``asgi_app.create_app()``: the scenario's handlers beside
  a plain ASGI app that answers every other path (and reports what the server
  saw at ``/state``);
* the ASGI protocol itself, with in-memory ``receive``/``send``: body limits, a
  parked polling ``GET`` aborted by ``http.disconnect``, refused WebSocket
  upgrades, message order, backpressure, the slow-consumer cap and lifespan.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest

import socketwire
from socketwire.asgi import HIGH_WATER, ASGIApp
from socketwire.asgi.websocket import ASGIWebSocket
from socketwire.core.websocket import handshake
from tests.conftest import run_node
from tests.integration.asgi_app import create_app
from tests.integration.rawclient import WebSocketClient, host_port
from tests.waits import WAIT

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = Path(__file__).resolve().parent / "js" / "asgi_scenario.js"

HAS_WS_LIBRARY = any(importlib.util.find_spec(m) for m in ("websockets", "wsproto"))


# -- real servers ------------------------------------------------------------------------


async def http_get(url: str, path: str) -> tuple[int, bytes]:
    """A plain HTTP/1.1 GET: (status, body)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        async with asyncio.timeout(WAIT + 2):
            data = await reader.read()
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def start_uvicorn(app: ASGIApp) -> tuple[str, Any, asyncio.Task[None]]:
    import uvicorn

    ready = asyncio.Event()

    class Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            ready.set()

    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, loop="asyncio", lifespan="on", log_level="warning"
    )
    server = Server(config)
    task = asyncio.get_running_loop().create_task(server.serve())
    waiter = asyncio.ensure_future(ready.wait())
    await asyncio.wait([waiter, task], timeout=WAIT, return_when=asyncio.FIRST_COMPLETED)
    if not ready.is_set():
        waiter.cancel()
        server.should_exit = True
        raise AssertionError("uvicorn did not start")
    port = server.servers[0].sockets[0].getsockname()[1]
    return f"http://127.0.0.1:{port}", server, task


async def stop_uvicorn(server: Any, task: asyncio.Task[None]) -> None:
    server.should_exit = True
    await asyncio.wait_for(task, WAIT * 2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Granian:
    """``granian --interface asgi`` serving ``asgi_app:create_app`` in a subprocess."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log: list[str] = []
        self.proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "granian",
            "--interface",
            "asgi",
            "--factory",
            "tests.integration.asgi_app:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "info",
            cwd=ROOT,
            # Its own process group: the worker processes go with it.
            start_new_session=True,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        started = asyncio.get_running_loop().create_future()
        self._reader = asyncio.get_running_loop().create_task(self._read_log(started))
        try:
            async with asyncio.timeout(WAIT * 2):
                await started
                # The worker binds the port right after it reports: retry until then.
                while True:
                    try:
                        status, _ = await http_get(self.url, "/state")
                        break
                    except ConnectionRefusedError:
                        await asyncio.sleep(0.05)
        except TimeoutError:
            raise AssertionError("granian did not start:\n" + "\n".join(self.log)) from None
        assert status == 200

    async def _read_log(self, started: asyncio.Future[None]) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            self.log.append(line)
            if "Started worker" in line and not started.done():
                started.set_result(None)
        if not started.done():
            started.set_exception(AssertionError("granian exited:\n" + "\n".join(self.log)))

    async def stop(self) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.returncode is None:
            proc.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), WAIT)
        # Whatever is left of the group (a worker of a main process that died).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError, AssertionError, TimeoutError):
                await asyncio.wait_for(self._reader, WAIT)


@pytest.fixture(params=["uvicorn", "granian"])
async def served(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, str]]:
    """``(server name, base url)`` of the scenario app under a real ASGI server."""
    name: str = request.param
    if name == "uvicorn":
        if not HAS_WS_LIBRARY:
            pytest.skip("uvicorn needs the websockets (or wsproto) package for WebSocket")
        app = create_app()
        url, server, task = await start_uvicorn(app)
        try:
            yield name, url
        finally:
            await stop_uvicorn(server, task)
        # The lifespan ran around the other app's own, and closed socketwire.
        assert app.state.lifespan == ["other startup", "other shutdown"]  # type: ignore[attr-defined]
        assert app.sio.engine.clients == {}
    else:
        if importlib.util.find_spec("granian") is None:
            pytest.skip("granian is not installed")
        granian = Granian()
        try:
            await granian.start()
            yield name, granian.url
        finally:
            await granian.stop()


@pytest.fixture(
    params=["websocket", "polling", "polling,websocket"],
    ids=["websocket", "polling", "upgrade"],
)
def mode(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


def hexed(data: bytes) -> dict[str, str]:
    return {"$bytes": data.hex(), "$type": "Buffer"}


async def test_scenario(served: tuple[str, str], mode: str) -> None:
    _server, url = served
    lines = await run_node(SCENARIO, url, mode, timeout=25.0)

    def of(client: str) -> list[dict[str, Any]]:
        return [x for x in lines if x.get("client") == client]

    def events(client: str, name: str) -> list[list[Any]]:
        return [x["args"] for x in of(client) if x.get("event") == name]

    def ack(client: str, name: str) -> Any:
        (found,) = [x["args"] for x in of(client) if x.get("ack") == name]
        return found

    def single(key: str) -> Any:
        (found,) = [x[key] for x in lines if key in x]
        return found

    first = "websocket" if mode == "websocket" else "polling"
    for name in ("a", "b", "closer"):
        assert events(name, "welcome") == [[{"name": name, "transport": first}]]
    assert events("chat", "chat-welcome") == [[{"nsp": "/chat", "name": "a"}]]

    # Acks both ways.
    assert ack("a", "echo") == {"n": 1, "s": "é"}
    assert ack("a", "echo-many") == [1, "two", [3]]
    assert events("a", "answer") == [[["WHY?", 42]]]

    # Binary both ways.
    reversed_ = hexed(bytes([250, 3, 2, 1]))
    assert ack("a", "bin") == [
        {"reversed": reversed_, "nested": [hexed(b"\x00"), hexed(b"\xff\xfe")]}
    ]
    assert events("a", "bin-back") == [[{"data": reversed_, "size": 4}]]
    assert ack("b", "bin-big") == [{"size": 70000, "last": 1}]

    # Broadcast to every client of "/" and the namespace's room.
    for name in ("a", "b", "closer"):
        assert events(name, "shouted") == [[{"from": "a", "text": "hi all"}]]
    assert ack("chat", "say") == ["ok"]
    assert events("chat", "said") == [[{"from": "a", "text": "hello chat"}]]

    # Disconnect reasons seen by the clients.
    assert events("b", "disconnect") == [["io server disconnect"]]
    assert events("chat", "disconnect") == [["io client disconnect"]]
    assert events("closer", "disconnect") == [["forced close"]]
    assert events("a", "disconnect") == [["io client disconnect"]]
    assert [x["transport"] for x in of("a") if "transport" in x] == [
        "polling" if mode == "polling" else "websocket"
    ]

    # The client bundle and the other ASGI app (HTTP and WebSocket).
    bundle = single("bundle")
    assert bundle["status"] == 200
    assert bundle["type"].startswith("application/javascript")
    # fetch asks for gzip: Content-Length is the compressed size, the text is the script.
    assert 0 < bundle["length"] < bundle["size"] and bundle["size"] > 10_000 and bundle["hasIo"]
    assert single("other") == {
        "status": 200,
        "json": {"other": True, "method": "GET", "path": "/other/page", "query": "x=1", "body": ""},
    }
    assert single("otherPost")["json"]["body"] == "field=value"
    assert single("otherWs") == {"message": "other /other/ws", "code": 1000}

    # What the server saw (answered once the four disconnections are in).
    status, body = await http_get(url, "/state?wait=a,b,closer,chat:a")
    assert status == 200
    state = json.loads(body)
    assert state["disconnects"] == {
        "a": "client namespace disconnect",
        "b": "server namespace disconnect",
        "closer": "transport close",
        "chat:a": "client namespace disconnect",
    }
    assert ["echo", "a", [{"n": 1, "s": "é"}]] in state["events"]
    assert ["bin", "a", "010203fa"] in state["events"]
    assert ["bin", "b", 70000] in state["events"]
    assert state["lifespan"] == ["other startup"]


# -- the ASGI protocol, in memory ------------------------------------------------------------


def http_scope(
    method: str, path: str, query: str = "", headers: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(k.encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }


def ws_scope(query: str, extension: bool = True) -> dict[str, Any]:
    scope: dict[str, Any] = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": "/socket.io/",
        "raw_path": b"/socket.io/",
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"test")],
        "client": ("127.0.0.1", 50001),
        "server": ("127.0.0.1", 80),
        "subprotocols": [],
    }
    if extension:
        scope["extensions"] = {"websocket.http.response": {}}
    return scope


class Channel:
    """In-memory ``receive``/``send``; ``gate`` (a future) holds every send while set."""

    def __init__(self, *incoming: dict[str, Any]) -> None:
        self.incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        for message in incoming:
            self.incoming.put_nowait(message)
        self.sent: list[MutableMapping[str, Any]] = []
        self.gate: asyncio.Future[None] | None = None
        self._changed = asyncio.Event()
        self.held = asyncio.Event()  # set once a send waits at the gate
        self.receives = 0  # calls of ``receive``
        self._receiving = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        self.receives += 1
        self._receiving.set()
        return await self.incoming.get()

    async def wait_receives(self, count: int) -> None:
        """Until the app has called ``receive`` ``count`` times."""
        async with asyncio.timeout(WAIT):
            while self.receives < count:
                self._receiving.clear()
                await self._receiving.wait()

    async def send(self, message: MutableMapping[str, Any]) -> None:
        while self.gate is not None:
            self.held.set()
            await self.gate
        self.sent.append(message)
        self._changed.set()

    def put(self, message: dict[str, Any]) -> None:
        self.incoming.put_nowait(message)

    async def wait_for(self, predicate: Any) -> None:
        async with asyncio.timeout(WAIT):
            while not predicate(self.sent):
                self._changed.clear()
                await self._changed.wait()

    def texts(self) -> list[str]:
        return [m["text"] for m in self.sent if m["type"] == "websocket.send" and "text" in m]


async def call_http(
    app: ASGIApp, method: str, path: str, query: str = "", body: bytes = b"", **headers: str
) -> tuple[int, dict[str, str], bytes]:
    channel = Channel({"type": "http.request", "body": body, "more_body": False})
    if body:
        headers.setdefault("content-length", str(len(body)))
    await asyncio.wait_for(
        app(http_scope(method, path, query, headers), channel.receive, channel.send), WAIT
    )
    start, *chunks = channel.sent
    assert start["type"] == "http.response.start"
    got = {k.decode(): v.decode() for k, v in start["headers"]}
    data = b"".join(c["body"] for c in chunks)
    assert int(got["content-length"]) == len(data)
    return start["status"], got, data


async def polling_session(app: ASGIApp) -> str:
    """An Engine.IO polling session connected to "/": its sid."""
    status, _, body = await call_http(app, "GET", "/socket.io/", "EIO=4&transport=polling")
    assert status == 200 and body.startswith(b"0{")
    sid: str = json.loads(body[1:])["sid"]
    query = f"EIO=4&transport=polling&sid={sid}"
    assert (await call_http(app, "POST", "/socket.io/", query, b"40"))[0] == 200
    status, _, body = await call_http(app, "GET", "/socket.io/", query)
    assert status == 200 and body.startswith(b"40{")
    return sid


class WsClient:
    """An Engine.IO WebSocket session on the in-memory channel, connected to "/"."""

    def __init__(self, app: ASGIApp, extension: bool = True) -> None:
        self.channel = Channel({"type": "websocket.connect"})
        self.task = asyncio.get_running_loop().create_task(
            app(
                ws_scope("EIO=4&transport=websocket", extension),
                self.channel.receive,
                self.channel.send,
            )
        )

    async def connect(self) -> None:
        ch = self.channel
        await ch.wait_for(lambda sent: len(sent) >= 2)
        assert ch.sent[0]["type"] == "websocket.accept"
        assert ch.sent[1]["text"].startswith("0{")
        ch.put({"type": "websocket.receive", "text": "40"})
        await ch.wait_for(lambda sent: any(t.startswith("40{") for t in self.channel.texts()))

    async def finish(self) -> None:
        self.channel.put({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(self.task, WAIT)


async def test_http_routing_and_limits() -> None:
    sio = socketwire.Server(max_http_buffer_size=1000)
    app = ASGIApp(sio)
    # Outside the Socket.IO path, without other_asgi_app: 404.
    status, _, body = await call_http(app, "GET", "/elsewhere")
    assert (status, body) == (404, b"Not Found")
    # The engine's own errors come through with their JSON bodies.
    status, _, body = await call_http(app, "GET", "/socket.io/", "EIO=3&transport=polling")
    assert status == 400 and json.loads(body)["code"] == 5
    sid = await polling_session(app)
    query = f"EIO=4&transport=polling&sid={sid}"

    # A declared body over max_http_buffer_size: 413 before reading it.
    channel = Channel()
    scope = http_scope("POST", "/socket.io/", query, {"content-length": "5000"})
    await asyncio.wait_for(app(scope, channel.receive, channel.send), WAIT)
    assert channel.sent[0]["status"] == 413
    # A chunked body: read until it goes over, never further.
    chunk = {"type": "http.request", "body": b"x" * 600, "more_body": True}
    channel = Channel(chunk, chunk, chunk)
    scope = http_scope("POST", "/socket.io/", query, {"transfer-encoding": "chunked"})
    await asyncio.wait_for(app(scope, channel.receive, channel.send), WAIT)
    assert channel.sent[0]["status"] == 413
    assert channel.incoming.qsize() == 1
    # A body in pieces under the limit is whole for the engine.
    channel = Channel(
        {"type": "http.request", "body": b"4", "more_body": True},
        {"type": "http.request", "body": b'2["hi"]', "more_body": False},
    )
    got: list[Any] = []
    sio.on("hi", lambda socket: got.append(socket.id))
    scope = http_scope("POST", "/socket.io/", query, {"transfer-encoding": "chunked"})
    await asyncio.wait_for(app(scope, channel.receive, channel.send), WAIT)
    assert channel.sent[0]["status"] == 200 and len(got) == 1
    # Mounted under a root path.
    scope = http_scope("GET", "/api/socket.io/", "EIO=4&transport=polling")
    scope["root_path"] = "/api"
    channel = Channel()
    await asyncio.wait_for(app(scope, channel.receive, channel.send), WAIT)
    assert channel.sent[0]["status"] == 200
    await sio.close()


async def test_parked_get_aborted_by_disconnect() -> None:
    sio = socketwire.Server()
    reasons: list[str] = []
    sio.on("connection", lambda socket: socket.on("disconnect", lambda r: reasons.append(r)))
    app = ASGIApp(sio)
    sid = await polling_session(app)
    channel = Channel({"type": "http.request", "body": b"", "more_body": False})
    scope = http_scope("GET", "/socket.io/", f"EIO=4&transport=polling&sid={sid}")
    task = asyncio.get_running_loop().create_task(app(scope, channel.receive, channel.send))
    # Parked: the watcher has taken the request message and waits for more.
    await channel.wait_receives(2)
    assert not task.done() and channel.sent == []
    channel.put({"type": "http.disconnect"})
    await asyncio.wait_for(task, WAIT)
    assert channel.sent == []  # nothing sent to a client that is gone
    assert reasons == ["transport error"]
    assert sio.engine.clients == {}


async def test_parked_get_answered_later() -> None:
    sio = socketwire.Server()
    app = ASGIApp(sio)
    sid = await polling_session(app)
    (socket,) = sio.sockets.sockets.values()
    channel = Channel()
    scope = http_scope("GET", "/socket.io/", f"EIO=4&transport=polling&sid={sid}")
    task = asyncio.get_running_loop().create_task(app(scope, channel.receive, channel.send))
    await channel.wait_receives(1)  # parked, its watcher listening for http.disconnect
    assert not task.done()
    socket.emit("later", 1)
    await asyncio.wait_for(task, WAIT)
    assert channel.sent[0]["status"] == 200
    assert channel.sent[1]["body"] == b'42["later",1]'
    await sio.close()


@pytest.mark.parametrize("extension", [True, False], ids=["http-response", "close"])
async def test_refused_websocket(extension: bool) -> None:
    app = ASGIApp(socketwire.Server())
    channel = Channel({"type": "websocket.connect"})
    scope = ws_scope("EIO=4&transport=websocket&sid=nope", extension)
    await asyncio.wait_for(app(scope, channel.receive, channel.send), WAIT)
    if extension:
        start, body = channel.sent
        assert start["type"] == "websocket.http.response.start" and start["status"] == 400
        assert json.loads(body["body"]) == {"code": 1, "message": "Session ID unknown"}
    else:
        assert [m["type"] for m in channel.sent] == ["websocket.close"]
    # An Engine.IO WebSocket handshake on an HTTP request: refused too.
    status, _, _ = await call_http(app, "GET", "/socket.io/", "EIO=4&transport=websocket")
    assert status == 400


async def test_websocket_order_and_backpressure() -> None:
    sio = socketwire.Server()
    app = ASGIApp(sio)
    client = WsClient(app)
    await client.connect()
    (socket,) = sio.sockets.sockets.values()
    ch = client.channel
    ch.gate = asyncio.get_running_loop().create_future()
    payload = "x" * 1000
    for i in range(100):
        socket.emit("tick", i, payload)
    port = socket.conn.engine.ws
    assert isinstance(port, ASGIWebSocket)
    assert port.paused and port.buffered() > HIGH_WATER
    assert not socket.writable
    drained = asyncio.ensure_future(socket.drain())
    await asyncio.sleep(0)
    assert not drained.done()
    gate, ch.gate = ch.gate, None
    gate.set_result(None)
    await asyncio.wait_for(drained, WAIT)
    await ch.wait_for(lambda sent: len(ch.texts()) >= 102)
    ticks = [json.loads(t[2:]) for t in ch.texts() if t.startswith('42["tick"')]
    assert [t[1] for t in ticks] == list(range(100))
    assert not port.paused and port.buffered() == 0
    # Binary attachments go out as binary messages, right after their packet.
    socket.emit("blob", b"\x01\x02")
    await ch.wait_for(lambda sent: "bytes" in sent[-1])
    assert ch.sent[-2]["text"].startswith('451-["blob"')
    assert ch.sent[-1]["bytes"] == b"\x01\x02"
    # Incoming binary attachments and acks.
    sio.on("up", lambda s, data: data[::-1])
    ch.put({"type": "websocket.receive", "text": '451-1["up",{"_placeholder":true,"num":0}]'})
    ch.put({"type": "websocket.receive", "bytes": b"abc"})
    await ch.wait_for(lambda sent: len(sent) >= 2 and sent[-1].get("bytes") == b"cba")
    assert ch.sent[-2]["text"] == '461-1[{"_placeholder":true,"num":0}]'
    reasons: list[str] = []
    socket.on("disconnect", lambda r: reasons.append(r))
    await client.finish()
    assert reasons == ["transport close"]
    await sio.close()


async def test_slow_consumer_is_closed() -> None:
    sio = socketwire.Server(write_buffer_limit=200_000)
    app = ASGIApp(sio)
    client = WsClient(app)
    await client.connect()
    (socket,) = sio.sockets.sockets.values()
    reasons: list[str] = []
    socket.on("disconnect", lambda r: reasons.append(r))
    ch = client.channel
    ch.gate = asyncio.get_running_loop().create_future()
    sent_before = len(ch.sent)
    payload = "x" * 10_000
    socket.emit("tick", 0, payload)
    await asyncio.wait_for(ch.held.wait(), WAIT)  # the writer holds it, in flight
    for i in range(1, 30):
        socket.emit("tick", i, payload)
    assert reasons == ["slow consumer"]
    # Once the peer takes the message in flight, the close follows (the queue is dropped).
    gate, ch.gate = ch.gate, None
    gate.set_result(None)
    await ch.wait_for(lambda sent: sent[-1]["type"] == "websocket.close")
    assert [m["text"][:10] for m in ch.sent[sent_before:-1]] == ['42["tick",']
    assert ch.sent[-1] == {"type": "websocket.close", "code": 1008, "reason": "slow consumer"}
    await client.finish()
    await sio.close()


async def test_websocket_limits_and_server_close() -> None:
    sio = socketwire.Server(max_http_buffer_size=1000)
    app = ASGIApp(sio)
    client = WsClient(app)
    await client.connect()
    ch = client.channel
    ch.put({"type": "websocket.receive", "text": "4" + "x" * 2000})
    await ch.wait_for(lambda sent: sent[-1]["type"] == "websocket.close")
    assert ch.sent[-1]["code"] == 1009
    await client.finish()
    assert sio.engine.clients == {}

    # A server-side disconnect: the packets, then the close, in order.
    client = WsClient(app, extension=False)
    await client.connect()
    (socket,) = sio.sockets.sockets.values()
    socket.emit("bye")
    socket.disconnect(close=True)
    ch = client.channel
    await ch.wait_for(lambda sent: sent[-1]["type"] == "websocket.close")
    assert ch.texts()[-2:] == ['42["bye"]', "41"]
    assert ch.sent[-1]["code"] == 1000
    await client.finish()
    await sio.close()


async def test_lifespan() -> None:
    sio = socketwire.Server()
    app = ASGIApp(sio)
    channel = Channel({"type": "lifespan.startup"})
    task = asyncio.get_running_loop().create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}}, channel.receive, channel.send)
    )
    await channel.wait_for(lambda sent: sent == [{"type": "lifespan.startup.complete"}])
    await polling_session(app)
    assert len(sio.engine.clients) == 1
    channel.put({"type": "lifespan.shutdown"})
    await asyncio.wait_for(task, WAIT)
    assert channel.sent[-1] == {"type": "lifespan.shutdown.complete"}
    assert sio.engine.clients == {}


async def test_lifespan_with_other_app_without_lifespan() -> None:
    async def plain(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise RuntimeError("http only")

    sio = socketwire.Server()
    app = ASGIApp(sio, other_asgi_app=plain)
    channel = Channel({"type": "lifespan.startup"}, {"type": "lifespan.shutdown"})
    await asyncio.wait_for(
        app({"type": "lifespan", "asgi": {"version": "3.0"}}, channel.receive, channel.send), WAIT
    )
    assert [m["type"] for m in channel.sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]


async def test_slow_consumer_under_uvicorn() -> None:
    """A client that stops reading is closed as a slow consumer; the others get everything."""
    if not HAS_WS_LIBRARY:
        pytest.skip("uvicorn needs the websockets (or wsproto) package for WebSocket")
    limit = 256 * 1024
    sio = socketwire.Server(write_buffer_limit=limit)
    names: dict[str, str] = {}
    reasons: dict[str, str] = {}
    connected = asyncio.Event()
    gone = asyncio.Event()

    @sio.on("connection")
    def connection(socket: socketwire.Socket) -> None:
        names[socket.id] = socket.handshake.query.get("who", "")
        if len(names) == 2:
            connected.set()

    @sio.on("disconnect")
    def disconnect(socket: socketwire.Socket, reason: str) -> None:
        reasons[names[socket.id]] = reason
        gone.set()

    url, server, task = await start_uvicorn(ASGIApp(sio))
    host, port = host_port(url)
    target = "/socket.io/?EIO=4&transport=websocket&who="
    # The slow one: a small TCP window and a stream reader that stops at 2 KiB.
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.setblocking(False)
    await asyncio.get_running_loop().sock_connect(raw, (host, port))
    reader, writer = await asyncio.open_connection(sock=raw, limit=1024)
    slow = WebSocketClient(reader, writer)
    healthy: WebSocketClient | None = None
    try:
        key = handshake.make_key(os.urandom(16))
        writer.write(handshake.client_request(f"{host}:{port}", target + "slow", key))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
        assert head.startswith(b"HTTP/1.1 101")
        slow.send_text("40")
        healthy = await WebSocketClient.connect(url, target + "healthy")
        assert (await healthy.recv_text()).startswith("0{")
        healthy.send_text("40")
        assert (await healthy.recv_text()).startswith("40{")
        await asyncio.wait_for(connected.wait(), WAIT)

        received: list[int] = []

        async def read_healthy() -> None:
            while True:
                text = await healthy.recv_text(WAIT)
                packet = json.loads(text[2:])
                if packet[0] == "end":
                    return
                received.append(packet[1]["i"])

        reading = asyncio.get_running_loop().create_task(read_healthy())
        blob = "x" * 50_000
        sent = 0
        async with asyncio.timeout(WAIT * 3):
            while not gone.is_set():
                sio.emit("big", {"i": sent, "d": blob})
                sent += 1
                await asyncio.sleep(0)  # let the writers and the reader run
        assert reasons == {"slow": "slow consumer"}
        sio.emit("end")
        await asyncio.wait_for(reading, WAIT)
        assert received == list(range(sent))
        assert len(sio.engine.clients) == 1
    finally:
        await slow.aclose()
        if healthy is not None:
            await healthy.aclose()
        await stop_uvicorn(server, task)
