"""An ASGI app beside Socket.IO on the built-in server (``sio.listen(app=...)``).

Real sockets on 127.0.0.1 port 0: the project's client round-trips with the
Socket.IO server while plain HTTP/1.1 and WebSocket clients use the ASGI app of
``asgi_demo`` on the same port, mounted at the root and at a sub-path; lifespan
startup and shutdown, a failing startup, request and response bodies streamed
with backpressure, proxy headers; and the same app under uvicorn behind
``socketwire.asgi.ASGIApp``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

import socketwire
from socketwire.asgi import ASGIApp
from socketwire.client import Client
from socketwire.core.websocket.frames import Opcode
from socketwire.errors import StartupFailed
from socketwire.serve.asgi_host import BODY_HIGH_WATER, AsgiHttp
from tests.integration.rawclient import WebSocketClient, WebSocketClosed
from tests.serve.asgi_demo import DemoApp
from tests.waits import WAIT


def make_server() -> socketwire.Server:
    sio = socketwire.Server()

    @sio.on("echo")
    def echo(socket: socketwire.Socket, *args: Any) -> tuple[Any, ...]:
        return args

    return sio


class Http:
    """An HTTP/1.1 client on one keep-alive connection (chunked bodies decoded)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Http:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    def send(
        self, method: str, target: str, body: bytes = b"", headers: tuple[str, ...] = ()
    ) -> None:
        lines = [f"{method} {target} HTTP/1.1", "Host: test", *headers]
        if body or method == "POST":
            lines.append(f"Content-Length: {len(body)}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    async def head(self) -> tuple[int, dict[str, str]]:
        raw = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), WAIT)
        lines = raw.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        return int(lines[0].split()[1]), headers

    async def chunks(self, headers: dict[str, str]) -> AsyncIterator[bytes]:
        """The body's pieces as they arrive."""
        if headers.get("transfer-encoding") == "chunked":
            while True:
                size = int(await asyncio.wait_for(self.reader.readuntil(b"\r\n"), WAIT), 16)
                data = await asyncio.wait_for(self.reader.readexactly(size + 2), WAIT)
                if size == 0:
                    return
                yield data[:-2]
        else:
            length = int(headers["content-length"])
            yield await asyncio.wait_for(self.reader.readexactly(length), WAIT)

    async def response(self) -> tuple[int, dict[str, str], bytes, int]:
        """Status, headers, body, and the number of chunks it came in."""
        status, headers = await self.head()
        parts = [chunk async for chunk in self.chunks(headers)]
        return status, headers, b"".join(parts), len(parts)

    async def request(
        self, method: str, target: str, body: bytes = b"", headers: tuple[str, ...] = ()
    ) -> tuple[int, dict[str, str], bytes, int]:
        self.send(method, target, body, headers)
        return await self.response()

    async def close(self) -> None:
        if self.writer.transport.get_write_buffer_size():
            self.writer.transport.abort()  # a failed test: do not wait for a flush
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


async def round_trip(url: str) -> None:
    client = Client(url, reconnection=False)
    await asyncio.wait_for(client.connect(), WAIT)
    try:
        assert await client.emit_with_ack("echo", "hi", 2, timeout=WAIT) == ("hi", 2)
    finally:
        await client.disconnect()


@pytest.fixture
async def served() -> AsyncIterator[tuple[socketwire.Server, DemoApp, int]]:
    sio = make_server()
    app = DemoApp()
    port = await sio.listen(0, "127.0.0.1", app=app)
    yield sio, app, port
    await sio.close()


async def test_socketio_and_the_asgi_app_share_a_port(
    served: tuple[socketwire.Server, DemoApp, int],
) -> None:
    sio, app, port = served
    assert app.events == ["startup"]
    await round_trip(f"http://127.0.0.1:{port}")
    http = await Http.open(port)
    try:
        # Several requests on one keep-alive connection, the Socket.IO server's among them.
        status, _, body, _ = await http.request("GET", "/hello?x=1")
        assert status == 200
        assert json.loads(body) == {
            "path": "/hello",
            "root_path": "",
            "scheme": "http",
            "client": "127.0.0.1",
            "greeting": "hi",  # the lifespan state reaches the requests
            "query": "x=1",
        }
        status, _, body, _ = await http.request("GET", "/missing")
        assert (status, json.loads(body)) == (404, {"detail": "Not Found"})
        status, _, body, _ = await http.request("GET", "/socket.io/?EIO=4&transport=polling")
        assert status == 200 and b'"sid"' in body
        status, headers, body, count = await http.request("GET", "/stream?n=300")
        assert status == 200 and headers["transfer-encoding"] == "chunked"
        assert body == b"".join(b"chunk %d\n" % i for i in range(300))
        assert count > 1
        http.send("HEAD", "/hello")
        status, headers = await http.head()
        assert status == 200 and int(headers["content-length"]) > 0
        status, _, body, _ = await http.request("GET", "/hello")
        assert status == 200  # the HEAD answer carried no body
    finally:
        await http.close()
    await sio.close()
    assert app.events == ["startup", "shutdown"]


