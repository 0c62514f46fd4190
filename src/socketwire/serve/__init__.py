"""The built-in HTTP/1.1 + WebSocket server (layer 3, asyncio).

:func:`listen` serves an application (called with each request) on a TCP port;
:func:`listen_engine` serves a bare Engine.IO server. Each connection is an
``HttpConnection`` (``socketwire.serve.connection``) while it speaks HTTP/1.1 and
a ``WebSocketConnection`` (``socketwire.serve.websocket``) once upgraded, driving
the sans-I/O WebSocket protocol of the core. The Engine.IO runtime sees only the
ports of ``socketwire.engine.ports``. ``socketwire.serve.asgi_host`` runs an ASGI
application beside it on the same port; ``socketwire.serve.proxy`` reads the
proxy headers of trusted peers.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

from socketwire.engine.server import EngineServer
from socketwire.serve.asgi_host import AsgiHost
from socketwire.serve.connection import (
    HTTP_BODY_TIMEOUT,
    HTTP_HEAD_TIMEOUT,
    KEEP_ALIVE_TIMEOUT,
    MAX_HEAD_SIZE,
    HttpConnection,
    HttpTimeouts,
    Request,
)
from socketwire.serve.proxy import DEFAULT_FORWARDED_ALLOW_IPS, ProxyHeaders
from socketwire.serve.websocket import WebSocketConnection

__all__ = [
    "MAX_HEAD_SIZE",
    "AsgiHost",
    "HttpConnection",
    "HttpTimeouts",
    "ProxyHeaders",
    "Request",
    "WebSocketConnection",
    "listen",
    "listen_engine",
    "make_protocol_factory",
]


def make_protocol_factory(
    app: Callable[[Any], None],
    max_body_size: int,
    write_buffer_limit: int = 4 * 1024 * 1024,
    timeouts: HttpTimeouts | None = None,
    *,
    asgi_host: AsgiHost | None = None,
    proxy: ProxyHeaders | None = None,
) -> Callable[[], Any]:
    """The factory that ``loop.create_server`` takes."""
    shared = timeouts if timeouts is not None else HttpTimeouts()
    if asgi_host is not None:
        app = asgi_host.route(app)

    def factory() -> HttpConnection:
        return HttpConnection(
            app, max_body_size, write_buffer_limit, shared, exchanges=asgi_host, proxy=proxy
        )

    return factory


async def listen(
    app: Callable[[Any], None],
    port: int,
    host: str,
    *,
    max_body_size: int,
    write_buffer_limit: int = 4 * 1024 * 1024,
    http_head_timeout: float = HTTP_HEAD_TIMEOUT,
    http_body_timeout: float = HTTP_BODY_TIMEOUT,
    keep_alive_timeout: float = KEEP_ALIVE_TIMEOUT,
    asgi_host: AsgiHost | None = None,
    proxy_headers: bool = False,
    forwarded_allow_ips: str | None = None,
    uds: str | None = None,
    **kwargs: Any,
) -> asyncio.Server:
    """Serve ``app`` (called with each ``Request``) on ``host:port``.

    ``http_head_timeout`` (seconds, default 60) bounds the wait for a complete
    request head, ``http_body_timeout`` (300) for its body (both then 408 and
    close), ``keep_alive_timeout`` (5) an idle keep-alive connection; see
    ``HttpTimeouts``.

    ``asgi_host`` serves an ASGI application beside ``app`` (``AsgiHost``).
    ``proxy_headers`` believes ``X-Forwarded-For``/``-Proto`` from the peers of
    ``forwarded_allow_ips`` (default ``127.0.0.1``; see ``ProxyHeaders``).
    ``uds`` listens on that Unix socket path instead of ``host:port``; a ``sock=``
    keyword serves an already bound socket. Other keyword arguments go to
    ``loop.create_server`` (``ssl=``, ``backlog=``...).
    """
    kwargs.setdefault("backlog", 4096)
    loop = asyncio.get_running_loop()
    timeouts = HttpTimeouts(http_head_timeout, http_body_timeout, keep_alive_timeout)
    server: asyncio.Server | None = None

    def serve(req: Request) -> None:
        # Closing the server stops accepting connections, but a keep-alive
        # connection accepted before may still bring requests: those end the
        # connection, unanswered by the application (a client that reconnects
        # must reach whatever listens on the port now, not a closed server).
        if server is not None and not server.is_serving():
            req.keep_alive = False
            req.respond(503, [("Content-Type", "text/plain")], b"Server closed")
            return
        app(req)

    proxy = None
    if proxy_headers:
        proxy = ProxyHeaders(forwarded_allow_ips or DEFAULT_FORWARDED_ALLOW_IPS)
    factory = make_protocol_factory(
        serve, max_body_size, write_buffer_limit, timeouts, asgi_host=asgi_host, proxy=proxy
    )
    if uds is not None:
        server = await loop.create_unix_server(factory, uds, **kwargs)
    elif kwargs.get("sock") is not None:
        sock = kwargs.pop("sock")
        if sock.family == socket.AF_UNIX:
            server = await loop.create_unix_server(factory, sock=sock, **kwargs)
        else:
            server = await loop.create_server(factory, sock=sock, **kwargs)
    else:
        server = await loop.create_server(factory, host, port, **kwargs)
    return server


async def listen_engine(
    engine: EngineServer,
    port: int,
    host: str = "127.0.0.1",
    *,
    path: str = "/engine.io",
    **kwargs: Any,
) -> asyncio.Server:
    """Serve a bare Engine.IO server (no Socket.IO), like Node's ``engine.io.listen``.

    Requests under ``path`` go to the engine; anything else gets 404.
    """
    prefix = "/" + path.strip("/") + "/"

    def app(req: Request) -> None:
        if req.path.startswith(prefix) or req.path == prefix[:-1]:
            engine.handle_request(req)
        else:
            req.respond(404, [("Content-Type", "text/plain")], b"Not Found")

    return await listen(
        app,
        port,
        host,
        max_body_size=engine.max_http_buffer_size,
        write_buffer_limit=engine.write_buffer_limit,
        **kwargs,
    )
