"""The client's WebSocket control frames on the wire (RFC 6455 sections 5.5 and 7).

A scripted server on 127.0.0.1 answers the opening handshake, then sends exactly
the frames each test names and reads what the client writes back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from socketwire.client.websocket import WebSocketConnection, connect_websocket
from socketwire.core.websocket.frames import (
    FrameReader,
    Opcode,
    decode_close_payload,
    encode_close_payload,
    encode_frame,
)
from socketwire.core.websocket.handshake import check_request, server_response
from socketwire.errors import LocalProtocolError

from .helpers import WAIT


class ScriptedPeer:
    """The server end: frames in from the client (masked), frames out (unmasked)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.frames = FrameReader(max_message_size=1 << 20, client_side=False)
        self.pending: list[tuple[int, bytes]] = []

    async def next_frame(self) -> tuple[int, bytes]:
        """The next frame the client sent (raises ``EOFError`` at the end)."""

        async def read() -> tuple[int, bytes]:
            while not self.pending:
                data = await self.reader.read(65536)
                if not data:
                    raise EOFError("the client ended the connection")
                self.pending.extend(self.frames.feed(data))
            return self.pending.pop(0)

        return await asyncio.wait_for(read(), WAIT)

    async def wait_eof(self) -> None:
        """Until the client ends the TCP connection (what it sends meanwhile is kept)."""

        async def read() -> None:
            while data := await self.reader.read(65536):
                self.pending.extend(self.frames.feed(data))

        await asyncio.wait_for(read(), WAIT)

    def send(self, opcode: int, payload: bytes) -> None:
        self.writer.write(encode_frame(opcode, payload))


class Rig:
    def __init__(self) -> None:
        self.peers: asyncio.Queue[ScriptedPeer] = asyncio.Queue()
        self.writers: list[asyncio.StreamWriter] = []
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines[1:] if line)
        }
        writer.write(server_response(check_request("GET", headers)))
        await self.peers.put(ScriptedPeer(reader, writer))

    async def connect(self) -> tuple[WebSocketConnection, ScriptedPeer, list[tuple[int, str]]]:
        ws = await connect_websocket(
            "127.0.0.1", self.port, "/", host_header=f"127.0.0.1:{self.port}", timeout=WAIT
        )
        closes: list[tuple[int, str]] = []
        ws.set_handlers(
            lambda opcode, payload: None, lambda code, reason: closes.append((code, reason))
        )
        peer = await asyncio.wait_for(self.peers.get(), WAIT)
        return ws, peer, closes


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    rig = Rig()
    server = await asyncio.start_server(rig.handle, "127.0.0.1", 0)
    rig.port = server.sockets[0].getsockname()[1]
    try:
        yield rig
    finally:
        for writer in rig.writers:
            writer.close()
        server.close()
        with contextlib.suppress(Exception):
            await server.wait_closed()


async def test_a_ping_gets_a_masked_pong_with_its_payload(rig: Rig) -> None:
    ws, peer, _ = await rig.connect()
    peer.send(Opcode.PING, b"are you there")
    # The scripted peer's reader requires masking (section 5.3): it read a masked pong.
    assert await peer.next_frame() == (Opcode.PONG, b"are you there")
    assert ws.open
    ws.abort()


async def test_the_servers_close_is_echoed_then_the_server_ends_tcp(rig: Rig) -> None:
    ws, peer, closes = await rig.connect()
    peer.send(Opcode.CLOSE, encode_close_payload(4000, "bye"))
    # Section 5.5.1: the same code comes back.
    opcode, payload = await peer.next_frame()
    assert (opcode, decode_close_payload(payload)) == (Opcode.CLOSE, (4000, ""))
    assert closes == [(4000, "bye")]
    assert not ws.open
    # Section 7.1.1: the client leaves ending TCP to the server.
    assert not ws.closed_event.is_set()
    peer.writer.close()
    await asyncio.wait_for(ws.closed_event.wait(), WAIT)
    assert closes == [(4000, "bye")]


async def test_a_close_without_status_is_answered_without_status(rig: Rig) -> None:
    ws, peer, closes = await rig.connect()
    peer.send(Opcode.CLOSE, b"")
    assert await peer.next_frame() == (Opcode.CLOSE, b"")
    assert closes == [(1005, "")]
    peer.writer.close()
    await asyncio.wait_for(ws.closed_event.wait(), WAIT)


async def test_a_masked_frame_from_the_server_fails_the_connection_1002(rig: Rig) -> None:
    ws, peer, closes = await rig.connect()
    peer.writer.write(encode_frame(Opcode.TEXT, b"masked", mask=b"\x01\x02\x03\x04"))
    # Section 7.1.7: a close frame with the code, then the client ends TCP itself.
    await peer.wait_eof()
    opcode, payload = peer.pending[0]
    assert opcode == Opcode.CLOSE and decode_close_payload(payload)[0] == 1002
    await asyncio.wait_for(ws.closed_event.wait(), WAIT)
    assert [code for code, _ in closes] == [1002]


async def test_local_close_waits_for_the_answer_and_the_end(rig: Rig) -> None:
    ws, peer, closes = await rig.connect()
    ws.close(1000, "done")
    opcode, payload = await peer.next_frame()
    assert (opcode, decode_close_payload(payload)) == (Opcode.CLOSE, (1000, "done"))
    # Nothing is sent after the close frame (section 5.5.1).
    ws.send_text(b"too late")
    peer.send(Opcode.CLOSE, encode_close_payload(1000))
    peer.writer.close()
    await asyncio.wait_for(ws.closed_event.wait(), WAIT)
    await peer.wait_eof()
    assert peer.pending == []
    assert closes == []  # a local close does not call on_close


async def test_a_close_code_that_cannot_be_sent_is_refused_at_once(rig: Rig) -> None:
    ws, peer, _ = await rig.connect()
    with pytest.raises(LocalProtocolError):
        ws.close(1006)
    assert ws.open
    ws.send_text(b"still open")
    assert await peer.next_frame() == (Opcode.TEXT, b"still open")
    ws.abort()
