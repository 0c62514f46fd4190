"""Socket.IO clients in Chromium: {socketwire's client, the official client} x
{socketwire's server, Node's socket.io 4.8.4}; and the demo chat, two pages.

Chromium is Debian's (``/usr/bin/chromium``, installed by ``scripts/bootstrap.sh
--with-npm``), driven by Playwright; the tests are skipped without it. The page
is a real document of the peer's origin (its ``/socket.io/socket.io.js``, which
both servers answer), so that the client connects to the page's origin as in
production; Chromium refuses connections to 127.0.0.1 from a page that
Playwright's routing made up. The client under test is added to that page from
its file.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.client.peers import NODE_MODULES, NodePeer, SocketwirePeer
from tests.waits import WAIT

playwright_api = pytest.importorskip("playwright.async_api")

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed")

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


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """A headless Chromium browser (one per test: each test has its own event loop)."""
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture(params=["socketwire", "node"])
async def peer(request: pytest.FixtureRequest) -> AsyncIterator[NodePeer | SocketwirePeer]:
    server: NodePeer | SocketwirePeer = NodePeer() if request.param == "node" else SocketwirePeer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.mark.parametrize("client", list(CLIENTS))
async def test_client_in_chromium(peer: NodePeer | SocketwirePeer, client: str) -> None:
    async with chromium() as browser:
        page = await browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(peer.url + "/socket.io/socket.io.js")
        await page.add_script_tag(content=CLIENTS[client].read_text())
        await page.add_script_tag(content=(HERE / "scenario.js").read_text())
        results = {}
        for mode in ("polling", "websocket", "upgrade"):
            run = page.evaluate("(mode) => window.runScenario(mode)", mode)
            results[mode] = await asyncio.wait_for(run, 3 * WAIT)
        assert errors == []
    for mode, out in results.items():
        assert out["connected"] and out["sid_matches"], (mode, out)
        assert out["transport"] == ("polling" if mode == "polling" else "websocket"), mode
        assert out["echo"] == {"text": "é", "list": [1, None, True]}
        assert out["binary"] == {"buf": [1, 2, 255], "view": [2, 1], "blob": [9, 8]}, mode
        assert out["server_ack"] == [42]
        # One manager for "/" and "/chat" the first time; later, "/chat" is already
        # a namespace of the cached manager, so io("/chat") makes a new one.
        assert out["chat"] == "/chat" and out["shared_manager"] is (mode == "polling")
        assert out["timeout"] == "operation has timed out"
        assert out["server_disconnect"] == "io server disconnect"


async def test_demo_chat_two_pages(tmp_path: Path) -> None:
    """``python -m socketwire.demo``'s page, twice: what one page says, both show.

    The screenshot goes to ``docs/demo-chat.png`` with ``SOCKETWIRE_SCREENSHOT=1``.
    """
    from socketwire.demo import create_server

    sio = create_server()
    port = await sio.listen(0, "127.0.0.1")
    url = f"http://127.0.0.1:{port}/"
    try:
        async with chromium() as browser:
            alice, bob = await browser.new_page(), await browser.new_page()
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
        await sio.close()
