"""The servers socketwire's client is tested against: Node's socket.io and socketwire's own.

Both expose the same handlers on "/", "/chat", "/private" (auth.token must be
"secret") and the dynamic namespaces matching ``^/dyn-\\w+$``, and answer ``GET /``
with a page that loads ``/socket.io/socket.io.js``; ``tests/js/peer_server.js`` is
the Node side, ``build_socketwire_server`` the Python mirror.  Each peer can be
stopped and started again on the same port.
"""

from __future__ import annotations

import json
import os
import re
import select
import ssl as ssl_module
import subprocess
from pathlib import Path
from typing import Any

import socketwire
from socketwire import ConnectionRefused, Socket
from socketwire.engine.ports import HttpRequest

ROOT = Path(__file__).resolve().parents[2]
JS_DIR = ROOT / "tests" / "js"
PEER_SCRIPT = JS_DIR / "peer_server.js"
NODE_MODULES = JS_DIR / "node_modules"


class NodePeer:
    """``node tests/js/peer_server.js`` in a subprocess (independent of any event loop)."""

    name = "node"

    def __init__(self, *flags: str, scheme: str = "http") -> None:
        self.flags = flags
        self.scheme = scheme
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start_sync(self, port: int = 0, timeout: float = 15.0) -> None:
        env = dict(os.environ, NODE_PATH=str(NODE_MODULES))
        proc = subprocess.Popen(
            ["node", str(PEER_SCRIPT), "--port", str(port), *self.flags],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        line = proc.stdout.readline() if ready else b""
        if not line:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"node peer did not start (port {port})")
        self.port = json.loads(line)["port"]
        self.proc = proc

    def stop_sync(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()

    async def start(self, port: int = 0) -> None:
        self.start_sync(port)

    async def stop(self) -> None:
        self.stop_sync()


class SocketwirePeer:
    """socketwire's own server, listening in the running event loop."""

    name = "socketwire"

    def __init__(self, *, ssl: ssl_module.SSLContext | None = None, **options: Any) -> None:
        self.options = options
        self.ssl = ssl
        self.port = 0
        self.sio: socketwire.Server | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.ssl else 'http'}://127.0.0.1:{self.port}"

    async def start(self, port: int = 0) -> None:
        self.sio = build_socketwire_server(**self.options)
        extra: dict[str, Any] = {} if self.ssl is None else {"ssl": self.ssl}
        self.port = await self.sio.listen(port, "127.0.0.1", **extra)

    async def stop(self) -> None:
        sio, self.sio = self.sio, None
        if sio is not None:
            await sio.close()


# The Python mirror of tests/js/peer_server.js.

_records: dict[str, list[Any]] = {}
_attempts: dict[str, int] = {}

# What both peers answer to GET /: a page of their origin that loads the client
# script they serve (a browser test's page).
PAGE = (
    b'<!doctype html><html><head><meta charset="utf-8"><title>peer</title>'
    b'<script src="/socket.io/socket.io.js"></script></head><body></body></html>'
)


def _page(req: HttpRequest) -> None:
    if req.path == "/" and req.method == "GET":
        req.respond(200, [("Content-Type", "text/html; charset=utf-8")], PAGE)
    else:
        req.respond(404, [("Content-Type", "text/plain")], b"Not Found")


def build_socketwire_server(**options: Any) -> socketwire.Server:
    options.setdefault("fallback", _page)
    sio = socketwire.Server(**options)
    for name in ("/", "/chat", "/private"):
        _setup(sio, sio.of(name))
    _setup(sio, sio.of(re.compile(r"^/dyn-\w+$")))

    @sio.of("/private").use
    def only_with_token(socket: Socket) -> None:
        if socket.handshake.auth.get("token") != "secret":
            raise ConnectionRefused("not authorized", {"reason": "bad token"})

    return sio


