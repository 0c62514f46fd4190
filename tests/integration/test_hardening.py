"""Hardening: slow consumers, backpressure, flood control, admission limits, security.

Every test runs a real ``socketwire.Server`` on 127.0.0.1 (port 0) against raw
clients (``tests/integration/rawclient.py``) or the official npm client. Waits are
on events (frames, closes, responses, handler calls) and bounded by timeouts;
``asyncio.sleep(0)`` only yields between emits of a producer loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket as pysocket
import string
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest

import socketwire
from socketwire.core.websocket import handshake
from socketwire.core.websocket.frames import FrameReader, Opcode, encode_frame
from tests.conftest import ROOT, ServerStarter, run_node
from tests.integration.rawclient import (
    HttpResponse,
    WebSocketClient,
    WebSocketClosed,
    host_port,
    http_request,
    parse_head,
)
from tests.waits import WAIT as TIMEOUT

WS = "/socket.io/?EIO=4&transport=websocket"
POLLING = "/socket.io/?EIO=4&transport=polling"
URLSAFE = string.ascii_letters + string.digits + "-_"


# -- raw clients -------------------------------------------------------------------------


async def open_websocket(
    url: str,
    target: str = WS,
    *,
    rcvbuf: int | None = None,
    limit: int = 2**16,
    headers: list[tuple[str, str]] | tuple[tuple[str, str], ...] = (),
) -> tuple[HttpResponse, WebSocketClient | None]:
    """A WebSocket handshake on a socket of our own.

    ``rcvbuf`` sets ``SO_RCVBUF`` before connecting (so the TCP window stays small)
    and ``limit`` is the stream reader's buffer: once it holds ``2 * limit`` bytes
    nobody reads, asyncio stops reading the socket. The client is None (and the
    response says why) unless the server switched protocols.
    """
    host, port = host_port(url)
    loop = asyncio.get_running_loop()
    sock = pysocket.socket(pysocket.AF_INET, pysocket.SOCK_STREAM)
    try:
        if rcvbuf is not None:
            sock.setsockopt(pysocket.SOL_SOCKET, pysocket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.wait_for(loop.sock_connect(sock, (host, port)), TIMEOUT)
    except BaseException:
        sock.close()
        raise
    reader, writer = await asyncio.open_connection(sock=sock, limit=limit)
    ok = False
    try:
        key = handshake.make_key(os.urandom(16))
        writer.write(handshake.client_request(f"{host}:{port}", target, key, headers))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
        status, response_headers = parse_head(head[:-4])
        body = b""
        if status != 101 and "content-length" in response_headers:
            length = int(response_headers["content-length"])
            body = await asyncio.wait_for(reader.readexactly(length), TIMEOUT)
        response = HttpResponse(status, response_headers, body)
        if status != 101:
            return response, None
        handshake.check_response(status, response_headers, key)
        ok = True
        return response, WebSocketClient(reader, writer)
    finally:
        if not ok:
            writer.close()
            with contextlib.suppress(OSError, asyncio.TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)


def decode(packet: str) -> tuple[str, str, int | None, Any]:
    """``(kind, namespace, ack id, data)`` of a Socket.IO text packet on Engine.IO.

    ``kind`` is the Engine.IO type and Socket.IO type digits (``"42"`` for an event).
    """
    kind, rest = packet[:2], packet[2:]
    nsp = "/"
    if rest.startswith("/"):
        nsp, _, rest = rest.partition(",")
    digits = 0
    while digits < len(rest) and rest[digits].isdigit():
        digits += 1
    ack_id = int(rest[:digits]) if digits else None
    rest = rest[digits:]
    return kind, nsp, ack_id, json.loads(rest) if rest else None


class SioClient:
    """Socket.IO v5 on a raw WebSocket: Engine.IO pings are answered as they arrive."""

    def __init__(self, ws: WebSocketClient) -> None:
        self.ws = ws
        self.eio_sid = ""
        self.sid = ""
        self.pings = 0

    async def handshake(self, join: bool) -> None:
        opened = await self.recv()
        assert opened.startswith("0{"), opened
        self.eio_sid = json.loads(opened[1:])["sid"]
        if join:
            self.ws.send_text("40")
            kind, nsp, _, data = decode(await self.recv())
            assert (kind, nsp) == ("40", "/"), (kind, nsp, data)
            self.sid = data["sid"]

    async def recv(self, timeout: float = TIMEOUT) -> str:
        """The next text packet that is not an Engine.IO ping."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            opcode, payload = await self.ws.recv(max(deadline - loop.time(), 0.001))
            assert opcode == Opcode.TEXT, (opcode, payload[:80])
            text = payload.decode()
            if text == "2":
                self.pings += 1
                self.ws.send_text("3")
                continue
            return text

    async def recv_event(self, timeout: float = TIMEOUT) -> tuple[str, str, int | None, Any]:
        return decode(await self.recv(timeout))

    def emit(self, event: str, *args: Any, ack_id: int | None = None) -> None:
        self.ws.send_text(
            "42" + ("" if ack_id is None else str(ack_id)) + json.dumps([event, *args])
        )


