"""The exception tree of socketwire (layer 0: imports nothing of the package).

::

    SocketwireError
    ├── ProtocolError                  a peer or the local code broke a protocol rule
    │   ├── LocalProtocolError         our own code asked for something the protocol forbids
    │   └── RemoteProtocolError        the peer sent something the protocol forbids
    │       └── WebSocketProtocolError carries the RFC 6455 close code to answer with
    ├── HandshakeError(code)           an Engine.IO handshake refused (HTTP 400/403): the
    │                                  client raises it (``client.errors.HandshakeRefused``)
    ├── ConnectionRefused(message, data)   a namespace connection refused (CONNECT_ERROR)
    ├── AckTimeout                     no acknowledgement in time (also a ``TimeoutError``)
    ├── RequestTimeout                 a cluster request not answered in time (also a ``TimeoutError``)
    ├── StartupFailed                  an ASGI app hosted by the built-in server failed its
    │                                  lifespan startup (nothing is listening)
    └── Disconnected(reason)           the socket is gone; the operation cannot complete

Remote garbage never escapes the protocol core as anything but a
``RemoteProtocolError``: the I/O layers catch it, log it and close the connection.
"""

from __future__ import annotations

from typing import Any


class SocketwireError(Exception):
    """Base class of every error raised by socketwire."""


class ProtocolError(SocketwireError):
    """A protocol rule was broken."""


class LocalProtocolError(ProtocolError):
    """Our own code asked for something the protocol forbids (a programming error)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol forbids."""


class WebSocketProtocolError(RemoteProtocolError):
    """A WebSocket peer broke RFC 6455; ``code`` is the close code to answer with."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class HandshakeError(SocketwireError):
    """The server refused an Engine.IO handshake.

    ``code`` is the Engine.IO error code (as Node's ``Server.errors``: 0 unknown
    transport, 1 unknown session id, 2 bad handshake method, 3 bad request,
    4 forbidden, 5 unsupported protocol version), ``message`` the server's text and
    ``status`` the HTTP status that carried them.  The client raises it (as
    :class:`socketwire.client.errors.HandshakeRefused`, also a ``TransportError``)
    from ``connect`` and reports it to ``connect_error`` listeners.
    """

    def __init__(self, code: int, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


class ConnectionRefused(SocketwireError):
    """Raise in a middleware or connection handler to refuse a namespace connection.

    The client receives a CONNECT_ERROR packet whose payload is
    ``{"message": message}`` plus ``"data": data`` when data is given.
    """

    def __init__(self, message: str = "Not authorized", data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data

    def payload(self) -> dict[str, Any]:
        """The CONNECT_ERROR payload, as Socket.IO v5 gives it."""
        out: dict[str, Any] = {"message": self.message}
        if self.data is not None:
            out["data"] = self.data
        return out


class AckTimeout(SocketwireError, TimeoutError):
    """No acknowledgement arrived within the timeout.

    For a broadcast with acks, ``responses`` holds the answers received so far.
    """

    def __init__(self, message: str = "operation has timed out", responses: Any = None) -> None:
        super().__init__(message)
        self.responses = responses


class RequestTimeout(SocketwireError, TimeoutError):
    """The other servers of a cluster did not all answer a request in time."""


class StartupFailed(SocketwireError):
    """The ASGI application given to ``listen(app=...)`` failed its lifespan startup
    (``lifespan.startup.failed``, or an exception); the server did not start."""


class Disconnected(SocketwireError):
    """The socket was disconnected before the operation completed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


__all__ = [
    "AckTimeout",
    "ConnectionRefused",
    "Disconnected",
    "HandshakeError",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
    "RequestTimeout",
    "SocketwireError",
    "WebSocketProtocolError",
]
