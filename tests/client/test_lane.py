"""The client's lane: a read of Socket.IO events and acks on "/" decoded at once
(``core.wire.scan_packets``) and handed from the WebSocket to the manager.

The lane must change nothing but the cost. Each scenario runs twice over real
sockets on 127.0.0.1: with the lane, and with the scan turned off so that every
read takes the general path; what the client saw and what it sent back must be
the same. A scripted server writes exactly the frames a scenario names, each
read in one write (mixing in binary packets, other namespaces, pings, a masked
frame); the official Node server is the peer where a real one matters. A spy on
the scan says which reads the lane took.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

import socketwire.client.websocket as ws_module
from socketwire.client import Client
from socketwire.core.websocket.frames import FrameReader, Opcode, decode_close_payload, encode_frame
from socketwire.core.websocket.handshake import check_request, server_response
from socketwire.core.wire import scan_packets
from socketwire.errors import Disconnected

from .conftest import ClientFactory
from .helpers import WAIT, Events, watch
from .peers import NodePeer, SocketwirePeer

MASK = b"\x11\x22\x33\x44"
OPEN = (
    b'0{"sid":"engine","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'
)


def text(payload: bytes) -> bytes:
    """An unmasked text frame, as a server sends it."""
    return encode_frame(Opcode.TEXT, payload)


def event(data: list[Any], ack_id: int | None = None, nsp: str = "") -> bytes:
    head = b"42" + (nsp.encode() + b"," if nsp else b"")
    if ack_id is not None:
        head += b"%d" % ack_id
    return text(head + json.dumps(data).encode())


def ack(args: list[Any], ack_id: int) -> bytes:
    return text(b"43%d" % ack_id + json.dumps(args).encode())


class Conn:
    """The server end of one client: what the client sent, and writes of whole reads."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.frames = FrameReader(max_message_size=1 << 20, client_side=False)
        #: Every frame the client sent, in order (unmasked).
        self.received: list[tuple[int, bytes]] = []
        self.changed = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self.run())

    async def run(self) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await self.reader.read(65536):
                for opcode, payload in self.frames.feed(data):
                    self.received.append((opcode, payload))
                    if opcode == Opcode.TEXT and payload.startswith(b"40"):
                        self.accept(payload[2:])
                self.changed.set()
        self.changed.set()

    def accept(self, rest: bytes) -> None:
        """Answer a CONNECT: ``40`` for "/", ``40/chat,`` for "/chat"."""
        nsp = rest.split(b",", 1)[0] + b"," if rest.startswith(b"/") else b""
        sid = b"sid-" + (nsp[1:-1] or b"main")
        self.write(text(b"40" + nsp + b'{"sid":"' + sid + b'"}'))

    def write(self, *frames: bytes) -> None:
        """One write: the client reads it whole (a few hundred bytes on loopback)."""
        self.writer.write(b"".join(frames))

    def texts(self) -> list[bytes]:
        return [payload for opcode, payload in self.received if opcode == Opcode.TEXT]

    async def wait_for(self, check: Callable[[], bool]) -> None:
        async def wait() -> None:
            while not check():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(wait(), WAIT)

    async def wait_text(self, payload: bytes) -> None:
        await self.wait_for(lambda: payload in self.texts())


class ScriptedServer:
    """Answers the WebSocket handshake and the Engine.IO open; the rest is the test's."""

    def __init__(self) -> None:
        self.conns: asyncio.Queue[Conn] = asyncio.Queue()
        self.all: list[Conn] = []
        self.url = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines[1:] if line)
        }
        writer.write(server_response(check_request("GET", headers)) + text(OPEN))
        conn = Conn(reader, writer)
        self.all.append(conn)
        await self.conns.put(conn)

    async def next(self) -> Conn:
        return await asyncio.wait_for(self.conns.get(), WAIT)


@pytest.fixture
async def server() -> AsyncIterator[ScriptedServer]:
    scripted = ScriptedServer()
    tcp = await asyncio.start_server(scripted.handle, "127.0.0.1", 0)
    scripted.url = f"http://127.0.0.1:{tcp.sockets[0].getsockname()[1]}"
    try:
        yield scripted
    finally:
        for conn in scripted.all:
            conn.writer.close()
            conn.task.cancel()
        tcp.close()
        with contextlib.suppress(Exception):
            await tcp.wait_closed()


