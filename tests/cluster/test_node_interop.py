"""A mixed cluster: socketwire and Node's socket.io with ``@socket.io/redis-adapter``
8.3.0 on one real redis-server, each operation tried in both directions.

The Node server is ``tests/js/cluster_peer.js``, driven over its stdin; clients
are socketwire's own client over WebSocket.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import socketwire
from socketwire import AckTimeout

from .conftest import TIMEOUT, ClientFactory, ClusterStarter, NodeStarter
from .test_redis_adapter import Inbox, adapter, room_change, setup_rooms

pytestmark = pytest.mark.parametrize("specific", [False, True], ids=["generic", "specific"])


def sid(client: Any) -> str:
    """A connected client's socket id."""
    assert client.id is not None
    return str(client.id)


def adapter_options(specific: bool) -> dict[str, Any]:
    return {"adapter_options": {"publish_on_specific_response_channel": specific}}


def flags(specific: bool) -> tuple[str, ...]:
    return ("--specific-responses",) if specific else ()


async def pair(
    cluster_server: ClusterStarter, node_server: NodeStarter, specific: bool
) -> tuple[socketwire.Server, str, Any]:
    sio, url = await cluster_server(setup_rooms, **adapter_options(specific))
    node = await node_server(*flags(specific))
    return sio, url, node


async def test_server_count_counts_both(
    cluster_server: ClusterStarter, node_server: NodeStarter, specific: bool
) -> None:
    sio, _, node = await pair(cluster_server, node_server, specific)
    assert await adapter(sio).server_count() == 2
    assert await node.call("serverCount") == 2


async def test_broadcasts_both_ways(
    cluster_server: ClusterStarter, node_server: NodeStarter, connect: ClientFactory, specific: bool
) -> None:
    sio, url, node = await pair(cluster_server, node_server, specific)
    on_sw = Inbox(await connect(url, auth={"rooms": ["red"]}), "msg")
    on_node = Inbox(await connect(node.url, auth={"rooms": ["red"]}), "msg")
    on_node_blue = Inbox(await connect(node.url, auth={"rooms": ["blue"]}), "msg")

    sio.emit("msg", "from python", {"n": [1, 2]})
    assert await on_node.next() == ("msg", ("from python", {"n": [1, 2]}))
    assert await on_node_blue.next() == ("msg", ("from python", {"n": [1, 2]}))
    assert await on_sw.next() == ("msg", ("from python", {"n": [1, 2]}))

    await node.call("emit", event="msg", args=["from node", 3.5, None, True])
    for inbox in (on_sw, on_node, on_node_blue):
        assert await inbox.next() == ("msg", ("from node", 3.5, None, True))

    sio.to("blue").emit("msg", "blue only")
    assert await on_node_blue.next() == ("msg", ("blue only",))
    await node.call("emit", event="msg", args=["red only"], rooms=["red"])
    assert await on_sw.next() == ("msg", ("red only",))
    assert await on_node.next() == ("msg", ("red only",))

    sio.except_("red").emit("msg", "not red")
    assert await on_node_blue.next() == ("msg", ("not red",))
    await node.call("emit", event="msg", args=["not blue"], **{"except": ["blue"]})
    assert await on_sw.next() == ("msg", ("not blue",))
    assert await on_node.next() == ("msg", ("not blue",))
    for inbox in (on_sw, on_node, on_node_blue):
        assert inbox.empty()


async def test_binary_both_ways(
    cluster_server: ClusterStarter, node_server: NodeStarter, connect: ClientFactory, specific: bool
) -> None:
    sio, url, node = await pair(cluster_server, node_server, specific)
    on_sw = Inbox(await connect(url), "blob")
    on_node = Inbox(await connect(node.url), "blob")
    sio.emit("blob", b"\x00\xffpy", {"inner": b"\x01"})
    for inbox in (on_node, on_sw):
        assert await inbox.next() == ("blob", (b"\x00\xffpy", {"inner": b"\x01"}))
    await node.call("emit", event="blob", args=[{"$bin": [0, 255, 7]}])
    assert await on_sw.next() == ("blob", (b"\x00\xff\x07",))


async def test_to_socket_ids_across(
    cluster_server: ClusterStarter, node_server: NodeStarter, connect: ClientFactory, specific: bool
) -> None:
    sio, url, node = await pair(cluster_server, node_server, specific)
    py_client = await connect(url)
    node_client = await connect(node.url)
    on_py = Inbox(py_client, "dm")
    on_node = Inbox(node_client, "dm")
    sio.to(sid(node_client)).emit("dm", "to node's client")
    assert await on_node.next() == ("dm", ("to node's client",))
    await node.call("emit", event="dm", args=["to python's client"], rooms=[py_client.id])
    assert await on_py.next() == ("dm", ("to python's client",))


async def test_fetch_sockets_both_ways(
    cluster_server: ClusterStarter, node_server: NodeStarter, connect: ClientFactory, specific: bool
) -> None:
    sio, url, node = await pair(cluster_server, node_server, specific)
    alice = await connect(url, auth={"name": "alice", "rooms": ["red"]})
    bob = await connect(node.url, auth={"name": "bob", "rooms": ["red", "blue"]})

    found = {s.id: s for s in await sio.fetch_sockets()}
    assert set(found) == {alice.id, bob.id}
    assert found[sid(bob)].data == {"server": "node", "name": "bob"}
    assert found[sid(bob)].rooms == {sid(bob), "red", "blue"}
    assert found[sid(bob)].handshake["auth"] == {"name": "bob", "rooms": ["red", "blue"]}
    assert [s.id for s in await sio.in_("blue").fetch_sockets()] == [bob.id]

    seen = await node.call("fetchSockets")
    by_id = {s["id"]: s for s in seen}
    assert set(by_id) == {alice.id, bob.id}
    assert by_id[alice.id]["data"] == {"name": "alice"}
    assert by_id[sid(alice)]["rooms"] == sorted([sid(alice), "red"])
    assert by_id[alice.id]["auth"] == {"name": "alice", "rooms": ["red"]}
    reds = await node.call("fetchSockets", rooms=["red"], **{"except": ["blue"]})
    assert [s["id"] for s in reds] == [alice.id]


