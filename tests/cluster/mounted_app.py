"""A host ASGI application that mounts socketwire under ``/ws``, served by uvicorn.

Run as ``python -m tests.cluster.mounted_app REDIS_URL KEY``: it prints the
port it listens on (127.0.0.1, port 0) as one line, then serves until
terminated.

The host routes as Starlette's ``Mount`` does: ``/ws/...`` goes to the mounted
socketwire app with ``root_path`` extended, and the host answers the lifespan
protocol itself without passing it on, so the mounted app never sees a
lifespan event. The host's lifespan starts socketwire's adapters the
documented way, ``async with sio.lifespan()``. ``GET /sockets`` answers the ids
that ``sio.fetch_sockets()`` finds across the cluster.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import socketwire
from socketwire.adapters.redis import create_adapter
from socketwire.asgi import Receive, Scope, Send

MOUNT = "/ws"


def create_app(redis_url: str, key: str) -> tuple[socketwire.Server, Any]:
    sio = socketwire.Server(adapter=create_adapter(redis_url, key=key, requests_timeout=3.0))
    mounted = sio.asgi_app()

    async def lifespan(receive: Receive, send: Send) -> None:
        await receive()  # lifespan.startup
        async with sio.lifespan():
            await send({"type": "lifespan.startup.complete"})
            await receive()  # lifespan.shutdown
        await send({"type": "lifespan.shutdown.complete"})

    async def respond(send: Send, status: int, body: bytes) -> None:
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        path: str = scope["path"]
        if path.startswith(MOUNT + "/"):
            root = scope.get("root_path", "") + MOUNT
            await mounted(dict(scope, root_path=root), receive, send)
        elif path == "/sockets" and scope["type"] == "http":
            ids = sorted(s.id for s in await sio.fetch_sockets())
            await respond(send, 200, json.dumps(ids).encode())
        elif scope["type"] == "http":
            await respond(send, 404, b"null")

    return sio, app


async def main(redis_url: str, key: str) -> None:
    import uvicorn

    _, app = create_app(redis_url, key)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, loop="asyncio", lifespan="on", log_level="warning"
    )
    server = uvicorn.Server(config)
    task = asyncio.get_running_loop().create_task(server.serve())
    while not server.started:
        if task.done():
            await task
            raise SystemExit("uvicorn did not start")
        await asyncio.sleep(0.01)  # polls uvicorn's flag; the test waits on this line
    print(server.servers[0].sockets[0].getsockname()[1], flush=True)
    await task


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