class Scans:
    """Spies on ``scan_packets``: the packet count of every read it was given
    (None: left to the general path); or turns the lane off."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, lane: bool) -> None:
        self.results: list[int | None] = []

        def spy(data: bytes, max_message_size: int, validate_utf8: bool = True) -> Any:
            found = scan_packets(data, max_message_size, validate_utf8) if lane else None
            self.results.append(None if found is None else len(found) // 3)
            return found

        monkeypatch.setattr(ws_module, "scan_packets", spy)

    @property
    def taken(self) -> list[int]:
        return [n for n in self.results if n is not None]


Scenario = Callable[[ScriptedServer, ClientFactory, Events], Awaitable[None]]


async def run_both(
    scenario: Scenario,
    server: ScriptedServer,
    make_client: ClientFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[list[Any], list[Any], Scans]:
    """What the client saw and sent, with the lane and without; and the lane's scans."""
    transcripts = []
    scans: list[Scans] = []
    for lane in (True, False):
        with monkeypatch.context() as m:
            scans.append(Scans(m, lane))
            log = Events()
            await scenario(server, make_client, log)
            conn = server.all[-1]
            transcripts.append([log.items, conn.received])
    assert not scans[1].taken
    return transcripts[0], transcripts[1], scans[0]


async def connected(
    server: ScriptedServer, make_client: ClientFactory, log: Events, *namespaces: str
) -> tuple[Conn, list[Client]]:
    """A client on "/" (and each of ``namespaces`` on the same connection), its
    events in ``log``: ``(namespace, event, *args)``."""
    main = make_client(server.url, transports=["websocket"], reconnection=False)
    clients = [main, *(main.manager.socket(nsp) for nsp in namespaces)]
    for client in clients:
        nsp = client.namespace
        client.on_any(lambda name, *args, nsp=nsp: log.add(name, nsp, *args))
        client.on("disconnect", lambda reason, nsp=nsp: log.add("disconnect", nsp, reason))
    await asyncio.wait_for(main.connect(), WAIT)
    conn = await server.next()
    for client in clients[1:]:
        await asyncio.wait_for(client.connect(), WAIT)
    return conn, clients


def record_ack(log: Events, label: str) -> Callable[..., None]:
    return lambda *args: log.add("ack", label, *args)


# -- events and acks through the lane ---------------------------------------------------


async def acks_and_events(server: ScriptedServer, make_client: ClientFactory, log: Events) -> None:
    conn, [client] = await connected(server, make_client, log)
    client.on("ask", lambda *args: ("answer", *args))
    for i in range(3):
        client.emit("q", i, callback=record_ack(log, f"q{i}"))
    waiting = asyncio.ensure_future(client.emit_with_ack("w"))
    await conn.wait_text(b'423["w"]')
    conn.write(
        ack(["one"], 1),
        event(["news", 1]),
        ack([], 0),
        event(["ask", "x"], 5),
        ack([{"a": 1}, 2], 2),
        ack(["w", 3], 3),
        event(["done"]),
    )
    await log.wait("done")
    log.add("awaited", await asyncio.wait_for(waiting, WAIT))
    await conn.wait_text(b'435["answer","x"]')


