"""Reconnection: the server goes away and comes back on the same port; giving up.

Run against Node's socket.io and socketwire's server, over every transport.  The
backoff's randomness is injected (``rng``) so that the delays are known exactly.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from socketwire.client import Client, TransportError

from .conftest import ClientFactory
from .helpers import WAIT, watch, watch_manager
from .peers import NodePeer, SocketwirePeer
from .test_client import ack, key


def make_peer(name: str) -> NodePeer | SocketwirePeer:
    return NodePeer() if name == "node" else SocketwirePeer()


def free_port() -> int:
    """A port nobody listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.mark.parametrize("server", ["node", "socketwire"])
async def test_server_restart_on_same_port(
    server: str, transports: list[str], make_client: ClientFactory
) -> None:
    peer = make_peer(server)
    await peer.start()
    port = peer.port
    auth_calls = 0

    def auth() -> dict[str, Any]:
        nonlocal auth_calls
        auth_calls += 1
        return {"n": auth_calls}

    client = make_client(
        peer.url,
        transports=transports,
        auth=auth,
        reconnection_delay=0.1,
        reconnection_delay_max=0.4,
        rng=lambda: 0.0,  # no jitter: delays of 100, 200, 400, 400... ms
    )
    events = watch(client)
    manager_events = watch_manager(client.manager)
    loop = asyncio.get_running_loop()
    attempt_times: list[float] = []
    client.manager.on("reconnect_attempt", lambda n: attempt_times.append(loop.time()))
    k = key()

    @client.on("disconnect")
    def buffered_while_down(reason: str) -> None:
        client.emit("record", k, "emitted while the server was down")

    try:
        await asyncio.wait_for(client.connect(), WAIT)
        assert (await ack(client, "whoami"))["auth"] == {"n": 1}
        for_good = asyncio.ensure_future(client.wait())
        lost_at = loop.time()
        await peer.stop()
        (reason,) = await events.wait("disconnect")
        print("restart disconnect reason:", server, transports, reason)
        assert reason in ("transport close", "transport error")
        # Let two attempts fail (connection refused) before the server comes back.
        await manager_events.wait("reconnect_error", 2)
        await peer.start(port)
        (attempt,) = await manager_events.wait("reconnect", timeout=WAIT)
        await events.wait("connect", 2)

        attempts = [n for (n,) in manager_events.named("reconnect_attempt")]
        assert attempts == list(range(1, len(attempts) + 1))
        assert attempt == attempts[-1] >= 3
        for (err,) in manager_events.named("reconnect_error"):
            assert isinstance(err, TransportError)
        # The backoff: 100, 200, 400 ms between attempts (never less).
        gaps = [b - a for a, b in zip([lost_at, *attempt_times], attempt_times, strict=False)]
        for gap, expected in zip(gaps, [0.1, 0.2, 0.4, 0.4, 0.4], strict=False):
            assert gap >= expected - 0.02, (gaps, expected)
        # Working again, with the auth evaluated anew and the buffered emit delivered.
        assert client.connected
        who = await ack(client, "whoami")
        assert who["auth"] == {"n": 2}
        assert who["transport"] == transports[0] or len(transports) > 1
        assert await ack(client, "records", k) == ["emitted while the server was down"]
        assert await ack(client, "echo", b"\x00after") == b"\x00after"
        # wait() waits through reconnections, until the end for good.
        assert not for_good.done()
        await client.disconnect()
        await asyncio.wait_for(for_good, WAIT)
    finally:
        client.manager.close()
        await client.manager.wait_closed()
        await peer.stop()


async def test_gives_up_after_reconnection_attempts(make_client: ClientFactory) -> None:
    client = make_client(
        f"http://127.0.0.1:{free_port()}",
        transports=["websocket"],
        reconnection_delay=0.02,
        reconnection_attempts=2,
    )
    events = watch(client)
    manager_events = watch_manager(client.manager)
    with pytest.raises(TransportError):
        await asyncio.wait_for(client.connect(), WAIT)
    assert [n for (n,) in manager_events.named("reconnect_attempt")] == [1, 2]
    assert len(manager_events.named("reconnect_failed")) == 1
    # One connect_error for the first try and one per attempt.
    assert len(events.named("connect_error")) == 3
    await asyncio.wait_for(client.wait(), WAIT)


async def test_no_reconnection(make_client: ClientFactory) -> None:
    client = make_client(
        f"http://127.0.0.1:{free_port()}", transports=["polling"], reconnection=False
    )
    events = watch(client)
    with pytest.raises(TransportError) as info:
        await asyncio.wait_for(client.connect(), WAIT)
    assert info.value.reason == "xhr poll error"
    assert len(events.named("connect_error")) == 1
    await asyncio.wait_for(client.wait(), WAIT)


async def test_connect_timeout(make_client: ClientFactory) -> None:
    """A server that accepts TCP but never answers: the connect ``timeout`` fires."""
    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        client: Client = make_client(
            f"http://127.0.0.1:{port}",
            transports=["websocket"],
            timeout=0.2,
            reconnection=False,
        )
        with pytest.raises(TransportError, match="timeout"):
            await asyncio.wait_for(client.connect(), WAIT)
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_cancelling_connect_abandons_the_attempt(make_client: ClientFactory) -> None:
    client = make_client(
        f"http://127.0.0.1:{free_port()}", transports=["websocket"], reconnection_delay=0.05
    )
    manager_events = watch_manager(client.manager)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(client.connect(), 0.3)
    assert manager_events.named("reconnect_attempt")  # it was retrying meanwhile
    assert not client.active
    assert not client.manager.reconnecting
    assert client.manager.ready_state == "closed"
    await asyncio.wait_for(client.wait(), WAIT)
