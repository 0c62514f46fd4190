"""The server socket's share of the common socket API, seen from a real client.

The catch-all listeners, the emit flags and the handler rules are one
implementation for both sides (socketwire.listeners, emit_options, handlers);
this checks the server's ``Socket`` exposes them and that they reach the wire.
The peer is socketwire's own client on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

import socketwire
from socketwire.client import Client
from tests.conftest import ServerStarter
from tests.waits import WAIT


@pytest.fixture
async def clients() -> AsyncIterator[list[Client]]:
    made: list[Client] = []
    yield made
    for client in made:
        await client.disconnect()


async def test_catch_all_and_emit_flags(start_server: ServerStarter, clients: list[Client]) -> None:
    sio = socketwire.Server()
    sockets: asyncio.Queue[socketwire.Socket] = asyncio.Queue()
    ran = asyncio.Event()

    async def later(x: int) -> None:
        ran.set()

    @sio.on("connection")
    def connection(socket: socketwire.Socket) -> None:
        sockets.put_nowait(socket)

    @sio.on("spawn")
    def spawn(socket: socketwire.Socket, x: int) -> Any:
        # A sync handler that returns a coroutine: it runs even without an ack.
        return later(x)

    client = Client(await start_server(sio), transports=["websocket"], force_new=True)
    clients.append(client)
    got: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
    client.on_any(lambda event, *args: got.put_nowait((event, *args)))
    await asyncio.wait_for(client.connect(), WAIT)
    socket = await asyncio.wait_for(sockets.get(), WAIT)

    seen_in: list[tuple[Any, ...]] = []
    seen_out: list[tuple[Any, ...]] = []

    def incoming(event: str, *args: Any) -> None:
        seen_in.append((event, *args))

    def outgoing(event: str, *args: Any) -> None:
        seen_out.append((event, *args))

    socket.on_any(incoming)
    socket.on_any_outgoing(outgoing)
    assert socket.listeners_any() == [incoming]
    assert socket.listeners_any_outgoing() == [outgoing]

    socket.compress(False).emit("flagged", 1)
    socket.volatile.compress(True).emit("flagged", 2)
    assert await asyncio.wait_for(got.get(), WAIT) == ("flagged", 1)
    assert await asyncio.wait_for(got.get(), WAIT) == ("flagged", 2)
    assert seen_out == [("flagged", 1), ("flagged", 2)]
    client.on("question", lambda x: x * 2)  # the return value is the ack, as on the server
    assert await socket.timeout(WAIT).emit_with_ack("question", 21) == 42

    client.emit("spawn", 3)
    await asyncio.wait_for(ran.wait(), WAIT)
    assert seen_in == [("spawn", 3)]

    socket.off_any_outgoing(outgoing)
    assert socket.listeners_any_outgoing() == []
    assert not sio.of("/").has_outgoing_listeners


async def test_numbers_name_rooms(start_server: ServerStarter, clients: list[Client]) -> None:
    sio = socketwire.Server()
    sockets: asyncio.Queue[socketwire.Socket] = asyncio.Queue()
    sio.on("connection", sockets.put_nowait)
    url = await start_server(sio)
    got: list[asyncio.Queue[Any]] = []
    members: list[socketwire.Socket] = []
    for _ in range(2):
        client = Client(url, transports=["websocket"], force_new=True)
        clients.append(client)
        inbox: asyncio.Queue[Any] = asyncio.Queue()
        client.on("news", inbox.put_nowait)
        got.append(inbox)
        await asyncio.wait_for(client.connect(), WAIT)
        members.append(await asyncio.wait_for(sockets.get(), WAIT))
    first, second = members

    first.join(5)  # as socket.join(5) in Node
    second.join([7, "x"])
    assert first.rooms == {first.id, "5"}
    assert second.rooms == {second.id, "7", "x"}
    sio.to(5).emit("news", "to 5")
    sio.to("7").emit("news", "to 7")
    assert await asyncio.wait_for(got[0].get(), WAIT) == "to 5"
    assert await asyncio.wait_for(got[1].get(), WAIT) == "to 7"
    sio.except_(5).emit("news", "not 5")
    assert await asyncio.wait_for(got[1].get(), WAIT) == "not 5"
    first.leave(5)
    assert first.rooms == {first.id}
    sio.in_(7).sockets_join(8)
    assert "8" in second.rooms

    # Anything else names no room: a TypeError that says what is accepted.
    with pytest.raises(TypeError, match=r"a room is a str or an int, got bool True"):
        first.join(True)
    with pytest.raises(TypeError, match=r"rooms are a str, an int or an iterable of them"):
        sio.to(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"a room is a str or an int, got float 1.5"):
        first.join([1.5])  # type: ignore[list-item]
    assert first.rooms == {first.id}


async def test_socket_data_and_pending_acks(
    start_server: ServerStarter, clients: list[Client]
) -> None:
    # socket.data and the table of pending acks are made on first use: what a
    # user sees must be what a dict made at connect gave.
    sio = socketwire.Server()
    sockets: asyncio.Queue[socketwire.Socket] = asyncio.Queue()
    sio.on("connection", sockets.put_nowait)
    url = await start_server(sio)
    for _ in range(2):
        client = Client(url, transports=["websocket"], force_new=True)
        clients.append(client)
        await asyncio.wait_for(client.connect(), WAIT)
    first = await asyncio.wait_for(sockets.get(), WAIT)
    second = await asyncio.wait_for(sockets.get(), WAIT)

    assert first.data == {} and first.data is first.data
    first.data["name"] = "ann"
    assert first.data == {"name": "ann"} and second.data == {}
    second.data = None  # any value, None included, is kept
    assert second.data is None
    assert [s.data for s in await sio.fetch_sockets()] == [{"name": "ann"}, None]

    # An emit with an ack that the client never answers is dropped at disconnect.
    clients[0].on("question", lambda: asyncio.get_running_loop().create_future())
    pending = first.emit_with_ack("question")
    answered = asyncio.get_running_loop().create_future()
    first.emit("question", callback=answered.set_result)
    assert (first.pending_acks, second.pending_acks) == (1, 0)
    first.disconnect()
    assert first.pending_acks == 0
    with pytest.raises(socketwire.Disconnected):
        await asyncio.wait_for(pending, WAIT)
    assert not answered.done()
    # A second socket's acks are its own.
    clients[1].on("double", lambda x: x * 2)
    assert await asyncio.wait_for(second.emit_with_ack("double", 4), WAIT) == 8
