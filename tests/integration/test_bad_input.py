"""Bad input against a real ``socketwire.Server`` on 127.0.0.1.

Every kind of bad input gets the answer of the Engine.IO v4 / Socket.IO v5 spec
(or of Node's engine.io / socket.io where the spec says nothing), the server logs
a line for it, nothing is logged at ERROR (no unhandled exception), and the other
clients stay untouched: a healthy client, connected *before* the bad input,
still completes an ack round trip after it.

All clients are raw (``tests/integration/rawclient.py``): they send exactly the
bytes a test asks for. Waits are bounded and on events (frames, closes,
responses, handler calls), never on a fixed sleep.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import socketwire
from socketwire.core.websocket.frames import Opcode, apply_mask
from tests.conftest import ServerStarter, run_node
from tests.integration.rawclient import (
    HttpResponse,
    WebSocketClient,
    WebSocketClosed,
    build_request,
    http_request,
    parse_response,
    send_raw,
)
from tests.waits import WAIT as TIMEOUT

WS_QUERY = "EIO=4&transport=websocket"
POLLING_QUERY = "EIO=4&transport=polling"

# Node's engine.io ``Server.errorMessages``.
MESSAGES = {
    0: "Transport unknown",
    1: "Session ID unknown",
    2: "Bad handshake method",
    3: "Bad request",
    4: "Forbidden",
    5: "Unsupported protocol version",
}


def target(query: str) -> str:
    return f"/socket.io/?{query}"


def assert_engine_error(
    resp: HttpResponse, status: int, code: int, message: str | None = None
) -> None:
    """Node's engine.io error answer: the status and ``{"code": N, "message": ...}``."""
    assert resp.status == status, (resp.status, resp.body)
    assert resp.headers.get("content-type", "").startswith("application/json"), resp.headers
    assert resp.json() == {"code": code, "message": message or MESSAGES[code]}


# -- clients ----------------------------------------------------------------------------


class SioWs:
    """A Socket.IO client on the raw WebSocket client (Engine.IO ``websocket`` transport).

    ``auto_pong`` answers the server's Engine.IO pings (``2`` -> ``3``).
    """

    def __init__(self, ws: WebSocketClient, eio_sid: str, *, auto_pong: bool = True) -> None:
        self.ws = ws
        self.eio_sid = eio_sid
        self.auto_pong = auto_pong
        self.pings = 0
        self.sid: str | None = None  # the Socket.IO socket id on "/"
        self._next_ack = 0

    async def _one(self, timeout: float) -> str | bytes | None:
        """The next packet; None for a ping that was answered."""
        opcode, payload = await self.ws.recv(timeout)
        if opcode == Opcode.BINARY:
            return payload
        if payload == b"2":
            self.pings += 1
            if self.auto_pong:
                self.ws.send_text("3")
                return None
        return payload.decode()

    async def recv(self, timeout: float = TIMEOUT) -> str | bytes:
        """The next Engine.IO packet (text without change, binary as bytes)."""

        async def wait() -> str | bytes:
            while True:
                packet = await self._one(timeout)
                if packet is not None:
                    return packet

        return await asyncio.wait_for(wait(), timeout)

    async def recv_text(self, timeout: float = TIMEOUT) -> str:
        packet = await self.recv(timeout)
        assert isinstance(packet, str), packet
        return packet

    async def wait_pings(self, count: int, timeout: float = TIMEOUT) -> None:
        """Answer pings until ``count`` were received; any other packet is an error."""

        async def wait() -> None:
            while self.pings < count:
                packet = await self._one(timeout)
                assert packet is None, f"unexpected packet {packet!r}"

        await asyncio.wait_for(wait(), timeout)

    async def connect(self, nsp: str = "/") -> str:
        """CONNECT to ``nsp``; returns the socket id from the server's CONNECT."""
        prefix = "40" if nsp == "/" else f"40{nsp},"
        self.ws.send_text(prefix)
        packet = await self.recv_text()
        assert packet.startswith(prefix + "{"), packet
        sid: str = json.loads(packet[len(prefix) :])["sid"]
        if nsp == "/":
            self.sid = sid
        return sid

    async def echo(self, *args: Any) -> list[Any]:
        """An EVENT with an ack id to the server's ``echo`` handler; returns the ACK args."""
        ack_id = self._next_ack
        self._next_ack += 1
        self.ws.send_text(f"42{ack_id}" + json.dumps(["echo", *args]))
        packet = await self.recv_text()
        prefix = f"43{ack_id}"
        assert packet.startswith(prefix + "["), packet
        result: list[Any] = json.loads(packet[len(prefix) :])
        return result

    async def assert_alive(self) -> None:
        """The connection still works: a full ack round trip."""
        assert await self.echo("still", "here", 1) == ["still", "here", 1]