async def test_acks_and_events_of_one_read_in_order(
    server: ScriptedServer, make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_lane, without, scans = await run_both(acks_and_events, server, make_client, monkeypatch)
    assert with_lane == without
    items, _ = with_lane
    assert items == [
        ("ack", ("q1", "one")),
        ("news", ("/", 1)),
        ("ack", ("q0",)),
        ("ask", ("/", "x")),
        ("ack", ("q2", {"a": 1}, 2)),
        ("done", ("/",)),
        ("awaited", (("w", 3),)),
    ]
    # The CONNECT answer went the general way; the seven packets of the read
    # took the lane at once.
    assert scans.taken == [7]


async def a_burst_over_many_reads(
    server: ScriptedServer, make_client: ClientFactory, log: Events
) -> None:
    conn, [client] = await connected(server, make_client, log)
    futures = [asyncio.ensure_future(client.emit_with_ack("n", i)) for i in range(20)]
    await conn.wait_text(b'4219["n",19]')
    for i in range(0, 20, 4):
        conn.write(*(ack([i + k], i + k) for k in range(4)), event(["read", i]))
        await log.wait("read", i // 4 + 1)
    log.add("acks", await asyncio.wait_for(asyncio.gather(*futures), WAIT))


async def test_a_burst_over_many_reads(
    server: ScriptedServer, make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_lane, without, scans = await run_both(
        a_burst_over_many_reads, server, make_client, monkeypatch
    )
    assert with_lane == without
    assert with_lane[0][-1] == ("acks", (list(range(20)),))
    assert scans.taken == [5] * 5


# -- mixed with the general path ------------------------------------------------------------


async def mixed_reads(server: ScriptedServer, make_client: ClientFactory, log: Events) -> None:
    conn, [client, _chat] = await connected(server, make_client, log, "/chat")
    pending = asyncio.ensure_future(client.emit_with_ack("w"))
    await conn.wait_text(b'420["w"]')
    # A binary event begins at the end of a read: the lane closes until its
    # attachment came.
    conn.write(event(["a"]), text(b'451-["bin",{"_placeholder":true,"num":0}]'))
    await log.wait("a")
    conn.write(encode_frame(Opcode.BINARY, b"\x00\x01"), event(["b"]))
    await log.wait("b")
    # A WebSocket ping, an Engine.IO ping, another namespace, each among events.
    conn.write(event(["c"]), encode_frame(Opcode.PING, b"hi"), event(["d"]))
    await log.wait("d")
    conn.write(text(b"2"), event(["e"]))
    await log.wait("e")
    conn.write(event(["f"], nsp="/chat"), event(["g"]))
    await log.wait("g")
    # Nothing unusual: the lane again.
    conn.write(event(["h"]), ack(["done"], 0), event(["end"]))
    await log.wait("end")
    log.add("awaited", await asyncio.wait_for(pending, WAIT))
    await conn.wait_for(lambda: (Opcode.PONG, b"hi") in conn.received and b"3" in conn.texts())


async def test_mixed_with_the_general_path(
    server: ScriptedServer, make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_lane, without, scans = await run_both(mixed_reads, server, make_client, monkeypatch)
    assert with_lane == without
    items, _ = with_lane
    assert [(name, args) for name, args in items] == [
        ("a", ("/",)),
        ("bin", ("/", b"\x00\x01")),
        ("b", ("/",)),
        ("c", ("/",)),
        ("d", ("/",)),
        ("e", ("/",)),
        ("f", ("/chat",)),
        ("g", ("/",)),
        ("h", ("/",)),
        ("end", ("/",)),
        ("awaited", ("done",)),
    ]
    # Scanned, in order: the CONNECT answer of "/chat" (the lane opened with
    # "/"), "a" with the binary event's head, none while the attachment was
    # awaited, then the ping, the Engine.IO ping, the other namespace, and the
    # last read: the only one the lane took.
    assert scans.results == [None, None, None, None, None, 3]


async def test_no_lane_while_a_binary_packet_is_incomplete(
    server: ScriptedServer, make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = Events()
    scans = Scans(monkeypatch, True)
    conn, _ = await connected(server, make_client, log)
    # The Engine.IO ping's answer says that the client read the binary head.
    conn.write(text(b'451-["bin",{"_placeholder":true,"num":0}]'), text(b"2"))
    await conn.wait_text(b"3")
    assert scans.results == [None]
    before = len(scans.results)
    # Text while the attachment is awaited: not scanned (the decoder must see
    # it, and refuses it: the connection closes, as the general path has it).
    conn.write(event(["early"]))
    await log.wait("disconnect")
    assert len(scans.results) == before
    assert log.named("early") == []
    assert log.named("disconnect") == [("/", "parse error")]


# -- a callback that stops the lane mid-read ------------------------------------------------


async def leaving_mid_read(server: ScriptedServer, make_client: ClientFactory, log: Events) -> None:
    conn, [client, _chat] = await connected(server, make_client, log, "/chat")

    @client.on("leave")
    def leave() -> None:
        client.disconnect()

    pending = asyncio.ensure_future(client.emit_with_ack("w"))
    await conn.wait_text(b'420["w"]')
    conn.write(event(["x"]), event(["leave"]), event(["y"]), ack(["late"], 0))
    await conn.wait_text(b"41")
    with pytest.raises(Disconnected):
        await asyncio.wait_for(pending, WAIT)
    # The connection goes on for "/chat"; "/" joins again later.
    conn.write(event(["z"], nsp="/chat"))
    await log.wait("z")
    await asyncio.wait_for(client.connect(), WAIT)
    conn.write(event(["after"]))
    await log.wait("after")


async def test_a_callback_that_disconnects_mid_read(
    server: ScriptedServer, make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_lane, without, scans = await run_both(leaving_mid_read, server, make_client, monkeypatch)
    assert with_lane == without
    items, _ = with_lane
    # "y" and the ack came after "/" left: nobody saw them, then or later.
    assert items == [
        ("x", ("/",)),
        ("leave", ("/",)),
        ("disconnect", ("/", "io client disconnect")),
        ("z", ("/chat",)),
        ("after", ("/",)),
    ]
    assert scans.taken == [4, 1]


async def rejoining_mid_read(
    server: ScriptedServer, make_client: ClientFactory, log: Events
) -> None:
    conn, [client, _chat] = await connected(server, make_client, log, "/chat")

    @client.on("rejoin")
    def rejoin() -> None:
        client.disconnect()
        client.open()

    @client.on("z")
    def z() -> None:
        return None

    conn.write(event(["x"]), event(["rejoin"]), event(["y"]), event(["z"], 7))
    await log.wait("z")
    await conn.wait_text(b"437[]")


async def test_a_callback_that_leaves_and_joins_again_mid_read(
    server: ScriptedServer, make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_lane, without, scans = await run_both(rejoining_mid_read, server, make_client, monkeypatch)
    assert with_lane == without
    items, _ = with_lane
    # The socket on "/" is active again but not yet connected: the rest of the
    # read waits in its buffer for the new CONNECT's answer (the connection
    # stays open for "/chat").
    assert items == [
        ("x", ("/",)),
        ("rejoin", ("/",)),
        ("disconnect", ("/", "io client disconnect")),
        ("y", ("/",)),
        ("z", ("/",)),
    ]
    assert scans.taken == [4]


async def closing_mid_read(server: ScriptedServer, make_client: ClientFactory, log: Events) -> None:
    conn, [client] = await connected(server, make_client, log)

    @client.on("close")
    def close() -> None:
        client.manager.close()

    conn.write(event(["x"]), event(["close"]), event(["y"]))
    await log.wait("disconnect")
    await conn.wait_for(lambda: any(op == Opcode.CLOSE for op, _ in conn.received))


async def test_a_callback_that_closes_the_connection_mid_read(
    server: ScriptedServer, make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_lane, without, scans = await run_both(closing_mid_read, server, make_client, monkeypatch)
    assert with_lane == without
    items, received = with_lane
    assert items == [("x", ("/",)), ("close", ("/",)), ("disconnect", ("/", "forced close"))]
    # The Engine.IO close packet, then the close frame: nothing after it.
    assert received[-2:] == [(Opcode.TEXT, b"1"), (Opcode.CLOSE, b"\x03\xe8")]
    assert scans.taken == [3]


# -- a masked frame --------------------------------------------------------------------------


async def masked_frames(server: ScriptedServer, make_client: ClientFactory, log: Events) -> None:
    conn, _ = await connected(server, make_client, log)
    conn.write(event(["a"]), encode_frame(Opcode.TEXT, b'42["b"]', mask=MASK))
    await log.wait("disconnect")
    await conn.wait_for(lambda: any(op == Opcode.CLOSE for op, _ in conn.received))


async def test_a_masked_frame_is_refused_as_before(
    server: ScriptedServer, make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_lane, without, scans = await run_both(masked_frames, server, make_client, monkeypatch)
    assert with_lane == without
    items, received = with_lane
    # The general parser delivers the event before the violation in the same
    # read (as Node's ws does), then fails the connection.
    assert items == [("a", ("/",)), ("disconnect", ("/", "transport close"))]
    # RFC 6455 section 5.1: the client fails the connection, 1002.
    opcode, payload = received[-1]
    assert opcode == Opcode.CLOSE and decode_close_payload(payload)[0] == 1002
    assert scans.taken == []


async def test_a_read_of_one_masked_frame_is_refused(
    server: ScriptedServer, make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    scans = Scans(monkeypatch, True)
    log = Events()
    conn, _ = await connected(server, make_client, log)
    conn.write(encode_frame(Opcode.TEXT, b'431["x"]', mask=MASK))
    await log.wait("disconnect")
    assert scans.results[-1] is None
    assert log.items == [("disconnect", ("/", "transport close"))]


# -- when the lane is open --------------------------------------------------------------------


async def test_the_lane_opens_with_the_main_namespace_only(
    server: ScriptedServer, make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    scans = Scans(monkeypatch, True)
    log = Events()
    client = make_client(server.url + "/chat", transports=["websocket"], reconnection=False)
    client.on_any(lambda name, *args: log.add(name, *args))
    await asyncio.wait_for(client.connect(), WAIT)
    conn = await server.next()
    conn.write(event(["a"], nsp="/chat"))
    await log.wait("a")
    # "/" is not connected: nothing is scanned.
    assert scans.results == []
    main = client.manager.socket("/")
    main.on_any(lambda name, *args: log.add(name, *args))
    await asyncio.wait_for(main.connect(), WAIT)
    conn.write(event(["b"]))
    await log.wait("b")
    assert scans.taken == [1]


async def test_the_lane_stops_and_starts_again_with_the_connection(
    server: ScriptedServer, make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    scans = Scans(monkeypatch, True)
    client = make_client(
        server.url, transports=["websocket"], reconnection_delay=0, randomization_factor=0
    )
    events = watch(client)
    await asyncio.wait_for(client.connect(), WAIT)
    first = await server.next()
    first.write(event(["one"]))
    await events.wait("one")
    first.writer.close()
    await events.wait("disconnect")
    # Reconnected on a new WebSocket: the lane again, once "/" is connected.
    second = await server.next()
    await events.wait("connect", 2)
    second.write(event(["two"]))
    await events.wait("two")
    assert scans.taken == [1, 1]


@pytest.mark.parametrize("transports", [["polling"], ["polling", "websocket"]])
async def test_the_lane_needs_a_websocket(
    transports: list[str], make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    scans = Scans(monkeypatch, True)
    peer = SocketwirePeer()
    await peer.start()
    try:
        client = make_client(peer.url, transports=transports)
        upgraded = asyncio.Event()
        client.manager.on("upgrade", lambda name: upgraded.set())
        await asyncio.wait_for(client.connect(), WAIT)
        assert await client.emit_with_ack("echo", 1) == 1
        if len(transports) == 1:
            assert scans.results == []
            return
        await asyncio.wait_for(upgraded.wait(), WAIT)
        assert await client.emit_with_ack("echo", 2) == 2
        assert scans.taken[-1:] == [1]
    finally:
        await peer.stop()


async def test_no_lane_with_another_parser(
    make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("msgpack")
    scans = Scans(monkeypatch, True)
    peer = SocketwirePeer(parser="msgpack")
    await peer.start()
    try:
        client = make_client(peer.url, transports=["websocket"], parser="msgpack")
        await asyncio.wait_for(client.connect(), WAIT)
        assert await client.emit_with_ack("echo", 1) == 1
        assert scans.results == []
    finally:
        await peer.stop()


# -- against Node's socket.io ------------------------------------------------------------------


async def node_traffic(peer: NodePeer, make_client: ClientFactory) -> list[Any]:
    """A burst of events and acks from Node, a binary event and another namespace
    among them; what the client saw, in order."""
    client = make_client(peer.url, transports=["websocket"], reconnection=False)
    chat = client.manager.socket("/chat")
    log = Events()
    for sock in (client, chat):
        sock.on_any(lambda name, *args, nsp=sock.namespace: log.add(name, nsp, *args))
    await asyncio.wait_for(client.connect(), WAIT)
    await asyncio.wait_for(chat.connect(), WAIT)
    count = 40
    for i in range(count):
        if i == 10:
            # Node sends the bytes as a binary event (a head, then an attachment).
            client.emit("echo_event", "bin", b"\x00\x01", i, callback=record_ack(log, f"bin{i}"))
        if i == 20:
            chat.emit("echo_event", "chat", i, callback=lambda: log.add("chat-ack"))
        client.emit("echo_event", "news", i, callback=record_ack(log, f"news{i}"))
        client.emit("echo", i, {"n": i}, callback=record_ack(log, f"echo{i}"))
    await log.wait("ack", 2 * count + 1)
    await log.wait("chat-ack")
    return log.items


async def test_against_node_the_lane_reads_what_the_general_path_reads(
    node_peer: NodePeer, make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = []
    taken = []
    for lane in (True, False):
        with monkeypatch.context() as m:
            scans = Scans(m, lane)
            runs.append(await node_traffic(node_peer, make_client))
            taken.append(sum(scans.taken))
    # Node answers each namespace in the order of its emits (each event before
    # its ack); the two namespaces may interleave differently from run to run.
    main = [[(n, a) for n, a in run if n not in ("chat", "chat-ack")] for run in runs]
    assert main[0] == main[1]
    expected: list[Any] = []
    for i in range(40):
        if i == 10:
            expected += [("bin", ("/", b"\x00\x01", i)), ("ack", (f"bin{i}",))]
        expected += [("news", ("/", i)), ("ack", (f"news{i}",))]
        expected += [("ack", (f"echo{i}", i, {"n": i}))]
    assert main[0] == expected
    for run in runs:
        assert [(n, a) for n, a in run if n in ("chat", "chat-ack")] == [
            ("chat", ("/chat", 20)),
            ("chat-ack", ()),
        ]
    # With the lane, reads took it; without, none did.
    assert taken[0] > 0 and taken[1] == 0