class Clients:
    """Opens raw clients for a test and closes them all at its end."""

    def __init__(self) -> None:
        self.opened: list[WebSocketClient] = []

    async def websocket(
        self, url: str, target: str = WS, **options: Any
    ) -> tuple[HttpResponse, WebSocketClient | None]:
        response, ws = await open_websocket(url, target, **options)
        if ws is not None:
            self.opened.append(ws)
        return response, ws

    async def sio(self, url: str, *, join: bool = True, **options: Any) -> SioClient:
        response, ws = await self.websocket(url, WS, **options)
        assert ws is not None, (response.status, response.body)
        client = SioClient(ws)
        await client.handshake(join)
        return client

    async def close(self) -> None:
        await asyncio.gather(*(ws.aclose() for ws in self.opened))
        self.opened.clear()


@pytest.fixture
async def clients() -> AsyncIterator[Clients]:
    opened = Clients()
    yield opened
    await opened.close()


def open_sid(resp: HttpResponse) -> str:
    """The sid of a polling handshake response."""
    assert resp.status == 200, (resp.status, resp.body)
    assert resp.body[:1] == b"0", resp.body
    sid: str = json.loads(resp.body[1:])["sid"]
    return sid


def assert_busy(resp: HttpResponse) -> None:
    assert resp.status == 503, (resp.status, resp.body)
    assert resp.headers["content-type"].startswith("application/json"), resp.headers
    assert resp.json() == {"code": 6, "message": "Server busy"}


def assert_forbidden(resp: HttpResponse, message: str) -> None:
    assert resp.status == 403, (resp.status, resp.body)
    assert resp.json() == {"code": 4, "message": message}


class Lifecycle:
    """Records the connections and disconnections of a namespace."""

    def __init__(self, nsp: socketwire.Namespace) -> None:
        self.sockets: dict[str, socketwire.Socket] = {}
        self.reasons: dict[str, str] = {}
        self._gone: dict[str, asyncio.Event] = {}
        nsp.on("connection", self._connected)
        nsp.on("disconnect", self._disconnected)

    def _connected(self, socket: socketwire.Socket) -> None:
        self.sockets[socket.id] = socket
        self._gone.setdefault(socket.id, asyncio.Event())

    def _disconnected(self, socket: socketwire.Socket, reason: str) -> None:
        self.reasons[socket.id] = reason
        self._gone.setdefault(socket.id, asyncio.Event()).set()

    def gone(self, sid: str) -> asyncio.Event:
        return self._gone.setdefault(sid, asyncio.Event())

    async def wait_gone(self, sid: str, timeout: float = TIMEOUT) -> str:
        await asyncio.wait_for(self.gone(sid).wait(), timeout)
        return self.reasons[sid]


# -- slow consumers -----------------------------------------------------------------------


