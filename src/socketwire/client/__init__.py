"""socketwire's asyncio Socket.IO v5 / Engine.IO v4 client.

::

    import socketwire

    async def main():
        client = await socketwire.client.connect("http://localhost:3000")

        @client.on("news")
        def news(data):
            print(data)

        print(await client.emit_with_ack("hello", "world", timeout=5))
        await client.disconnect()

:class:`Client` is a connection to one namespace (the JavaScript client's
``Socket``); namespaces opened on the same URL share one Engine.IO connection, a
:class:`Manager`, which also reconnects after a loss.  The client reuses the
sans-I/O core (``socketwire.core``) and never imports the server.
"""

from __future__ import annotations

from typing import Any

from socketwire.client.backoff import Backoff, backoff_delays, backoff_ms
from socketwire.client.errors import HandshakeRefused, TransportError
from socketwire.client.manager import Manager
from socketwire.client.socket import Client
from socketwire.emit_options import EmitOptions

__all__ = [
    "Backoff",
    "Client",
    "EmitOptions",
    "HandshakeRefused",
    "Manager",
    "TransportError",
    "backoff_delays",
    "backoff_ms",
    "connect",
]


async def connect(url: str, **options: Any) -> Client:
    """Create a :class:`Client` for ``url`` (its path is the namespace) and connect it.

    ``options`` are :class:`Client`'s (``auth``, ``retries``, ``ack_timeout``,
    ``force_new``) and :class:`Manager`'s (``transports``, ``path``, ``query``,
    ``headers``, ``ssl``, ``parser``, ``reconnection``...).  Raises
    :class:`~socketwire.errors.ConnectionRefused` when the server refuses the
    namespace, :class:`TransportError` when the connection cannot be made and no
    retry is left.
    """
    client = Client(url, **options)
    return await client.connect()
