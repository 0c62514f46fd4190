"""The client on uvloop (whose transports are not ``asyncio.Transport`` subclasses)."""

from __future__ import annotations

import asyncio

import pytest

from socketwire.client import Client

from .conftest import TRANSPORTS
from .helpers import WAIT, watch_manager
from .peers import NodePeer

uvloop = pytest.importorskip("uvloop")


@pytest.mark.parametrize("mode", list(TRANSPORTS))
def test_client_on_uvloop(node_peer: NodePeer, mode: str) -> None:
    transports = TRANSPORTS[mode]

    async def scenario() -> None:
        client = Client(node_peer.url + "/chat", transports=transports, force_new=True)
        events = watch_manager(client.manager)
        try:
            await asyncio.wait_for(client.connect(), WAIT)
            assert await client.emit_with_ack("echo", b"\x01", "x", timeout=WAIT) == (b"\x01", "x")
            if len(transports) > 1:
                await events.wait("upgrade")
            assert client.transport == transports[-1]
        finally:
            await asyncio.wait_for(client.disconnect(), WAIT)

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(scenario())