async def test_slow_websocket_consumer_is_closed_and_others_get_everything(
    start_server: ServerStarter, clients: Clients
) -> None:
    limit = 256 * 1024
    sio = socketwire.Server(write_buffer_limit=limit)
    life = Lifecycle(sio.sockets)

    @sio.on("echo")
    def echo(socket: socketwire.Socket, *args: Any) -> tuple[Any, ...]:
        return args

    url = await start_server(sio)
    # A client that never reads past its handshake: a small TCP window and a
    # stream reader that stops taking bytes at 2 KiB.
    slow = await clients.sio(url, rcvbuf=4096, limit=1024)
    healthy = await clients.sio(url)
    ws = sio.engine.clients[slow.eio_sid].ws
    assert ws is not None
    transport: asyncio.Transport = ws.transport  # type: ignore[attr-defined]

    received: list[int] = []

    async def read_healthy() -> None:
        while True:
            kind, _, _, data = await healthy.recv_event(10.0)
            assert kind == "42", (kind, data)
            if data[0] == "end":
                return
            assert data[0] == "big"
            received.append(data[1]["i"])

    reader = asyncio.create_task(read_healthy())
    blob = "x" * 50_000
    message_size = len(json.dumps(["big", {"i": 0, "d": blob}])) + 16
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20.0
    gone = life.gone(slow.sid)
    peak = sent = 0
    for i in range(2000):
        if gone.is_set() or loop.time() > deadline:
            break
        sio.emit("big", {"i": i, "d": blob})
        sent += 1
        peak = max(peak, transport.get_write_buffer_size())
        await asyncio.sleep(0)
    assert await life.wait_gone(slow.sid) == "slow consumer"
    # It did fill up to the cap, and never went past it by more than one message.
    assert limit - message_size < peak <= limit + message_size, (peak, limit)
    assert slow.eio_sid not in sio.engine.clients
    assert slow.sid not in sio.sockets.sockets

    sio.emit("end")
    await asyncio.wait_for(reader, 20.0)
    assert received == list(range(sent))
    assert healthy.eio_sid in sio.engine.clients
    healthy.emit("echo", "still here", ack_id=7)
    assert await healthy.recv_event() == ("43", "/", 7, ["still here"])
    assert life.reasons == {slow.sid: "slow consumer"}


async def test_slow_polling_consumer_is_closed(start_server: ServerStarter) -> None:
    limit = 64 * 1024
    sio = socketwire.Server(write_buffer_limit=limit)
    life = Lifecycle(sio.sockets)
    url = await start_server(sio)

    sid = open_sid(await http_request(url, "GET", POLLING))
    post = await http_request(url, "POST", f"{POLLING}&sid={sid}", body="40")
    assert (post.status, post.body) == (200, b"ok")
    # The CONNECT is handled in the callback that answered the POST. Nobody GETs from now on.
    (socket,) = life.sockets.values()
    session = sio.engine.clients[sid].session
    blob = "y" * 10_000
    peak = sent = 0
    for i in range(100):
        if not socket.connected:
            break
        socket.emit("big", i, blob)
        sent += 1
        peak = max(peak, session.buffered_bytes)
    assert life.reasons == {socket.id: "slow consumer"}
    assert sid not in sio.engine.clients
    assert peak <= limit + len(blob) + 32, peak
    assert sent == limit // len(blob) + 1
    resp = await http_request(url, "GET", f"{POLLING}&sid={sid}")
    assert resp.status == 400
    assert resp.json()["code"] == 1


async def test_drain_waits_for_a_paused_reader(
    start_server: ServerStarter, clients: Clients
) -> None:
    count, size = 40, 100_000
    sio = socketwire.Server()
    paused = asyncio.Event()
    drained = asyncio.Event()
    state: dict[str, Any] = {"resumed": False, "resumed_at_drain": None, "dropped": 0}

    @sio.on("bulk")
    async def bulk(socket: socketwire.Socket, n: int) -> dict[str, int]:
        blob = "z" * size
        for i in range(n):
            socket.emit("chunk", i, blob)
            if not socket.writable:
                # Volatile packets are dropped while the transport cannot take them.
                socket.volatile.emit("volatile", i)
                state["dropped"] += 1
                if not paused.is_set():
                    paused.set()
                    await socket.drain()
                    state["resumed_at_drain"] = state["resumed"]
                    drained.set()
                    continue
            await socket.drain()
        assert socket.writable
        socket.volatile.emit("volatile", "last")
        return {"sent": n}

    url = await start_server(sio)
    client = await clients.sio(url, rcvbuf=4096, limit=1024)
    client.emit("bulk", count, ack_id=1)
    await asyncio.wait_for(paused.wait(), 10.0)
    # The producer stays parked in drain() while the client reads nothing.
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(drained.wait(), 0.3)
    assert not drained.is_set()

    state["resumed"] = True
    chunks: list[int] = []
    volatile: list[Any] = []
    while True:
        kind, _, ack_id, data = await client.recv_event(10.0)
        if kind == "43":
            assert (ack_id, data) == (1, [{"sent": count}])
            break
        assert kind == "42"
        if data[0] == "chunk":
            assert len(data[2]) == size
            chunks.append(data[1])
        else:
            volatile.append(data[1])
    assert chunks == list(range(count))
    assert volatile == ["last"]
    assert state["resumed_at_drain"] is True
    assert state["dropped"] >= 1


