"""Engine.IO details seen from the servers: the upgrade keeps order, the close packet.

Against Node's socket.io and socketwire's server.  A "watcher" client joins the
room ``watch:<key>``; the peers report there the server-side disconnect reason of
every socket that connected with ``auth={"reason_key": key}``.
"""

from __future__ import annotations

import asyncio

import pytest

from socketwire.client.http import HttpChannel

from .conftest import ClientFactory, Peer
from .helpers import WAIT, Events, watch, watch_manager
from .test_client import ack, key


async def watcher(peer: Peer, make_client: ClientFactory, k: str) -> Events:
    """A client in the room ``watch:<k>`` of "/" and "/chat"."""
    client = make_client(peer.url, transports=["websocket"])
    chat = client.manager.socket("/chat")
    events = watch(client)
    watch(chat, events)
    for sock in (client, chat):
        await asyncio.wait_for(sock.connect(), WAIT)
        await ack(sock, "join", f"watch:{k}")
    return events


async def test_emits_keep_their_order_across_the_upgrade(
    peer: Peer, make_client: ClientFactory
) -> None:
    client = make_client(peer.url, transports=["polling", "websocket"])
    manager_events = watch_manager(client.manager)
    await asyncio.wait_for(client.connect(), WAIT)
    k = key()
    sent = 0
    # Emit continuously (yielding to the loop between emits) until the switch
    # happened, then a few more: nothing lost, nothing reordered.
    while not manager_events.named("upgrade") and sent < 50_000:
        client.emit("record", k, sent)
        sent += 1
        await asyncio.sleep(0)
    assert manager_events.named("upgrade") == [("websocket",)]
    for _ in range(20):
        client.emit("record", k, sent)
        sent += 1
    assert sent > 20
    assert await ack(client, "records", k) == list(range(sent))
    assert (await ack(client, "whoami"))["transport"] == "websocket"


async def test_server_side_disconnect_reasons(
    peer: Peer, transports: list[str], make_client: ClientFactory
) -> None:
    k = key()
    seen = await watcher(peer, make_client, k)

    # Leaving a namespace sends DISCONNECT for it.
    one = make_client(peer.url, transports=transports, auth={"reason_key": k})
    await asyncio.wait_for(one.connect(), WAIT)
    await asyncio.wait_for(one.disconnect(), WAIT)
    assert await seen.wait("gone") == ("/", "client namespace disconnect")

    # Closing the connection sends the Engine.IO close packet: the server sees a
    # clean "transport close" (a polling connection simply dropped would be a
    # "transport error").
    two = make_client(peer.url, transports=transports, auth={"reason_key": k})
    two_chat = two.manager.socket("/chat", auth={"reason_key": k})
    manager_events = watch_manager(two.manager)
    await asyncio.wait_for(two.connect(), WAIT)
    await asyncio.wait_for(two_chat.connect(), WAIT)
    if len(transports) > 1:
        await manager_events.wait("upgrade")
    two.manager.close()
    await asyncio.wait_for(two.manager.wait_closed(), WAIT)
    reasons = {await seen.wait("gone", 2), await seen.wait("gone", 3)}
    assert reasons == {("/", "transport close"), ("/chat", "transport close")}


async def test_http_channel_allows_one_request_at_a_time(peer: Peer) -> None:
    url = peer.url.removeprefix("http://")
    host, port = url.split(":")
    channel = HttpChannel(host, int(port), host_header=url)
    target = "/socket.io/?EIO=4&transport=polling"
    try:
        first = asyncio.ensure_future(channel.request("GET", target))
        await asyncio.sleep(0)
        assert channel.busy
        with pytest.raises(RuntimeError, match="in flight"):
            await channel.request("GET", target)
        response = await asyncio.wait_for(first, WAIT)
        assert response.status == 200
        assert response.body.startswith(b'0{"sid":')
        # Reused connection (keep-alive) for the next one.
        again = await asyncio.wait_for(channel.request("GET", target + "&x=1"), WAIT)
        assert again.status == 200
        refused = await asyncio.wait_for(channel.request("GET", "/socket.io/?EIO=3"), WAIT)
        assert refused.status == 400
    finally:
        channel.close()
        await channel.wait_closed()
