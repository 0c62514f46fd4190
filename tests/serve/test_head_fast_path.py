"""The built-in server's compiled reading of a whole request head (``socketwire.http.head``).

A real ``socketwire.Server`` on 127.0.0.1 (port 0) and raw sockets. The scanner
reads a head only on a connection with nothing under way; these tests check
what that must not change: a body that looks like a request stays a body,
pipelined bytes after a scanned head are still read, a keep-alive connection
goes on, WebSocket bytes sent with the handshake reach the WebSocket, and a head
the scanner leaves alone is answered as before. ``scanned`` counts the heads the
scanner read, so that each test knows which reader answered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

import socketwire
from socketwire.http.head import Head
from socketwire.serve import connection
from tests.conftest import ServerStarter
from tests.integration.rawclient import host_port, http_request, parse_head
from tests.waits import WAIT

POLLING = b"/socket.io/?EIO=4&transport=polling"
pytestmark = pytest.mark.skipif(
    connection._scan_head is None, reason="socketwire._speedups not built"
)


@pytest.fixture
def scanned(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Head]]:
    """The heads the compiled scanner read, in order."""
    real = connection._scan_head
    assert real is not None
    heads: list[Head] = []

    def counting(data: bytes) -> Head | None:
        head = real(data)
        if head is not None:
            heads.append(head)
        return head

    monkeypatch.setattr(connection, "_scan_head", counting)
    yield heads


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
    status, headers = parse_head(head[:-4])
    body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), WAIT)
    return status, body


async def open_raw(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = host_port(url)
    return await asyncio.open_connection(host, port)


async def test_a_polling_handshake_is_read_in_one_step_and_keep_alive_goes_on(
    start_server: ServerStarter, scanned: list[Head]
) -> None:
    url = await start_server(socketwire.Server())
    reader, writer = await open_raw(url)
    try:
        writer.write(b"GET " + POLLING + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        status, body = await read_answer(reader)
        assert status == 200 and body.startswith(b'0{"sid":"')
        # The next request on the same connection, once the first is answered.
        writer.write(b"GET " + POLLING + b"&t=abc HTTP/1.1\r\nHost: x\r\n\r\n")
        status, second = await read_answer(reader)
        assert status == 200 and second.startswith(b'0{"sid":"') and second != body
    finally:
        writer.close()
    assert [h[1] for h in scanned] == [POLLING.decode(), POLLING.decode() + "&t=abc"]


async def test_a_body_that_looks_like_a_request_stays_a_body(
    start_server: ServerStarter, scanned: list[Head]
) -> None:
    """The body of a POST arrives in a read of its own (after ``100 Continue``)
    and is a whole GET head: it is read as the POST's body, never as a request."""
    url = await start_server(socketwire.Server())
    reader, writer = await open_raw(url)
    smuggled = b"GET " + POLLING + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    try:
        writer.write(
            b"POST " + POLLING + b"&sid=nope HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            b"Content-Length: %d\r\n\r\n" % len(smuggled)
        )
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(smuggled)
        status, _ = await read_answer(reader)
        assert status == 400  # the POST's answer: an unknown session
        # One answer only: the next is that of the request sent now.
        writer.write(b"GET /socket.io/?EIO=3&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n")
        status, body = await read_answer(reader)
        assert status == 400 and b"Unsupported protocol version" in body
    finally:
        writer.close()
    # The body was never scanned; the last GET was (the connection was idle).
    assert [h[1] for h in scanned] == ["/socket.io/?EIO=3&transport=polling"]


async def test_pipelined_requests_after_a_scanned_head_are_answered_in_order(
    start_server: ServerStarter, scanned: list[Head]
) -> None:
    url = await start_server(socketwire.Server())
    reader, writer = await open_raw(url)
    get = b"GET " + POLLING + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    bad = b"GET /socket.io/?EIO=3&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n"
    try:
        writer.write(get + bad + get)
        answers = [await read_answer(reader) for _ in range(3)]
    finally:
        writer.close()
    assert [status for status, _ in answers] == [200, 400, 200]
    assert answers[0][1].startswith(b"0{") and answers[2][1].startswith(b"0{")
    assert answers[0][1] != answers[2][1]  # two sessions
    assert len(scanned) == 1  # the first; the rest of the read went to httptools