async def test_pipelined_requests_do_not_bypass_the_write_buffer_limit(
    start_server: ServerStarter, clients: Clients
) -> None:
    """Two requests in one TCP segment: their replies still count against the cap."""
    limit = 256 * 1024
    sio = socketwire.Server(write_buffer_limit=limit)
    life = Lifecycle(sio.sockets)
    handled = asyncio.Event()
    calls: list[int] = []

    @sio.on("flood")
    def flood(socket: socketwire.Socket, n: int) -> None:
        for i in range(n):
            socket.emit("big", i, "x" * 50_000)
        calls.append(n)
        if len(calls) == 2:
            handled.set()

    url = await start_server(sio)
    slow = await clients.sio(url, rcvbuf=4096, limit=1024)
    ws = sio.engine.clients[slow.eio_sid].ws
    assert ws is not None
    transport: asyncio.Transport = ws.transport  # type: ignore[attr-defined]
    request = '42["flood",100]'
    batch = [
        encode_frame(Opcode.TEXT, request.encode(), mask=os.urandom(4)),
        encode_frame(Opcode.TEXT, request.encode(), mask=os.urandom(4)),
    ]
    slow.ws.send_raw(b"".join(batch))
    await asyncio.wait_for(handled.wait(), TIMEOUT)
    # Both handlers ran in one callback; it has returned by the time we run.
    buffered = transport.get_write_buffer_size()
    assert buffered <= limit + 50_100, f"{buffered} bytes buffered, limit {limit}"
    assert life.reasons == {slow.sid: "slow consumer"}


async def test_drain_returns_when_the_client_goes_away(
    start_server: ServerStarter, clients: Clients
) -> None:
    sio = socketwire.Server()
    parked = asyncio.Event()
    finished = asyncio.Event()
    outcome: dict[str, Any] = {}

    @sio.on("bulk")
    async def bulk(socket: socketwire.Socket) -> None:
        blob = "q" * 100_000
        for _ in range(1000):
            if not socket.connected:
                break
            socket.emit("chunk", blob)
            if not socket.writable:
                parked.set()
            await socket.drain()
        outcome["connected"] = socket.connected
        finished.set()

    url = await start_server(sio)
    client = await clients.sio(url, rcvbuf=4096, limit=1024)
    client.emit("bulk")
    await asyncio.wait_for(parked.wait(), 10.0)
    await client.ws.aclose()
    await asyncio.wait_for(finished.wait(), TIMEOUT)
    assert outcome == {"connected": False}


# -- flood control ------------------------------------------------------------------------


async def _acks_until_marker(client: SioClient) -> tuple[list[int], list[Any]]:
    """Acks and other events the client gets until the CONNECT reply of ``/marker``."""
    acks: list[int] = []
    events: list[Any] = []
    while True:
        kind, nsp, ack_id, data = await client.recv_event()
        if (kind, nsp) == ("40", "/marker"):
            return acks, events
        if kind == "43":
            assert ack_id is not None
            assert data == [ack_id]
            acks.append(ack_id)
        else:
            assert kind == "42", (kind, data)
            events.append(data)


def _rate_limited_server(**options: Any) -> socketwire.Server:
    sio = socketwire.Server(event_rate_limit=(5, 60), **options)

    @sio.on("hit")
    def hit(socket: socketwire.Socket, n: int) -> int:
        return n

    # Joining another namespace answers after every event sent before it was handled.
    sio.of("/marker")
    return sio


async def test_event_rate_limit_drops_excess_events(
    start_server: ServerStarter, clients: Clients
) -> None:
    sio = _rate_limited_server()
    life = Lifecycle(sio.sockets)
    url = await start_server(sio)
    client = await clients.sio(url)
    for i in range(20):
        client.emit("hit", i, ack_id=i)
    client.ws.send_text("40/marker,")
    acks, events = await _acks_until_marker(client)
    assert acks == [0, 1, 2, 3, 4]
    assert events == []
    assert life.sockets[client.sid].connected
    assert life.reasons == {}
    assert client.eio_sid in sio.engine.clients


