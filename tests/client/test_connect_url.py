"""``Client()`` without a URL, and ``await client.connect(url, **options)``.

As python-socketio has it (``await sio.connect("http://...")``): the URL and the
connection options may come at ``connect``; ``Client(url)`` then ``connect()``
works as before.  Run against Node's socket.io and socketwire's server.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from socketwire.client import Client
from socketwire.core.socketio.msgpack import MSGPACK_PARSER

from .conftest import ClientFactory, Peer
from .helpers import WAIT, watch

_keys = itertools.count()


async def ack(client: Client, event: str, *args: Any) -> Any:
    return await client.emit_with_ack(event, *args, timeout=WAIT)


async def test_url_given_to_connect(
    peer: Peer, transports: list[str], make_client: ClientFactory
) -> None:
    client = make_client(None)
    assert client.url is None
    with pytest.raises(RuntimeError, match="no URL"):
        client.manager  # noqa: B018 - the property raises
    await asyncio.wait_for(
        client.connect(peer.url + "/chat", transports=transports, auth={"reason_key": "x"}),
        WAIT,
    )
    assert client.url == peer.url + "/chat"
    assert client.namespace == "/chat"
    assert client.auth == {"reason_key": "x"}
    who = await ack(client, "whoami")
    assert who["nsp"] == "/chat"
    assert who["auth"] == {"reason_key": "x"}
    assert who["transport"] in transports  # upgrade mode: either, depending on timing


async def test_no_url_at_all_is_an_error(make_client: ClientFactory) -> None:
    client = make_client(None)
    with pytest.raises(ValueError, match="no URL"):
        await client.connect()
    with pytest.raises(ValueError, match="no URL"):
        await client.connect(auth={"token": "t"})  # socket options only: still no URL
    with pytest.raises(ValueError, match="no URL"):
        client.open()


async def test_emits_before_the_url_are_sent_after(peer: Peer, make_client: ClientFactory) -> None:
    client = make_client(None)
    key = f"early-{next(_keys)}-{id(client)}"
    client.emit("record", key, "first")
    answered: asyncio.Future[tuple[Any, ...]] = asyncio.get_running_loop().create_future()
    client.emit("echo", b"\x01", callback=lambda *args: answered.set_result(args))
    # Buffered before the namespace and the parser were known: encoded again for them.
    await asyncio.wait_for(client.connect(peer.url + "/chat", transports=["websocket"]), WAIT)
    assert await asyncio.wait_for(answered, WAIT) == (b"\x01",)
    assert await ack(client, "records", key) == ["first"]


async def test_connect_elsewhere_after_disconnect(peer: Peer, make_client: ClientFactory) -> None:
    client = make_client(peer.url, transports=["websocket"])
    events = watch(client)
    await asyncio.wait_for(client.connect(), WAIT)
    first = client.manager
    with pytest.raises(RuntimeError, match="disconnect"):
        await client.connect(peer.url + "/chat")
    await client.connect(peer.url)  # the same URL: nothing to change
    assert client.manager is first and client.connected
    await client.disconnect()
    await asyncio.wait_for(client.connect(peer.url + "/chat", transports=["polling"]), WAIT)
    assert client.manager is not first
    assert first.ready_state == "closed"
    assert first.nsps.get("/") is not client
    assert (await ack(client, "whoami"))["nsp"] == "/chat"
    assert client.transport == "polling"
    assert events.names().count("connect") == 2


async def test_parser_given_to_connect(make_client: ClientFactory) -> None:
    client = make_client(None, parser="msgpack")
    assert client.parser is MSGPACK_PARSER
    with pytest.raises(ValueError, match="unknown parser"):
        Client(None, parser="nope")
