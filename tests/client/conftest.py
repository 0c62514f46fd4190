"""Fixtures of the client tests: the peer servers and clients that are closed afterwards.

``peer`` runs each test against Node's socket.io (one process for the session) and
against socketwire's own server (a fresh one per test); ``transports`` against
WebSocket only, polling only, and polling upgraded to WebSocket.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from socketwire.client import Client

from .peers import NodePeer, SocketwirePeer

Peer = NodePeer | SocketwirePeer

TRANSPORTS = {
    "websocket": ["websocket"],
    "polling": ["polling"],
    "upgrade": ["polling", "websocket"],
}


@pytest.fixture(scope="session")
def node_peer() -> Iterator[NodePeer]:
    """The official socket.io server, started once on port 0."""
    peer = NodePeer()
    peer.start_sync()
    yield peer
    peer.stop_sync()


@pytest.fixture(params=["node", "socketwire"])
async def peer(request: pytest.FixtureRequest) -> AsyncIterator[Peer]:
    """Each server in turn."""
    if request.param == "node":
        yield request.getfixturevalue("node_peer")
        return
    server = SocketwirePeer()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(params=list(TRANSPORTS))
def transports(request: pytest.FixtureRequest) -> list[str]:
    """``transports`` option: WebSocket only, polling only, polling then upgrade."""
    return TRANSPORTS[request.param]


ClientFactory = Callable[..., Client]


@pytest.fixture
async def make_client() -> AsyncIterator[ClientFactory]:
    """``make_client(url, **options)``: a Client with a new connection, closed after the test."""
    made: list[Client] = []

    def make(url: str | None, **options: Any) -> Client:
        options.setdefault("force_new", True)
        client = Client(url, **options)
        made.append(client)
        return client

    yield make
    # A client created without a URL may never have got one (no manager).
    managers = [client.manager for client in made if client.url is not None]
    for manager in managers:
        manager.close()
    for manager in managers:
        await manager.wait_closed()