RATE_LIMIT_DISCONNECT_JS = """
"use strict";
const { io } = require("socket.io-client");
const socket = io(process.argv[2], { transports: ["websocket"], reconnection: false });
const failsafe = setTimeout(() => {
  process.stderr.write("no disconnect within 10 s\\n");
  process.exit(2);
}, 10000);
const acks = [];
socket.on("connect", () => {
  for (let i = 0; i < 6; i++) socket.emit("hit", i, (n) => acks.push(n));
});
socket.on("disconnect", (reason) => {
  process.stdout.write(JSON.stringify({ reason, acks, connected: socket.connected }) + "\\n");
  clearTimeout(failsafe);
  setTimeout(() => process.exit(0), 100);
});
"""


async def test_event_rate_limit_disconnect(start_server: ServerStarter, tmp_path: Path) -> None:
    decided: list[Any] = []

    def on_rate_limit(socket: socketwire.Socket, event: Any) -> str:
        decided.append(event)
        return "disconnect"

    sio = _rate_limited_server(on_rate_limit=on_rate_limit)
    life = Lifecycle(sio.sockets)
    url = await start_server(sio)
    script = tmp_path / "rate_limit_disconnect.js"
    script.write_text(RATE_LIMIT_DISCONNECT_JS)
    (result,) = await run_node(script, url)
    assert result == {"reason": "io server disconnect", "acks": [0, 1, 2, 3, 4], "connected": False}
    assert decided == ["hit"]
    assert list(life.reasons.values()) == ["server namespace disconnect"]


async def test_event_rate_limit_warning_then_drop(
    start_server: ServerStarter, clients: Clients
) -> None:
    def on_rate_limit(socket: socketwire.Socket, event: Any) -> str:
        socket.emit("rate limited", {"event": event})
        return "drop"

    sio = _rate_limited_server(on_rate_limit=on_rate_limit)
    life = Lifecycle(sio.sockets)
    url = await start_server(sio)
    client = await clients.sio(url)
    for i in range(7):
        client.emit("hit", i, ack_id=i)
    client.ws.send_text("40/marker,")
    acks, events = await _acks_until_marker(client)
    assert acks == [0, 1, 2, 3, 4]
    assert events == [["rate limited", {"event": "hit"}]] * 2
    assert life.sockets[client.sid].connected
    assert life.reasons == {}


# -- admission limits ---------------------------------------------------------------------


async def test_max_connections(start_server: ServerStarter, clients: Clients) -> None:
    sio = socketwire.Server(max_connections=2)
    url = await start_server(sio)
    first = open_sid(await http_request(url, "GET", POLLING))
    second = await clients.sio(url, join=False)
    assert len(sio.engine.clients) == 2

    assert_busy(await http_request(url, "GET", POLLING))
    response, ws = await clients.websocket(url)
    assert ws is None
    assert_busy(response)
    assert len(sio.engine.clients) == 2

    # The polling client closes its session (Engine.IO "close" packet): room for one.
    post = await http_request(url, "POST", f"{POLLING}&sid={first}", body="1")
    assert (post.status, post.body) == (200, b"ok")
    assert first not in sio.engine.clients
    third = await clients.sio(url, join=False)
    assert third.eio_sid in sio.engine.clients
    assert_busy(await http_request(url, "GET", POLLING))

    # The WebSocket client closes: room for one again.
    second.ws.send_close()
    await second.ws.wait_closed()
    assert second.eio_sid not in sio.engine.clients
    open_sid(await http_request(url, "GET", POLLING))
    assert_busy(await http_request(url, "GET", POLLING))


async def test_max_handshake_rate(start_server: ServerStarter, clients: Clients) -> None:
    sio = socketwire.Server(max_handshake_rate=(3, 60))
    url = await start_server(sio)
    open_sid(await http_request(url, "GET", POLLING))
    await clients.sio(url, join=False)
    open_sid(await http_request(url, "GET", POLLING))
    assert_busy(await http_request(url, "GET", POLLING))
    response, ws = await clients.websocket(url)
    assert ws is None
    assert_busy(response)
    assert len(sio.engine.clients) == 3


