"""Errors of the client's connection layer (what ``connect_error`` reports besides refusals).

A namespace refused by the server surfaces as :class:`socketwire.errors.ConnectionRefused`
(the CONNECT_ERROR payload's ``message`` and ``data``).  Failures below Socket.IO (the
HTTP request, the WebSocket, the connect timeout) surface as :class:`TransportError`,
with the reason strings of the JavaScript client (``"xhr poll error"``,
``"xhr post error"``, ``"websocket error"``, ``"timeout"``...).
"""

from __future__ import annotations

from typing import Any

from socketwire.errors import SocketwireError

__all__ = ["TransportError"]


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