class Polling:
    """An Engine.IO session on the polling transport, request by request."""

    def __init__(self, url: str, handshake: dict[str, Any]) -> None:
        self.url = url
        self.handshake = handshake
        self.sid: str = handshake["sid"]

    def target(self, transport: str = "polling") -> str:
        return target(f"EIO=4&transport={transport}&sid={self.sid}")

    async def get(self, timeout: float = TIMEOUT) -> HttpResponse:
        return await http_request(self.url, "GET", self.target(), timeout=timeout)

    async def post(self, body: bytes | str) -> HttpResponse:
        return await http_request(
            self.url,
            "POST",
            self.target(),
            body=body,
            headers=[("Content-Type", "text/plain;charset=UTF-8")],
        )

    async def connect(self) -> str:
        resp = await self.post("40")
        assert (resp.status, resp.body) == (200, b"ok"), resp
        resp = await self.get()
        assert resp.status == 200 and resp.body.startswith(b'40{"sid":"'), resp
        sid: str = json.loads(resp.body[2:])["sid"]
        return sid

    async def upgrade(self) -> SioWs:
        """Upgrade to WebSocket (Engine.IO v4 "Upgrade": 2probe, 3probe, 5)."""
        ws = await WebSocketClient.connect(self.url, self.target("websocket"))
        ws.send_text("2probe")
        assert await ws.recv_text(TIMEOUT) == "3probe"
        ws.send_text("5")
        return SioWs(ws, self.sid)


# -- harness ----------------------------------------------------------------------------


@dataclass
class Harness:
    sio: socketwire.Server
    url: str
    caplog: pytest.LogCaptureFixture
    disconnects: asyncio.Queue[tuple[str, str]] = field(default_factory=asyncio.Queue)
    requests: asyncio.Queue[tuple[str, dict[str, str]]] = field(default_factory=asyncio.Queue)
    clients: list[WebSocketClient] = field(default_factory=list)

    async def request(
        self,
        method: str,
        query: str,
        body: bytes | str = b"",
        headers: list[tuple[str, str]] | tuple[tuple[str, str], ...] = (),
    ) -> HttpResponse:
        return await http_request(self.url, method, target(query), body=body, headers=headers)

    async def ws(self, query: str = WS_QUERY, *, auto_pong: bool = True) -> SioWs:
        """A WebSocket-only Engine.IO session (open packet read), not yet CONNECTed."""
        ws = await WebSocketClient.connect(self.url, target(query))
        self.clients.append(ws)
        packet = await ws.recv_text(TIMEOUT)
        assert packet.startswith("0{"), packet
        handshake = json.loads(packet[1:])
        assert handshake["upgrades"] == []
        return SioWs(ws, handshake["sid"], auto_pong=auto_pong)

    async def healthy(self) -> SioWs:
        """A well-behaved client connected to "/", one round trip done."""
        client = await self.ws()
        await client.connect()
        await client.assert_alive()
        return client

    async def polling(self) -> Polling:
        resp = await self.request("GET", POLLING_QUERY)
        assert resp.status == 200 and resp.body.startswith(b"0{"), resp
        return Polling(self.url, json.loads(resp.body[1:]))

    async def upgrade(self, p: Polling) -> SioWs:
        client = await p.upgrade()
        self.clients.append(client.ws)
        return client

    async def wait_disconnect(self, sid: str | None, timeout: float = TIMEOUT) -> str:
        """The reason given to the server's ``disconnect`` handler for socket ``sid``."""

        async def wait() -> str:
            while True:
                got, reason = await self.disconnects.get()
                if got == sid:
                    return reason

        return await asyncio.wait_for(wait(), timeout)

    async def wait_request(self, method: str, sid: str, timeout: float = TIMEOUT) -> None:
        """Until the server has handled (not necessarily answered) such a request."""

        async def wait() -> None:
            while True:
                got, query = await self.requests.get()
                if got == method and query.get("sid") == sid:
                    return

        await asyncio.wait_for(wait(), timeout)

    def log_lines(self, level: int = logging.INFO) -> list[str]:
        return [
            r.getMessage()
            for r in self.caplog.get_records("call")
            if r.name.startswith("socketwire") and r.levelno >= level
        ]

    def assert_logged(self, text: str, level: int = logging.INFO) -> None:
        lines = self.log_lines(level)
        assert any(text in line for line in lines), (
            f"no socketwire log line at {logging.getLevelName(level)}+ containing {text!r}; got {lines}"
        )

    def assert_no_errors(self) -> None:
        bad = [
            f"{r.name} {r.levelname}: {r.getMessage()}"
            for r in self.caplog.get_records("call")
            if r.levelno >= logging.ERROR or r.exc_info
        ]
        assert not bad, bad