async def test_max_connections_holds_while_allow_request_is_pending(
    start_server: ServerStarter,
) -> None:
    """Handshakes waiting in ``allow_request`` must not all get past ``max_connections``."""
    arrived = asyncio.Event()
    gate = asyncio.Event()
    waiting: list[Any] = []

    async def allow(req: Any) -> bool:
        waiting.append(req)
        if len(waiting) == 2:
            # The other three are refused without reaching allow_request.
            arrived.set()
        await gate.wait()
        return True

    sio = socketwire.Server(max_connections=2, allow_request=allow)
    url = await start_server(sio)
    requests = [asyncio.create_task(http_request(url, "GET", POLLING)) for _ in range(5)]
    try:
        await asyncio.wait_for(arrived.wait(), TIMEOUT)
    finally:
        gate.set()
    responses = await asyncio.gather(*requests)
    statuses = sorted(r.status for r in responses)
    assert len(sio.engine.clients) <= 2, statuses
    assert statuses == [200, 200, 503, 503, 503]


async def test_websocket_origin_follows_cors_policy(
    start_server: ServerStarter, clients: Clients
) -> None:
    sio = socketwire.Server(cors={"origin": ["https://ok.example"]})
    url = await start_server(sio)
    response, ws = await clients.websocket(url, headers=[("Origin", "https://evil.example")])
    assert ws is None
    assert_forbidden(response, "Origin not allowed")
    assert sio.engine.clients == {}

    for headers in ([("Origin", "https://ok.example")], []):
        client = await clients.sio(url, headers=headers)
        assert client.sid in sio.sockets.sockets

    # The upgrade of a polling session is a WebSocket handshake too.
    sid = open_sid(await http_request(url, "GET", POLLING))
    upgrade = f"/socket.io/?EIO=4&transport=websocket&sid={sid}"
    response, ws = await clients.websocket(url, upgrade, headers=[("Origin", "https://x.example")])
    assert ws is None
    assert_forbidden(response, "Origin not allowed")
    assert sio.engine.clients[sid].transport == "polling"
    response, ws = await clients.websocket(url, upgrade, headers=[("Origin", "https://ok.example")])
    assert ws is not None and response.status == 101


# -- security -----------------------------------------------------------------------------


async def test_ids_are_random_urlsafe_and_distinct(
    start_server: ServerStarter, clients: Clients
) -> None:
    sio = socketwire.Server()
    url = await start_server(sio)
    engine_ids: list[str] = []
    socket_ids: list[str] = []
    for _ in range(10):
        batch = await asyncio.gather(*(clients.sio(url) for _ in range(50)))
        engine_ids += [c.eio_sid for c in batch]
        socket_ids += [c.sid for c in batch]
        await clients.close()
    assert len(engine_ids) == len(socket_ids) == 500
    assert len(set(engine_ids) | set(socket_ids)) == 1000
    for ids in (engine_ids, socket_ids):
        assert all(len(i) == 20 and set(i) <= set(URLSAFE) for i in ids), ids[:5]
        counts = Counter("".join(ids))
        # 10,000 characters: each of the 64 appears about 156 times.
        assert set(counts) == set(URLSAFE)
        assert min(counts.values()) > 60 and max(counts.values()) < 300, counts


TRAVERSALS = [
    "/socket.io/../../etc/passwd",
    "/socket.io/%2e%2e/%2e%2e/etc/passwd",
    "/socket.io/socket.io.js/../../pyproject.toml",
    "/socket.io/..%2f..%2fpyproject.toml",
    "/socket.io/socket.io.js%2f..%2f..%2f..%2fpyproject.toml",
    "/socket.io/../pyproject.toml",
    "/socket.io/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/socket.io/....//....//etc/passwd",
    "/socket.io\\..\\..\\pyproject.toml",
]


