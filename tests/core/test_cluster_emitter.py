"""What an emitter publishes: ``socketwire.core.cluster.emitter`` against Node.

The classic format is checked byte for byte against ``@socket.io/redis-emitter``
5.1.0 and the sharded one against what a socket.io 4.8.4 server with
``createShardedAdapter`` (@socket.io/redis-adapter 8.3.0) publishes for the same
operation with its uid set to ``"emitter"``: stored vectors, then a list of
steps run through both (``tests/js/emitter_vectors.js``, recording clients, no
Redis).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
import pytest

from socketwire.core.cluster.emitter import (
    ClassicFormat,
    EmitterFormat,
    Publication,
    ShardedFormat,
    event_data,
    namespace_name,
)
from socketwire.core.cluster.message_format import (
    MessageType,
    ShardedChannels,
    SubscriptionMode,
    decode_message,
    encode_message,
    looks_like_socket_id,
)
from socketwire.core.cluster.redis_format import (
    Flags,
    Request,
    RequestType,
    decode_broadcast,
    decode_request,
)
from socketwire.core.notepack import unpack
from socketwire.errors import LocalProtocolError
from tests.conftest import JS_DIR, run_node

# ---------------------------------------------------------------------------
# Vectors captured from the Node packages
# ---------------------------------------------------------------------------

# emitter.to("room1").emit("hello", "world"), on socket.io#/#room1#.
CLASSIC_ROOM1 = bytes.fromhex(
    "93a7656d697474657283a47479706502a46461746192a568656c6c6fa5776f726c64a36e7370a12f"
    "83a5726f6f6d7391a5726f6f6d31a5666c61677380a665786365707490"
)
# emitter.of("/chat").to("r1").to("r2").except("r3").volatile.compress(false)
#   .emit("multi", Buffer[1, 2, 3]), on socket.io#/chat#.
CLASSIC_MULTI = bytes.fromhex(
    "93a7656d697474657283a47479706502a46461746192a56d756c7469c403010203a36e7370a52f63686174"
    "83a5726f6f6d7392a27231a27232a5666c61677382a8766f6c6174696c65c3a8636f6d7072657373c2"
    "a665786365707491a27233"
)
CLASSIC_JOIN = b'{"type":2,"opts":{"rooms":["room1"],"except":[]},"rooms":["room2"]}'
CLASSIC_LEAVE = b'{"type":3,"opts":{"rooms":[],"except":["room1"]},"rooms":["room2"]}'
CLASSIC_DISCONNECT = b'{"type":4,"opts":{"rooms":["room1"],"except":[]},"close":true}'
CLASSIC_SERVER_SIDE = b'{"uid":"emitter","type":6,"data":["ping","x"]}'

SHARDED_ROOM1 = (
    b'{"type":3,"data":{"packet":{"type":2,"data":["hello","world"]},'
    b'"opts":{"rooms":["room1"],"except":[],"flags":{}}},"uid":"emitter","nsp":"/"}'
)
SHARDED_MULTI = bytes.fromhex(
    "84a47479706503a46461746182a67061636b657482a47479706502a46461746192a56d756c7469c403010203"
    "a46f70747383a5726f6f6d7392a27231a27232a665786365707491a27233a5666c61677382a8766f6c6174"
    "696c65c3a8636f6d7072657373c2a3756964a7656d6974746572a36e7370a52f63686174"
)
SHARDED_JOIN = (
    b'{"type":4,"data":{"opts":{"rooms":["room1"],"except":[],"flags":{}},"rooms":["room2"]},'
    b'"uid":"emitter","nsp":"/"}'
)
SHARDED_LEAVE = (
    b'{"type":5,"data":{"opts":{"rooms":[],"except":["room1"],"flags":{}},"rooms":["room2"]},'
    b'"uid":"emitter","nsp":"/"}'
)
SHARDED_DISCONNECT = (
    b'{"type":6,"data":{"opts":{"rooms":["room1"],"except":[],"flags":{}},"close":true},'
    b'"uid":"emitter","nsp":"/"}'
)
SHARDED_SERVER_SIDE = b'{"type":9,"data":{"packet":["ping","x"]},"uid":"emitter","nsp":"/"}'

MULTI_FLAGS = {"volatile": True, "compress": False}


def test_classic_vectors() -> None:
    fmt = ClassicFormat()
    assert fmt.broadcast(["hello", "world"], ["room1"], [], {}) == Publication(
        "socket.io#/#room1#", CLASSIC_ROOM1
    )
    multi = fmt.of("/chat").broadcast(["multi", b"\x01\x02\x03"], ["r1", "r2"], ["r3"], MULTI_FLAGS)
    assert multi == Publication("socket.io#/chat#", CLASSIC_MULTI)
    request = "socket.io-request#/#"
    assert fmt.sockets_join(["room1"], [], {}, ["room2"]) == Publication(request, CLASSIC_JOIN)
    assert fmt.sockets_leave([], ["room1"], {}, ["room2"]) == Publication(request, CLASSIC_LEAVE)
    assert fmt.disconnect_sockets(["room1"], [], {}, True) == Publication(
        request, CLASSIC_DISCONNECT
    )
    assert fmt.server_side_emit(["ping", "x"]) == Publication(request, CLASSIC_SERVER_SIDE)


def test_sharded_vectors() -> None:
    fmt = ShardedFormat()
    assert fmt.broadcast(["hello", "world"], ["room1"], [], {}) == Publication(
        "socket.io#/#room1#", SHARDED_ROOM1
    )
    multi = fmt.of("/chat").broadcast(["multi", b"\x01\x02\x03"], ["r1", "r2"], ["r3"], MULTI_FLAGS)
    assert multi == Publication("socket.io#/chat#", SHARDED_MULTI)
    main = "socket.io#/#"
    assert fmt.sockets_join(["room1"], [], {}, ["room2"]) == Publication(main, SHARDED_JOIN)
    assert fmt.sockets_leave([], ["room1"], {}, ["room2"]) == Publication(main, SHARDED_LEAVE)
    assert fmt.disconnect_sockets(["room1"], [], {}, True) == Publication(main, SHARDED_DISCONNECT)
    assert fmt.server_side_emit(["ping", "x"]) == Publication(main, SHARDED_SERVER_SIDE)


def test_socketwire_reads_the_classic_messages() -> None:
    """The Redis adapter's decoders take what the classic format writes."""
    msg = decode_broadcast(CLASSIC_MULTI)
    assert (msg.uid, msg.nsp, msg.data) == ("emitter", "/chat", ["multi", b"\x01\x02\x03"])
    assert (msg.rooms, msg.except_rooms) == (frozenset({"r1", "r2"}), frozenset({"r3"}))
    assert msg.flags == Flags(volatile=True, compress=False)
    assert decode_request(CLASSIC_JOIN) == Request(
        RequestType.REMOTE_JOIN, rooms=frozenset({"room1"}), new_rooms=["room2"]
    )
    assert decode_request(CLASSIC_SERVER_SIDE) == Request(
        RequestType.SERVER_SIDE_EMIT, uid="emitter", data=["ping", "x"]
    )


