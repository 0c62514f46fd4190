"""A small ASGI 3 application written for the tests, as a web framework's would be.

``create_app()`` returns an app (and its ``events`` list) with:

* ``lifespan``: records ``startup``/``shutdown``, puts ``greeting`` in the state;
* ``GET /hello``: JSON with the path, root path, scheme, client and the state's greeting;
* ``GET /stream?n=N``: N chunks of ``chunk i\\n``, each its own ``http.response.body``;
* ``POST /echo``: the request body streamed back as it is read, chunk by chunk;
* ``GET /slow``: answers once ``release`` is set (a request in flight);
* anything else: 404;
* WebSocket ``/ws``: echoes text and bytes until the client leaves; others refused.

The same app runs on the built-in server (``sio.listen(app=...)``) and under
uvicorn behind ``socketwire.asgi.ASGIApp``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from socketwire.asgi import Receive, Scope, Send


class DemoApp:
    """The application and what it saw."""

    def __init__(self, fail_startup: bool = False) -> None:
        self.events: list[str] = []
        self.fail_startup = fail_startup
        self.release = asyncio.Event()
        self.slow_started = asyncio.Event()
        self.sink_receive: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self.lifespan(scope, receive, send)
        elif kind == "websocket":
            await self.websocket(scope, receive, send)
        else:
            await self.http(scope, receive, send)

    async def lifespan(self, scope: Scope, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self.fail_startup:
                    await send({"type": "lifespan.startup.failed", "message": "no database"})
                    return
                scope["state"]["greeting"] = "hi"
                self.events.append("startup")
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.events.append("shutdown")
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def http(self, scope: Scope, receive: Any, send: Any) -> None:
        local = scope["path"][len(scope["root_path"]) :]
        if local == "/echo":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return
                chunk = message.get("body", b"")
                more = message.get("more_body", False)
                await send({"type": "http.response.body", "body": chunk, "more_body": more})
                if not more:
                    return
        if local != "/sink":
            await _read_all(receive)
        if local == "/hello":
            client = scope.get("client")
            await _json(
                send,
                200,
                {
                    "path": scope["path"],
                    "root_path": scope["root_path"],
                    "scheme": scope["scheme"],
                    "client": client[0] if client else None,
                    "greeting": scope.get("state", {}).get("greeting"),
                    "query": scope["query_string"].decode(),
                },
            )
        elif local == "/stream":
            n = int(scope["query_string"].decode().partition("n=")[2] or "10")
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"text/plain")],
                }
            )
            for i in range(n):
                await send(
                    {"type": "http.response.body", "body": b"chunk %d\n" % i, "more_body": True}
                )
            await send({"type": "http.response.body", "body": b""})
        elif local == "/sink":
            # Reads nothing until released: the body waits in the server.
            self.sink_receive = receive
            self.slow_started.set()
            await self.release.wait()
            size = len(await _read_all(receive))
            await _json(send, 200, {"size": size})
        elif local == "/slow":
            self.slow_started.set()
            await self.release.wait()
            await _json(send, 200, {"slow": "done"})
        else:
            await _json(send, 404, {"detail": "Not Found"})

    async def websocket(self, scope: Scope, receive: Any, send: Any) -> None:
        message = await receive()
        assert message["type"] == "websocket.connect"
        if scope["path"][len(scope["root_path"]) :] != "/ws":
            await send({"type": "websocket.close", "code": 1008})
            return
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                self.events.append(f"ws closed {message['code']}")
                return
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": "echo " + message["text"]})
            else:
                await send({"type": "websocket.send", "bytes": message["bytes"][::-1]})


async def _read_all(receive: Any) -> bytes:
    body = b""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return body
        chunk: bytes = message.get("body", b"")
        body += chunk
        if not message.get("more_body", False):
            return body


async def _json(send: Any, status: int, value: Any) -> None:
    body = json.dumps(value).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(body)),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
