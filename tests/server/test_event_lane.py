"""The events lane: a read of Socket.IO events on "/" decoded at once and handed to
the socket (``EngineSocket.set_lane``, ``WebSocketConnection.feed``, ``core.wire``).

The lane must change nothing but the cost. Each scenario runs the same reads on
a real server stack (``HttpConnection`` on a transport that records its writes)
twice: with the lane, and with the scan turned off so that every read takes the
general path; what the client receives and what the handlers saw must be the
same. Other tests check when the lane is in use, and that a connection still
frees itself.
"""

from __future__ import annotations

import asyncio
import gc
import json
import re
import weakref
from collections.abc import Callable
from typing import Any

import pytest

import socketwire
import socketwire.serve.websocket as ws_module
import socketwire.server.socket as socket_module
from socketwire.core.socketio.packet import PacketDecoder
from socketwire.core.websocket.frames import FrameReader, Opcode, encode_frame
from socketwire.serve import HttpTimeouts, make_protocol_factory
from socketwire.serve.connection import HttpConnection
from socketwire.serve.websocket import WebSocketConnection
from socketwire.server.connection import Connection
from tests.transports import Transport

MASK = b"\x11\x22\x33\x44"
SID = re.compile(rb'"sid":"[^"]*"')
UPGRADE = (
    b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: localhost\r\n"
    b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
)


def frame(text: bytes, opcode: int = Opcode.TEXT) -> bytes:
    return encode_frame(opcode, text, mask=MASK)


def event(data: list[Any], ack_id: int | None = None, nsp: str = "") -> bytes:
    head = b"42" + (nsp.encode() + b"," if nsp else b"")
    if ack_id is not None:
        head += b"%d" % ack_id
    return frame(head + json.dumps(data).encode())


class Client:
    """One connection of the server under test, driven byte by byte."""

    def __init__(self, sio: socketwire.Server) -> None:
        factory = make_protocol_factory(sio.handle_request, 1 << 20, 1 << 22, HttpTimeouts())
        self.transport = Transport()
        conn = factory()
        conn.connection_made(self.transport)
        conn.data_received(UPGRADE)
        self.http: weakref.ref[HttpConnection] = weakref.ref(conn)
        # The transport's protocol is now the WebSocket: reads go to it directly.
        self.ws: WebSocketConnection = self.transport.protocol
        assert isinstance(self.ws, WebSocketConnection)

    def send(self, *frames: bytes) -> None:
        """One read holding ``frames``."""
        self.ws.data_received(b"".join(frames))

    def received(self) -> list[tuple[int, bytes]]:
        """Every frame written so far (after the handshake response), ids masked."""
        data = b"".join(self.transport.writes)
        data = data[data.index(b"\r\n\r\n") + 4 :]
        frames = FrameReader(max_message_size=1 << 22, client_side=True).feed(data)
        return [(opcode, SID.sub(b'"sid":"-"', payload)) for opcode, payload in frames]


Scenario = Callable[[socketwire.Server, list[Any]], None]


def connection(sio: socketwire.Server) -> Connection:
    """The Socket.IO connection of the server's only Engine.IO session."""
    engine = next(iter(sio.engine.clients.values()))
    conn = getattr(engine._on_message, "__self__", None)
    assert isinstance(conn, Connection)
    return conn


def general_path(m: pytest.MonkeyPatch) -> None:
    """Turn the lane and the framed acks off: every read and every ack goes the
    general way."""
    m.setattr(ws_module, "scan_events", lambda data, size, utf8=True: None)
    m.setattr(socket_module, "ack_frame", lambda ack_id, body: None)


def echo_server(sio: socketwire.Server, seen: list[Any]) -> None:
    @sio.on("echo")
    def echo(socket: socketwire.Socket, *args: Any) -> tuple[Any, ...]:
        seen.append(("echo", args))
        return args

    @sio.on("note")
    def note(socket: socketwire.Socket, *args: Any) -> None:
        seen.append(("note", args))

    @sio.on("leave")
    def leave(socket: socketwire.Socket) -> str:
        seen.append("leave")
        socket.disconnect()
        return "bye"

    @sio.on("close")
    def close(socket: socketwire.Socket) -> None:
        seen.append("close")
        socket.disconnect(close=True)

    @sio.on("fail")
    def fail(socket: socketwire.Socket) -> None:
        seen.append("fail")
        raise RuntimeError("handler failure (expected by the test)")

    @sio.on("listen")
    def listen(socket: socketwire.Socket) -> None:
        seen.append("listen")
        socket.conn.engine.on("message", lambda data, binary: seen.append(("raw", data)))

    @sio.on("binary")
    def binary(socket: socketwire.Socket) -> Any:
        return {"b": b"\x00\x01"}

    @sio.on("unsendable")
    def unsendable(socket: socketwire.Socket) -> Any:
        return object()

    @sio.on("keys")
    def keys(socket: socketwire.Socket) -> Any:
        return {1: "one", "two": 2}

    @sio.on("disconnect")
    def disconnect(socket: socketwire.Socket, reason: str) -> None:
        seen.append(("disconnect", reason))


