"""Both front doors, the built-in server and the ASGI app, keep requests by the same rules.

The same requests go through each: the built-in server on a real socket
(127.0.0.1, port 0), the ASGI app through its ASGI 3 interface. A fallback handler
records what the runtime would see.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

import socketwire
from socketwire.asgi import ASGIApp
from socketwire.engine.ports import HttpRequest
from tests.conftest import ServerStarter
from tests.integration.rawclient import http_request
from tests.waits import WAIT

Response = tuple[int, bytes]
Send = Callable[[str, str, list[tuple[str, str]], bytes], Awaitable[Response]]


async def asgi_call(
    app: ASGIApp, method: str, target: str, headers: list[tuple[str, str]], body: bytes
) -> Response:
    path, _, query = target.partition("?")
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    incoming = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[Any] = []

    async def receive() -> Any:
        if incoming:
            return incoming.pop(0)
        await asyncio.Event().wait()  # no disconnect: the test ends first

    async def send(message: Any) -> None:
        sent.append(message)

    await asyncio.wait_for(app(scope, receive, send), WAIT)
    start, last = sent
    assert start["type"] == "http.response.start"
    return start["status"], last["body"]


class FrontDoor:
    def __init__(self, sio: socketwire.Server, send: Send) -> None:
        self.sio = sio
        self.send = send
        self.seen: list[HttpRequest] = []


@pytest.fixture(params=["built-in", "asgi"])
async def door(
    request: pytest.FixtureRequest, start_server: ServerStarter
) -> AsyncIterator[FrontDoor]:
    sio = socketwire.Server(max_http_buffer_size=100)
    if request.param == "built-in":
        url = await start_server(sio)

        async def send(
            method: str, target: str, headers: list[tuple[str, str]], body: bytes
        ) -> Response:
            response = await http_request(url, method, target, headers=headers, body=body)
            return response.status, response.body

        yield FrontDoor(sio, send)
    else:
        app = ASGIApp(sio)

        async def send(
            method: str, target: str, headers: list[tuple[str, str]], body: bytes
        ) -> Response:
            return await asgi_call(app, method, target, headers, body)

        yield FrontDoor(sio, send)
        await sio.close()


def record(door: FrontDoor) -> None:
    def fallback(req: HttpRequest) -> None:
        door.seen.append(req)
        req.respond(200, [("Content-Type", "text/plain")], b"seen " + req.body)

    door.sio.fallback = fallback


async def test_headers_query_and_body_are_kept_alike(door: FrontDoor) -> None:
    record(door)
    headers = [
        ("Cookie", "a=1"),
        ("X-Tag", "x"),
        ("cookie", "b=2"),
        ("X-TAG", "y"),
        ("Content-Type", "text/plain"),
    ]
    status, body = await door.send("POST", "/echo?a=1&a=2&b=%20c", headers, b"hello")
    assert (status, body) == (200, b"seen hello")
    (req,) = door.seen
    assert req.headers["cookie"] == "a=1; b=2"
    assert req.headers["x-tag"] == "x, y"
    assert all(name == name.lower() for name in req.headers)
    assert req.query == {"a": "2", "b": " c"}
    assert (req.method, req.path, req.url) == ("POST", "/echo", "/echo?a=1&a=2&b=%20c")
    assert req.remote_address == "127.0.0.1" and not req.secure


async def test_a_body_over_the_limit_is_413(door: FrontDoor) -> None:
    record(door)
    status, _ = await door.send("POST", "/echo", [("Content-Type", "text/plain")], b"x" * 101)
    assert status == 413
    assert door.seen == []
    status, body = await door.send("POST", "/echo", [], b"x" * 100)
    assert (status, body) == (200, b"seen " + b"x" * 100)


async def test_a_failing_handler_is_500(door: FrontDoor) -> None:
    def fallback(req: HttpRequest) -> None:
        raise RuntimeError("bug")

    door.sio.fallback = fallback
    status, body = await door.send("GET", "/anything", [], b"")
    assert (status, body) == (500, b"Internal Server Error")