Make = Callable[..., Awaitable[Harness]]


@pytest.fixture
async def make(
    start_server: ServerStarter, caplog: pytest.LogCaptureFixture
) -> AsyncIterator[Make]:
    """``h = await make(**server_options)``: a started server with an ``echo`` handler."""
    caplog.set_level(logging.DEBUG, logger="socketwire")
    harnesses: list[Harness] = []

    async def factory(**options: Any) -> Harness:
        sio = socketwire.Server(**options)
        h = Harness(sio, "", caplog)

        def echo(socket: socketwire.Socket, *args: Any) -> tuple[Any, ...]:
            return args

        def on_disconnect(socket: socketwire.Socket, reason: str) -> None:
            h.disconnects.put_nowait((socket.id, reason))

        sio.on("echo", echo)
        sio.on("disconnect", on_disconnect)
        sio.of("/admin")
        # Spy on the front door: lets a test wait until a request was handled.
        handle = sio.handle_request

        def spy(req: Any) -> None:
            handle(req)
            h.requests.put_nowait((req.method, dict(req.query)))

        sio.handle_request = spy  # type: ignore[method-assign]
        h.url = await start_server(sio)
        harnesses.append(h)
        return h

    yield factory
    for h in harnesses:
        for ws in h.clients:
            await ws.aclose()
    for h in harnesses:
        h.assert_no_errors()


def raw_frame(first_byte: int, payload: bytes, *, masked: bool = True) -> bytes:
    """A frame with a hand-made first byte (FIN, RSV1-3, opcode), for invalid frames."""
    n = len(payload)
    if n < 126:
        header = bytes((first_byte, (0x80 if masked else 0) | n))
    else:
        header = bytes((first_byte, (0x80 if masked else 0) | 126)) + n.to_bytes(2, "big")
    if not masked:
        return header + payload
    mask = os.urandom(4)
    return header + mask + apply_mask(payload, mask)


# == Engine.IO handshake ==================================================================


@pytest.mark.parametrize(
    ("method", "query", "code"),
    [
        pytest.param("GET", "EIO=4", 0, id="missing-transport"),
        pytest.param("GET", "EIO=4&transport=carrier-pigeon", 0, id="unknown-transport"),
        pytest.param("GET", "EIO=4&transport=webtransport", 0, id="webtransport-over-http"),
        pytest.param("GET", "EIO=3&transport=polling", 5, id="eio3"),
        pytest.param("GET", "transport=polling", 5, id="missing-eio"),
        pytest.param("GET", "EIO=banana&transport=polling", 5, id="garbage-eio"),
        pytest.param("POST", "EIO=4&transport=polling", 2, id="post-handshake"),
        pytest.param("PUT", "EIO=4&transport=polling", 2, id="put-handshake"),
        pytest.param("GET", "EIO=4&transport=polling&sid=nope", 1, id="unknown-sid-get"),
        pytest.param("POST", "EIO=4&transport=polling&sid=nope", 1, id="unknown-sid-post"),
        pytest.param("GET", "EIO=4&transport=websocket", 3, id="websocket-without-upgrade"),
    ],
)
async def test_bad_handshake_request(make: Make, method: str, query: str, code: int) -> None:
    h = await make()
    healthy = await h.healthy()
    resp = await h.request(method, query, body="40" if method != "GET" else b"")
    assert_engine_error(resp, 400, code)
    h.assert_logged(f'"code":{code}')
    assert h.sio.engine.clients_count == 1  # only the healthy client
    await healthy.assert_alive()


async def test_unknown_sid_on_websocket(make: Make) -> None:
    h = await make()
    healthy = await h.healthy()
    resp, ws = await WebSocketClient.open(h.url, target(f"{WS_QUERY}&sid=nope"))
    assert ws is None
    # Node's engine.io answers an upgrade it refuses with HTTP 400 too (a text/html
    # body with the message); socketwire gives the same JSON as for polling.
    assert_engine_error(resp, 400, 1)
    h.assert_logged('"code":1')
    await healthy.assert_alive()


async def test_polling_request_on_websocket_only_session(make: Make) -> None:
    h = await make()
    healthy = await h.healthy()
    victim = await h.ws()
    for method in ("GET", "POST"):
        resp = await h.request(method, f"{POLLING_QUERY}&sid={victim.eio_sid}", body="40")
        assert_engine_error(resp, 400, 3)
    h.assert_logged('"code":3')
    # Node's TRANSPORT_MISMATCH does not close the session: it still works.
    await victim.connect()
    await victim.assert_alive()
    await healthy.assert_alive()