def run(
    reads: list[list[bytes]], lane: bool, monkeypatch: pytest.MonkeyPatch, **options: Any
) -> tuple[list[tuple[int, bytes]], list[Any], list[int]]:
    """The frames the client got, what the handlers saw, and the writes per read."""
    with monkeypatch.context() as m:
        if not lane:
            general_path(m)
        sio = socketwire.Server(**options)
        seen: list[Any] = []
        echo_server(sio, seen)
        client = Client(sio)
        if not lane:
            # The first CONNECT through the decoder too (see Connection._on_message).
            connection(sio).decoder = PacketDecoder()
        client.send(frame(b"40"))
        writes = []
        for read in reads:
            before = len(client.transport.writes)
            client.send(*read)
            writes.append(len(client.transport.writes) - before)
        return client.received(), seen, writes


SCENARIOS: dict[str, list[list[bytes]]] = {
    "one event per read": [[event(["echo", {"a": 1}], 1)], [event(["echo", 2], 2)]],
    "a burst": [[event(["echo", i], i) for i in range(5)]],
    "without acks": [[event(["note", 1]), event(["note", 2]), event(["echo", 3])]],
    "no handler": [[event(["nobody", 1], 4), event(["echo", 5], 5)]],
    "a numeric name": [[event([7, "x"], 1), event(["echo"], 2)]],
    "leaving the namespace mid-burst": [
        [event(["echo", 1], 1), event(["leave"], 2), event(["echo", 3], 3)]
    ],
    "closing mid-burst": [[event(["echo", 1], 1), event(["close"]), event(["echo", 3], 3)]],
    "a failing handler": [[event(["fail"], 1), event(["echo", 2], 2)]],
    "a message listener added mid-burst": [
        [event(["listen"]), event(["echo", 1], 1), event(["note", 2])],
        [event(["echo", 3], 3)],
    ],
    "a binary event awaiting its attachment": [
        [frame(b'451-["echo",{"_placeholder":true,"num":0}]')],
        [event(["echo", 1], 1)],
    ],
    "a binary event completed": [
        [frame(b'451-1["echo",{"_placeholder":true,"num":0}]')],
        [frame(b"\x01\x02", Opcode.BINARY)],
        [event(["echo", 2], 2)],
    ],
    "events and a ping": [[event(["echo", 1], 1), frame(b"", Opcode.PING), event(["echo", 2], 2)]],
    "another namespace": [[frame(b"40/chat,")], [event(["echo", 1], 1, "/chat")]],
    "a long id": [[event(["echo", 1], 10**25)]],
    "a reserved name": [[event(["connect"], 1)]],
    "a partial frame": [
        [event(["echo", 1], 1), event(["echo", 2], 2)[:7]],
        [event(["echo", 2], 2)[7:]],
    ],
    "a large ack": [[event(["echo", "x" * 70000], 9)]],
    "acks of every size": [
        [event(["echo", "y" * n], n) for n in (0, 110, 111, 112, 113, 200, 65520, 65540)]
    ],
    "an ack with binary": [[event(["binary"], 1), event(["echo", 2], 2)]],
    "an ack that cannot be sent": [[event(["unsendable"], 1), event(["echo", 2], 2)]],
    "an ack with non-string keys": [[event(["keys"], 1)]],
    "an id too long for a frame": [[event(["echo", 1], 2**63)], [event(["echo", 1], 2**63 - 1)]],
    "a close frame": [[event(["echo", 1], 1), frame(b"\x03\xe8", Opcode.CLOSE)]],
    "a second CONNECT": [[frame(b"40")], [event(["echo", 1], 1)]],
    "a CONNECT with auth after leaving": [
        [frame(b"41")],
        [frame(b'40{"token":"x"}')],
        [event(["echo", 1], 1)],
    ],
}


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_the_lane_changes_nothing_on_the_wire(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = SCENARIOS[name]
    with_lane = run(reads, True, monkeypatch)
    without = run(reads, False, monkeypatch)
    assert with_lane[0] == without[0]
    assert with_lane[1] == without[1]
    # As many writes either way (the replies of a burst leave together).
    assert with_lane[2] == without[2]


async def test_a_burst_is_answered_in_order_in_one_write(monkeypatch: pytest.MonkeyPatch) -> None:
    frames, seen, writes = run([[event(["echo", i], i) for i in range(5)]], True, monkeypatch)
    assert writes == [1]
    texts = [payload for opcode, payload in frames if opcode == Opcode.TEXT]
    assert texts[-5:] == [b"43%d[%d]" % (i, i) for i in range(5)]
    assert seen == [("echo", (i,)) for i in range(5)]


async def test_with_a_rate_limit_and_middlewares(monkeypatch: pytest.MonkeyPatch) -> None:
    reads = [[event(["echo", i], i) for i in range(4)]]

    def server(lane: bool) -> tuple[Any, ...]:
        with monkeypatch.context() as m:
            if not lane:
                general_path(m)
            sio = socketwire.Server(event_rate_limit=(2, 60))
            seen: list[Any] = []
            echo_server(sio, seen)

            @sio.on("connection")
            def connection(socket: socketwire.Socket) -> None:
                socket.use(lambda packet: seen.append(("middleware", list(packet))))

            client = Client(sio)
            client.send(frame(b"40"))
            for read in reads:
                client.send(*read)
            return client.received(), seen

    assert server(True) == server(False)


async def test_the_lane_is_used_on_the_main_namespace_only(monkeypatch: pytest.MonkeyPatch) -> None:
    sio = socketwire.Server()
    echo_server(sio, [])
    client = Client(sio)
    assert client.ws.lane is None
    client.send(frame(b"40/chat,"))
    assert client.ws.lane is None
    client.send(frame(b"40"))
    assert client.ws.lane is not None
    scanned: list[bytes] = []
    real = ws_module.scan_events

    def spy(data: bytes, size: int, utf8: bool = True) -> Any:
        scanned.append(data)
        return real(data, size, utf8)

    monkeypatch.setattr(ws_module, "scan_events", spy)
    client.send(event(["echo", 1], 1))
    assert scanned
    # Leaving "/" ends it; so does the end of the connection.
    client.send(frame(b"41"))
    assert client.ws.lane is None
    client.send(frame(b"40"))
    assert client.ws.lane is not None
    client.ws.connection_lost(None)
    assert client.ws.lane is None


async def test_no_lane_with_another_parser() -> None:
    pytest.importorskip("msgpack")
    sio = socketwire.Server(parser="msgpack")
    client = Client(sio)
    assert client.ws.lane is None


async def test_a_closed_connection_frees_itself() -> None:
    sio = socketwire.Server()
    echo_server(sio, [])
    client = Client(sio)
    client.send(frame(b"40"))
    client.send(event(["echo", 1], 1), event(["echo", 2], 2))
    # The HTTP side is gone once the transport was handed over.
    assert client.http() is None
    engine = weakref.ref(next(iter(sio.engine.clients.values())))
    socket = weakref.ref(next(iter(sio.sockets.sockets.values())))
    gc.collect()
    gc.disable()
    try:
        client.ws.connection_lost(None)
        client.transport.protocol = None
        del client
        await asyncio.sleep(0)
        # Freed by reference counting: no cycle was left for the collector.
        assert engine() is None
        assert socket() is None
    finally:
        gc.enable()


async def test_a_plain_connection_keeps_no_decoder_and_no_pending_set() -> None:
    sio = socketwire.Server()
    echo_server(sio, [])
    sio.of("/chat")
    client = Client(sio)
    conn = connection(sio)
    client.send(frame(b"40"))
    client.send(event(["echo", 1], 1), event(["echo", 2], 2))
    # The CONNECT and the events on "/" needed no decoder; nothing is pending.
    assert conn.decoder is None
    assert conn.pending is None
    # The first packet that needs one creates it.
    client.send(frame(b"40/chat,"))
    assert conn.decoder is not None
    assert set(conn.sockets) == {"/", "/chat"}
