"""The recipes of examples/, each driven by the official socket.io-client.

Every test starts an example's server, runs a Node scenario from ``js/`` in which
``socket.io-client`` plays the recipe and prints what it observed (one JSON line
per observation), then checks those lines and, where useful, the server's state
as seen from extra listeners registered by the test. Each test runs over
WebSocket only, polling only, and polling upgraded to WebSocket.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

import socketwire
from tests.conftest import (
    NODE_MODULES,
    ServerStarter,
    create_example_server,
    load_example,
    run_node,
)
from tests.waits import WAIT

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
JS = Path(__file__).resolve().parent / "js"


# -- helpers ---------------------------------------------------------------------------


create_server = create_example_server


@pytest.fixture(
    params=["websocket", "polling", "polling,websocket"],
    ids=["websocket", "polling", "upgrade"],
)
def mode(request: pytest.FixtureRequest) -> str:
    """The client's ``transports`` option, comma-separated."""
    param: str = request.param
    return param


def final_transport(mode: str) -> str:
    return "polling" if mode == "polling" else "websocket"


class Observed:
    """The JSON lines printed by a scenario."""

    def __init__(self, lines: list[Any]) -> None:
        self.lines = lines

    def of(self, client: str) -> list[dict[str, Any]]:
        return [x for x in self.lines if isinstance(x, dict) and x.get("client") == client]

    def events(self, client: str, name: str | None = None) -> list[list[Any]]:
        """``[event, *args]`` of every event the client received, in order."""
        return [
            [x["event"], *x["args"]]
            for x in self.of(client)
            if "event" in x and (name is None or x["event"] == name)
        ]

    def args(self, client: str, name: str) -> list[list[Any]]:
        """The arguments of each ``name`` event the client received."""
        return [e[1:] for e in self.events(client, name)]

    def names(self, client: str) -> list[str]:
        return [e[0] for e in self.events(client)]

    def ack(self, client: str, name: str) -> list[Any]:
        (found,) = [x["args"] for x in self.of(client) if x.get("ack") == name]
        return list(found)

    def value(self, client: str, key: str) -> Any:
        found = [x[key] for x in self.of(client) if key in x]
        assert found, f"no {key!r} line for {client!r} in {self.lines}"
        return found[0]

    def values(self, client: str, key: str) -> list[Any]:
        return [x[key] for x in self.of(client) if key in x]

    def check_transports(self, mode: str, clients: list[str]) -> None:
        """Each connection still open at the end ran on the expected transport
        (after the ``upgrade`` event in the upgrade mode)."""
        for client in clients:
            assert self.value(client, "transport") == final_transport(mode), client


async def scenario(name: str, url: str, mode: str, timeout: float = 30.0) -> Observed:
    return Observed(await run_node(JS / f"{name}.js", url, mode, timeout=timeout))


class Disconnects:
    """The server-side disconnect reason of each socket of a namespace."""

    def __init__(self, nsp: socketwire.Namespace) -> None:
        self.reasons: dict[str, str] = {}
        self._changed = asyncio.Event()
        nsp.on("disconnect", self._record)

    def _record(self, socket: socketwire.Socket, reason: str) -> None:
        self.reasons[socket.id] = reason
        self._changed.set()

    async def of(self, sid: str) -> str:
        """The reason ``sid`` disconnected with, waiting (at most WAIT seconds) for it."""
        async with asyncio.timeout(WAIT):
            while sid not in self.reasons:
                self._changed.clear()
                await self._changed.wait()
        return self.reasons[sid]


def on_disconnections(nsp: socketwire.Namespace, count: int) -> asyncio.Event:
    """An event set once ``count`` sockets of ``nsp`` have disconnected."""
    done = asyncio.Event()
    seen = 0

    @nsp.on("disconnect")
    def disconnected(socket: socketwire.Socket, reason: str) -> None:
        nonlocal seen
        seen += 1
        if seen >= count:
            done.set()

    return done


