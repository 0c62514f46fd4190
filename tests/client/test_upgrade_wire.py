"""The polling -> WebSocket upgrade on the wire, against a scripted Engine.IO server.

The server here answers each request only when the test says so, which makes the
order of Engine.IO v4 "Upgrade" checkable step by step: the client probes with
``2probe``, and on ``3probe`` pauses polling, which waits for the GET in flight (the
server answers it with a ``noop``) and for the POST in flight, issues no new
request, then sends ``5`` and flushes what was emitted meanwhile over the WebSocket
(once: what the last POST carried is not sent again).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
import pytest

from socketwire.client import Client
from socketwire.core.websocket.frames import FrameReader, Opcode, encode_frame
from socketwire.core.websocket.handshake import check_request, server_response

from .helpers import WAIT, watch, watch_manager

HANDSHAKE = b'0{"sid":"S1","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'


class ScriptedWebSocket:
    """The server end of a WebSocket: read the client's (masked) frames, send frames."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.frames = FrameReader(max_message_size=1 << 20, client_side=False)
        self.pending: list[tuple[int, bytes]] = []

    async def recv(self) -> bytes:
        while not self.pending:
            data = await self.reader.read(65536)
            if not data:
                raise EOFError("WebSocket closed")
            self.pending.extend(self.frames.feed(data))
        return self.pending.pop(0)[1]

    def send(self, text: bytes) -> None:
        self.writer.write(encode_frame(Opcode.TEXT, text))


class Request:
    def __init__(self, method: str, query: dict[str, str], body: bytes) -> None:
        self.method = method
        self.query = query
        self.body = body
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def respond(self, body: bytes) -> None:
        self.answer.set_result(body)


class ScriptedServer:
    """Queues every request; HTTP ones are answered by ``Request.respond``."""

    def __init__(self) -> None:
        self.requests: asyncio.Queue[Request | ScriptedWebSocket] = asyncio.Queue()
        self.http_connections: list[asyncio.Task[Any]] = []
        self.writers: list[asyncio.StreamWriter] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        task = asyncio.current_task()
        assert task is not None
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ")
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in lines[1:] if line)
            }
            query = dict(parse_qsl(urlsplit(target).query))
            if headers.get("upgrade", "").lower() == "websocket":
                key = check_request(method, headers)
                writer.write(server_response(key))
                await self.requests.put(ScriptedWebSocket(reader, writer))
                return
            if task not in self.http_connections:
                self.http_connections.append(task)
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            request = Request(method, query, body)
            await self.requests.put(request)
            payload = await request.answer
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=UTF-8\r\n"
                b"Content-Length: %d\r\n\r\n%b" % (len(payload), payload)
            )

    async def next(self) -> Any:
        return await asyncio.wait_for(self.requests.get(), WAIT)


@pytest.mark.parametrize("first", ["noop_first", "post_first"])
async def test_upgrade_sequence_on_the_wire(first: str) -> None:
    scripted = ScriptedServer()
    server = await asyncio.start_server(scripted.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = Client(
        f"http://127.0.0.1:{port}",
        transports=["polling", "websocket"],
        force_new=True,
        reconnection=False,
    )
    manager_events = watch_manager(client.manager)
    events = watch(client)
    try:
        connecting = asyncio.ensure_future(client.connect())
        handshake = await scripted.next()
        assert (handshake.method, handshake.query.get("sid")) == ("GET", None)
        assert handshake.query["EIO"] == "4" and handshake.query["transport"] == "polling"
        handshake.respond(HANDSHAKE)

        # The session: a long-polling GET, and the Socket.IO CONNECT in a POST.
        # The WebSocket probe starts at the same time.
        opening: dict[str, Any] = {}
        for _ in range(3):
            request = await scripted.next()
            if isinstance(request, ScriptedWebSocket):
                opening["ws"] = request
            else:
                assert request.query["sid"] == "S1"
                opening[request.method] = request
        get, post, ws = opening["GET"], opening["POST"], opening["ws"]
        assert post.body == b"40"
        post.respond(b"ok")
        get.respond(b'40{"sid":"socket-1"}')
        await asyncio.wait_for(connecting, WAIT)
        assert await asyncio.wait_for(ws.recv(), WAIT) == b"2probe"
        get = await scripted.next()  # the next long poll, parked
        assert get.method == "GET"

        # A POST in flight when the probe answer comes.
        client.emit("a")
        post = await scripted.next()
        assert post.method == "POST" and post.body == b'42["a"]'
        ws.send(b"3probe")
        assert await manager_events.wait("upgrading") == ("websocket",)
        # Pausing: what is emitted now waits for the new transport.
        client.emit("b")
        # The pause completes once both the parked GET (ended by the server's
        # noop, here with an event after it, to see the client read it) and the
        # POST in flight are done, in either order.
        if first == "noop_first":
            get.respond(b'6\x1e42["polled"]')
            await events.wait("polled")
            # A client that did not wait for the POST would have switched by now
            # and sent "a" again over the WebSocket.
            post.respond(b"ok")
        else:
            post.respond(b"ok")
            get.respond(b'6\x1e42["polled"]')
            await events.wait("polled")

        assert await asyncio.wait_for(ws.recv(), WAIT) == b"5"
        assert await asyncio.wait_for(ws.recv(), WAIT) == b'42["b"]'
        assert await manager_events.wait("upgrade") == ("websocket",)
        assert client.transport == "websocket"
        # The polling connections are released without another request.
        await asyncio.wait_for(asyncio.gather(*scripted.http_connections), WAIT)
        assert scripted.requests.empty()

        # The WebSocket carries the session now.
        client.emit("c", {"n": 1})
        assert orjson.loads((await asyncio.wait_for(ws.recv(), WAIT))[2:]) == ["c", {"n": 1}]
    finally:
        closing = client.disconnect()
        for writer in scripted.writers:
            writer.close()
        await asyncio.wait_for(closing, WAIT)
        server.close()
        with contextlib.suppress(Exception):
            await server.wait_closed()