def test_sharded_messages_decoded() -> None:
    """The sharded adapter's decoder takes what the sharded format writes."""
    got = decode_message(SHARDED_SERVER_SIDE)
    assert (got.type, got.uid, got.nsp) == (MessageType.SERVER_SIDE_EMIT, "emitter", "/")
    assert got.data == ["ping", "x"]
    got = decode_message(SHARDED_MULTI)
    assert (got.type, got.uid, got.nsp) == (MessageType.BROADCAST, "emitter", "/chat")
    assert got.data == ["multi", b"\x01\x02\x03"]


# ---------------------------------------------------------------------------
# Channels, encodings and checks
# ---------------------------------------------------------------------------

SID = "A" * 20  # the length of a socket id


@pytest.mark.parametrize(
    ("mode", "rooms", "with_ack", "channel"),
    [
        ("dynamic", [], False, "p#/n#"),
        ("dynamic", ["r"], False, "p#/n#r#"),
        ("dynamic", ["r"], True, "p#/n#"),
        ("dynamic", ["r", "s"], False, "p#/n#"),
        ("dynamic", [SID], False, "p#/n#"),
        ("dynamic", [SID + "x"], False, f"p#/n#{SID}x#"),
        ("dynamic-private", [SID], False, f"p#/n#{SID}#"),
        ("dynamic-private", ["r"], True, "p#/n#"),
        ("static", ["r"], False, "p#/n#"),
        ("static", [SID], False, "p#/n#"),
    ],
)
def test_sharded_broadcast_channel(
    mode: str, rooms: list[str], with_ack: bool, channel: str
) -> None:
    channels = ShardedChannels("/n", "emitter", "p", SubscriptionMode(mode))
    assert channels.for_broadcast(rooms, with_ack) == channel