@pytest.mark.parametrize("target", TRAVERSALS)
async def test_path_traversal_never_serves_files(start_server: ServerStarter, target: str) -> None:
    url = await start_server(socketwire.Server())
    # The client bundle itself is served (so the file-serving path is live).
    bundle = await http_request(url, "GET", "/socket.io/socket.io.js")
    assert bundle.status == 200 and len(bundle.body) > 1000
    try:
        resp = await http_request(url, "GET", target)
    except AssertionError:
        return  # the server refused to parse the request at all
    assert resp.status != 200 or (
        b"root:" not in resp.body
        and b"[build-system]" not in resp.body
        and resp.body != bundle.body
    )
    secrets = [(ROOT / "pyproject.toml").read_bytes()]
    with contextlib.suppress(OSError):
        secrets.append(Path("/etc/passwd").read_bytes())
    assert all(s[:64] not in resp.body for s in secrets), (resp.status, resp.body[:200])


RESERVED_PACKETS = [
    '42["disconnect","forged"]',
    '42["connect","forged"]',
    '42["disconnecting","forged"]',
    '429["disconnect","forged"]',
    '42["disconnect"]',
]


@pytest.mark.parametrize("packet", RESERVED_PACKETS)
async def test_client_cannot_fire_reserved_events(
    start_server: ServerStarter, clients: Clients, packet: str
) -> None:
    sio = socketwire.Server()
    calls: list[tuple[str, tuple[Any, ...]]] = []

    for event in ("connection", "connect", "disconnect", "disconnecting"):

        def record(socket: socketwire.Socket, *args: Any, _event: str = event) -> None:
            calls.append((f"nsp {_event}", args))

        sio.on(event, record)

    @sio.on("connection")
    def on_connection(socket: socketwire.Socket) -> None:
        for event in ("connect", "disconnect", "disconnecting"):

            def record(*args: Any, _event: str = event) -> None:
                calls.append((f"socket {_event}", args))

            socket.on(event, record)

    url = await start_server(sio)
    client = await clients.sio(url)
    assert calls == [("nsp connection", ()), ("nsp connect", ())]
    client.ws.send_text(packet)
    code, rest = await client.ws.wait_closed()
    assert rest == []
    assert code == 1000
    assert client.eio_sid not in sio.engine.clients
    assert sorted(calls) == sorted(
        [
            ("nsp connection", ()),
            ("nsp connect", ()),
            ("socket disconnecting", ("parse error",)),
            ("nsp disconnecting", ("parse error",)),
            ("socket disconnect", ("parse error",)),
            ("nsp disconnect", ("parse error",)),
        ]
    )


async def test_client_event_named_connection_does_not_rerun_the_connection_handler(
    start_server: ServerStarter, clients: Clients
) -> None:
    """``connection`` is no reserved name on the wire, but it is the namespace's
    connection event here: a client must not be able to fire it again."""
    sio = socketwire.Server()
    sio.of("/marker")
    calls: list[tuple[Any, ...]] = []

    @sio.on("connection")
    def on_connection(socket: socketwire.Socket, *args: Any) -> None:
        calls.append(args)

    url = await start_server(sio)
    client = await clients.sio(url)
    client.emit("connection", "forged", ack_id=1)
    client.ws.send_text("40/marker,")
    packets: list[str] = []
    with contextlib.suppress(WebSocketClosed):
        while not packets or not packets[-1].startswith("40/marker,"):
            packets.append(await client.recv())
    assert calls == [()], (calls, packets)


async def test_allow_request_refuses_by_header(
    start_server: ServerStarter, clients: Clients
) -> None:
    def allow(req: Any) -> bool:
        return bool(req.headers.get("x-api-key") == "sesame")

    sio = socketwire.Server(allow_request=allow)
    url = await start_server(sio)
    for headers in ([], [("X-Api-Key", "wrong")]):
        assert_forbidden(await http_request(url, "GET", POLLING, headers=headers), "Forbidden")
        response, ws = await clients.websocket(url, headers=headers)
        assert ws is None
        assert_forbidden(response, "Forbidden")
    assert sio.engine.clients == {}

    good = [("X-Api-Key", "sesame")]
    open_sid(await http_request(url, "GET", POLLING, headers=good))
    client = await clients.sio(url, headers=good)
    assert client.sid in sio.sockets.sockets


# -- heartbeat under load -----------------------------------------------------------------