def hexed(data: bytes) -> dict[str, str]:
    """How a scenario prints a Buffer it received."""
    return {"$bytes": data.hex(), "$type": "Buffer"}


async def http(
    url: str,
    path: str,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> tuple[int, dict[str, str], bytes]:
    """One plain HTTP/1.1 request: (status, lower-cased headers, body)."""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if body:
            lines.append(f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split()[1])
        got: dict[str, str] = {}
        for line in header_lines:
            if line:
                k, _, v = line.partition(":")
                got[k.strip().lower()] = v.strip()
        length = int(got.get("content-length", "0"))
        answer = await asyncio.wait_for(reader.readexactly(length), WAIT) if length else b""
        return status, got, answer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


# -- 1. How to use ----------------------------------------------------------------------


async def test_news(start_server: ServerStarter, mode: str) -> None:
    sio = create_server("news")
    got: list[Any] = []
    sio.on("my other event", lambda socket, data: got.append(data))
    url = await start_server(sio)

    seen = await scenario("news", url, mode)

    assert seen.names("a")[:3] == ["connect", "news", "my other event received"]
    assert seen.args("a", "news") == [[{"hello": "world"}]]
    assert seen.args("a", "my other event received") == [[{"my": "data"}]]
    assert got == [{"my": "data"}]
    seen.check_transports(mode, ["a"])


# -- 2. Storing data associated with each client ----------------------------------------


async def test_client_data(start_server: ServerStarter, mode: str) -> None:
    sio = create_server("client_data")
    data_at_msg: list[dict[str, Any]] = []
    sio.on("msg", lambda socket, text: data_at_msg.append(dict(socket.data)))
    url = await start_server(sio)

    seen = await scenario("client_data", url, mode)

    expected = [
        [{"from": "anonymous", "text": "who am I?"}],
        [{"from": "alice", "text": "hello from alice"}],
        [{"from": "bob", "text": "hi alice"}],
    ]
    assert seen.args("alice", "msg") == expected
    assert seen.args("bob", "msg") == expected
    assert seen.args("alice", "ready") == [["alice"]]
    assert seen.args("bob", "ready") == [["bob"]]
    # socket.data is per socket and kept between events.
    assert data_at_msg == [{}, {"nickname": "alice"}, {"nickname": "bob"}]
    seen.check_transports(mode, ["alice", "bob"])


# -- 3. Namespaces ----------------------------------------------------------------------


async def test_namespaces_share_one_connection(start_server: ServerStarter, mode: str) -> None:
    sio = create_server("namespaces")
    connections: list[dict[str, Any]] = []
    for name in ("/chat", "/news"):

        def record(socket: socketwire.Socket) -> None:
            connections.append(
                {
                    "nsp": socket.nsp.name,
                    "id": socket.id,
                    "engine": socket.conn.engine.id,
                    "engine_clients": len(sio.engine.clients),
                    "main_sockets": len(sio.sockets.sockets),
                }
            )

        sio.of(name).on("connection", record)
    url = await start_server(sio)

    seen = await scenario("namespaces", url, mode)

    only = {"that": "only", "/chat": "will get"}
    everyone = {"everyone": "in", "/chat": "will get"}
    assert seen.args("chat", "a message") == [[only], [everyone], [everyone]]
    assert seen.args("other", "a message") == [[only], [everyone]]
    assert seen.args("news", "item") == [[{"news": "item"}]]
    assert "item" not in seen.names("chat") and "a message" not in seen.names("news")

    # The first client's two namespaces ride on one Engine.IO connection.
    engine_id = seen.value("chat", "engine")
    assert seen.value("chat", "same_manager") is True
    chat, news, other = connections
    assert (chat["nsp"], news["nsp"], other["nsp"]) == ("/chat", "/news", "/chat")
    assert chat["engine"] == news["engine"] == engine_id
    assert news["engine_clients"] == 1  # both namespaces joined, a single connection
    assert other["engine"] == seen.value("other", "engine") != engine_id
    assert other["engine_clients"] == 2
    # Socket ids are per namespace; nobody joined the main namespace.
    assert chat["id"] != news["id"]
    assert seen.args("chat", "connect") == [[chat["id"]]]
    assert seen.args("news", "connect") == [[news["id"]]]
    assert all(c["main_sockets"] == 0 for c in connections)
    seen.check_transports(mode, ["chat", "other"])


# -- 4. Volatile messages -----------------------------------------------------------------


async def test_volatile(start_server: ServerStarter, mode: str) -> None:
    example = load_example("volatile")
    sio: socketwire.Server = example.create_server()
    feeds: list[asyncio.Task[Any]] = []

    @sio.on("connection")
    def find_feed(socket: socketwire.Socket) -> None:
        name = example.TASK_PREFIX + socket.id
        feeds.extend(t for t in asyncio.all_tasks() if t.get_name() == name)

    gone = on_disconnections(sio.sockets, 1)
    url = await start_server(sio)

    seen = await scenario("volatile", url, mode)

    tweets = [args[0] for args in seen.args("fan", "bieber tweet")]
    assert len(tweets) >= 3
    ids = [t["id"] for t in tweets]
    assert ids == sorted(set(ids)), "volatile tweets may be dropped, never repeated or reordered"
    assert all(t == example.get_bieber_tweet(t["id"]) for t in tweets)
    if mode == "websocket":
        # A WebSocket with room in its buffer is writable: nothing is dropped.
        assert ids[:3] == [0, 1, 2]
    seen.check_transports(mode, ["fan"])

    # The feed task stops when the client goes.
    assert len(feeds) == 1
    await asyncio.wait_for(gone.wait(), WAIT)
    await asyncio.wait_for(asyncio.gather(*feeds, return_exceptions=True), WAIT)
    assert feeds[0].cancelled()


# -- 5. Acknowledgements ----------------------------------------------------------------


async def test_acks_both_ways(start_server: ServerStarter, mode: str) -> None:
    url = await start_server(create_server("acks"))

    seen = await scenario("acks", url, mode)

    # Client -> server: a return value, a tuple (several values), an explicit ack.
    assert seen.ack("a", "ferret") == ["woot"]
    assert seen.ack("a", "divmod") == [3, 2]
    assert seen.ack("a", "divmod/emitWithAck") == [14]
    assert seen.ack("a", "save") == ["queued", 42]
    assert seen.args("a", "saved") == [[42], [43]]
    # Server -> client: the client was asked for an ack (its listener got a function)...
    assert seen.args("a", "ferret") == [["tobi", "<fn>"], ["loki", "<fn>"]]
    # ...and each answer went back to the emit that asked for it.
    answers = [args[0] for args in seen.args("a", "ferret answered")]
    assert sorted(answers, key=lambda a: a["via"]) == [
        {"via": "callback", "answer": ["woot", "tobi"]},
        {"via": "emit_with_ack", "answer": ["woot", "loki"]},
    ]
    seen.check_transports(mode, ["a"])


# -- 6. Broadcasting ----------------------------------------------------------------------


async def test_broadcast_excludes_sender(start_server: ServerStarter, mode: str) -> None:
    url = await start_server(create_server("broadcast"))

    seen = await scenario("broadcast", url, mode)

    (second_id,) = seen.args("second", "connect")[0]
    assert seen.args("first", "user connected") == [[second_id]]
    # `announcement` came after anything broadcast to `second` before it.
    assert "user connected" not in seen.names("second")
    announcement = [{"from": second_id, "text": "hello everyone"}]
    assert seen.args("first", "announcement") == [announcement]
    assert seen.args("second", "announcement") == [announcement]
    seen.check_transports(mode, ["first", "second"])


# -- 7. Using it just as a cross-browser WebSocket ----------------------------------------


async def test_websocket_like_send(start_server: ServerStarter, mode: str) -> None:
    url = await start_server(create_server("websocket_like"))

    seen = await scenario("websocket_like", url, mode)

    assert seen.args("a", "message") == [
        ["hi"],
        [{"nested": ["json", 1, True, None]}],
        ["two", "args"],
    ]
    seen.check_transports(mode, ["a"])


# -- 8. Rooms --------------------------------------------------------------------------------


async def test_rooms(start_server: ServerStarter, mode: str) -> None:
    sio = create_server("rooms")
    rooms_at_finish: list[dict[str, set[str]]] = []
    sio.on(
        "finish",
        lambda socket: rooms_at_finish.append(
            {r: set(s) for r, s in sio.sockets.adapter.rooms.items()}
        ),
    )
    url = await start_server(sio)

    seen = await scenario("rooms", url, mode)

    ids = seen.value("ids", "ids")
    a, b, c = ids["a"], ids["b"], ids["c"]
    # socket.rooms holds the socket's own id.
    assert seen.values("a", "joined") == [sorted([a, "lobby"])]
    assert seen.values("b", "joined") == [sorted([b, "lobby"])]
    assert seen.values("c", "joined") == [sorted([c, "lobby"]), sorted([c, "lobby", "vip"])]
    assert seen.values("b", "left") == [[b]]

    def texts(client: str) -> list[str]:
        messages = [args[0] for args in seen.args(client, "room message")]
        assert all(m["from"] == a and m["room"] == "lobby" for m in messages)
        return [m["text"] for m in messages]

    # 1: sio.to(room) reaches all; 2: socket.to(room) all but the sender;
    # 3: except_(vip) skips c; 4: b has left; 5: an empty room reaches nobody.
    assert texts("a") == ["1 shout", "3 except vip", "4 after b left"]
    assert texts("b") == ["1 shout", "2 say", "3 except vip"]
    assert texts("c") == ["1 shout", "2 say", "4 after b left"]
    for client in ("a", "b", "c"):
        assert seen.args(client, "finished") == [[a]]

    (rooms,) = rooms_at_finish
    assert rooms == {"lobby": {a, c}, "vip": {c}, a: {a}, b: {b}, c: {c}}
    seen.check_transports(mode, ["a", "b", "c"])


# -- 9. Disconnection -----------------------------------------------------------------------


async def test_disconnect_reasons(start_server: ServerStarter, mode: str) -> None:
    sio = create_server("disconnect")
    disconnecting: dict[str, tuple[str, set[str]]] = {}
    disconnected: dict[str, tuple[str, set[str], bool]] = {}
    sio.on(
        "disconnecting",
        lambda socket, reason: disconnecting.__setitem__(socket.id, (reason, socket.rooms)),
    )
    sio.on(
        "disconnect",
        lambda socket, reason: disconnected.__setitem__(
            socket.id, (reason, socket.rooms, socket.connected)
        ),
    )
    url = await start_server(sio)

    seen = await scenario("disconnect", url, mode)

    ids = seen.value("ids", "ids")
    leaver, kicked, closer = ids["leaver"], ids["kicked"], ids["closer"]
    # What the clients saw.
    assert seen.args("leaver", "disconnect") == [["io client disconnect"]]
    assert seen.args("kicked", "disconnect") == [["io server disconnect"]]
    assert seen.args("closer", "disconnect") == [["forced close"]]
    reasons = [
        (leaver, "client namespace disconnect"),
        (kicked, "server namespace disconnect"),
        (closer, "transport close"),
    ]
    assert seen.args("watcher", "user disconnected") == [
        [{"id": sid, "reason": reason}] for sid, reason in reasons
    ]
    # `disconnecting` still saw the rooms (socket.to(room) skips the leaving socket).
    assert seen.args("watcher", "user has left") == [
        [{"id": sid, "room": "room1", "reason": reason}] for sid, reason in reasons
    ]
    assert [args[0]["id"] for args in seen.args("closer", "user has left")] == [leaver, kicked]
    assert all(args[0]["id"] != kicked for args in seen.args("kicked", "user disconnected"))

    # What the server saw.
    for sid, reason in reasons:
        assert disconnecting[sid] == (reason, {sid, "room1"})
        assert disconnected[sid] == (reason, set(), False)
    seen.check_transports(mode, ["watcher"])


# -- 10. Binary ----------------------------------------------------------------------------


async def test_binary_both_ways(start_server: ServerStarter, mode: str) -> None:
    example = load_example("binary")
    sio = example.create_server()
    uploads: list[Any] = []
    echoes: list[Any] = []
    sio.on("upload", lambda socket, meta: uploads.append(meta))
    sio.on("echo", lambda socket, *payload: echoes.append(payload))
    url = await start_server(sio)

    seen = await scenario("binary", url, mode)

    # Server -> client: bytes arrive as Buffers, nested where they were.
    assert seen.args("a", "welcome") == [
        [
            {
                "logo": hexed(example.LOGO),
                "parts": [hexed(b"\x00\x01"), hexed(b""), hexed(b"\xff")],
            },
            hexed(b"raw"),
        ]
    ]
    assert seen.value("a", "welcome_types") == {"logo": True, "parts": [True] * 3, "raw": True}

    # Client -> server: Buffers nested in an object arrive as bytes.
    (meta,) = uploads
    assert meta["name"] == "a.bin"
    assert [type(c) for c in meta["chunks"]] == [bytes, bytes, bytes]
    assert [len(c) for c in meta["chunks"]] == [1000, 4, 0]
    assert meta["chunks"][1] == b"\x00\x01\x02\xff"
    digest = hashlib.sha256(b"".join(meta["chunks"])).hexdigest()
    assert digest == seen.value("a", "sent_sha256")
    # ...and the ack carries bytes back.
    assert seen.ack("a", "upload") == [
        {"name": "a.bin", "size": 1004, "sha256": hexed(bytes.fromhex(digest))},
        hexed(b"\x00\x01\x02\xff"),
    ]

    (payload,) = echoes
    assert payload == (
        {
            "text": "not binary",
            "buf": b"hello",
            "list": [b"\x01", {"inner": b"\x02\x03"}, [b"\x04\x05\x06"]],
        },
        b"\x07",
        "tail",
    )
    assert seen.ack("a", "echo") == [
        {
            "text": "not binary",
            "buf": hexed(b"hello"),
            "list": [hexed(b"\x01"), {"inner": hexed(b"\x02\x03")}, [hexed(b"\x04\x05\x06")]],
        },
        hexed(b"\x07"),
        "tail",
    ]
    seen.check_transports(mode, ["a"])


# -- 11. Configuration ----------------------------------------------------------------------


async def test_configuration(start_server: ServerStarter, mode: str) -> None:
    sio = create_server("configuration")
    disconnects = Disconnects(sio.sockets)
    url = await start_server(sio)

    seen = await scenario("configuration", url, mode)

    # Nothing answers on the default path.
    assert seen.names("wrong") == ["connect_error"]
    # The client used path="/realtime" and learned the heartbeat and payload limit.
    assert seen.value("a", "handshake") == {
        "pingInterval": 10000,
        "pingTimeout": 5000,
        "maxPayload": 100_000,
    }
    (config,) = seen.args("a", "config")
    assert config == [
        {
            "path": "/realtime",
            "pingInterval": 10.0,
            "pingTimeout": 5.0,
            "maxHttpBufferSize": 100_000,
            "transports": ["polling", "websocket"],
            "transport": "websocket" if mode == "websocket" else "polling",
        }
    ]
    assert seen.ack("a", "size") == [50_000]
    # A message over max_http_buffer_size ends the connection.
    (big_reason,) = seen.args("big", "disconnect")
    expected_client = {"websocket": {"transport close"}, "polling": {"transport error"}}
    assert big_reason[0] in expected_client.get(mode, {"transport close", "transport error"})
    # Server side, as Node: the WebSocket fails ("transport error"); a polling
    # POST gets 413, then the client sends a close packet ("transport close").
    # While an upgrade is under way the client may give up without a close packet
    # and without a parked GET; then, as with Node, only the heartbeat ends the
    # session, so the upgrade mode does not wait for it here.
    if mode != "polling,websocket":
        on_server = await disconnects.of(seen.args("big", "connect")[0][0])
        assert on_server == {"websocket": "transport error", "polling": "transport close"}[mode]
    seen.check_transports(mode, ["a"])


async def test_configuration_http_options(start_server: ServerStarter) -> None:
    url = await start_server(create_server("configuration"))
    origin = {"Origin": "https://app.example.com"}

    status, headers, body = await http(url, "/realtime/?EIO=4&transport=polling", headers=origin)
    assert status == 200 and body.startswith(b"0{")
    assert json.loads(body[1:])["pingInterval"] == 10000
    assert headers["access-control-allow-origin"] == "https://app.example.com"
    assert headers["access-control-allow-credentials"] == "true"

    status, headers, _ = await http(
        url,
        "/realtime/?EIO=4&transport=polling",
        method="OPTIONS",
        headers={**origin, "Access-Control-Request-Method": "POST"},
    )
    assert status in (200, 204)
    assert headers["access-control-allow-origin"] == "https://app.example.com"
    assert "POST" in headers["access-control-allow-methods"]

    status, _, _ = await http(url, "/socket.io/?EIO=4&transport=polling")
    assert status == 404

    # transports=["websocket"] refuses a polling handshake, as Node does.
    ws_only = await start_server(create_server("configuration", transports=["websocket"]))
    status, _, body = await http(ws_only, "/realtime/?EIO=4&transport=polling")
    assert status == 400
    assert json.loads(body) == {"code": 0, "message": "Transport unknown"}


async def test_polling_client_gone_mid_poll_closes_session(start_server: ServerStarter) -> None:
    """A long-poll GET whose connection closes ends the session at once.

    Node's engine.io (``transports/polling.js``, ``onPollRequest``) treats the
    close of a pending GET as ``onError("poll connection closed prematurely")``:
    the socket closes with reason ``transport error``. The configuration recipe
    hits this when the client gives up during an upgrade (it cannot send a close
    packet over a paused polling transport): the server must not keep the
    session until the heartbeat times out.
    """
    sio = socketwire.Server()  # heartbeat: 25 s + 20 s, far beyond WAIT
    disconnects = Disconnects(sio.sockets)
    url = await start_server(sio)
    base = "/socket.io/?EIO=4&transport=polling"

    status, _, body = await http(url, base)
    assert status == 200
    sid = json.loads(body[1:])["sid"]
    status, _, body = await http(url, f"{base}&sid={sid}", method="POST", body=b"40")
    assert (status, body) == (200, b"ok")
    status, _, body = await http(url, f"{base}&sid={sid}")
    assert status == 200 and body.startswith(b"40{")
    socket_id = json.loads(body[2:])["sid"]

    # A long-poll GET that nothing answers yet; then the client goes away.
    parts = urlsplit(url)
    _reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    writer.write(f"GET {base}&sid={sid} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    engine = sio.engine.clients[sid]
    async with asyncio.timeout(WAIT):
        while not engine.session.get_waiting:
            await asyncio.sleep(0.01)
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()

    assert await disconnects.of(socket_id) == "transport error"
    assert sid not in sio.engine.clients


# -- 12. Serving the client -------------------------------------------------------------------


async def test_client_script_runs_in_sandbox(start_server: ServerStarter, mode: str) -> None:
    url = await start_server(create_server("client_script"))

    lines = await run_node(JS / "client_script.js", url, mode)
    seen = Observed(lines)

    page = next(x["page"] for x in lines if "page" in x)
    assert page == {
        "status": 200,
        "type": "text/html; charset=utf-8",
        "script": "/socket.io/socket.io.js",
    }
    bundle = next(x["bundle"] for x in lines if "bundle" in x)
    assert bundle == {
        "status": 200,
        "type": "application/javascript; charset=utf-8",
        "same_as_package": True,
    }
    assert next(x["bundle_io"] for x in lines if "bundle_io" in x) == {
        "io": "function",
        "Manager": "function",
    }
    sid = seen.value("page", "id")
    assert seen.value("page", "reply") == f"hello sandboxed-browser, you are {sid}"
    seen.check_transports(mode, ["page"])


async def test_client_script_http(start_server: ServerStarter) -> None:
    url = await start_server(create_server("client_script"))
    static = ROOT / "src" / "socketwire" / "static"
    packaged = (static / "socket.io.js").read_bytes()

    status, headers, body = await http(url, "/socket.io/socket.io.js")
    assert status == 200
    assert headers["content-type"].startswith("application/javascript")
    assert headers["cache-control"] == "public, max-age=0"
    assert body == packaged
    # Revalidation with the ETag.
    status, _, body = await http(
        url, "/socket.io/socket.io.js", headers={"If-None-Match": headers["etag"]}
    )
    assert (status, body) == (304, b"")
    # Compressed when the request allows it, with its own ETag.
    status, zipped, body = await http(
        url, "/socket.io/socket.io.js", headers={"Accept-Encoding": "br, gzip"}
    )
    assert status == 200 and zipped["content-encoding"] == "gzip"
    assert gzip.decompress(body) == packaged and zipped["etag"] != headers["etag"]
    status, plain, body = await http(
        url, "/socket.io/socket.io.js", headers={"Accept-Encoding": "gzip;q=0"}
    )
    assert "content-encoding" not in plain and body == packaged
    # The other files of the package.
    for name, kind in [
        ("socket.io.min.js", "application/javascript"),
        ("socket.io.min.js.map", "application/json"),
        ("socket.io.esm.min.js", "application/javascript"),
        ("socket.io.esm.min.js.map", "application/json"),
        ("socket.io.msgpack.min.js", "application/javascript"),
        ("socket.io.msgpack.min.js.map", "application/json"),
        ("socket.io.d.ts", "application/typescript"),
    ]:
        status, headers, body = await http(url, f"/socket.io/{name}")
        assert status == 200 and body == (static / name).read_bytes(), name
        assert headers["content-type"].startswith(kind), name
    status, _, _ = await http(url, "/socket.io/socket.io.js.map")
    assert status == 404
    official = (NODE_MODULES / "socket.io-client" / "dist" / "socket.io.js").read_bytes()

    # An unknown file under the path is not the bundle: it goes to Engine.IO,
    # which refuses it (Node answers the same 400 "Transport unknown").
    status, headers, body = await http(url, "/socket.io/nope.js")
    assert status in (400, 404)
    assert "javascript" not in headers.get("content-type", "")
    assert body != official

    # The fallback serves the page, and 404 elsewhere.
    status, headers, body = await http(url, "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b'<script src="/socket.io/socket.io.js"></script>' in body
    status, _, _ = await http(url, "/missing")
    assert status == 404


async def test_client_dist_overrides_the_packaged_client(
    start_server: ServerStarter, monkeypatch: pytest.MonkeyPatch
) -> None:
    dist = NODE_MODULES / "socket.io-client" / "dist"
    monkeypatch.setenv("SOCKETWIRE_CLIENT_DIST", str(dist))
    url = await start_server(create_server("client_script"))
    for name in ("socket.io.js", "socket.io.min.js", "socket.io.msgpack.min.js"):
        status, _, body = await http(url, f"/socket.io/{name}")
        assert status == 200 and body == (dist / name).read_bytes(), name


def test_examples_have_a_docstring_and_main() -> None:
    names = sorted(
        [
            "acks",
            "binary",
            "broadcast",
            "client_data",
            "client_script",
            "configuration",
            "disconnect",
            "namespaces",
            "news",
            "rooms",
            "volatile",
            "websocket_like",
        ]
    )
    assert set(names) <= {p.stem for p in EXAMPLES.glob("*.py")}
    for name in names:
        module = load_example(name)
        assert module.__doc__ and len(module.__doc__.strip()) > 80, name
        create: Callable[..., Any] = module.create_server
        assert callable(create)
        source = (EXAMPLES / f"{name}.py").read_text()
        assert 'if __name__ == "__main__":' in source and "create_server().run(3000)" in source