def _setup(sio: socketwire.Server, nsp: socketwire.Namespace) -> None:
    @nsp.on("connection")
    def connection(socket: Socket) -> None:
        # Report this socket's disconnect reason to the room "watch:<reason_key>".
        watch_key = socket.handshake.auth.get("reason_key")
        if watch_key:

            @socket.on("disconnect")
            def gone(reason: str) -> None:
                socket.nsp.to(f"watch:{watch_key}").emit("gone", socket.nsp.name, reason)

    @nsp.on("echo")
    def echo(socket: Socket, *args: Any) -> tuple[Any, ...]:
        return args

    @nsp.on("echo_event")
    def echo_event(socket: Socket, event: str, *args: Any) -> None:
        socket.emit(event, *args)

    @nsp.on("whoami")
    def whoami(socket: Socket) -> dict[str, Any]:
        return {
            "sid": socket.id,
            "nsp": socket.nsp.name,
            "engine": socket.conn.engine.id,
            "transport": socket.transport,
            "auth": socket.handshake.auth,
            "query": socket.handshake.query,
            "header": socket.handshake.headers.get("x-test"),
            "recovered": socket.recovered,
        }

    @nsp.on("ask")
    def ask(socket: Socket, event: str, *args: Any) -> None:
        def answered(*response: Any) -> None:
            socket.emit("answer", event, list(response))

        socket.emit(event, *args, callback=answered)

    @nsp.on("join")
    def join(socket: Socket, room: str) -> str:
        socket.join(room)
        return room

    @nsp.on("to_room")
    def to_room(socket: Socket, room: str, event: str, *args: Any) -> None:
        socket.nsp.to(room).emit(event, *args)

    @nsp.on("broadcast")
    def broadcast(socket: Socket, event: str, *args: Any) -> None:
        socket.nsp.emit(event, *args)

    @nsp.on("broadcast_others")
    def broadcast_others(socket: Socket, event: str, *args: Any) -> None:
        socket.broadcast.emit(event, *args)

    @nsp.on("volatile_event")
    def volatile_event(socket: Socket, event: str, *args: Any) -> None:
        socket.volatile.emit(event, *args)

    @nsp.on("set_data")
    def set_data(socket: Socket, key: str, value: Any) -> None:
        socket.data[key] = value

    @nsp.on("get_data")
    def get_data(socket: Socket, key: str) -> tuple[Any]:
        return (socket.data.get(key),)

    @nsp.on("connection_namespaces")
    def connection_namespaces(socket: Socket) -> int:
        # The namespaces connected over this socket's Engine.IO connection.
        return len(socket.conn.sockets)

    @nsp.on("server_disconnect")
    def server_disconnect(socket: Socket) -> None:
        socket.disconnect()

    @nsp.on("close_transport")
    def close_transport(socket: Socket) -> None:
        socket.conn.engine.close()

    @nsp.on("close_then_broadcast")
    def close_then_broadcast(socket: Socket, event: str, *args: Any) -> None:
        # For recovery: close this client's connection, then broadcast while it is away.
        socket.conn.engine.close()
        socket.nsp.emit(event, *args)

    @nsp.on("garbage")
    def garbage(socket: Socket) -> None:
        socket.conn.engine.send_text(b"zzz")

    @nsp.on("stop_pings")
    def stop_pings(socket: Socket) -> None:
        # The heartbeat queue ignores a deadline that is not the session's.
        socket.conn.engine.session.deadline = -1.0

    @nsp.on("record")
    def record(socket: Socket, key: str, value: Any) -> None:
        _records.setdefault(key, []).append(value)

    @nsp.on("records")
    def records(socket: Socket, key: str) -> list[Any]:
        return _records.get(key, [])

    @nsp.on("flaky")
    def flaky(socket: Socket, key: str, value: Any, ack: Any) -> None:
        n = _attempts[key] = _attempts.get(key, 0) + 1
        _records.setdefault(key, []).append(value)
        if n >= 3 and ack is not None:
            ack("ok", n)

    @nsp.on("engine_count")
    def engine_count(socket: Socket) -> int:
        return sio.engine.clients_count

    @nsp.on("message")
    def message(socket: Socket, *args: Any) -> None:
        socket.send(*args)