def test_sharded_channel_names() -> None:
    channels = ShardedChannels("/", "emitter", "socket.io", SubscriptionMode.STATIC)
    assert channels.main == "socket.io#/#"
    assert channels.room("r") == "socket.io#/#r#"
    assert channels.response_to("0123456789abcdef") == "socket.io#/#0123456789abcdef#"
    assert looks_like_socket_id(SID) and not looks_like_socket_id(SID[1:])
    with pytest.raises(ValueError):
        ShardedChannels("/", "emitter", "p", "sometimes")  # type: ignore[arg-type]


def test_encode_message_picks_json_or_msgpack_by_type() -> None:
    assert encode_message(MessageType.HEARTBEAT, "u", "/") == b'{"type":2,"uid":"u","nsp":"/"}'
    binary = encode_message(MessageType.SERVER_SIDE_EMIT, "u", "/", {"packet": ["e", b"\x00"]})
    assert binary[:1] != b"{"
    assert unpack(binary) == {
        "type": 9,
        "data": {"packet": ["e", b"\x00"]},
        "uid": "u",
        "nsp": "/",
    }
    # A type that never carries binary is JSON, so bytes cannot go there.
    with pytest.raises(LocalProtocolError, match="JSON"):
        encode_message(MessageType.SOCKETS_JOIN, "u", "/", {"rooms": [b"x"]})


def test_namespace_name() -> None:
    assert [namespace_name(n) for n in ("/", "", "chat", "/chat")] == ["/", "/", "/chat", "/chat"]
    with pytest.raises(TypeError):
        namespace_name(5)  # type: ignore[arg-type]


def test_event_data_checks() -> None:
    assert event_data("e", (1, b"x")) == ["e", 1, b"x"]
    for reserved in ("connect", "connect_error", "disconnect", "disconnecting", "newListener"):
        with pytest.raises(ValueError, match="reserved event name"):
            event_data(reserved, ())
    with pytest.raises(TypeError, match="acknowledgements are not supported"):
        event_data("e", (1, print))
    with pytest.raises(TypeError, match="event name"):
        event_data(5, ())  # type: ignore[arg-type]


def test_classic_server_side_emit_refuses_binary() -> None:
    # Node's emitter JSON-encodes a Buffer into {"type":"Buffer","data":[..]};
    # refusing is better than delivering something else.
    with pytest.raises(LocalProtocolError, match="binary"):
        ClassicFormat().server_side_emit(["e", b"\x00"])
    pub = ShardedFormat().server_side_emit(["e", b"\x00"])
    assert unpack(pub.payload)["data"] == {"packet": ["e", b"\x00"]}


def test_unencodable_arguments_raise_locally() -> None:
    for fmt in (ClassicFormat(), ShardedFormat()):
        with pytest.raises(LocalProtocolError):
            fmt.broadcast(["e", object()], [], [], {})
        with pytest.raises(LocalProtocolError):
            fmt.server_side_emit(["e", {1, 2}])


def test_keys_and_prefixes() -> None:
    assert ClassicFormat("admin", "k").broadcast(["e"], ["r"], [], {}).channel == "k#/admin#r#"
    assert ClassicFormat("/", "k").server_side_emit(["e"]).channel == "k-request#/#"
    fmt = ShardedFormat("admin", "p", "static")
    assert fmt.of("other").nsp == "/other"
    assert fmt.of("other").subscription_mode is SubscriptionMode.STATIC
    assert fmt.broadcast(["e"], ["r"], [], {}).channel == "p#/admin#"


# ---------------------------------------------------------------------------
# Many operations, through Node and through the core
# ---------------------------------------------------------------------------

