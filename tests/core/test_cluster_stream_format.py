"""The Redis Streams adapter's formats, byte for byte.

The vectors were captured from ``@socket.io/redis-streams-adapter`` 0.3.1 on
socket.io 4.8.4 (``tests/js/streams_capture.js``: fixed operations on a server
whose adapter uid is ``0123456789abcdef``, the stream read back with XRANGE);
``tests/cluster/test_streams_capture.py`` captures them again from a live Node
server and checks that they still match.
"""

from __future__ import annotations

from typing import Any

import pytest

from socketwire.core.cluster.message_format import (
    MessageType,
    broadcast_data,
    decode_message,
    encode_options,
)
from socketwire.core.cluster.stream_format import (
    StoredSession,
    decode_entry,
    decode_session,
    encode_entry,
    encode_ephemeral,
    encode_session,
    hash_code,
    included,
    is_ephemeral,
    is_offset,
    next_offset,
    stream_for,
)
from socketwire.errors import LocalProtocolError, RemoteProtocolError

UID = "0123456789abcdef"


def _entry(kind: str, data: str) -> dict[str, str]:
    return {"uid": UID, "nsp": "/", "type": kind, "data": data}


#: What the Node adapter appended, in order, and the same message built here.
ENTRIES: list[tuple[dict[str, str], MessageType, dict[str, Any]]] = [
    (
        _entry(
            "3",
            '{"packet":{"type":2,"data":["hello","world",1.5,null,{"a":[true,-2]}]},'
            '"opts":{"rooms":["r1"],"except":["r2"],"flags":{}}}',
        ),
        MessageType.BROADCAST,
        broadcast_data(
            ["hello", "world", 1.5, None, {"a": [True, -2]}], encode_options(["r1"], ["r2"])
        ),
    ),
    (
        _entry(
            "3",
            "gqZwYWNrZXSCpHR5cGUCpGRhdGGTo2JpbsQDAQIDgaF4xAH/pG9wdHODpXJvb21zkKZleGNlcHSQpWZsYWdzgA==",
        ),
        MessageType.BROADCAST,
        broadcast_data(["bin", b"\x01\x02\x03", {"x": b"\xff"}], encode_options([], [])),
    ),
    (
        _entry(
            "3",
            '{"packet":{"type":2,"data":["v",1]},'
            '"opts":{"rooms":[],"except":[],"flags":{"volatile":true,"compress":false}}}',
        ),
        MessageType.BROADCAST,
        broadcast_data(["v", 1], encode_options([], [], volatile=True, compress=False)),
    ),
    (
        _entry("4", '{"opts":{"rooms":["r1"],"except":[],"flags":{}},"rooms":["r3"]}'),
        MessageType.SOCKETS_JOIN,
        {"opts": encode_options(["r1"], []), "rooms": ["r3"]},
    ),
    (
        _entry("5", '{"opts":{"rooms":["r1"],"except":[],"flags":{}},"rooms":["r3"]}'),
        MessageType.SOCKETS_LEAVE,
        {"opts": encode_options(["r1"], []), "rooms": ["r3"]},
    ),
    (
        _entry("6", '{"opts":{"rooms":[],"except":[],"flags":{}},"close":true}'),
        MessageType.DISCONNECT_SOCKETS,
        {"opts": encode_options([], []), "close": True},
    ),
]

#: ``serverSideEmit("note", 1, "two")`` as published on ``<prefix>#/#``.
EPHEMERAL = bytes.fromhex(
    "84a47479706509a46461746181a67061636b657493a46e6f746501a374776fa3756964b030313233343536"
    "373839616263646566a36e7370a12f"
)
#: ``persistSession({sid: "s1", pid: "p1", rooms: ["s1", "r1"], data: {name: "n", n: 2}})``.
SESSION = "hKNzaWSiczGjcGlkonAxpXJvb21zkqJzMaJyMaRkYXRhgqRuYW1loW6hbgI="
#: Node's ``hashCode`` of namespace names.
HASHES = {
    "/": 47,
    "/chat": 46457863,
    "/admin": 1438238848,
    "/\u00e9\U0001f600": 3396989,
    "/ns-negative-hash-0": -1235699152,
}


@pytest.mark.parametrize(("fields", "kind", "data"), ENTRIES)
def test_entries_encode_as_node_appends_them(
    fields: dict[str, str], kind: MessageType, data: dict[str, Any]
) -> None:
    encoded = encode_entry(kind, UID, "/", data)
    assert encoded == fields
    assert list(encoded) == ["uid", "nsp", "type", "data"]  # Node's field order


@pytest.mark.parametrize(("fields", "kind", "data"), ENTRIES)
def test_entries_decode_from_bytes(
    fields: dict[str, str], kind: MessageType, data: dict[str, Any]
) -> None:
    raw = {k.encode(): v.encode() for k, v in fields.items()}  # as redis-py returns them
    msg = decode_entry(raw)
    assert msg.type is kind and msg.uid == UID and msg.nsp == "/"
    if kind is MessageType.BROADCAST:
        assert msg.data == data["packet"]["data"]
        assert msg.rooms == frozenset(data["opts"]["rooms"])


