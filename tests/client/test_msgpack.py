"""The client's ``parser="msgpack"`` against servers that speak socket.io-msgpack-parser.

Each test runs against Node's socket.io started with ``parser:
require("socket.io-msgpack-parser")`` (``peer_server.js --msgpack``) and against
socketwire's server with ``parser="msgpack"``, over WebSocket only, polling only,
and polling upgraded to WebSocket.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from socketwire.client import Client
from socketwire.core.socketio.msgpack import MSGPACK_PARSER
from socketwire.errors import ConnectionRefused

from .conftest import ClientFactory, Peer
from .helpers import WAIT, Events, watch
from .peers import NodePeer, SocketwirePeer


@pytest.fixture(scope="module")
def node_msgpack_peer() -> Iterator[NodePeer]:
    peer = NodePeer("--msgpack")
    peer.start_sync()
    yield peer
    peer.stop_sync()


@pytest.fixture(params=["node", "socketwire"])
async def msgpack_peer(request: pytest.FixtureRequest) -> AsyncIterator[Peer]:
    """A server speaking socket.io-msgpack-parser's format: Node's, then socketwire's."""
    if request.param == "node":
        yield request.getfixturevalue("node_msgpack_peer")
        return
    server = SocketwirePeer(parser="msgpack")
    await server.start()
    yield server
    await server.stop()


async def ack(client: Client, event: str, *args: Any) -> Any:
    return await client.emit_with_ack(event, *args, timeout=WAIT)


async def test_events_acks_and_binary(
    msgpack_peer: Peer, transports: list[str], make_client: ClientFactory
) -> None:
    client = make_client(msgpack_peer.url, transports=transports, parser="msgpack")
    assert client.parser is MSGPACK_PARSER
    events = watch(client)
    await asyncio.wait_for(client.connect(), WAIT)
    who = await ack(client, "whoami")
    assert who["sid"] == client.id and who["nsp"] == "/"

    # Client -> server, acknowledged; binary stays inline in this format.
    blob = bytes(range(256))
    nested = {"list": [b"\x00", "text", 1.5, None, {"deep": b"\xff" * 70_000}]}
    assert await ack(client, "echo", blob, nested) == (blob, nested)
    assert await ack(client, "echo") is None

    # Server -> client events.
    await ack(client, "echo_event", "news", b"\x01", {"n": [2, b"\x03"]})
    assert await events.wait("news") == (b"\x01", {"n": [2, b"\x03"]})

    # Server -> client with an ack: the handler's return value answers.
    @client.on("question")
    def question(x: int, data: bytes) -> tuple[int, bytes]:
        return x + 1, data[::-1]

    await ack(client, "ask", "question", 41, b"ab")
    assert await events.wait("answer") == ("question", [42, b"ba"])

    # A broadcast, and a datetime (notepack's Date) on the way.
    moment = datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)
    await ack(client, "broadcast", "everyone", moment)
    assert await events.wait("everyone") == (moment,)


async def test_namespaces_and_refusal(
    msgpack_peer: Peer, transports: list[str], make_client: ClientFactory
) -> None:
    main = make_client(msgpack_peer.url, transports=transports, parser="msgpack")
    chat = main.manager.socket("/chat")
    assert chat.parser is MSGPACK_PARSER
    await asyncio.wait_for(main.connect(), WAIT)
    await asyncio.wait_for(chat.connect(), WAIT)
    assert (await ack(chat, "whoami"))["engine"] == (await ack(main, "whoami"))["engine"]

    refused = main.manager.socket("/private", auth={"token": "wrong"})
    errors = Events()
    refused.on("connect_error", lambda err: errors.add("connect_error", err))
    with pytest.raises(ConnectionRefused) as info:
        await asyncio.wait_for(refused.connect(), WAIT)
    assert info.value.message == "not authorized"
    assert info.value.data == {"reason": "bad token"}
    assert main.connected


async def test_parsers_do_not_share_a_connection(
    msgpack_peer: Peer, make_client: ClientFactory
) -> None:
    packed = make_client(msgpack_peer.url, parser="msgpack", force_new=False)
    plain = make_client(msgpack_peer.url + "/chat", force_new=False)
    same = make_client(msgpack_peer.url + "/chat", parser="msgpack", force_new=False)
    assert plain.manager is not packed.manager
    assert same.manager is packed.manager
    await asyncio.wait_for(same.connect(), WAIT)
    assert await ack(same, "echo", b"\x09") == b"\x09"
