"""Node's ``@socket.io/redis-emitter`` 5.1.0 reaching a socketwire server through Redis."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import socketwire

from ..conftest import run_node
from .conftest import JS_DIR, TIMEOUT, ClientFactory, ClusterStarter
from .test_redis_adapter import Inbox, room_change, setup_rooms


async def test_node_emitter_reaches_socketwire(
    cluster_server: ClusterStarter,
    connect: ClientFactory,
    redis_server: Any,
    key: str,
) -> None:
    """``@socket.io/redis-emitter`` (uid "emitter", requests without a uid)."""
    notes: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()

    def setup(sio: socketwire.Server) -> None:
        setup_rooms(sio)
        sio.of("/chat")
        sio.of("/").on_server_side_emit("note", lambda *args: notes.put_nowait(args))

    sio, url = await cluster_server(setup)
    red = await connect(url, auth={"rooms": ["red"]})
    blue = await connect(url, auth={"rooms": ["blue"]})
    chat = await connect(url + "/chat")
    on_red, on_blue, on_chat = Inbox(red, "msg"), Inbox(blue, "msg"), Inbox(chat, "msg")
    gone = asyncio.Event()
    blue.on("disconnect", lambda *args: gone.set())
    joined = room_change(sio, red.id, "green")

    steps = [
        {"op": "emit", "event": "msg", "args": ["all", {"a": 1}]},
        {"op": "emit", "event": "msg", "args": ["red"], "rooms": ["red"]},
        {"op": "emit", "event": "msg", "args": ["not red"], "except": ["red"]},
        {"op": "emit", "event": "msg", "args": ["chat"], "nsp": "/chat"},
        {"op": "socketsJoin", "rooms": ["red"], "join": ["green"]},
        {"op": "serverSideEmit", "event": "note", "args": ["from emitter"]},
        {"op": "disconnectSockets", "rooms": ["blue"], "close": True},
    ]
    await run_node(
        JS_DIR / "cluster_emitter.js",
        "--redis-port",
        str(redis_server.port),
        "--key",
        key,
        json.dumps(steps),
    )
    assert await on_red.next() == ("msg", ("all", {"a": 1}))
    assert await on_red.next() == ("msg", ("red",))
    assert await on_blue.next() == ("msg", ("all", {"a": 1}))
    assert await on_blue.next() == ("msg", ("not red",))
    assert await on_chat.next() == ("msg", ("chat",))
    await asyncio.wait_for(joined, TIMEOUT)
    assert await asyncio.wait_for(notes.get(), TIMEOUT) == ("from emitter",)
    await asyncio.wait_for(gone.wait(), TIMEOUT)
    assert red.connected