def test_binary_with_only_plaintext_is_refused() -> None:
    data = broadcast_data(["bin", b"\x01"], encode_options([], []))
    with pytest.raises(LocalProtocolError):
        encode_entry(MessageType.BROADCAST, UID, "/", data, only_plaintext=True)
    with pytest.raises(LocalProtocolError):
        encode_entry(MessageType.SOCKETS_JOIN, UID, "/", {"rooms": [b"\x01"]})


def test_ephemeral_message_is_nodes_msgpack() -> None:
    assert (
        encode_ephemeral(MessageType.SERVER_SIDE_EMIT, UID, "/", {"packet": ["note", 1, "two"]})
        == EPHEMERAL
    )
    msg = decode_message(EPHEMERAL)
    assert msg.type is MessageType.SERVER_SIDE_EMIT and msg.data == ["note", 1, "two"]


def test_which_messages_are_ephemeral() -> None:
    assert is_ephemeral(MessageType.BROADCAST, {"requestId": "x", "packet": {}})
    assert not is_ephemeral(MessageType.BROADCAST, {"packet": {}})
    assert is_ephemeral(MessageType.SERVER_SIDE_EMIT, {"packet": []})
    assert is_ephemeral(MessageType.FETCH_SOCKETS, {"requestId": "x"})
    assert not is_ephemeral(MessageType.SOCKETS_JOIN, {})


def test_session_is_nodes_base64_msgpack() -> None:
    session = StoredSession("s1", "p1", ["s1", "r1"], {"name": "n", "n": 2})
    assert encode_session(session) == SESSION
    assert decode_session(SESSION) == session
    assert decode_session(SESSION.encode()) == session
    for bad in ("not base64!", "kQ==", "gaNzaWQB"):  # garbage, [1], {sid: 1}
        with pytest.raises(RemoteProtocolError):
            decode_session(bad)


@pytest.mark.parametrize(("name", "expected"), HASHES.items())
def test_hash_code_is_javas(name: str, expected: int) -> None:
    assert hash_code(name) == expected


def test_stream_names() -> None:
    assert stream_for("/chat") == "socket.io"
    assert stream_for("/chat", "s", 3) == f"s-{46457863 % 3}"
    # JavaScript's % keeps the sign of a negative hash.
    assert stream_for("/ns-negative-hash-0", "s", 7) == f"s-{-(1235699152 % 7)}"
    assert stream_for("/ns-negative-hash-0", "s", 7) == "s--2"


def test_offsets() -> None:
    assert is_offset("1796497798621-0")
    assert not is_offset("1796497798621") and not is_offset("a-1") and not is_offset("1-2\n")
    assert next_offset("1796497798621-9") == "1796497798621-10"


def test_included_follows_node() -> None:
    assert included(["s1", "r1"], [], [])
    assert included(["s1", "r1"], ["r1", "r2"], [])
    assert not included(["s1", "r1"], ["r2"], [])
    assert not included(["s1", "r1"], [], ["r1"])


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {b"type": b"x", b"nsp": b"/"},
        {b"type": b"3", b"nsp": b"/", b"data": b"{nope"},
        {b"type": b"3", b"nsp": b"/", b"data": b"!!"},
        {b"type": b"3", b"nsp": b"\xff", b"data": b"{}"},
        {b"type": b"3", b"nsp": b"/", b"data": b'{"packet":{"type":2,"data":[]}}'},
        {b"type": 3, b"nsp": b"/"},
        {"type": "3", "nsp": ["/"]},
    ],
)
def test_malformed_entries_raise(fields: dict[bytes, bytes]) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_entry(fields)


def test_entries_with_str_fields_and_no_uid_decode() -> None:
    """redis-py answers ``str`` with ``decode_responses=True``; the emitter sends no uid."""
    entry = encode_entry(MessageType.SOCKETS_JOIN, "u1", "/", {"opts": {}, "rooms": ["r"]})
    del entry["uid"]
    msg = decode_entry(entry)
    assert (msg.uid, msg.nsp) == (None, "/")


@pytest.mark.parametrize(
    ("obj", "match"),
    [
        ([1, 2], r"invalid session: \[1, 2\]"),
        ({"pid": "p"}, "no sid or pid"),
        ({"sid": "s", "pid": "p", "rooms": "r"}, "invalid session rooms"),
    ],
)
def test_malformed_sessions_raise(obj: Any, match: str) -> None:
    import base64

    from socketwire.core.notepack import pack

    with pytest.raises(RemoteProtocolError, match=match):
        decode_session(base64.b64encode(pack(obj)))
    with pytest.raises(RemoteProtocolError, match="invalid session"):
        decode_session(b"!!")


def test_a_session_without_rooms_has_none() -> None:
    import base64

    from socketwire.core.notepack import pack

    got = decode_session(base64.b64encode(pack({"sid": "s", "pid": "p"})))
    assert (got.sid, got.pid, got.rooms, got.data) == ("s", "p", [], None)


def test_messages_without_data() -> None:
    entry = encode_entry(MessageType.HEARTBEAT, "u1", "/")
    assert entry == {"uid": "u1", "nsp": "/", "type": str(int(MessageType.HEARTBEAT))}
    assert decode_entry(entry).type is MessageType.HEARTBEAT
    assert decode_message(encode_ephemeral(MessageType.HEARTBEAT, "u1", "/")).uid == "u1"
