"""The application that ``test_asgi.py`` serves through ``socketwire.asgi.ASGIApp``.

``create_app()`` builds a fresh ``socketwire.Server`` with the handlers the
scenario ``js/asgi_scenario.js`` exercises, mounted beside a tiny plain ASGI app
(``other_asgi_app``) that answers every other path. The same factory runs
in-process under uvicorn and in a subprocess under granian
(``granian --interface asgi --factory tests.integration.asgi_app:create_app``),
so what the server saw is read over HTTP in both cases: ``GET /state?wait=a,b``
answers, once the sockets named ``a`` and ``b`` have disconnected (5 s at most),
with the JSON of the ``STATE`` the handlers filled.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import orjson

import socketwire
from socketwire.asgi import ASGIApp, Receive, Scope, Send

WAIT = 5.0  # seconds: the longest ``/state?wait=`` waits


class State:
    """What the server saw, keyed by the ``name`` each client sends in its auth."""

    def __init__(self) -> None:
        self.disconnects: dict[str, str] = {}
        self.events: list[Any] = []
        self.lifespan: list[str] = []
        self.changed = asyncio.Event()

    def record_disconnect(self, name: str, reason: str) -> None:
        self.disconnects[name] = reason
        self.changed.set()

    async def wait_for(self, names: list[str]) -> None:
        async with asyncio.timeout(WAIT):
            while any(n not in self.disconnects for n in names):
                self.changed.clear()
                await self.changed.wait()

    def as_json(self) -> bytes:
        return orjson.dumps(
            {"disconnects": self.disconnects, "events": self.events, "lifespan": self.lifespan}
        )


def _name(socket: socketwire.Socket) -> str:
    auth = socket.handshake.auth
    return str(auth.get("name", socket.id)) if isinstance(auth, dict) else socket.id


def create_server(state: State) -> socketwire.Server:
    sio = socketwire.Server(ping_interval=10, ping_timeout=5)

    @sio.on("connection")
    def connection(socket: socketwire.Socket) -> None:
        socket.emit("welcome", {"name": _name(socket), "transport": socket.transport})

    @sio.on("echo")
    def echo(socket: socketwire.Socket, *args: Any) -> tuple[Any, ...]:
        state.events.append(["echo", _name(socket), list(args)])
        return args

    @sio.on("bin")
    def binary(socket: socketwire.Socket, data: bytes) -> dict[str, Any]:
        state.events.append(["bin", _name(socket), data.hex() if len(data) < 64 else len(data)])
        socket.emit("bin-back", {"data": data[::-1], "size": len(data)})
        return {"reversed": data[::-1], "nested": [b"\x00", b"\xff\xfe"]}

    @sio.on("ask")
    def ask(socket: socketwire.Socket, question: str) -> None:
        # Server -> client ack: the client's answer comes back as ``answer``.
        socket.emit("question", question, callback=lambda *a: socket.emit("answer", list(a)))

    @sio.on("shout")
    def shout(socket: socketwire.Socket, text: str) -> None:
        sio.emit("shouted", {"from": _name(socket), "text": text})

    @sio.on("kick")
    def kick(socket: socketwire.Socket) -> None:
        socket.disconnect()

    @sio.on("disconnect")
    def disconnect(socket: socketwire.Socket, reason: str) -> None:
        state.record_disconnect(_name(socket), reason)

    chat = sio.of("/chat")

    @chat.on("connection")
    def chat_connection(socket: socketwire.Socket) -> None:
        socket.join("lobby")
        socket.emit("chat-welcome", {"nsp": "/chat", "name": _name(socket)})

    @chat.on("say")
    def say(socket: socketwire.Socket, text: str) -> str:
        chat.to("lobby").emit("said", {"from": _name(socket), "text": text})
        return "ok"

    @chat.on("disconnect")
    def chat_disconnect(socket: socketwire.Socket, reason: str) -> None:
        state.record_disconnect("chat:" + _name(socket), reason)

    return sio


def other_app(state: State) -> Any:
    """A plain ASGI app for every path outside ``/socket.io``."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    state.lifespan.append("other startup")
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    state.lifespan.append("other shutdown")
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if kind == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.send", "text": "other " + scope["path"]})
            await send({"type": "websocket.close", "code": 1000})
            return
        body = b""
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] == "/state":
            query = scope["query_string"].decode()
            names = query.partition("wait=")[2]
            if names:
                with contextlib.suppress(TimeoutError):
                    await state.wait_for(names.split(","))
            answer = state.as_json()
        else:
            answer = orjson.dumps(
                {
                    "other": True,
                    "method": scope["method"],
                    "path": scope["path"],
                    "query": scope["query_string"].decode(),
                    "body": body.decode(),
                }
            )
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(answer)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": answer})

    return app


def create_app() -> ASGIApp:
    """A fresh server and its state (``app.state``) behind one ASGI app."""
    state = State()
    app = ASGIApp(create_server(state), other_asgi_app=other_app(state))
    app.state = state  # type: ignore[attr-defined]
    return app