def _refuse_false(req: Any) -> bool:
    return bool(req.query.get("evil") != "1")


def _refuse_raise(req: Any) -> bool:
    if req.query.get("evil") == "1":
        raise socketwire.ConnectionRefused("nope")
    return True


async def _refuse_async(req: Any) -> bool:
    return bool(req.query.get("evil") != "1")


@pytest.mark.parametrize(
    ("allow_request", "message"),
    [
        pytest.param(_refuse_false, "Forbidden", id="returns-false"),
        pytest.param(_refuse_raise, "nope", id="raises-connection-refused"),
        pytest.param(_refuse_async, "Forbidden", id="async-returns-false"),
    ],
)
async def test_allow_request_refuses(
    make: Make, allow_request: Callable[[Any], Any], message: str
) -> None:
    h = await make(allow_request=allow_request)
    healthy = await h.healthy()
    resp = await h.request("GET", f"{POLLING_QUERY}&evil=1")
    assert_engine_error(resp, 403, 4, message)
    h.assert_logged(f'"message":"{message}"')
    assert h.sio.engine.clients_count == 1
    await healthy.assert_alive()


# == Polling ===============================================================================


async def test_two_concurrent_gets_close_the_session(make: Make) -> None:
    h = await make()
    healthy = await h.healthy()
    p = await h.polling()
    sid = await p.connect()
    first = asyncio.ensure_future(p.get())
    await h.wait_request("GET", p.sid)  # the first GET is parked at the server
    assert not first.done()
    second = await p.get()
    # Engine.IO v4 "Receiving data": 400 and close the session.
    assert_engine_error(second, 400, 3)
    parked = await asyncio.wait_for(first, TIMEOUT)
    assert (parked.status, parked.body) == (200, b"1")  # the close packet
    assert await h.wait_disconnect(sid) == "transport error"
    assert_engine_error(await p.get(), 400, 1)
    h.assert_logged("overlap")
    await healthy.assert_alive()


async def test_close_packet_answers_parked_get_with_noop(make: Make) -> None:
    h = await make()
    healthy = await h.healthy()
    p = await h.polling()
    sid = await p.connect()
    parked = asyncio.ensure_future(p.get())
    await h.wait_request("GET", p.sid)  # the GET is parked at the server
    assert not parked.done()
    # Engine.IO v4: the client closes with a close packet. As Node's polling
    # transport, the parked GET gets a noop (not a close back), and the session
    # is gone.
    resp = await p.post(b"1")
    assert (resp.status, resp.body) == (200, b"ok")
    resp = await asyncio.wait_for(parked, TIMEOUT)
    assert (resp.status, resp.body) == (200, b"6")
    assert await h.wait_disconnect(sid) == "transport close"
    assert p.sid not in h.sio.engine.clients
    assert_engine_error(await p.get(), 400, 1)
    await healthy.assert_alive()


async def test_close_packet_without_parked_get(make: Make) -> None:
    h = await make()
    p = await h.polling()
    sid = await p.connect()
    resp = await p.post(b"1")
    assert (resp.status, resp.body) == (200, b"ok")
    assert await h.wait_disconnect(sid) == "transport close"
    assert_engine_error(await p.get(), 400, 1)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"9hello", id="bad-type-digit"),
        pytest.param(b"x", id="not-a-digit"),
        pytest.param(b"", id="empty-body"),
        pytest.param(b"b!!!not-base64", id="invalid-base64"),
        pytest.param(b"bAQI", id="truncated-base64"),
        pytest.param(b'42["echo"]\x1e', id="empty-packet-after-separator"),
    ],
)
async def test_malformed_polling_payload(make: Make, body: bytes) -> None:
    h = await make()
    healthy = await h.healthy()
    p = await h.polling()
    sid = await p.connect()
    resp = await p.post(body)
    # socketwire answers 400 (code 3) and closes with "parse error"; Node's engine.io
    # answers 200 "ok" and closes the session with "parse error" (see the report).
    assert_engine_error(resp, 400, 3)
    assert await h.wait_disconnect(sid) == "parse error"
    assert_engine_error(await p.get(), 400, 1)
    h.assert_logged("malformed polling payload")
    await healthy.assert_alive()


NODE_ECHO = """
const { io } = require("socket.io-client");
const socket = io(process.argv[2], { reconnection: false, timeout: 5000 });
socket.on("connect", () => {
  socket.emit("echo", "from node", 42, (...args) => {
    console.log(JSON.stringify(args));
    socket.close();
  });
});
socket.on("connect_error", (err) => {
  console.error("connect_error:", err.message);
  process.exit(1);
});
"""


