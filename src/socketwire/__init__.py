"""socketwire: a Socket.IO v5 (Engine.IO v4) server for asyncio.

::

    import socketwire

    sio = socketwire.Server()

    @sio.on("connection")
    def connection(socket):
        socket.emit("welcome", {"id": socket.id})

    sio.run(3000)
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version

from socketwire import client
from socketwire.adapters.base import Adapter, BroadcastOptions, SocketView
from socketwire.client import Client
from socketwire.engine.server import EngineServer
from socketwire.engine.socket import EngineSocket
from socketwire.errors import (
    AckTimeout,
    ConnectionRefused,
    Disconnected,
    HandshakeError,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
    RequestTimeout,
    SocketwireError,
)
from socketwire.server.broadcast_operator import BroadcastOperator
from socketwire.server.namespace import Namespace
from socketwire.server.server import Server
from socketwire.server.socket import Handshake, Socket

try:
    # The one source of the version is pyproject.toml, through the installed metadata.
    __version__ = _dist_version("socketwire")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "AckTimeout",
    "Adapter",
    "BroadcastOperator",
    "BroadcastOptions",
    "Client",
    "ConnectionRefused",
    "Disconnected",
    "EngineServer",
    "EngineSocket",
    "Handshake",
    "HandshakeError",
    "LocalProtocolError",
    "Namespace",
    "ProtocolError",
    "RemoteProtocolError",
    "RequestTimeout",
    "Server",
    "Socket",
    "SocketView",
    "SocketwireError",
    "__version__",
    "client",
]
