"""A mixed cluster on a real Redis Cluster: socketwire with the sharded adapter beside
Node's socket.io 4.8.4 with ``createShardedAdapter`` of ``@socket.io/redis-adapter``
8.3.0, in each subscription mode, each operation tried in both directions.

The Redis Cluster (three masters, three replicas) is shared by the module; each
test has its own channel prefix. Room channels are subscribed asynchronously
(in Node as here), so a test that targets a room's channel first waits until
Redis counts its subscribers.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import socketwire
from socketwire import AckTimeout
from socketwire.adapters.sharded import ShardedAdapter

from .conftest import TIMEOUT, ClientFactory, ClusterStarter, NodeClusterPeer, NodeStarter
from .test_redis_adapter import Inbox, setup_rooms

pytestmark = pytest.mark.parametrize("mode", ["static", "dynamic", "dynamic-private"])


def adapter(sio: socketwire.Server) -> ShardedAdapter:
    ad = sio.of("/").adapter
    assert isinstance(ad, ShardedAdapter)
    return ad


def sid(client: Any) -> str:
    assert client.id is not None
    return str(client.id)


async def until_subscribed(sio: socketwire.Server, room: str, count: int) -> None:
    """Wait until ``count`` servers subscribe to ``room``'s channel (dynamic modes)."""
    ad = adapter(sio)
    channel = ad.channels.room(room)

    async def poll() -> None:
        while await ad.bus.shard_numsub(channel) < count:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), TIMEOUT)


def room_subscribers(mode: str, public: bool, holders: int) -> int:
    """How many servers subscribe to a room's channel in ``mode``."""
    if mode == "dynamic-private" or (mode == "dynamic" and public):
        return holders
    return 0


async def pair(
    sharded_server: ClusterStarter, sharded_node: NodeStarter, mode: str, setup: Any = setup_rooms
) -> tuple[socketwire.Server, str, NodeClusterPeer]:
    sio, url = await sharded_server(setup, mode=mode)
    node = await sharded_node(mode)
    return sio, url, node


async def test_broadcasts_and_fetch_sockets_both_ways(
    sharded_server: ClusterStarter,
    sharded_node: NodeStarter,
    connect: ClientFactory,
    mode: str,
) -> None:
    sio, url, node = await pair(sharded_server, sharded_node, mode)
    assert await adapter(sio).server_count() == 2
    assert await node.call("serverCount") == 2

    alice_client = await connect(url, auth={"name": "alice", "rooms": ["red"]})
    bob_client = await connect(node.url, auth={"name": "bob", "rooms": ["red", "blue"]})
    carol_client = await connect(node.url, auth={"name": "carol", "rooms": ["blue"]})
    alice, bob, carol = (Inbox(c, "msg") for c in (alice_client, bob_client, carol_client))
    for room, holders in (("red", 2), ("blue", 1)):
        await until_subscribed(sio, room, room_subscribers(mode, True, holders))
    for client in (alice_client, bob_client):
        await until_subscribed(sio, sid(client), room_subscribers(mode, False, 1))

    sio.emit("msg", "from python", {"n": [1, 2]}, b"\x00\xff")
    for inbox in (alice, bob, carol):
        assert await inbox.next() == ("msg", ("from python", {"n": [1, 2]}, b"\x00\xff"))
    await node.call("emit", event="msg", args=["from node", 3.5, None, {"$bin": [1, 2]}])
    for inbox in (alice, bob, carol):
        assert await inbox.next() == ("msg", ("from node", 3.5, None, b"\x01\x02"))

    sio.to("blue").emit("msg", "blue only")
    for inbox in (bob, carol):
        assert await inbox.next() == ("msg", ("blue only",))
    await node.call("emit", event="msg", args=["red only"], rooms=["red"])
    for inbox in (alice, bob):
        assert await inbox.next() == ("msg", ("red only",))

    sio.to(sid(bob_client)).emit("msg", "to bob")
    assert await bob.next() == ("msg", ("to bob",))
    await node.call("emit", event="msg", args=["to alice"], rooms=[sid(alice_client)])
    assert await alice.next() == ("msg", ("to alice",))

    sio.except_("red").emit("msg", "not red")
    assert await carol.next() == ("msg", ("not red",))
    await node.call("emit", event="msg", args=["not blue"], **{"except": ["blue"]})
    assert await alice.next() == ("msg", ("not blue",))
    for inbox in (alice, bob, carol):
        assert inbox.empty()

    # fetch_sockets from socketwire sees every server's sockets.
    found = {s.id: s for s in await sio.fetch_sockets()}
    assert set(found) == {alice_client.id, bob_client.id, carol_client.id}
    assert found[sid(bob_client)].data == {"server": "node", "name": "bob"}
    assert found[sid(bob_client)].rooms == {sid(bob_client), "red", "blue"}
    assert found[sid(bob_client)].handshake["auth"] == {"name": "bob", "rooms": ["red", "blue"]}
    blues = await sio.in_("blue").except_("red").fetch_sockets()
    assert [s.id for s in blues] == [carol_client.id]

    # And so does Node's, counting the servers with SHARDNUMSUB as socketwire does.
    seen = {s["id"]: s for s in await node.call("fetchSockets")}
    assert set(seen) == {alice_client.id, bob_client.id, carol_client.id}
    assert seen[sid(alice_client)]["data"] == {"name": "alice"}
    assert seen[sid(alice_client)]["rooms"] == sorted([sid(alice_client), "red"])


