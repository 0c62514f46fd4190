"""FastAPI on the built-in server, beside Socket.IO on the same port.

A real FastAPI application (JSON routes, a streamed response, a request body, a
404, a WebSocket route, its lifespan) served by ``sio.listen(app=...)`` at the
root and at a sub-path (``root_path``); the project's client and the official
client (npm) round-trip with the Socket.IO server on the same port meanwhile.
Real sockets on 127.0.0.1; the browser test is in tests/browser.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import StreamingResponse

from socketwire.core.websocket.frames import Opcode
from tests.client.peers import NODE_MODULES
from tests.integration.rawclient import WebSocketClient, WebSocketClosed
from tests.serve.test_asgi_host import Http, make_server, round_trip
from tests.waits import WAIT

OFFICIAL = """
const { io } = require("socket.io-client");
const socket = io(process.argv[1], { reconnection: false });
socket.on("connect", async () => {
  const engine = socket.io.engine;
  if (engine.transport.name !== "websocket") await new Promise((r) => engine.once("upgrade", r));
  const echo = await socket.timeout(10000).emitWithAck("echo", "hi", 2);
  console.log(JSON.stringify({ transport: engine.transport.name, echo }));
  socket.disconnect();
});
socket.on("connect_error", (err) => {
  console.error(String(err));
  process.exit(1);
});
"""


async def official_round_trip(url: str) -> object:
    """The official client (npm): polling, the upgrade, then an acknowledged echo."""
    proc = await asyncio.create_subprocess_exec(
        "node",
        "-e",
        OFFICIAL,
        url,
        env=dict(os.environ, NODE_PATH=str(NODE_MODULES)),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), WAIT)
    assert proc.returncode == 0, err.decode()
    return json.loads(out)


def make_app(events: list[str]) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, str]]:
        events.append("startup")
        yield {"greeting": "hello"}
        events.append("shutdown")

    app = FastAPI(lifespan=lifespan)

    @app.get("/items/{item_id}")
    async def item(item_id: int, request: Request) -> dict[str, object]:
        return {
            "id": item_id,
            "greeting": request.state.greeting,
            "root_path": request.scope.get("root_path", ""),
            "url": str(request.url.path),
        }

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        body = await request.body()
        return {"length": len(body), "sum": sum(body) % 65536}

    @app.get("/numbers")
    async def numbers() -> StreamingResponse:
        async def gen() -> AsyncIterator[bytes]:
            for i in range(100):
                yield b"%d\n" % i

        return StreamingResponse(gen(), media_type="text/plain")

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        text = await websocket.receive_text()
        await websocket.send_text(text.upper())
        await websocket.close()

    return app


@pytest.mark.parametrize("root_path", ["", "/api"])
async def test_fastapi_beside_socketio(root_path: str) -> None:
    events: list[str] = []
    sio = make_server()
    port = await sio.listen(0, "127.0.0.1", app=make_app(events), root_path=root_path)
    assert events == ["startup"]
    base = f"http://127.0.0.1:{port}"
    http = await Http.open(port)
    try:
        status, _, body, _ = await http.request("GET", f"{root_path}/items/7")
        assert status == 200
        assert json.loads(body) == {
            "id": 7,
            "greeting": "hello",
            "root_path": root_path,
            "url": f"{root_path}/items/7",
        }
        payload = bytes(range(256)) * 40_000  # 10 MB request body
        status, _, body, _ = await http.request(
            "POST", f"{root_path}/echo", payload, ("Content-Type: application/octet-stream",)
        )
        assert (status, json.loads(body)) == (
            200,
            {"length": len(payload), "sum": sum(payload) % 65536},
        )
        status, _, body, _ = await http.request("GET", f"{root_path}/numbers")
        assert status == 200 and body == b"".join(b"%d\n" % i for i in range(100))
        status, _, body, _ = await http.request("GET", f"{root_path}/nowhere")
        assert (status, json.loads(body)) == (404, {"detail": "Not Found"})
        status, _, body, _ = await http.request("GET", f"{root_path}/items/x")
        assert status == 422  # FastAPI's validation answer
        ws = await WebSocketClient.connect(base, f"{root_path}/ws")
        ws.send_text("shout")
        assert await ws.recv() == (Opcode.TEXT, b"SHOUT")
        with contextlib.suppress(WebSocketClosed):
            await ws.recv()  # the app's close frame
        await ws.aclose()
        await round_trip(base)
        assert await official_round_trip(base) == {"transport": "websocket", "echo": "hi"}
    finally:
        await http.close()
        await sio.close()
    assert events == ["startup", "shutdown"]
