"""``socketwire.emitter``: the public API over recording clients.

What reaches real servers through a real Redis is in
``tests/cluster/test_emitter.py``; the bytes themselves are checked in
``tests/core/test_cluster_emitter.py``. Here: the same steps through the public
API give Node's bytes, and the API's own behaviour (new operators, rooms,
checks, blocking and asyncio clients).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable
from typing import Any

import pytest
import redis
import redis.asyncio

from socketwire.core.cluster.emitter import Publication
from socketwire.core.cluster.message_format import SubscriptionMode
from socketwire.emitter import (
    AsyncEmitter,
    AsyncShardedEmitter,
    BaseEmitter,
    Emitter,
    EmitterOperator,
    ShardedEmitter,
)
from socketwire.errors import LocalProtocolError
from tests.core.test_cluster_emitter import STEPS, node_publications, revive


class Recorder:
    """A blocking client that records PUBLISH and SPUBLISH."""

    def __init__(self, receivers: int = 2) -> None:
        self.sent: list[Publication] = []
        self.receivers = receivers

    def publish(self, channel: str, message: bytes) -> int:
        self.sent.append(Publication(channel, message))
        return self.receivers

    spublish = publish


class AsyncRecorder(Recorder):
    """An asyncio client that records PUBLISH and SPUBLISH."""

    async def publish(self, channel: str, message: bytes) -> int:  # type: ignore[override]
        return super().publish(channel, message)

    spublish = publish  # type: ignore[assignment]


def run_step(root: BaseEmitter[Any], step: dict[str, Any]) -> Any:
    """A step of ``STEPS`` through the public API."""
    target = root.of(step["nsp"]) if "nsp" in step else root
    args = revive(step.get("args", []))
    if step["op"] == "serverSideEmit":
        return target.server_side_emit(step["event"], *args)
    op: EmitterOperator[Any] = target
    for name, *arg in step.get("chain", []):
        if name == "volatile":
            op = op.volatile
        else:
            op = getattr(op, {"in": "in_", "except": "except_"}.get(name, name))(arg[0])
    if step["op"] == "emit":
        return op.emit(step["event"], *args)
    if step["op"] == "socketsJoin":
        return op.sockets_join(step["rooms"])
    if step["op"] == "socketsLeave":
        return op.sockets_leave(step["rooms"])
    return op.disconnect_sockets(close=step["close"])


async def test_emitter_publishes_what_nodes_emitter_publishes() -> None:
    expected = await node_publications("classic", STEPS)
    client = Recorder()
    for step in STEPS:
        assert run_step(Emitter(client), step) == 2
    assert client.sent == expected
    aclient = AsyncRecorder()
    for step in STEPS:
        assert await run_step(AsyncEmitter(aclient), step) == 2
    assert aclient.sent == expected


async def test_sharded_emitter_publishes_what_a_node_sharded_server_publishes() -> None:
    expected = await node_publications("sharded", STEPS, "dynamic-private")
    client = Recorder()
    for step in STEPS:
        run_step(ShardedEmitter(client, subscription_mode="dynamic-private"), step)
    assert client.sent == expected
    aclient = AsyncRecorder()
    for step in STEPS:
        await run_step(AsyncShardedEmitter(aclient, subscription_mode="dynamic-private"), step)
    assert aclient.sent == expected


def test_operators_are_new_objects() -> None:
    client = Recorder()
    emitter = Emitter(client)
    red = emitter.to("red")
    both = red.to("blue").except_("green")
    loud = both.compress(False).volatile
    assert (emitter.rooms, red.rooms, both.rooms) == ((), ("red",), ("red", "blue"))
    assert both.except_rooms == ("green",) and red.except_rooms == ()
    assert both.flags == {} and loud.flags == {"compress": False, "volatile": True}
    loud.flags["volatile"] = False  # a copy
    assert loud.flags["volatile"] is True
    assert emitter.in_(["a", "b"]).rooms == ("a", "b")
    assert type(red) is EmitterOperator
    assert not hasattr(red, "server_side_emit") and not hasattr(red, "of")


def test_rooms_as_numbers_and_iterables() -> None:
    client = Recorder()
    emitter = Emitter(client)
    assert emitter.to(5).to([5, "5", 6]).rooms == ("5", "6")
    assert emitter.except_(r for r in ("a", "b")).except_rooms == ("a", "b")
    emitter.to(7).emit("e")
    assert client.sent[-1].channel == "socket.io#/#7#"
    emitter.sockets_join(8)
    assert client.sent[-1].payload.endswith(b'"rooms":["8"]}')
    for bad in (True, 1.5, None, b"room"):
        with pytest.raises(TypeError, match="room"):
            emitter.to(bad)  # type: ignore[arg-type]


def test_of_keeps_the_kind_the_client_and_the_options() -> None:
    client = Recorder()
    emitter = Emitter(client, key="k")
    chat = emitter.of("chat")
    assert type(chat) is Emitter and chat.client is client
    assert (emitter.nsp, chat.nsp, chat.of("/").nsp) == ("/", "/chat", "/")
    chat.emit("e")
    assert client.sent[-1].channel == "k#/chat#"
    sharded = ShardedEmitter(client, channel_prefix="p", subscription_mode="static", nsp="x")
    assert sharded.nsp == "/x"
    sharded.of("y").to("r").emit("e")
    assert client.sent[-1].channel == "p#/y#"
    assert type(AsyncEmitter(AsyncRecorder()).of("z")) is AsyncEmitter
    with pytest.raises(ValueError):
        ShardedEmitter(client, subscription_mode="sometimes")
    assert SubscriptionMode("dynamic") is SubscriptionMode.DYNAMIC


def test_checks_before_any_io() -> None:
    client = Recorder()
    emitter = Emitter(client)
    with pytest.raises(ValueError, match='"disconnect" is a reserved event name'):
        emitter.to("r").emit("disconnect")
    with pytest.raises(ValueError, match="reserved"):
        emitter.server_side_emit("connect")
    with pytest.raises(TypeError, match="acknowledgements are not supported"):
        emitter.server_side_emit("ask", 1, lambda answer: None)
    with pytest.raises(TypeError, match="acknowledgements are not supported"):
        emitter.emit("ask", lambda answer: None)
    with pytest.raises(LocalProtocolError):
        emitter.emit("e", object())
    with pytest.raises(LocalProtocolError, match="binary"):
        emitter.server_side_emit("e", b"\x00")
    assert client.sent == []


async def test_asyncio_operations_send_when_awaited() -> None:
    client = AsyncRecorder(receivers=3)
    emitter = AsyncEmitter(client)
    pending = emitter.to("r").emit("e", 1)
    assert inspect.isawaitable(pending) and client.sent == []
    assert await pending == 3
    assert [p.channel for p in client.sent] == ["socket.io#/#r#"]
    with pytest.raises(ValueError, match="reserved"):
        emitter.emit("connect")  # at the call, not at the await
    results: list[Awaitable[int]] = [
        emitter.sockets_join("a"),
        emitter.sockets_leave("a"),
        emitter.disconnect_sockets(),
        emitter.server_side_emit("e"),
    ]
    assert [await r for r in results] == [3, 3, 3, 3]


def test_the_client_kind_is_checked() -> None:
    with pytest.raises(TypeError, match="Emitter needs a blocking client"):
        Emitter(redis.asyncio.Redis())
    with pytest.raises(TypeError, match=r"AsyncEmitter needs redis\.asyncio\.Redis"):
        AsyncEmitter(redis.Redis())
    with pytest.raises(TypeError, match="ShardedEmitter needs a blocking client"):
        ShardedEmitter(redis.asyncio.Redis())
    with pytest.raises(TypeError, match=r"AsyncShardedEmitter needs redis\.asyncio\.Redis"):
        AsyncShardedEmitter(redis.Redis())
    with pytest.raises(TypeError, match="with publish"):
        Emitter(object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="with spublish"):
        AsyncShardedEmitter(object())  # type: ignore[arg-type]


async def test_a_mismatched_client_without_execute_command_fails_at_publish() -> None:
    # Clients that are not redis-py's cannot be told apart at construction.
    with pytest.raises(TypeError, match="needs a blocking Redis client"):
        Emitter(AsyncRecorder()).emit("e")  # the coroutine is closed: no warning
    with pytest.raises(TypeError, match="needs an asyncio Redis client"):
        await AsyncEmitter(Recorder()).emit("e")
