"""The built-in server's WebSocket control frames on the wire (RFC 6455 sections 5.5, 7).

A raw client (``rawclient.WebSocketClient``) on a real socket sends the frames
each test names; the server's answers are read frame by frame, control frames
included.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

import socketwire
from socketwire.core.websocket.frames import (
    FrameReader,
    Opcode,
    decode_close_payload,
    encode_close_payload,
    encode_frame,
)
from tests.conftest import ServerStarter
from tests.integration.rawclient import WebSocketClient
from tests.waits import WAIT

WS_TARGET = "/socket.io/?EIO=4&transport=websocket"


class Peer:
    """Every frame the server sends, control frames included, in order."""

    def __init__(self, ws: WebSocketClient) -> None:
        self.ws = ws
        self.frames = FrameReader(max_message_size=1 << 20, client_side=True)
        self.pending: list[tuple[int, bytes]] = []
        self.eof = False

    async def next_frame(self) -> tuple[int, bytes]:
        async def read() -> tuple[int, bytes]:
            while not self.pending:
                data = await self.ws.reader.read(65536)
                if not data:
                    raise EOFError("the server ended the connection")
                self.pending.extend(self.frames.feed(data))
            return self.pending.pop(0)

        return await asyncio.wait_for(read(), WAIT)

    async def next_text(self) -> bytes:
        opcode, payload = await self.next_frame()
        assert opcode == Opcode.TEXT, (opcode, payload)
        return payload

    async def wait_eof(self) -> None:
        async def read() -> None:
            while data := await self.ws.reader.read(65536):
                self.pending.extend(self.frames.feed(data))

        await asyncio.wait_for(read(), WAIT)

    def send(self, opcode: int, payload: bytes) -> None:
        self.ws.send_raw(self.frame(opcode, payload))

    @staticmethod
    def frame(opcode: int, payload: bytes) -> bytes:
        return encode_frame(opcode, payload, mask=b"\x11\x22\x33\x44")


class Server:
    def __init__(self, sio: socketwire.Server, url: str) -> None:
        self.sio = sio
        self.url = url
        self.disconnects: asyncio.Queue[str] = asyncio.Queue()
        self.peers: list[Peer] = []

        @sio.on("disconnect")
        def disconnect(socket: socketwire.Socket, reason: str) -> None:
            self.disconnects.put_nowait(reason)

    async def connect(self) -> Peer:
        """A WebSocket session with the main namespace connected."""
        peer = Peer(await WebSocketClient.connect(self.url, WS_TARGET))
        self.peers.append(peer)
        assert (await peer.next_text()).startswith(b"0{")
        peer.send(Opcode.TEXT, b"40")
        assert (await peer.next_text()).startswith(b"40{")
        return peer

    async def disconnect_reason(self) -> str:
        return await asyncio.wait_for(self.disconnects.get(), WAIT)


@pytest.fixture
async def server(start_server: ServerStarter) -> AsyncIterator[Server]:
    sio = socketwire.Server()
    rig = Server(sio, await start_server(sio))
    yield rig
    for peer in rig.peers:
        await peer.ws.aclose()


async def test_a_ping_gets_a_pong_with_its_payload(server: Server) -> None:
    peer = await server.connect()
    peer.send(Opcode.PING, b"are you there")
    assert await peer.next_frame() == (Opcode.PONG, b"are you there")
    # Several frames in one read: the pong and the replies leave together.
    peer.ws.send_raw(
        peer.frame(Opcode.PING, b"1")
        + peer.frame(Opcode.TEXT, b"40/x,")
        + peer.frame(Opcode.PONG, b"")
    )
    frames = [await peer.next_frame(), await peer.next_frame()]
    assert (Opcode.PONG, b"1") in frames
    assert server.sio.engine.clients


async def test_a_close_is_echoed_and_the_server_ends_tcp(server: Server) -> None:
    peer = await server.connect()
    peer.send(Opcode.CLOSE, encode_close_payload(1001, "going away"))
    opcode, payload = await peer.next_frame()
    # Section 5.5.1: the code comes back; section 7.1.1: the server ends TCP.
    assert (opcode, decode_close_payload(payload)) == (Opcode.CLOSE, (1001, ""))
    await peer.wait_eof()
    assert await server.disconnect_reason() == "transport close"


async def test_a_close_without_status_is_answered_without_status(server: Server) -> None:
    peer = await server.connect()
    peer.send(Opcode.CLOSE, b"")
    assert await peer.next_frame() == (Opcode.CLOSE, b"")
    await peer.wait_eof()
    assert await server.disconnect_reason() == "transport close"


async def test_messages_before_the_close_in_the_same_read_are_delivered(server: Server) -> None:
    peer = await server.connect()
    # Socket.IO's namespace disconnect and the close frame arrive together.
    peer.ws.send_raw(peer.frame(Opcode.TEXT, b"41") + peer.frame(Opcode.CLOSE, b""))
    assert await server.disconnect_reason() == "client namespace disconnect"
    assert await peer.next_frame() == (Opcode.CLOSE, b"")
    await peer.wait_eof()
    assert peer.pending == []


async def test_a_close_reason_that_is_not_utf8_fails_1007(server: Server) -> None:
    peer = await server.connect()
    peer.send(Opcode.CLOSE, (1000).to_bytes(2, "big") + b"\xff")
    opcode, payload = await peer.next_frame()
    assert opcode == Opcode.CLOSE and decode_close_payload(payload)[0] == 1007
    await peer.wait_eof()
    assert await server.disconnect_reason() == "transport error"


async def test_a_server_side_close_sends_1000_then_ends_tcp(server: Server) -> None:
    peer = await server.connect()
    (socket,) = server.sio.sockets.sockets.values()
    socket.disconnect(close=True)
    frames = [await peer.next_frame(), await peer.next_frame()]
    assert frames[0] == (Opcode.TEXT, b"41")
    assert frames[1][0] == Opcode.CLOSE and decode_close_payload(frames[1][1])[0] == 1000
    await peer.wait_eof()