async def test_pipelined_requests_to_the_application_are_answered_in_order(
    served: tuple[socketwire.Server, DemoApp, int],
) -> None:
    """Three requests in one write: the first head read whole at once (the
    compiled reading, when built), the others queued behind it."""
    _, _, port = served
    http = await Http.open(port)
    try:
        http.writer.write(
            b"GET /hello?x=1 HTTP/1.1\r\nHost: test\r\n\r\n"
            b"GET /missing HTTP/1.1\r\nHost: test\r\n\r\n"
            b"GET /hello?x=3 HTTP/1.1\r\nHost: test\r\n\r\n"
        )
        answers = [await http.response() for _ in range(3)]
    finally:
        await http.close()
    assert [status for status, *_ in answers] == [200, 404, 200]
    assert json.loads(answers[0][2])["query"] == "x=1"
    assert json.loads(answers[2][2])["query"] == "x=3"


async def test_request_body_streams_in_and_out(
    served: tuple[socketwire.Server, DemoApp, int],
) -> None:
    _, _, port = served
    http = await Http.open(port)
    half = bytes(range(256)) * 8192  # 2 MiB
    try:
        lines = f"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {4 * len(half)}\r\n\r\n"
        http.writer.write(lines.encode() + half)
        status, headers = await http.head()
        assert status == 200 and headers["transfer-encoding"] == "chunked"
        received = bytearray()
        pieces = http.chunks(headers)
        # The echo begins before the rest of the body is sent: it is streamed.
        while len(received) < len(half):
            received += await anext(pieces)
        for _ in range(3):
            http.writer.write(half)
        async for chunk in pieces:
            received += chunk
        assert bytes(received) == half * 4
        # The connection is still usable.
        status, _, _, _ = await http.request("GET", "/hello")
        assert status == 200
    finally:
        await http.close()


async def test_an_application_that_does_not_read_holds_the_client_back(
    served: tuple[socketwire.Server, DemoApp, int],
) -> None:
    _, app, port = served
    http = await Http.open(port)
    body = b"x" * (32 * 1024 * 1024)
    try:
        http.send("POST", "/sink", body)
        await asyncio.wait_for(app.slow_started.wait(), WAIT)
        exchange = app.sink_receive.__self__
        assert isinstance(exchange, AsgiHttp)
        async with asyncio.timeout(WAIT):
            while exchange.held <= BODY_HIGH_WATER:
                await asyncio.sleep(0.01)
        # Past the high-water mark the server stops reading: what it holds is
        # bounded (one more read at most), the rest waits in the client.
        assert not exchange.connection.transport.is_reading()
        assert exchange.held <= BODY_HIGH_WATER + 256 * 1024
        app.release.set()
        status, _, answer, _ = await http.response()
        assert (status, json.loads(answer)) == (200, {"size": len(body)})
    finally:
        await http.close()


async def test_websocket_routes_of_the_application(
    served: tuple[socketwire.Server, DemoApp, int],
) -> None:
    _, app, port = served
    base = f"http://127.0.0.1:{port}"
    ws = await WebSocketClient.connect(base, "/ws")
    ws.send_text("hello")
    assert await ws.recv() == (Opcode.TEXT, b"echo hello")
    ws.send_binary(b"\x01\x02\x03")
    assert await ws.recv() == (Opcode.BINARY, b"\x03\x02\x01")
    ws.send_close(1000)
    with contextlib.suppress(WebSocketClosed):
        await ws.recv()  # the server's close frame
    await ws.aclose()
    response, refused = await WebSocketClient.open(base, "/elsewhere")
    assert refused is None and response.status == 403
    # Socket.IO's own WebSocket still works beside them.
    client = Client(base, transports=["websocket"], reconnection=False)
    await asyncio.wait_for(client.connect(), WAIT)
    assert await client.emit_with_ack("echo", 1, timeout=WAIT) == 1
    await client.disconnect()
    async with asyncio.timeout(WAIT):
        while "ws closed 1000" not in app.events:
            await asyncio.sleep(0.01)


