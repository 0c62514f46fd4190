"""socketwire.Server(parser="msgpack") against the npm socket.io-msgpack-parser.

The official socket.io-client, created with ``parser: require("socket.io-msgpack-parser")``,
drives a real server over WebSocket only, polling only and polling upgraded to
WebSocket (js/msgpack_client.js). The npm Decoder also reads what our encoder
writes (js/msgpack_decode.js), and js/msgpack_vectors.js checks the byte vectors
stored in tests/core/test_socketio_msgpack.py are still what the npm package writes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import socketwire
from socketwire.core.socketio.msgpack import MSGPACK_PARSER
from socketwire.core.socketio.packet import Packet, PacketType
from socketwire.core.websocket.frames import Opcode
from tests.conftest import ServerStarter, run_node
from tests.core.test_socketio_msgpack import ROUND_TRIP, VECTORS
from tests.integration.rawclient import WebSocketClient

JS = Path(__file__).resolve().parent / "js"


@pytest.fixture(
    params=["websocket", "polling", "polling,websocket"],
    ids=["websocket", "polling", "upgrade"],
)
def mode(request: pytest.FixtureRequest) -> str:
    """The client's ``transports`` option, comma-separated."""
    param: str = request.param
    return param


def hexed(data: bytes) -> dict[str, str]:
    """How js/_common.js prints a Buffer."""
    return {"$bytes": data.hex(), "$type": "Buffer"}


class Lines:
    """The JSON lines printed by js/msgpack_client.js."""

    def __init__(self, lines: list[Any]) -> None:
        self.lines = lines

    def of(self, client: str) -> list[dict[str, Any]]:
        return [x for x in self.lines if isinstance(x, dict) and x.get("client") == client]

    def events(self, client: str, name: str) -> list[list[Any]]:
        return [x["args"] for x in self.of(client) if x.get("event") == name]

    def ack(self, client: str, name: str) -> dict[str, Any]:
        (line,) = [x for x in self.of(client) if x.get("ack") == name]
        return line

    def value(self, client: str, key: str) -> Any:
        (found,) = [x[key] for x in self.of(client) if key in x]
        return found


def make_server(seen: dict[str, Any]) -> socketwire.Server:
    sio = socketwire.Server(parser="msgpack")

    def refuse(socket: socketwire.Socket) -> None:
        if socket.handshake.auth.get("refuse"):
            raise socketwire.ConnectionRefused("no", data={"x": 1})

    sio.use(refuse)

    @sio.on("connection")
    def connection(socket: socketwire.Socket) -> None:
        seen.setdefault("auth", []).append(socket.handshake.auth)
        socket.emit("welcome", socket.id, b"\x00\x01\xff", {"parts": [b"abc", {"deep": b""}]})

    @sio.on("note")
    def note(socket: socketwire.Socket, *args: Any) -> None:
        seen.setdefault("note", []).append(args)

    @sio.on("echo")
    def echo(socket: socketwire.Socket, *args: Any) -> tuple[Any, ...]:
        return args

    @sio.on("inspect")
    def inspect(socket: socketwire.Socket, *args: Any) -> tuple[Any, ...]:
        seen["inspect"] = args
        return ("ok", args[4])

    @sio.on("ask")
    async def ask(socket: socketwire.Socket, x: int) -> Any:
        answer = await socket.emit_with_ack("question", x, b"\x07", timeout=5)
        seen["answer"] = answer
        return answer

    @sio.on("shout")
    def shout(socket: socketwire.Socket, text: str, data: bytes) -> None:
        seen["shout"] = (text, data)
        sio.emit("news", text, data)

    admin = sio.of("/admin")

    @admin.on("connection")
    def admin_connection(socket: socketwire.Socket) -> None:
        socket.emit("admin-hello", b"\x10")

    @admin.on("admin-echo")
    def admin_echo(socket: socketwire.Socket, data: bytes) -> tuple[Any, ...]:
        return ("admin", data)

    return sio


async def test_official_client(start_server: ServerStarter, mode: str) -> None:
    seen: dict[str, Any] = {}
    url = await start_server(make_server(seen))
    out = Lines(await run_node(JS / "msgpack_client.js", url, mode))

    # connect: the client's CONNECT carries "data": undefined, i.e. no auth
    assert seen["auth"][0] == {}

    # server -> client, binary nested
    (welcome,) = out.events("a", "welcome")
    assert welcome[1:] == [hexed(b"\x00\x01\xff"), {"parts": [hexed(b"abc"), {"deep": hexed(b"")}]}]
    assert out.value("a", "welcome_sid_matches") is True
    assert out.value("a", "welcome_types") == {"raw": True, "nested": True}

    # client -> server without ack; Buffers arrive as bytes
    assert seen["note"] == [("first", b"\x01\x02\x03", {"deep": [b""]})]
    assert [type(x) for x in seen["note"][0][1:2]] == [bytes]

    # client -> server with ack, and the ack back with binary
    assert out.ack("a", "echo")["args"] == [
        "text",
        1,
        2.5,
        True,
        None,
        {"k": [hexed(b"\x01\x02\x03")]},
        hexed(b""),
    ]
    assert out.ack("a", "echo-nothing")["args"] == []

    # Uint8Array / ArrayBuffer (ext type 0) -> bytes, undefined dropped / None, Date
    assert seen["inspect"] == (
        b"\x09\x08\x07",
        b"\x05",
        {"keep": 1},
        [None],
        datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC),
    )
    assert [type(x) for x in seen["inspect"][:2]] == [bytes, bytes]
    inspected = out.ack("a", "inspect")
    assert inspected["kinds"] == ["string", "Date"]
    assert inspected["date"] == 1700000000123

    # server -> client with ack (emit_with_ack), then the client's ack
    assert seen["answer"] == ("answer", 21, b"\x07")
    assert out.ack("a", "ask")["args"] == ["answer", 21, hexed(b"\x07")]

    # broadcast to every client of "/"
    assert seen["shout"] == ("hello all", b"\xca\xfe")
    for client in ("a", "b", "c"):
        assert out.events(client, "news") == [["hello all", hexed(b"\xca\xfe")]]

    # a namespace on the same connection
    assert out.events("adm", "admin-hello") == [[hexed(b"\x10")]]
    admin = out.ack("adm", "admin-echo")
    assert admin["args"] == ["admin", hexed(b"hi")]
    assert admin["same_engine"] is True

    # CONNECT_ERROR from the middleware
    assert out.value("bad", "connect_error") == {"message": "no", "data": {"x": 1}}

    # every connection ended on the expected transport
    final = "polling" if mode == "polling" else "websocket"
    for client in ("a", "b", "c"):
        assert out.value(client, "transport") == final