async def test_polling_post_over_max_http_buffer_size(make: Make, tmp_path: Path) -> None:
    h = await make(max_http_buffer_size=1000)
    healthy = await h.healthy()
    p = await h.polling()
    resp = await p.post(b"4" + b"x" * 5000)
    assert resp.status in (400, 413), resp
    lines = h.log_lines()
    assert any("too large" in line or "malformed HTTP request" in line for line in lines), lines
    # The session is not left half-way: it still takes a POST and answers a GET.
    sid = await p.connect()
    assert sid
    await healthy.assert_alive()
    # ... and the server keeps serving new clients, the official one included.
    script = tmp_path / "echo.js"
    script.write_text(NODE_ECHO)
    assert await run_node(script, h.url, timeout=20) == [["from node", 42]]


async def test_polling_post_over_max_http_buffer_size_is_413(make: Make) -> None:
    h = await make(max_http_buffer_size=1000)
    p = await h.polling()
    resp = await p.post(b"4" + b"x" * 5000)
    assert resp.status == 413, resp


async def test_unknown_method_on_known_sid(make: Make) -> None:
    h = await make()
    healthy = await h.healthy()
    p = await h.polling()
    resp = await http_request(h.url, "PUT", p.target(), body="40")
    # socketwire: 400 code 3; Node's polling transport: a bare 500. Neither closes.
    assert_engine_error(resp, 400, 3)
    h.assert_logged("refused PUT")
    await p.connect()
    await healthy.assert_alive()


# == WebSocket framing =====================================================================


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param(raw_frame(0x81, b'42["echo"]', masked=False), id="unmasked"),
        pytest.param(raw_frame(0x81 | 0x40, b"3"), id="rsv1"),
        pytest.param(raw_frame(0x81 | 0x20, b"3"), id="rsv2"),
        pytest.param(raw_frame(0x81 | 0x10, b"3"), id="rsv3"),
        pytest.param(raw_frame(0x83, b"3"), id="reserved-data-opcode"),
        pytest.param(raw_frame(0x8B, b""), id="reserved-control-opcode"),
        pytest.param(raw_frame(0x80, b"3"), id="continuation-without-message"),
        pytest.param(raw_frame(0x09, b""), id="fragmented-ping"),
        pytest.param(raw_frame(0x89, b"x" * 126), id="ping-over-125-bytes"),
        pytest.param(raw_frame(0x88, (999).to_bytes(2, "big")), id="invalid-close-code"),
        pytest.param(raw_frame(0x88, b"\x03"), id="one-byte-close-payload"),
    ],
)
async def test_websocket_protocol_violation_closes_1002(make: Make, frame: bytes) -> None:
    h = await make()
    healthy = await h.healthy()
    bad = await h.ws()
    sid = await bad.connect()
    bad.ws.send_raw(frame)
    code, _ = await bad.ws.wait_closed(TIMEOUT)
    assert code == 1002
    assert await h.wait_disconnect(sid) == "transport error"
    assert bad.eio_sid not in h.sio.engine.clients
    h.assert_logged("WebSocket protocol error")
    await healthy.assert_alive()


async def test_websocket_events_before_a_violation_in_one_read_are_handled(make: Make) -> None:
    # As Node's ws: the frames a read completed before the bad one are delivered,
    # then the connection fails with 1002.
    h = await make()
    seen: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
    h.sio.on("note", lambda socket, *args: seen.put_nowait(args))
    bad = await h.ws()
    sid = await bad.connect()
    good = raw_frame(0x81, b'42["note","first"]') + raw_frame(0x81, b'42["note","second"]')
    bad.ws.send_raw(good + raw_frame(0x83, b"3") + raw_frame(0x81, b'42["note","never"]'))
    code, _ = await bad.ws.wait_closed(TIMEOUT)
    assert code == 1002
    assert await h.wait_disconnect(sid) == "transport error"
    assert [seen.get_nowait() for _ in range(seen.qsize())] == [("first",), ("second",)]


async def test_websocket_frame_over_max_size_closes_1009_before_payload(make: Make) -> None:
    h = await make(max_http_buffer_size=1000)
    healthy = await h.healthy()
    bad = await h.ws()
    sid = await bad.connect()
    # Only the header (announcing 5000 bytes) and the masking key: no payload.
    bad.ws.send_raw(bytes((0x81, 0x80 | 126)) + (5000).to_bytes(2, "big") + os.urandom(4))
    code, _ = await bad.ws.wait_closed(TIMEOUT)
    assert code == 1009
    assert await h.wait_disconnect(sid) == "transport error"
    h.assert_logged("WebSocket protocol error")
    await healthy.assert_alive()