# The chain of a step is applied in order, as calls on Node's operator.
STEPS: list[dict[str, Any]] = [
    {"op": "emit", "event": "all", "args": [1, {"a": [1, 2]}]},
    {"op": "emit", "chain": [["to", "room1"]], "event": "hello", "args": ["world"]},
    {
        "op": "emit",
        "chain": [["to", "r1"], ["to", "r2"], ["except", "r3"], ["volatile"]],
        "event": "multi",
        "args": [{"$bin": [1, 2, 3]}],
    },
    {"op": "emit", "nsp": "chat", "event": "in chat", "args": []},
    {
        "op": "emit",
        "nsp": "/admin",
        "chain": [["in", ["a", "b"]], ["except", ["c", "d"]], ["compress", False], ["volatile"]],
        "event": "flags",
        "args": [None, True, False],
    },
    {"op": "emit", "chain": [["compress", True], ["compress", False]], "event": "c", "args": []},
    {"op": "emit", "chain": [["to", SID]], "event": "dm", "args": ["to a socket id"]},
    {"op": "emit", "chain": [["to", "salle-é"]], "event": "ünï", "args": ["☃", {"k": "v"}]},
    {"op": "emit", "chain": [["to", "a"], ["to", ["a", "b"]], ["except", "a"]], "event": "dup"},
    {
        "op": "emit",
        "event": "mixed",
        "args": [3.5, -7, 2**40, [{"$bin": []}, {"deep": {"$bin": [255, 0]}}], "x" * 40],
    },
    {"op": "socketsJoin", "chain": [["in", "room1"]], "rooms": "room2"},
    {"op": "socketsJoin", "chain": [["except", ["x", "y"]]], "rooms": ["a", "b", "a"]},
    {"op": "socketsLeave", "chain": [["to", SID]], "rooms": "room1"},
    {"op": "socketsLeave", "nsp": "/admin", "chain": [["volatile"]], "rooms": []},
    {"op": "disconnectSockets", "chain": [["to", "r"]], "close": False},
    {"op": "disconnectSockets", "chain": [["except", "r"]], "close": True},
    {"op": "serverSideEmit", "event": "note", "args": ["x", {"n": 1}, [None]]},
    {"op": "serverSideEmit", "nsp": "admin", "event": "bare", "args": []},
]


def revive(value: Any) -> Any:
    """``{"$bin": [..]}`` as bytes, as the Node script reads it."""
    if isinstance(value, list):
        return [revive(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {"$bin"}:
            return bytes(value["$bin"])
        return {k: revive(v) for k, v in value.items()}
    return value


def as_list(rooms: str | list[str]) -> list[str]:
    return [rooms] if isinstance(rooms, str) else list(rooms)


def add_rooms(current: list[str], rooms: str | list[str]) -> list[str]:
    # Node's operator keeps a Set: first-added order, no duplicates.
    return current + [r for r in dict.fromkeys(as_list(rooms)) if r not in current]


def run_core(root: EmitterFormat, step: dict[str, Any]) -> Publication:
    fmt = root.of(step["nsp"]) if "nsp" in step else root
    args = revive(step.get("args", []))
    if step["op"] == "serverSideEmit":
        return fmt.server_side_emit(event_data(step["event"], args))
    rooms: list[str] = []
    excepts: list[str] = []
    flags: dict[str, bool] = {}
    for name, *arg in step.get("chain", []):
        if name in ("to", "in"):
            rooms = add_rooms(rooms, arg[0])
        elif name == "except":
            excepts = add_rooms(excepts, arg[0])
        elif name == "volatile":
            flags["volatile"] = True
        else:
            flags["compress"] = arg[0]
    if step["op"] == "emit":
        return fmt.broadcast(event_data(step["event"], args), rooms, excepts, flags)
    if step["op"] == "socketsJoin":
        return fmt.sockets_join(rooms, excepts, flags, as_list(step["rooms"]))
    if step["op"] == "socketsLeave":
        return fmt.sockets_leave(rooms, excepts, flags, as_list(step["rooms"]))
    return fmt.disconnect_sockets(rooms, excepts, flags, step["close"])


async def node_publications(
    kind: str, steps: list[dict[str, Any]], mode: str = "dynamic"
) -> list[Publication]:
    """What Node publishes for each step (exactly one message per step)."""
    lines = await run_node(JS_DIR / "emitter_vectors.js", kind, orjson.dumps(steps).decode(), mode)
    assert [line["step"] for line in lines] == list(range(len(steps)))
    return [Publication(line["channel"], bytes.fromhex(line["hex"])) for line in lines]


def differences(
    expected: Iterable[Publication], got: Iterable[Publication], steps: list[dict[str, Any]]
) -> list[str]:
    return [
        f"step {i} {step}: node {e!r}, core {g!r}"
        for i, (step, e, g) in enumerate(zip(steps, expected, got, strict=True))
        if e != g
    ]


async def test_classic_format_is_node_emitters_bytes() -> None:
    expected = await node_publications("classic", STEPS)
    got = [run_core(ClassicFormat(), step) for step in STEPS]
    assert differences(expected, got, STEPS) == []


@pytest.mark.parametrize("mode", ["dynamic", "dynamic-private", "static"])
async def test_sharded_format_is_node_sharded_adapters_bytes(mode: str) -> None:
    steps = [*STEPS, {"op": "serverSideEmit", "event": "blob", "args": [{"$bin": [9]}]}]
    expected = await node_publications("sharded", steps, mode)
    got = [run_core(ShardedFormat(subscription_mode=mode), step) for step in steps]
    assert differences(expected, got, steps) == []