class PongingClient(asyncio.Protocol):
    """A Socket.IO client that does everything in protocol callbacks.

    It answers each Engine.IO ping as soon as the frame is read (no task to wake
    up), counts the ``tick`` broadcasts and checks that they come in order.
    """

    def __init__(self, host: str, on_tick: Any) -> None:
        self.host = host
        self.on_tick = on_tick
        self.transport: asyncio.Transport | None = None
        self.key = handshake.make_key(os.urandom(16))
        self.head = b""
        self.frames: FrameReader | None = None
        self.joined: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.eio_sid = ""
        self.pings = 0
        self.ticks = 0
        self.problems: list[str] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = tcp = cast(asyncio.Transport, transport)
        tcp.write(handshake.client_request(self.host, WS, self.key))

    def send_text(self, text: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(encode_frame(Opcode.TEXT, text, mask=os.urandom(4)))

    def data_received(self, data: bytes) -> None:
        if self.frames is None:
            self.head += data
            head, sep, rest = self.head.partition(b"\r\n\r\n")
            if not sep:
                return
            status, headers = parse_head(head)
            handshake.check_response(status, headers, self.key)
            self.frames = FrameReader(max_message_size=1 << 20, client_side=True)
            data = rest
        for opcode, payload in self.frames.feed(data):
            if opcode != Opcode.TEXT:
                self.problems.append(f"opcode {opcode}")
            elif payload == b"2":
                self.pings += 1
                self.send_text(b"3")
            elif payload.startswith(b'42["tick",'):
                tick = int(payload[10:].partition(b",")[0])
                if tick != self.ticks:
                    self.problems.append(f"tick {tick} after {self.ticks}")
                self.ticks += 1
                self.on_tick()
            elif payload.startswith(b"0{"):
                self.eio_sid = json.loads(payload[1:])["sid"]
                self.send_text(b"40")
            elif payload.startswith(b"40{"):
                self.joined.set_result(None)
            elif payload == b'42["end"]':
                self.ended.set_result(None)
            else:
                self.problems.append(payload[:40].decode(errors="replace"))

    def connection_lost(self, exc: Exception | None) -> None:
        for fut in (self.joined, self.ended):
            if not fut.done():
                fut.set_exception(ConnectionError("connection lost"))


async def test_pings_keep_flowing_under_broadcast_load(start_server: ServerStarter) -> None:
    """200 clients answer pings while a producer broadcasts without pause for 3 s.

    The clients share the server's event loop and read slower than the server
    writes, so the producer stays at most ``window`` broadcasts ahead of the
    slowest one: a client buried under a backlog it cannot read within the ping
    timeout would (rightly) be closed, and the test is about the server's
    heartbeat, not about the clients' speed.
    """
    window = 8
    sio = socketwire.Server(ping_interval=0.5, ping_timeout=0.5)
    life = Lifecycle(sio.sockets)
    url = await start_server(sio)
    host, port = host_port(url)
    loop = asyncio.get_running_loop()
    progress = asyncio.Event()
    peers: list[PongingClient] = []
    transports: list[asyncio.BaseTransport] = []

    async def connect() -> PongingClient:
        transport, peer = await loop.create_connection(
            lambda: PongingClient(f"{host}:{port}", progress.set), host, port
        )
        transports.append(transport)
        await asyncio.wait_for(peer.joined, TIMEOUT)
        return peer

    try:
        for _ in range(4):
            peers += await asyncio.gather(*(connect() for _ in range(50)))
        end = loop.time() + 3.0
        sent = 0
        filler = "w" * 200
        while loop.time() < end and not life.reasons:
            sio.emit("tick", sent, filler)
            sent += 1
            await asyncio.sleep(0)
            while sent - min(p.ticks for p in peers) > window and not life.reasons:
                progress.clear()
                await asyncio.wait_for(progress.wait(), TIMEOUT)
        assert life.reasons == {}, (loop.time() - end, Counter(life.reasons.values()))
        sio.emit("end")
        await asyncio.wait_for(asyncio.gather(*(p.ended for p in peers)), 20.0)
    finally:
        for transport in transports:
            transport.close()
    assert all(p.eio_sid in sio.engine.clients for p in peers)
    assert [p.problems for p in peers] == [[]] * len(peers)
    assert [p.ticks for p in peers] == [sent] * len(peers)
    assert sent > 10 * window, sent
    # About six pings each in three seconds at a 0.5 s interval.
    assert min(p.pings for p in peers) >= 3, sorted(p.pings for p in peers)[:5]