async def test_websocket_message_at_max_size_is_accepted(make: Make) -> None:
    h = await make(max_http_buffer_size=1000)
    client = await h.ws()
    await client.connect()
    arg = "y" * (1000 - len('42["echo",""]'))
    client.ws.send_text('42["echo","' + arg + '"]')  # exactly 1000 bytes
    client.ws.send_text('421["echo","ok"]')
    assert await client.recv_text() == '431["ok"]'


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"9hello", id="type-9"),
        pytest.param(b"x", id="not-a-digit"),
        pytest.param(b"", id="empty-text-frame"),
    ],
)
async def test_websocket_invalid_engineio_packet(make: Make, payload: bytes) -> None:
    h = await make()
    healthy = await h.healthy()
    bad = await h.ws()
    sid = await bad.connect()
    bad.ws.send_text(payload)
    code, _ = await bad.ws.wait_closed(TIMEOUT)
    assert code == 1000
    assert await h.wait_disconnect(sid) == "parse error"
    assert bad.eio_sid not in h.sio.engine.clients
    h.assert_logged("invalid Engine.IO packet")
    await healthy.assert_alive()


async def test_websocket_text_frame_with_invalid_utf8_fails_1007(make: Make) -> None:
    h = await make()
    bad = await h.ws()
    await bad.connect()
    bad.ws.send_text(b"6\xff\xfe")  # a noop packet whose text is not UTF-8
    with pytest.raises(WebSocketClosed) as closed:
        await bad.echo("after invalid UTF-8")
    assert closed.value.code == 1007


UPGRADE_HEAD = build_request(
    "GET",
    target(WS_QUERY),
    "127.0.0.1",
    headers=[
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "13"),
    ],
)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(
            b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(range(32)), id="tls-hello"
        ),
        pytest.param(b"hello there\r\n\r\n", id="text-garbage"),
        pytest.param(b"\x00" * 64, id="nul-bytes"),
        pytest.param(b"xyz" + UPGRADE_HEAD, id="garbage-before-upgrade"),
        pytest.param(
            b"GET /socket.io/?EIO=4 HTTP/1.1\r\nHost x\r\n\r\n", id="header-without-colon"
        ),
    ],
)
async def test_garbage_instead_of_http(make: Make, data: bytes) -> None:
    h = await make()
    healthy = await h.healthy()
    raw = await send_raw(h.url, data)  # returns once the server closed the connection
    resp = parse_response(raw)
    assert resp.status == 400, raw
    h.assert_logged("malformed HTTP request")
    assert h.sio.engine.clients_count == 1
    await healthy.assert_alive()


@pytest.mark.parametrize(
    ("drop", "extra"),
    [
        pytest.param("Sec-WebSocket-Key", (), id="missing-key"),
        pytest.param(
            "Sec-WebSocket-Key", (("Sec-WebSocket-Key", "c2hvcnQ="),), id="key-not-16-bytes"
        ),
        pytest.param("Sec-WebSocket-Version", (), id="missing-version"),
    ],
)
async def test_bad_websocket_handshake_headers(
    make: Make, drop: str, extra: tuple[tuple[str, str], ...]
) -> None:
    h = await make()
    healthy = await h.healthy()
    headers = [
        (name, value)
        for name, value in [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Version", "13"),
        ]
        if name != drop
    ]
    headers += extra
    raw = await send_raw(
        h.url, build_request("GET", target(WS_QUERY), "127.0.0.1", headers=headers)
    )
    assert parse_response(raw).status == 400, raw
    h.assert_logged("bad WebSocket handshake")
    assert h.sio.engine.clients_count == 1
    await healthy.assert_alive()


async def test_unsupported_websocket_version_names_supported_version(make: Make) -> None:
    h = await make()
    headers = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "7"),
    ]
    raw = await send_raw(
        h.url, build_request("GET", target(WS_QUERY), "127.0.0.1", headers=headers)
    )
    resp = parse_response(raw)
    assert resp.status in (400, 426)
    assert "13" in resp.headers.get("sec-websocket-version", ""), resp.headers


# == Upgrades ===============================================================================


async def test_upgrade_with_stolen_sid_of_upgraded_session(make: Make) -> None:
    h = await make()
    healthy = await h.healthy()
    p = await h.polling()
    await p.connect()
    owner = await h.upgrade(p)
    await owner.assert_alive()
    resp, thief = await WebSocketClient.open(h.url, p.target("websocket"))
    # As Node's engine.io: the handshake completes, then the server closes the
    # second WebSocket at once (clients see a close, not an HTTP error).
    assert resp.status == 101, resp
    assert thief is not None
    h.clients.append(thief)
    code, _ = await thief.wait_closed(TIMEOUT)
    assert code == 1000
    h.assert_logged("WebSocket refused (transport=websocket, session on websocket)")
    # Polling on the upgraded session is refused as well (transport mismatch).
    assert_engine_error(await p.get(), 400, 3)
    await owner.assert_alive()
    await healthy.assert_alive()