async def test_all_rooms_both_ways(
    cluster_server: ClusterStarter, node_server: NodeStarter, connect: ClientFactory, specific: bool
) -> None:
    sio, url, node = await pair(cluster_server, node_server, specific)
    alice = await connect(url, auth={"rooms": ["red"]})
    bob = await connect(node.url, auth={"rooms": ["blue"]})
    expected = {"red", "blue", alice.id, bob.id}
    assert await adapter(sio).all_rooms() == expected
    assert set(await node.call("allRooms")) == expected


async def test_sockets_join_leave_disconnect_both_ways(
    cluster_server: ClusterStarter, node_server: NodeStarter, connect: ClientFactory, specific: bool
) -> None:
    sio, url, node = await pair(cluster_server, node_server, specific)
    alice = await connect(url, auth={"rooms": ["red"]})
    bob = await connect(node.url, auth={"rooms": ["red"]})

    # From Node: the socketwire server applies the request.
    joined = room_change(sio, alice.id, "green")
    await node.call("socketsJoin", rooms=["red"], join=["green"])
    await asyncio.wait_for(joined, TIMEOUT)
    left = room_change(sio, alice.id, "red", join=False)
    await node.call("socketsLeave", rooms=["green"], leave=["red"])
    await asyncio.wait_for(left, TIMEOUT)

    # From socketwire: Node applies it before a later broadcast to the new room
    # (both travel from one publisher to Node's one subscriber, in order).
    on_bob = Inbox(bob, "msg")
    sio.in_(sid(bob)).sockets_join("purple")
    sio.to("purple").emit("msg", "purple")
    assert await on_bob.next() == ("msg", ("purple",))
    assert "purple" in await node.call("localRooms", sid=bob.id)

    gone: dict[str, asyncio.Event] = {"alice": asyncio.Event(), "bob": asyncio.Event()}
    reasons: dict[str, str] = {}
    for name, client in (("alice", alice), ("bob", bob)):

        def on_disconnect(reason: str, *rest: Any, name: str = name) -> None:
            reasons[name] = reason
            gone[name].set()

        client.on("disconnect", on_disconnect)
    sio.in_(sid(bob)).disconnect_sockets()
    await asyncio.wait_for(gone["bob"].wait(), TIMEOUT)
    await node.call("disconnectSockets", rooms=[alice.id], close=True)
    await asyncio.wait_for(gone["alice"].wait(), TIMEOUT)
    assert reasons == {"bob": "io server disconnect", "alice": "io server disconnect"}


async def test_server_side_emit_both_ways(
    cluster_server: ClusterStarter, node_server: NodeStarter, specific: bool
) -> None:
    notes: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()

    def setup(sio: socketwire.Server) -> None:
        nsp = sio.of("/")
        nsp.on_server_side_emit("note", lambda *args: notes.put_nowait(args))
        nsp.on_server_side_emit("whoami", lambda *args: "socketwire")

    sio, _ = await cluster_server(setup, **adapter_options(specific))
    node = await node_server(*flags(specific))

    sio.server_side_emit("note", "py", 1)
    event = await node.next_event("server-side")
    assert event["args"] == ["py", 1]
    await node.call("serverSideEmit", event="note", args=["node", 2])
    assert await asyncio.wait_for(notes.get(), TIMEOUT) == ("node", 2)

    assert await sio.server_side_emit_with_ack("whoami", timeout=TIMEOUT) == ["node"]
    answer = await node.call("serverSideEmitWithAck", event="whoami")
    assert answer == {"err": None, "responses": ["socketwire"]}


async def test_broadcast_with_acks_both_ways(
    cluster_server: ClusterStarter, node_server: NodeStarter, connect: ClientFactory, specific: bool
) -> None:
    sio, url, node = await pair(cluster_server, node_server, specific)
    for target, name in ((url, "py1"), (node.url, "node1"), (node.url, "node2")):
        client = await connect(target)
        client.on("question", lambda n, name=name: f"{name}:{n}")

    responses = await sio.timeout(TIMEOUT).emit_with_ack("question", 1)
    assert sorted(responses) == ["node1:1", "node2:1", "py1:1"]

    result = await node.call("emitWithAck", event="question", args=[2], timeout=5000)
    assert result["err"] is None
    assert sorted(result["responses"]) == ["node1:2", "node2:2", "py1:2"]


async def test_broadcast_with_acks_timeout_both_ways(
    cluster_server: ClusterStarter, node_server: NodeStarter, connect: ClientFactory, specific: bool
) -> None:
    sio, url, node = await pair(cluster_server, node_server, specific)
    quick = await connect(node.url)
    quick.on("q", lambda: "node-quick")
    slow = await connect(url)

    @slow.on("q")
    async def never() -> Any:
        await asyncio.Event().wait()

    with pytest.raises(AckTimeout) as info:
        await sio.timeout(0.5).emit_with_ack("q")
    assert info.value.responses == ["node-quick"]
    result = await node.call("emitWithAck", event="q", timeout=500)
    assert result == {"err": "operation has timed out", "responses": ["node-quick"]}
