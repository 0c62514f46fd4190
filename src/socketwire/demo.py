"""A small chat server to try socketwire in a browser (layer 3).

``python -m socketwire.demo --port 3000`` then open http://127.0.0.1:3000/ in two
tabs. The page loads the browser client from ``/socket.io/socket.io.js``; the
server uses the in-memory adapter.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from socketwire.engine.ports import HttpRequest
from socketwire.server.server import Server
from socketwire.server.socket import Socket

__all__ = ["create_server", "main"]

PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>socketwire chat</title>
<style>body{font:15px system-ui;margin:2em}#log{list-style:none;padding:0}
#log li{padding:2px 0}.sys{color:#888}</style></head>
<body><h1>socketwire chat</h1>
<p>Transport: <b id="transport">connecting</b> &middot; online: <b id="online">0</b></p>
<form id="f"><input id="name" placeholder="nickname" size="10">
<input id="m" autocomplete="off" placeholder="message" size="40"><button>Send</button></form>
<ul id="log"></ul>
<script src="/socket.io/socket.io.js"></script>
<script>
const socket = io();
const log = (text, cls) => { const li = document.createElement("li");
  li.textContent = text; if (cls) li.className = cls; document.getElementById("log").prepend(li); };
socket.on("connect", () => {
  document.getElementById("transport").textContent = socket.io.engine.transport.name;
  socket.io.engine.on("upgrade", (t) => document.getElementById("transport").textContent = t.name);
});
socket.on("online", (n) => document.getElementById("online").textContent = n);
socket.on("chat", (msg) => log(msg.from + ": " + msg.text));
socket.on("joined", (name) => log(name + " joined", "sys"));
socket.on("left", (name) => log(name + " left", "sys"));
document.getElementById("f").addEventListener("submit", async (e) => {
  e.preventDefault();
  const name = document.getElementById("name").value || "anonymous";
  await socket.emitWithAck("nickname", name);
  const input = document.getElementById("m");
  if (input.value) { const ok = await socket.emitWithAck("chat", input.value); input.value = ""; }
});
</script></body></html>
"""


def create_server(**options: Any) -> Server:
    """The demo's server: a chat room with nicknames, presence and acks."""

    def page(req: HttpRequest) -> None:
        if req.path in ("/", "/index.html") and req.method in ("GET", "HEAD"):
            req.respond(200, [("Content-Type", "text/html; charset=utf-8")], PAGE)
        else:
            req.respond(404, [("Content-Type", "text/plain")], b"Not Found")

    sio = Server(fallback=page, **options)

    @sio.on("connection")
    def connection(socket: Socket) -> None:
        socket.data["name"] = "anonymous"
        sio.emit("online", len(sio.sockets.sockets))

    @sio.on("nickname")
    def nickname(socket: Socket, name: Any) -> bool:
        name = str(name)[:32] or "anonymous"
        first = socket.data["name"] == "anonymous"
        socket.data["name"] = name
        if first:
            socket.broadcast.emit("joined", name)
        return True

    @sio.on("chat")
    def chat(socket: Socket, text: Any) -> bool:
        sio.emit("chat", {"from": socket.data["name"], "text": str(text)[:1000]})
        return True

    @sio.on("disconnect")
    def disconnect(socket: Socket, reason: str) -> None:
        sio.emit("left", socket.data.get("name", "anonymous"))
        sio.emit("online", len(sio.sockets.sockets))

    return sio


def main(argv: list[str] | None = None) -> None:
    """The demo's command line: ``python -m socketwire.demo --host H --port P``."""
    parser = argparse.ArgumentParser(description="socketwire demo chat server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    print(f"socketwire demo on http://{args.host}:{args.port}/", flush=True)
    create_server().run(args.port, args.host)


if __name__ == "__main__":
    main()