async def test_second_upgrade_while_one_is_in_progress(make: Make) -> None:
    h = await make()
    healthy = await h.healthy()
    p = await h.polling()
    await p.connect()
    first = await WebSocketClient.connect(h.url, p.target("websocket"))
    h.clients.append(first)
    first.send_text("2probe")
    assert await first.recv_text() == "3probe"
    resp, second = await WebSocketClient.open(h.url, p.target("websocket"))
    assert resp.status == 101, resp
    assert second is not None
    h.clients.append(second)
    code, _ = await second.wait_closed(TIMEOUT)
    assert code == 1000
    h.assert_logged("session on polling, upgrading): closing it")
    first.send_text("5")
    await SioWs(first, p.sid).assert_alive()
    await healthy.assert_alive()


async def test_invalid_packet_during_upgrade_keeps_polling(make: Make) -> None:
    h = await make()
    healthy = await h.healthy()
    p = await h.polling()
    sid = await p.connect()
    probe = await WebSocketClient.connect(h.url, p.target("websocket"))
    h.clients.append(probe)
    probe.send_text('42["echo"]')  # not "2probe"
    code, _ = await probe.wait_closed(TIMEOUT)
    assert code == 1000
    h.assert_logged("invalid packet during upgrade")
    # The session goes on over polling.
    resp = await p.post(f"420{json.dumps(['echo', 'polling'])}")
    assert resp.status == 200
    resp = await p.get()
    assert resp.body == b'430["polling"]'
    assert h.disconnects.empty(), sid
    await healthy.assert_alive()


# == Socket.IO =============================================================================


async def test_packet_before_connect_closes_only_that_connection(make: Make) -> None:
    h = await make()
    healthy = await h.healthy()
    client = await h.ws()
    client.ws.send_text('42["echo","too early"]')
    with pytest.raises(WebSocketClosed):
        await client.recv(TIMEOUT)
    h.assert_logged("invalid state")
    await healthy.assert_alive()


async def test_packet_before_connect_closes_connection(make: Make) -> None:
    h = await make()
    client = await h.ws()
    client.ws.send_text('42["echo","too early"]')
    client.ws.send_text("40")
    with pytest.raises(WebSocketClosed):
        await client.recv(TIMEOUT)


async def test_connect_to_unknown_namespace(make: Make) -> None:
    h = await make()
    healthy = await h.healthy()
    client = await h.ws()
    client.ws.send_text("40/nope,")
    assert await client.recv_text() == '44/nope,{"message":"Invalid namespace"}'
    h.assert_logged("unknown namespace")
    # The connection stays up and can join an existing namespace.
    await client.connect()
    await client.assert_alive()
    await healthy.assert_alive()


async def test_ack_with_unknown_id_is_ignored(make: Make) -> None:
    h = await make()
    healthy = await h.healthy()
    client = await h.ws()
    await client.connect()
    client.ws.send_text('3999["never asked"]')
    client.ws.send_text('43123456789012345["never asked"]')
    await client.assert_alive()
    h.assert_logged("matches no pending emit")
    assert h.disconnects.empty()
    await healthy.assert_alive()


