"""Errors of the client's connection layer (what ``connect_error`` reports besides refusals).

A namespace refused by the server surfaces as :class:`socketwire.errors.ConnectionRefused`
(the CONNECT_ERROR payload's ``message`` and ``data``).  Failures below Socket.IO (the
HTTP request, the WebSocket, the connect timeout) surface as :class:`TransportError`,
with the reason strings of the JavaScript client (``"xhr poll error"``,
``"xhr post error"``, ``"websocket error"``, ``"timeout"``...).  A server that
refuses the Engine.IO handshake itself, with an HTTP error and Node's error object
``{"code": N, "message": ...}``, surfaces as :class:`HandshakeRefused`: both a
:class:`TransportError` and a :class:`socketwire.errors.HandshakeError`.
"""

from __future__ import annotations

from typing import Any

import orjson

from socketwire.errors import HandshakeError, SocketwireError

__all__ = ["HandshakeRefused", "TransportError"]


class TransportError(SocketwireError, ConnectionError):
    """The Engine.IO connection could not be opened or failed.

    ``reason`` is the JavaScript client's wording; ``description`` what caused it (an
    HTTP status, an exception...); ``context`` extra detail such as a response body.
    """

    def __init__(self, reason: str, description: Any = None, context: Any = None) -> None:
        super().__init__(reason if description is None else f"{reason}: {description}")
        self.reason = reason
        self.description = description
        self.context = context


class HandshakeRefused(TransportError, HandshakeError):
    """The server refused the Engine.IO handshake (an HTTP error with Node's error object).

    As a :class:`TransportError`: ``reason`` is the JavaScript client's wording
    (``"xhr poll error"``, ``"websocket error"``), ``description`` what the transport
    reports (the HTTP status for polling, the WebSocket's error) and ``context`` the
    response body.  As a :class:`~socketwire.errors.HandshakeError`: ``code`` and
    ``message`` are the server's (Engine.IO error codes as Node's ``Server.errors``:
    0 unknown transport, 3 bad request, 4 forbidden, 5 unsupported protocol
    version...) and ``status`` the HTTP status.

    Node's engine.io refuses a WebSocket handshake with the message alone, as
    plain text: without a code, that refusal stays a plain :class:`TransportError`.
    """

    def __init__(
        self, reason: str, description: Any, body: bytes, code: int, message: str, status: int
    ) -> None:
        # The two bases take different arguments: the attributes of both are set
        # here, and the message once.
        SocketwireError.__init__(
            self, f"{reason}: handshake refused with HTTP {status}: {message} (code {code})"
        )
        self.reason = reason
        self.description = description
        self.context = body
        self.code = code
        self.message = message
        self.status = status

    @classmethod
    def from_response(
        cls, reason: str, description: Any, status: int, body: bytes
    ) -> HandshakeRefused | None:
        """The refusal ``body`` states, or None when it is not Node's error object."""
        try:
            info = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        if type(info) is not dict:
            return None
        code = info.get("code")
        message = info.get("message")
        if type(code) is not int or type(message) is not str:
            return None
        return cls(reason, description, body, code, message, status)