async def test_mounted_at_a_sub_path() -> None:
    sio = make_server()
    app = DemoApp()
    port = await sio.listen(0, "127.0.0.1", app=app, root_path="/api")
    http = await Http.open(port)
    try:
        status, _, body, _ = await http.request("GET", "/api/hello")
        assert status == 200
        seen = json.loads(body)
        assert (seen["path"], seen["root_path"]) == ("/api/hello", "/api")
        # Behind a proxy that removed the prefix, the path gets it back.
        status, _, body, _ = await http.request("GET", "/hello")
        assert json.loads(body)["path"] == "/api/hello"
        ws = await WebSocketClient.connect(f"http://127.0.0.1:{port}", "/api/ws")
        ws.send_text("sub")
        assert await ws.recv() == (Opcode.TEXT, b"echo sub")
        await ws.aclose()
        await round_trip(f"http://127.0.0.1:{port}")
    finally:
        await http.close()
        await sio.close()


async def test_a_failing_startup_stops_listen() -> None:
    sio = make_server()
    with pytest.raises(StartupFailed, match="no database"):
        await sio.listen(0, "127.0.0.1", app=DemoApp(fail_startup=True))
    assert sio.port is None


async def test_an_app_without_lifespan_is_served() -> None:
    async def bare(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise RuntimeError("http only")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"bare"})

    sio = make_server()
    port = await sio.listen(0, "127.0.0.1", app=bare)
    http = await Http.open(port)
    try:
        assert (await http.request("GET", "/"))[2] == b"bare"
    finally:
        await http.close()
        await sio.close()


@pytest.mark.parametrize("trusted", [True, False])
async def test_proxy_headers(trusted: bool) -> None:
    sio = make_server()
    port = await sio.listen(
        0,
        "127.0.0.1",
        app=DemoApp(),
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1" if trusted else "10.0.0.1",
    )
    http = await Http.open(port)
    try:
        forwarded = ("X-Forwarded-For: 203.0.113.7, 127.0.0.1", "X-Forwarded-Proto: https")
        _, _, body, _ = await http.request("GET", "/hello", headers=forwarded)
        seen = json.loads(body)
        if trusted:
            assert (seen["client"], seen["scheme"]) == ("203.0.113.7", "https")
        else:
            assert (seen["client"], seen["scheme"]) == ("127.0.0.1", "http")
    finally:
        await http.close()
        await sio.close()


async def test_graceful_shutdown_answers_requests_in_flight(
    served: tuple[socketwire.Server, DemoApp, int],
) -> None:
    sio, app, port = served
    http = await Http.open(port)
    try:
        http.send("GET", "/slow")
        await asyncio.wait_for(app.slow_started.wait(), WAIT)
        stopping = asyncio.ensure_future(sio.shutdown(WAIT))
        app.release.set()
        status, _, body, _ = await http.response()
        assert (status, json.loads(body)) == (200, {"slow": "done"})
        await asyncio.wait_for(stopping, WAIT + 1)
        assert app.events == ["startup", "shutdown"]
    finally:
        await http.close()


async def test_the_same_app_under_uvicorn_behind_asgiapp() -> None:
    from tests.integration.test_asgi import start_uvicorn, stop_uvicorn

    app = DemoApp()
    url, server, task = await start_uvicorn(ASGIApp(make_server(), other_asgi_app=app))
    port = int(url.rsplit(":", 1)[1])
    http = await Http.open(port)
    try:
        assert app.events == ["startup"]
        status, _, body, _ = await http.request("GET", "/hello")
        assert status == 200 and json.loads(body)["greeting"] == "hi"
        status, _, body, _ = await http.request("GET", "/stream?n=50")
        assert body == b"".join(b"chunk %d\n" % i for i in range(50))
        payload = b"y" * (3 * 1024 * 1024)
        status, _, body, _ = await http.request("POST", "/echo", payload)
        assert body == payload
        assert (await http.request("GET", "/nothing"))[0] == 404
        await round_trip(url)
    finally:
        await http.close()
        await stop_uvicorn(server, task)
    assert app.events == ["startup", "shutdown"]
