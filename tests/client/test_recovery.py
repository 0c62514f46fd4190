"""Connection state recovery, from the client side.

The client keeps the ``pid`` of the CONNECT answer and the offset that ends every
broadcast, sends both back in the CONNECT of the reconnection, and the server then
restores the session (same socket id, ``recovered``) and replays what was missed.

Run against Node's socket.io started with ``connectionStateRecovery``
(``--recovery``) and against socketwire's server with ``connection_state_recovery``
(added to the server after this client was specified).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from .conftest import ClientFactory
from .helpers import WAIT, watch
from .peers import NodePeer, SocketwirePeer
from .test_client import ack

RecoveryPeer = NodePeer | SocketwirePeer


@pytest.fixture(params=["node", "socketwire"])
async def recovery_peer(request: pytest.FixtureRequest) -> AsyncIterator[RecoveryPeer]:
    peer: RecoveryPeer
    if request.param == "node":
        peer = NodePeer("--recovery")
    else:
        peer = SocketwirePeer(connection_state_recovery={"max_disconnection_duration": 60})
    await peer.start()
    yield peer
    await peer.stop()


async def test_connection_state_recovery(
    recovery_peer: RecoveryPeer, transports: list[str], make_client: ClientFactory
) -> None:
    client = make_client(
        recovery_peer.url + "/chat",
        transports=transports,
        reconnection_delay=0.05,
        reconnection_delay_max=0.1,
    )
    events = watch(client)
    await asyncio.wait_for(client.connect(), WAIT)
    assert client.recovered is False
    first_id = client.id
    assert (await ack(client, "whoami"))["recovered"] is False
    # A broadcast carries its offset as its last argument.
    await ack(client, "broadcast", "tick", 1)
    value, offset = await events.wait("tick")
    assert value == 1 and isinstance(offset, str)

    # The server drops the connection, then broadcasts while the client is away.
    client.emit("close_then_broadcast", "tick", 2)
    assert await events.wait("disconnect") == ("transport close",)
    await events.wait("connect", 2)
    assert client.recovered is True
    assert client.id == first_id
    missed = await events.wait("tick", 2)
    assert missed[0] == 2 and isinstance(missed[1], str) and missed[1] != offset
    who = await ack(client, "whoami")
    assert who["recovered"] is True and who["sid"] == first_id


async def test_no_recovery_for_a_new_connection(
    recovery_peer: RecoveryPeer, make_client: ClientFactory
) -> None:
    """A client that never connected has no pid to send: a fresh session."""
    client = make_client(recovery_peer.url, transports=["websocket"])
    await asyncio.wait_for(client.connect(), WAIT)
    assert client.recovered is False
    assert (await ack(client, "whoami"))["recovered"] is False
