"""Why a connection or a socket ended: Node's reason strings (layer 0).

Both sides speak of disconnections with the exact strings of socket.io and
engine.io on Node (``socket.on("disconnect", (reason) => ...)``), so that code
ported from Node or from the JavaScript client compares the same values. A
``DisconnectReason`` is a ``str``: ``reason == "transport close"`` holds, and it
prints and serialises as the plain string.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["DisconnectReason"]


class DisconnectReason(StrEnum):
    """Disconnection reasons, as Node's engine.io, socket.io and socket.io-client say them."""

    # Engine.IO, either side.
    TRANSPORT_CLOSE = "transport close"
    """The peer closed the connection, or sent a close packet."""
    TRANSPORT_ERROR = "transport error"
    """The connection failed (a protocol error, an overlapping poll, a reset)."""
    PING_TIMEOUT = "ping timeout"
    """No heartbeat within ``ping_interval + ping_timeout``."""
    PARSE_ERROR = "parse error"
    """The peer sent something that does not decode."""
    FORCED_CLOSE = "forced close"
    """This side closed the connection on purpose."""
    # Engine.IO, server side.
    FORCED_SERVER_CLOSE = "forced server close"
    """The Engine.IO server closed every connection (shutting down)."""
    # Socket.IO, server side.
    SERVER_NAMESPACE_DISCONNECT = "server namespace disconnect"
    """``socket.disconnect()`` on the server."""
    CLIENT_NAMESPACE_DISCONNECT = "client namespace disconnect"
    """The client sent a DISCONNECT packet for the namespace."""
    SERVER_SHUTTING_DOWN = "server shutting down"
    """``await sio.close()``."""
    # Socket.IO, client side.
    IO_SERVER_DISCONNECT = "io server disconnect"
    """The server disconnected the client's socket."""
    IO_CLIENT_DISCONNECT = "io client disconnect"
    """``client.disconnect()``."""
    # Not one of Node's: the peer stopped reading and its write buffer passed the cap.
    SLOW_CONSUMER = "slow consumer"
    """The client did not read what the server wrote: its buffer passed ``write_buffer_limit``."""
