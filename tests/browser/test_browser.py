"""Socket.IO clients in Chromium: {socketwire's client, the official client} x
{socketwire's server, Node's socket.io 4.8.4}, over WebSocket only, polling only
and polling upgraded to WebSocket; and the demo chat, two pages.

Chromium is Debian's (``/usr/bin/chromium``, installed by ``scripts/bootstrap.sh
--with-npm``), driven by Playwright; the tests are skipped without it. One
browser serves the whole module (its tests share one event loop). The page is a
real document of the peer's origin (its ``GET /`` page, which loads the
server's own ``/socket.io/socket.io.js``), so that the clients connect to the
page's origin as in production; Chromium refuses connections to 127.0.0.1 from
a page that Playwright's routing made up. The client under test is then added
to that page from its file and replaces the global ``io``.

``scenario.js`` holds the steps; each resolves with what it observed, and the
same observations are expected of every combination: where the official
client and socketwire's differ, the official one is right. The peers are those
of ``tests/client/peers.py``, with the same handlers on both servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from fastapi import FastAPI, WebSocket
from fastapi.responses import HTMLResponse

import socketwire
from tests.client.peers import NODE_MODULES, NodePeer, SocketwirePeer
from tests.waits import SCALE, WAIT

playwright_api = pytest.importorskip("playwright.async_api")

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed"),
    pytest.mark.asyncio(loop_scope="module"),
]

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).parent
CLIENTS = {
    "socketwire": ROOT / "src" / "socketwire" / "static" / "socket.io.min.js",
    "official": NODE_MODULES / "socket.io-client" / "dist" / "socket.io.min.js",
}
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
MODES = ["polling", "websocket", "upgrade"]
Peer = NodePeer | SocketwirePeer


def make_peer(kind: str, *, recovery: bool = False, fast_pings: bool = False) -> Peer:
    """A peer of kind "node" or "socketwire"; with connection state recovery, or
    pinging every 300 ms and waiting 200 ms for the pong."""
    if kind == "node":
        flags = ["--recovery"] if recovery else []
        if fast_pings:
            flags += ["--ping-interval", "300", "--ping-timeout", "200"]
        return NodePeer(*flags)
    options: dict[str, Any] = {}
    if recovery:
        options["connection_state_recovery"] = {"max_disconnection_duration": 60}
    if fast_pings:
        options.update(ping_interval=0.3, ping_timeout=0.2)
    return SocketwirePeer(**options)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Any]:
    """One headless Chromium for the module; each test opens its own pages."""
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


@contextlib.asynccontextmanager
async def started(peer: Peer) -> AsyncIterator[Peer]:
    await peer.start()
    try:
        yield peer
    finally:
        await peer.stop()


@contextlib.asynccontextmanager
async def scenario_page(
    browser: Any, peer: Peer, client: str, *, http_errors: bool = False
) -> AsyncIterator[Any]:
    """A page of the peer's origin with ``client`` and ``scenario.js``; no page
    error may happen while it is open, nor (unless ``http_errors``) a refused
    POST: a client that overlaps its POSTs, or sends after ending the session
    (its packets lost), gets 400. A refused GET can be the race of a pending
    poll with the server closing the session, for the official client too."""
    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    if not http_errors:

        def answered(response: Any) -> None:
            if response.status >= 400 and response.request.method == "POST":
                errors.append(f"{response.status} POST {response.url}")

        page.on("response", answered)
    try:
        await page.goto(peer.url + "/")
        for script in (HERE / "prelude.js", CLIENTS[client], HERE / "scenario.js"):
            await page.add_script_tag(content=script.read_text())
        yield page
    finally:
        await page.close()
    assert errors == []


async def evaluate(page: Any, script: str, arg: Any = None) -> Any:
    # The page bounds each step by 3 * WAIT; this bounds the whole call.
    return await asyncio.wait_for(page.evaluate(script, arg), 12 * WAIT)


def no_errors(results: dict[str, Any]) -> None:
    failed = {
        name: got["error"]
        for name, got in results.items()
        if isinstance(got, dict) and "error" in got
    }
    assert failed == {}


# -- what every combination must observe ------------------------------------------------

STATE_CONNECTED = {"active": True, "connected": True, "disconnected": False}
STATE_WAITING = {"active": True, "connected": False, "disconnected": True}
STATE_OFF = {"active": False, "connected": False, "disconnected": True}


def ab(*data: int) -> dict[str, Any]:
    """Binary data as the page shows it: all of it arrives as ArrayBuffer."""
    return {"bin": "ArrayBuffer", "bytes": list(data)}


BINARY_PAYLOAD = {
    "ab": ab(0, 1, 255),
    "u8": ab(7, 8),
    "u16": ab(2, 1),
    "f64": ab(0, 0, 0, 0, 0, 0, 248, 63),
    "part": ab(2, 3),
    "nested": {"list": [ab(5), "text", {"deep": ab(255)}]},
}


def expected(mode: str) -> dict[str, Any]:
    websocket = mode != "polling"
    return {
        "basics": {
            "upgrade_event": "websocket" if mode == "upgrade" else None,
            "before_connect": STATE_WAITING,
            "connected": STATE_CONNECTED,
            "transport": "websocket" if websocket else "polling",
            "whoami": {
                "sid": True,
                "engine": True,
                "nsp": "/",
                "transport": "websocket" if websocket else "polling",
            },
            "echo": {"text": "é ✓", "list": [1, None, True, 2.5]},
            "echo_args": [1, "two", {"three": [3]}],
            "server_ack": ["q", [42, "back"]],
            "send_chains": True,
            "message": ["hi", {"n": 1}],
            "client_disconnect": "io client disconnect",
            "after_client_disconnect": STATE_OFF,
            "server_saw": ["/", "client namespace disconnect"],
            "server_disconnect": "io server disconnect",
            "after_server_disconnect": STATE_OFF,
        },
        "binary": {
            "echo": [BINARY_PAYLOAD, ab(42), "tail"],
            "blob": [ab(9, 8), {"b": ab(0xC3, 0xA9)}],
            "from_server": [BINARY_PAYLOAD, [ab(6)]],
            "client_ack": ["qb", [ab(3, 3), {"b": ab(3, 0)}]],
        },
        "data": ["alice", "bob", None],
        "broadcast": {
            "all": [[{"n": 1}], [{"n": 1}]],
            "others": {"b": [2], "a": []},
            "joined": f"room-{mode}",
            "room": {"a": ["members only"], "b": []},
        },
        "volatile": {
            "volatile_chains": True,
            "compress": "uncompressed",
            "compress_volatile": True,
            "server_volatile": "undefined",
            "after": "after",
        },
        "namespaces": {
            "chat": "/chat",
            "refused": {"message": "not authorized", "data": {"reason": "bad token"}, **STATE_OFF},
            "after_fix": {**STATE_CONNECTED, "auth": {"token": "secret"}},
            "auth_object": {"token": "secret", "n": 1},
            "auth_callback": {"token": "secret", "via": "callback"},
            "query": {"a": None, "b": "2", "c": "é ✓", "EIO": "4"},
            "query_in_url": {"a": "1", "b": None, "d": "é"},
            "dynamic": f"/dyn-{mode}",
            "invalid": "Invalid namespace",
        },
        "catchall": {
            "seen": [
                ["out", "echo_event", "back", 1],
                ["first", "back", 1],
                ["any", "back", 1],
                ["out", "echo_event", "back", 2],
                ["any", "back", 2],
            ],
            "counts": [2, 1],
            "after": [0, 0],
        },
        "acks": {
            "timeout_emit": "operation has timed out",
            "timeout_with_ack": "operation has timed out",
            "timeout_answered": [None, 5, 6],
            "with_ack_answered": 7,
            "retries": "ok",
            "deliveries": 3,
            "retries_exhausted": "operation has timed out",
        },
        "reconnect": {
            "reason": "transport close",
            "while_away": STATE_WAITING,
            "events": [
                ["close", "string"],
                ["reconnect_attempt", 1],
                ["open", "undefined"],
                ["reconnect", 1],
            ],
            "back": STATE_CONNECTED,
            "round_trip": "again",
        },
        "closed_while_upgrading": None
        if mode != "upgrade"
        else {
            "transport": "polling",
            "engine_close": "forced close",
            "server_saw": "client namespace disconnect",
        },
        "many": {"engines": 1, "same_engine": True, "namespaces": True, "server_count": 50},
    }


STEPS = list(expected("polling"))


@pytest.mark.parametrize("client", list(CLIENTS))
@pytest.mark.parametrize("server", ["socketwire", "node"])
async def test_recipes(browser: Any, server: str, client: str) -> None:
    """The README recipes and the v4 items, in each transport mode."""
    async with started(make_peer(server)) as peer, scenario_page(browser, peer, client) as page:
        for mode in MODES:
            got = await evaluate(page, "([m, s]) => window.runSteps(m, s)", [mode, STEPS])
            no_errors(got)
            # JSON has no undefined: the page says "undefined", absent keys are None.
            for name in ("namespaces",):
                for key in ("query", "query_in_url"):
                    got[name][key] = {k: got[name][key].get(k) for k in expected(mode)[name][key]}
            want = expected(mode)
            for name in STEPS:
                assert got[name] == want[name], (mode, name)


@pytest.mark.parametrize("client", list(CLIENTS))
@pytest.mark.parametrize("server", ["socketwire", "node"])
async def test_restart_on_the_same_port(browser: Any, server: str, client: str) -> None:
    """The server stops, then listens again on its port: the clients of the three
    modes reconnect by themselves and round-trip again."""
    async with (
        started(make_peer(server)) as peer,
        # While the server is away, requests fail; a closed server answers 503.
        scenario_page(browser, peer, client, http_errors=True) as page,
    ):
        ready = await evaluate(page, "() => window.runSpecial('restart')")
        assert ready == dict.fromkeys(MODES, True)
        port = peer.port
        await peer.stop()
        await peer.start(port)
        got = await evaluate(page, "() => window.awaitRestarted()")
        no_errors(got)
        for mode, out in got.items():
            # A killed server: the WebSocket closes, or the pending poll fails.
            assert out.pop("reason") in ("transport close", "transport error"), mode
            assert out == {
                "events": ["reconnect_attempt", "reconnect"],
                "state": STATE_CONNECTED,
                "round_trip": "again",
            }, mode


@pytest.mark.parametrize("client", list(CLIENTS))
@pytest.mark.parametrize("server", ["socketwire", "node"])
async def test_recovery(browser: Any, server: str, client: str) -> None:
    """Connection state recovery: the server cuts the connection, then the page
    cuts its own; what was broadcast meanwhile arrives, ``recovered`` is true."""
    peer = make_peer(server, recovery=True)
    async with started(peer), scenario_page(browser, peer, client) as page:
        got = await evaluate(page, "() => window.runSpecial('recovery')")
    no_errors(got)
    for mode, out in got.items():
        assert out == {
            "tick": [1, "string"],
            "first_recovered": False,
            "server_cut": {"missed": [7], "recovered": True, "same_id": True},
            "reason": "forced close",
            "client_cut": {"missed": [8], "recovered": True, "same_id": True},
        }, mode


@pytest.mark.parametrize("client", list(CLIENTS))
@pytest.mark.parametrize("server", ["socketwire", "node"])
async def test_server_that_stops_pinging(browser: Any, server: str, client: str) -> None:
    """pingInterval 300 ms, pingTimeout 200 ms: after a ping (the Manager's "ping"
    event), the server pings no more; the client gives up within 500 ms."""
    peer = make_peer(server, fast_pings=True)
    async with started(peer), scenario_page(browser, peer, client) as page:
        got = await evaluate(page, "() => window.runSpecial('pingtimeout')")
    no_errors(got)
    for mode, out in got.items():
        # Measured from the ack of "stop_pings": the last ping came before it.
        assert out.pop("ms") < 500 + 1000 * SCALE, mode
        assert out == {"reason": "ping timeout", **STATE_WAITING}, mode


@pytest.mark.parametrize("server", ["socketwire", "node"])
async def test_page_of_the_server_connects_with_io(browser: Any, server: str) -> None:
    """The classic recipe: a page loads ``/socket.io/socket.io.js`` from the
    server (socketwire's client from socketwire, the official one from Node) and
    connects with ``io()``: polling, then the upgrade."""
    async with started(make_peer(server)) as peer:
        page = await browser.new_page()
        try:
            await page.goto(peer.url + "/")
            got = await evaluate(
                page,
                """async () => {
                  const script = await fetch("/socket.io/socket.io.js");
                  const socket = io();
                  await new Promise((resolve) => socket.once("connect", resolve));
                  if (socket.io.engine.transport.name !== "websocket")
                    await new Promise((resolve) => socket.io.engine.once("upgrade", resolve));
                  const echo = await socket.timeout(10000).emitWithAck("echo", "hello");
                  socket.disconnect();
                  return [script.status, script.headers.get("content-type").split(";")[0],
                          socket.io.engine.transport.name, echo];
                }""",
            )
        finally:
            await page.close()
    assert got == [200, "application/javascript", "websocket", "hello"]


async def test_demo_chat_two_pages(browser: Any, tmp_path: Path) -> None:
    """``python -m socketwire.demo``'s page, twice: what one page says, both show.

    The screenshot goes to ``docs/demo-chat.png`` with ``SOCKETWIRE_SCREENSHOT=1``.
    """
    from socketwire.demo import create_server

    sio = create_server()
    port = await sio.listen(0, "127.0.0.1")
    url = f"http://127.0.0.1:{port}/"
    context = await browser.new_context()
    try:
        alice, bob = await context.new_page(), await context.new_page()
        for page in (alice, bob):
            page.set_default_timeout(WAIT * 1000)
            await page.goto(url)
            # The page reports the transport once connected (websocket after the upgrade).
            await page.wait_for_function(
                "document.getElementById('transport').textContent === 'websocket'"
            )
        await alice.wait_for_function("document.getElementById('online').textContent === '2'")
        await alice.fill("#name", "alice")
        await alice.fill("#m", "hello bob")
        await alice.click("button")
        await bob.fill("#name", "bob")
        await bob.fill("#m", "hi alice")
        await bob.click("button")
        for page in (alice, bob):
            await page.wait_for_function(
                "document.getElementById('log').textContent.includes('bob: hi alice')"
            )
            log = await page.text_content("#log")
            assert log is not None and "alice: hello bob" in log
        await alice.set_viewport_size({"width": 720, "height": 360})
        docs = os.environ.get("SOCKETWIRE_SCREENSHOT") == "1"
        shot = (ROOT / "docs" if docs else tmp_path) / "demo-chat.png"
        await alice.screenshot(path=str(shot))
        assert shot.stat().st_size > 1000
    finally:
        await context.close()
        await sio.close()


@pytest.mark.parametrize("root_path", ["", "/app"])
async def test_fastapi_page_on_the_built_in_server(browser: Any, root_path: str) -> None:
    """A FastAPI app on the built-in server (``listen(app=...)``), at the root and
    at a sub-path: its page loads the client from ``/socket.io/socket.io.js``,
    connects with ``io()`` and upgrades, calls a JSON route and a WebSocket route
    of the app, all on one port."""
    from fastapi.responses import HTMLResponse

    app = FastAPI()

    @app.get("/")
    async def index() -> HTMLResponse:
        return HTMLResponse('<!doctype html><script src="/socket.io/socket.io.js"></script>')

    @app.get("/api/greeting")
    async def greeting() -> dict[str, str]:
        return {"greeting": "hello"}

    @app.websocket("/ws")
    async def shout(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text((await websocket.receive_text()).upper())
        await websocket.close()

    sio = socketwire.Server()
    sio.on("echo", lambda socket, *args: args)
    port = await sio.listen(0, "127.0.0.1", app=app, root_path=root_path)
    page = await browser.new_page()
    try:
        await page.goto(f"http://127.0.0.1:{port}{root_path}/")
        got = await evaluate(
            page,
            """async (root) => {
              const socket = io();
              await new Promise((resolve) => socket.once("connect", resolve));
              if (socket.io.engine.transport.name !== "websocket")
                await new Promise((resolve) => socket.io.engine.once("upgrade", resolve));
              const echo = await socket.timeout(10000).emitWithAck("echo", "hello");
              socket.disconnect();
              const json = await (await fetch(root + "/api/greeting")).json();
              const ws = new WebSocket(`ws://${location.host}${root}/ws`);
              await new Promise((resolve) => ws.addEventListener("open", resolve));
              const reply = new Promise((resolve) =>
                ws.addEventListener("message", (e) => resolve(e.data)));
              ws.send("shout");
              return [socket.io.engine.transport.name, echo, json.greeting, await reply];
            }""",
            root_path,
        )
    finally:
        await page.close()
        await sio.close()
    assert got == ["websocket", "hello", "hello", "SHOUT"]