@pytest.mark.parametrize(
    "frames",
    [
        pytest.param(["49"], id="unknown-packet-type-9"),
        pytest.param(['42["ev",'], id="invalid-json"),
        pytest.param(['42{"not":"an array"}'], id="event-payload-object"),
        pytest.param(['42"string"'], id="event-payload-string"),
        pytest.param(["42[]"], id="event-empty-array"),
        pytest.param(["42"], id="event-without-payload"),
        pytest.param(['42["disconnect"]'], id="reserved-event-disconnect"),
        pytest.param(['42["connect_error","x"]'], id="reserved-event-connect-error"),
        pytest.param(["42[null]"], id="event-name-null"),
        pytest.param(['43abc["x"]'], id="non-numeric-ack-id"),
        pytest.param(["431"], id="ack-without-payload"),
        pytest.param(['431{"a":1}'], id="ack-payload-object"),
        pytest.param(['41{"a":1}'], id="disconnect-with-payload"),
        pytest.param(['40"token"'], id="connect-payload-string"),
        pytest.param(['42admin,["echo"]'], id="namespace-without-slash"),
        pytest.param(['45-["ev"]'], id="binary-event-without-count"),
        pytest.param(['451000-["ev"]'], id="too-many-attachments"),
        pytest.param(['451-["ev",{"_placeholder":true,"num":5}]'], id="placeholder-out-of-range"),
        pytest.param(
            [
                '452-["ev",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
                '42["echo","text where an attachment belongs"]',
            ],
            id="attachment-count-mismatch",
        ),
        pytest.param([b"\x01\x02\x03"], id="binary-without-pending-packet"),
    ],
)
async def test_invalid_socketio_packet_closes_connection(
    make: Make, frames: list[str | bytes]
) -> None:
    h = await make()
    healthy = await h.healthy()
    bad = await h.ws()
    sid = await bad.connect()
    for frame in frames:
        if isinstance(frame, bytes):
            bad.ws.send_binary(frame)
        else:
            bad.ws.send_text(frame)
    code, skipped = await bad.ws.wait_closed(TIMEOUT)
    assert code == 1000
    assert skipped == []  # nothing was dispatched (no ack, no event)
    assert await h.wait_disconnect(sid) == "parse error"
    assert bad.eio_sid not in h.sio.engine.clients
    h.assert_logged("invalid Socket.IO packet")
    await healthy.assert_alive()


async def test_binary_packet_completed_by_attachment_is_fine(make: Make) -> None:
    """The valid counterpart of the attachment cases: the ack carries the buffer back."""
    h = await make()
    client = await h.ws()
    await client.connect()
    client.ws.send_text('451-7["echo",{"_placeholder":true,"num":0}]')
    client.ws.send_binary(b"\x00\xff")
    assert await client.recv() == '461-7[{"_placeholder":true,"num":0}]'
    assert await client.recv() == b"\x00\xff"


# == Timeouts ===============================================================================


async def test_no_connect_within_connect_timeout_websocket(make: Make) -> None:
    h = await make(connect_timeout=0.3)
    healthy = await h.healthy()
    idle = await h.ws()
    code, skipped = await idle.ws.wait_closed(TIMEOUT)
    assert code == 1000
    assert skipped == []
    assert idle.eio_sid not in h.sio.engine.clients
    h.assert_logged("joined no namespace in time")
    # The healthy client is older than the timeout too, but it did CONNECT.
    await healthy.assert_alive()


async def test_no_connect_within_connect_timeout_polling(make: Make) -> None:
    h = await make(connect_timeout=0.3)
    healthy = await h.healthy()
    p = await h.polling()
    resp = await p.get()  # parked until the session is closed
    assert (resp.status, resp.body) == (200, b"1")
    assert_engine_error(await p.get(), 400, 1)
    h.assert_logged("joined no namespace in time")
    await healthy.assert_alive()


async def test_ping_timeout(make: Make) -> None:
    h = await make(ping_interval=0.2, ping_timeout=0.2)
    silent = await h.ws(auto_pong=False)
    silent_sid = await silent.connect()
    answering = await h.ws()
    answering_sid = await answering.connect()
    # The answering client reads (and pongs) all along, concurrently.
    pongs = asyncio.ensure_future(answering.wait_pings(4))

    code, skipped = await silent.ws.wait_closed(TIMEOUT)
    assert code == 1000
    assert b"2" in skipped  # it was pinged, and never answered
    assert await h.wait_disconnect(silent_sid) == "ping timeout"
    h.assert_logged("ping timeout", logging.DEBUG)

    await pongs
    await answering.assert_alive()
    assert not answering.ws.closed
    assert h.disconnects.empty(), answering_sid
    assert answering.eio_sid in h.sio.engine.clients


# == Logging level ==========================================================================


@pytest.mark.parametrize("case", ["packet-before-connect", "unknown-ack-id", "ping-timeout"])
async def test_ignored_bad_input_is_logged_at_info(make: Make, case: str) -> None:
    if case == "ping-timeout":
        h = await make(ping_interval=0.1, ping_timeout=0.1)
        client = await h.ws(auto_pong=False)
        await client.connect()
        await client.ws.wait_closed(TIMEOUT)
        text = "ping timeout"
    else:
        h = await make()
        client = await h.ws()
        if case == "packet-before-connect":
            await client.connect()
            client.ws.send_text('42/admin,["echo"]')
            text = "invalid state"
        else:
            await client.connect()
            client.ws.send_text('43999["x"]')
            text = "matches no pending emit"
            await client.connect("/admin")  # a round trip: the packet above was handled
        if case == "packet-before-connect":
            with pytest.raises(WebSocketClosed):
                await client.recv(TIMEOUT)
    h.assert_logged(text, logging.INFO)
