"""Serving the client: the browser client and a page that uses it.

The server answers ``/socket.io/socket.io.js`` (and ``.min.js``, ``.esm.min.js``,
their source maps, ``socket.io.d.ts``) with socketwire's own browser client,
packaged with the server (``$SOCKETWIRE_CLIENT_DIST`` names another bundle to
serve instead, such as the official ``socket.io-client/dist``). Every other path goes to the ``fallback`` handler, here a tiny web app
with one page at ``/``. The page loads the bundle, connects to the server it
came from, says hello and shows the answer::

    <script src="/socket.io/socket.io.js"></script>
    <script>
      const socket = io();
      socket.emit("hello", navigator.userAgent, (reply) => { ... });
    </script>
"""

from __future__ import annotations

from typing import Any

import socketwire
from socketwire.engine.ports import HttpRequest

PAGE = b"""<!doctype html>
<html>
  <head>
    <meta charset="utf-8">
    <title>socketwire</title>
  </head>
  <body>
    <p id="status">connecting...</p>
    <script src="/socket.io/socket.io.js"></script>
    <script>
      const status = document.getElementById("status");
      const socket = io();
      socket.on("connect", () => {
        status.textContent = "connected as " + socket.id;
        socket.emit("hello", navigator.userAgent, (reply) => {
          status.textContent = reply;
        });
      });
      socket.on("disconnect", (reason) => {
        status.textContent = "disconnected: " + reason;
      });
    </script>
  </body>
</html>
"""


def serve_page(req: HttpRequest) -> None:
    """The fallback: the page at ``/``, 404 elsewhere."""
    if req.path not in ("/", "/index.html"):
        req.respond(404, [("Content-Type", "text/plain; charset=utf-8")], b"Not Found")
    elif req.method not in ("GET", "HEAD"):
        req.respond(405, [("Allow", "GET, HEAD")], b"")
    else:
        body = b"" if req.method == "HEAD" else PAGE
        req.respond(200, [("Content-Type", "text/html; charset=utf-8")], body)


def create_server(**options: Any) -> socketwire.Server:
    options.setdefault("fallback", serve_page)
    sio = socketwire.Server(**options)

    @sio.on("hello")
    def hello(socket: socketwire.Socket, user_agent: str) -> str:
        return f"hello {user_agent}, you are {socket.id}"

    return sio


if __name__ == "__main__":
    create_server().run(3000)
