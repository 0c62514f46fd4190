"""One HTTP request or WebSocket handshake of the ASGI front door (layer 3).

:class:`ASGIRequest` is an ASGI ``http`` or ``websocket`` scope as the Engine.IO
runtime sees it (``engine.ports.HttpRequest``), kept by the rules shared with the
built-in server (``socketwire.http.request``). The engine may answer at once or
later (a parked long-polling ``GET``, an asynchronous ``allow_request``): the
answer is kept and ``waiter`` woken, and the ASGI app sends it.
"""

from __future__ import annotations

import asyncio

from socketwire.asgi.types import Scope, Send
from socketwire.asgi.websocket import ASGIWebSocket
from socketwire.engine.ports import WebSocketHandler
from socketwire.http import request as http_request
from socketwire.http.request import collect_headers

__all__ = ["ASGIRequest"]


class ASGIRequest(http_request.Request):
    """One HTTP request or WebSocket handshake (implements ``engine.ports.HttpRequest``)."""

    __slots__ = (
        "_limits",
        "_send",
        "_websocket",
        "accept_headers",
        "port",
        "response",
        "waiter",
    )

    def __init__(
        self, scope: Scope, path: str, send: Send, websocket: bool, limits: tuple[int, int]
    ) -> None:
        raw_query: bytes = scope.get("query_string") or b""
        query = raw_query.decode("latin-1")
        raw_path: bytes | None = scope.get("raw_path")
        target = raw_path.decode("latin-1") if raw_path else scope["path"]
        client = scope.get("client")
        super().__init__(
            "GET" if websocket else scope["method"],
            path,
            query,
            target + "?" + query if query else target,
            collect_headers(scope.get("headers") or ()),
            client[0] if client else "",
            scope.get("scheme") in ("https", "wss"),
        )
        self._send = send
        self._websocket = websocket
        # (write_buffer_limit, max_message_size) of an accepted WebSocket.
        self._limits = limits
        #: The answer once given (the front door sends it).
        self.response: tuple[int, list[tuple[str, str]], bytes] | None = None
        #: Set while the front door waits for a parked request's answer.
        self.waiter: asyncio.Future[None] | None = None
        #: The accepted WebSocket and the headers of its ``websocket.accept``.
        self.port: ASGIWebSocket | None = None
        self.accept_headers: list[tuple[str, str]] = []

    def is_websocket(self) -> bool:
        return self._websocket

    def _send_response(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.response = (status, headers, body)
        self._wake()

    def accept_websocket(
        self, handler: WebSocketHandler, headers: list[tuple[str, str]]
    ) -> ASGIWebSocket | None:
        if self.answered:
            return None
        if not self._websocket:
            self.refuse_websocket(b"not a WebSocket handshake")
            return None
        self.answered = True
        limit, max_message = self._limits
        port = ASGIWebSocket(handler, self._send, limit, max_message, self.remote_address)
        self.port = port
        self.accept_headers = headers
        self._wake()
        return port

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def abort(self) -> None:
        """The client went away before the answer: wake the waiting front door too."""
        if not self.answered:
            self._wake()
            super().abort()