async def test_stored_vectors_are_what_npm_writes() -> None:
    lines = await run_node(JS / "msgpack_vectors.js")
    assert {x["name"]: (x["hex"], x["npm"]) for x in lines} == VECTORS


def plain(value: Any) -> Any:
    """How js/msgpack_decode.js prints what the npm Decoder returned."""
    if isinstance(value, bytes):
        return {"$bytes": value.hex()}
    if isinstance(value, datetime):
        return {"$date": (value - datetime(1970, 1, 1, tzinfo=UTC)) // (value.resolution * 1000)}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


EXTRA = [
    Packet(PacketType.EVENT, "/chat", ["m", {"a": [1, {"b": b"\x00" * 70000}]}, -(2**31) - 1], 99),
    Packet(PacketType.EVENT, "/", [1.5, "float name"]),
    Packet(PacketType.ACK, "/", [None, False, "\u2603" * 40, list(range(70000))], 2**32),
    Packet(PacketType.CONNECT, "/x", {"k" * 300: {f"k{i}": i for i in range(20)}}),
    Packet(PacketType.CONNECT_ERROR, "/", {"message": "Invalid namespace"}),
]


async def test_npm_decoder_reads_what_we_write(tmp_path: Path) -> None:
    packets = list(ROUND_TRIP.values()) + EXTRA
    encoded = []
    for packet in packets:
        text, (data,) = MSGPACK_PARSER.encode(packet)
        assert text == b""
        encoded.append(data.hex())
    hexes = tmp_path / "packets.hex"
    hexes.write_text("\n".join(encoded) + "\n")
    lines = await run_node(JS / "msgpack_decode.js", str(hexes))
    assert len(lines) == len(packets)
    for packet, line in zip(packets, lines, strict=True):
        assert line["ok"], (packet, line)
        expected: dict[str, Any] = {"type": int(packet.type)}
        if packet.data is not None:
            expected["data"] = plain(packet.data)
        expected["nsp"] = packet.nsp
        if packet.id is not None:
            expected["id"] = packet.id
        assert line["keys"] == list(expected)
        assert line["packet"] == expected


BAD_INPUT = {
    "text-event": (False, b'42["x"]'),
    "text-connect": (False, b"40"),
    "not-msgpack": (True, b"\xc1"),
    "trailing-bytes": (True, MSGPACK_PARSER.encode_event("/", ["x"])[1][0] + b"\x00"),
    "unknown-key": (True, bytes.fromhex(VECTORS["bad-unknown-key"][0])),
    "reserved-event": (True, bytes.fromhex(VECTORS["bad-event-name-reserved"][0])),
    "binary-type-5": (True, bytes.fromhex(VECTORS["bad-type-5"][0])),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUT))
async def test_bad_input_closes_the_connection(start_server: ServerStarter, name: str) -> None:
    sio = socketwire.Server(parser="msgpack")
    reasons: list[str] = []
    sio.on("disconnect", lambda socket, reason: reasons.append(reason))
    sio.on("hi", lambda socket, n: ("hello", n + 1, b"\x01"))
    url = await start_server(sio)
    ws = await WebSocketClient.connect(url, "/socket.io/?EIO=4&transport=websocket")
    try:
        opcode, payload = await ws.recv()
        assert opcode == Opcode.TEXT and payload.startswith(b"0{")
        ws.send_binary(MSGPACK_PARSER.encode(Packet(PacketType.CONNECT))[1][0])
        opcode, payload = await ws.recv()
        assert opcode == Opcode.BINARY
        connected = MSGPACK_PARSER.decoder().feed_binary(payload)
        assert connected is not None and connected.type == PacketType.CONNECT
        assert isinstance(connected.data, dict) and isinstance(connected.data["sid"], str)
        ws.send_binary(MSGPACK_PARSER.encode_event("/", ["hi", 1], 5)[1][0])
        opcode, payload = await ws.recv()
        assert opcode == Opcode.BINARY
        assert MSGPACK_PARSER.decoder().feed_binary(payload) == Packet(
            PacketType.ACK, "/", ["hello", 2, b"\x01"], 5
        )

        binary, data = BAD_INPUT[name]
        if binary:
            ws.send_binary(data)
        else:
            ws.send_text(data)
        await ws.wait_closed()
        assert reasons == ["parse error"]
    finally:
        await ws.aclose()