async def test_websocket_bytes_sent_with_the_handshake_reach_the_websocket(
    start_server: ServerStarter, scanned: list[Head]
) -> None:
    sio = socketwire.Server()
    connected = asyncio.get_running_loop().create_future()

    @sio.on("connect")
    async def on_connect(socket: socketwire.Socket) -> None:
        connected.set_result(socket.id)

    url = await start_server(sio)
    reader, writer = await open_raw(url)
    mask = b"\x01\x02\x03\x04"
    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(b"40"))
    try:
        writer.write(
            b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\n"
            b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
            + bytes((0x81, 0x80 | len(payload)))
            + mask
            + payload
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
        assert head.startswith(b"HTTP/1.1 101 ")
        assert b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head
        await asyncio.wait_for(connected, WAIT)
    finally:
        writer.close()
    assert len(scanned) == 1 and scanned[0][5] is True


@pytest.mark.parametrize(
    ("head", "scanned_as", "closes"),
    [
        # HTTP/1.0 asking to stay open: httptools' to read.
        (b" HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n", [], False),
        (b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", [(False, False)], True),
        (b" HTTP/1.1\r\nHost: x\r\n\r\n", [(True, False)], False),
    ],
)
async def test_keep_alive_is_as_the_head_asks(
    start_server: ServerStarter,
    scanned: list[Head],
    head: bytes,
    scanned_as: list[tuple[bool, bool]],
    closes: bool,
) -> None:
    url = await start_server(socketwire.Server())
    reader, writer = await open_raw(url)
    try:
        writer.write(b"GET " + POLLING + head)
        status, body = await read_answer(reader)
        assert status == 200 and body.startswith(b"0{")
        if closes:
            assert await asyncio.wait_for(reader.read(), WAIT) == b""
        else:
            # Still open: a second request on the connection is answered.
            writer.write(b"GET " + POLLING + head)
            status, second = await read_answer(reader)
            assert status == 200 and second.startswith(b"0{") and second != body
    finally:
        writer.close()
    assert [(h[4], h[5]) for h in scanned][:1] == scanned_as


@pytest.mark.parametrize(
    ("after", "refused"),
    [(b"GET " + POLLING + b" HTTP/1.1\r\nHost: x\r\n\r\n", True), (b"\r\n\r\n", False)],
)
async def test_nothing_is_read_after_a_request_that_closes(
    start_server: ServerStarter, scanned: list[Head], after: bytes, refused: bool
) -> None:
    """A request after ``Connection: close`` is refused (400, as httptools
    refuses it) and never reaches the server; empty lines are tolerated. The
    first request is parked (a session's GET), so an answer could still be
    written."""
    sio = socketwire.Server()
    sessions: list[object] = []
    sio.engine.on("connection", sessions.append)
    url = await start_server(sio)
    reader, writer = await open_raw(url)
    try:
        writer.write(b"GET " + POLLING + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        status, body = await read_answer(reader)
        sid = body.split(b'"sid":"')[1].split(b'"')[0]
        get = b"GET " + POLLING + b"&sid=" + sid + b" HTTP/1.1\r\nHost: x\r\n"
        writer.write(get + b"Connection: close\r\n\r\n" + after)
        if refused:
            assert await read_answer(reader) == (400, b"Bad Request")
        else:
            # Parked until the session ends: its close packet, sent on another
            # connection, answers it.
            closing = await http_request(
                url, "POST", f"{POLLING.decode()}&sid={sid.decode()}", body="1"
            )
            assert closing.status == 200
            status, _ = await read_answer(reader)
            assert status == 200
        assert await asyncio.wait_for(reader.read(), WAIT) == b""
    finally:
        writer.close()
    # The handshake alone made a session.
    assert len(sessions) == 1
    assert len(scanned) == 2