async def test_requests_and_acks_both_ways(
    sharded_server: ClusterStarter,
    sharded_node: NodeStarter,
    connect: ClientFactory,
    mode: str,
) -> None:
    notes: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()

    def setup(sio: socketwire.Server) -> None:
        setup_rooms(sio)
        nsp = sio.of("/")
        nsp.on_server_side_emit("note", lambda *args: notes.put_nowait(args))
        nsp.on_server_side_emit("whoami", lambda *args: "socketwire")

    sio, url, node = await pair(sharded_server, sharded_node, mode, setup)

    # Server-side emits, with and without acks.
    sio.server_side_emit("note", "py", 1)
    assert (await node.next_event("server-side"))["args"] == ["py", 1]
    await node.call("serverSideEmit", event="note", args=["node", 2])
    assert await asyncio.wait_for(notes.get(), TIMEOUT) == ("node", 2)
    assert await sio.server_side_emit_with_ack("whoami", timeout=TIMEOUT) == ["node"]
    answer = await node.call("serverSideEmitWithAck", event="whoami")
    assert answer == {"err": None, "responses": ["socketwire"]}

    # Broadcasts with acks (always on the namespace's channel).
    clients = []
    for target, name in ((url, "py1"), (node.url, "node1"), (node.url, "node2")):
        client = await connect(target, auth={"rooms": ["q"]})
        client.on("question", lambda n, name=name: f"{name}:{n}")
        clients.append(client)
    responses = await sio.timeout(TIMEOUT).emit_with_ack("question", 1)
    assert sorted(responses) == ["node1:1", "node2:1", "py1:1"]
    responses = await sio.to("q").timeout(TIMEOUT).emit_with_ack("question", 2)
    assert sorted(responses) == ["node1:2", "node2:2", "py1:2"]
    result = await node.call("emitWithAck", event="question", args=[3], timeout=5000)
    assert result["err"] is None
    assert sorted(result["responses"]) == ["node1:3", "node2:3", "py1:3"]

    # A broadcast with acks that a client leaves unanswered times out with the rest.
    @clients[0].on("late")
    async def never() -> Any:
        await asyncio.Event().wait()

    clients[1].on("late", lambda: "node-quick")
    with pytest.raises(AckTimeout) as info:
        await sio.to(sid(clients[0])).to(sid(clients[1])).timeout(0.5).emit_with_ack("late")
    assert info.value.responses == ["node-quick"]

    # sockets_join from Node, then a broadcast to the new room from Node.
    py_inbox = Inbox(clients[0], "msg")
    await node.call("socketsJoin", rooms=[sid(clients[0])], join=["green"])
    await until_subscribed(sio, "green", room_subscribers(mode, True, 1))
    await node.call("emit", event="msg", args=["green"], rooms=["green"])
    assert await py_inbox.next() == ("msg", ("green",))
    # And from socketwire: Node's socket joins, then gets the room's broadcast.
    node_inbox = Inbox(clients[1], "msg")
    sio.in_(sid(clients[1])).sockets_join("purple")
    await until_subscribed(sio, "purple", room_subscribers(mode, True, 1))
    sio.to("purple").emit("msg", "purple")
    assert await node_inbox.next() == ("msg", ("purple",))
    assert "purple" in await node.call("localRooms", sid=clients[1].id)


async def test_room_channels_follow_rooms(
    sharded_server: ClusterStarter, connect: ClientFactory, mode: str
) -> None:
    """A room's channel is subscribed while the server has the room, in the modes
    that use it, and left when the room empties."""
    sio, url = await sharded_server(setup_rooms, mode=mode)
    client = await connect(url, auth={"rooms": ["red"]})
    ad = adapter(sio)
    await until_subscribed(sio, "red", room_subscribers(mode, True, 1))
    await until_subscribed(sio, sid(client), room_subscribers(mode, False, 1))
    gone = sid(client)
    await client.disconnect()

    async def left() -> None:
        for channel in (ad.channels.room("red"), ad.channels.room(gone)):
            while await ad.bus.shard_numsub(channel):
                await asyncio.sleep(0.01)

    await asyncio.wait_for(left(), TIMEOUT)
    assert await ad.bus.shard_numsub(ad.channels.main) == 1
