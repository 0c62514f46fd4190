"""Smoke test of the package as users get it, run by ``scripts/wheel-smoke``.

It runs inside a virtualenv outside the source tree, where only the built wheel
(and the runtime dependencies of ``requirements/runtime.txt``) are installed,
with ``python -I`` so that nothing from the working directory or the
environment's ``PYTHON*`` variables can stand in for the installed package.
Checks: the import comes from site-packages with the version of pyproject.toml,
the compiled accelerator or its fallback loads, a server starts, the
package's own client makes an acknowledged round trip over WebSocket and over
polling, and ``GET /socket.io/socket.io.js`` (and the minified files, the ES
module, its source maps and type declarations) answers with the browser client
packaged in the wheel. Given a Python with Playwright and ``browser.py``, a page
served by the installed package loads that script in Chromium, connects with
``io()`` and round-trips an event (skipped, with the reason, when Chromium or
Playwright is missing).

Usage: ``python -I smoke.py EXPECTED_VERSION [BROWSER_PYTHON BROWSER_SCRIPT]``;
exits non-zero on any failure.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import sys
import sysconfig
from pathlib import Path

import socketwire
import socketwire.client
from socketwire.engine.ports import HttpRequest

# The files the wheel carries in socketwire/static and their types.
CLIENT_FILES = {
    "socket.io.js": "application/javascript; charset=utf-8",
    "socket.io.min.js": "application/javascript; charset=utf-8",
    "socket.io.min.js.map": "application/json; charset=utf-8",
    "socket.io.esm.min.js": "application/javascript; charset=utf-8",
    "socket.io.esm.min.js.map": "application/json; charset=utf-8",
    "socket.io.msgpack.min.js": "application/javascript; charset=utf-8",
    "socket.io.msgpack.min.js.map": "application/json; charset=utf-8",
    "socket.io.d.ts": "application/typescript; charset=utf-8",
}

WAIT = 10.0

# The page of the browser step: the recipe of the README, io() at the page's origin.
PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>smoke</title></head><body>
<script src="/socket.io/socket.io.js"></script>
<script>
const socket = io();
socket.on("connect", async () => {
  const transport = socket.io.engine.transport.name;
  const echo = await socket.timeout(10000).emitWithAck("echo", { text: "\xc3\xa9" });
  window.smoke = { ok: echo.text === "\xc3\xa9", transport, echo };
  socket.disconnect();
});
socket.on("connect_error", (err) => (window.smoke = { ok: false, error: err.message }));
</script></body></html>
"""


class Captured(logging.Handler):
    """Keeps every log record of the server, to check what it says."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def check_installation(expected_version: str) -> None:
    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    where = Path(socketwire.__file__).resolve()
    assert site in where.parents, f"socketwire imported from {where}, not from {site}"
    assert socketwire.__version__ == expected_version, (
        f"socketwire.__version__ is {socketwire.__version__!r}, pyproject.toml says "
        f"{expected_version!r}"
    )
    package = where.parent
    for name in ("py.typed", "_speedups.pyi"):
        assert (package / name).is_file(), f"{name} is missing from the installed package"
    from socketwire.core.websocket import frames

    # The wheel built by the set-up carries the compiled accelerator (a C
    # compiler is there); the masking must agree with the pure-Python XOR.
    assert frames.SPEEDUPS, "socketwire._speedups is missing from the wheel"
    mask = b"\x01\x02\x03\x04"
    assert frames.apply_mask(frames.apply_mask(b"hello world", mask), mask) == b"hello world"


async def round_trip(url: str, transport: str) -> None:
    client = await asyncio.wait_for(
        socketwire.client.connect(url, transports=[transport], reconnection=False), WAIT
    )
    try:
        assert client.transport == transport, client.transport
        answer = await client.emit_with_ack("echo", {"n": 1}, b"\x00\xff", timeout=WAIT)
        assert answer == ({"n": 1}, b"\x00\xff"), answer
    finally:
        await client.disconnect()


async def http_get(port: int, target: str, extra: str = "") -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{extra}\r\n".encode()
        )
        raw = await asyncio.wait_for(reader.read(), WAIT)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines)}
    return int(status_line.split(" ", 2)[1]), headers, body


def page(req: HttpRequest) -> None:
    if req.path == "/" and req.method == "GET":
        req.respond(200, [("Content-Type", "text/html; charset=utf-8")], PAGE)
    else:
        req.respond(404, [("Content-Type", "text/plain")], b"Not Found")


async def browser_step(url: str, driver: list[str]) -> None:
    """Chromium, driven by ``driver`` (another Python, with Playwright), opens the page."""
    proc = await asyncio.create_subprocess_exec(*driver, url + "/", stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(proc.communicate(), 6 * WAIT)
    said = out.decode().strip()
    if proc.returncode == 77:
        print(f"smoke: browser step {said}")
        return
    assert proc.returncode == 0, f"browser step failed: {said}"
    result = json.loads(said)["page"]
    assert result["echo"] == {"text": "\u00e9"}, result
    print(f"smoke: Chromium connected with io() ({result['transport']}) and round-tripped")


async def main(expected_version: str, driver: list[str]) -> None:
    check_installation(expected_version)
    captured = Captured()
    logging.getLogger("socketwire").addHandler(captured)
    logging.getLogger("socketwire").setLevel(logging.INFO)

    sio = socketwire.Server(fallback=page)

    @sio.on("echo")
    def echo(socket: socketwire.Socket, *args: object) -> tuple[object, ...]:
        return args

    port = await sio.listen(0, "127.0.0.1")
    try:
        url = f"http://127.0.0.1:{port}"
        await round_trip(url, "websocket")
        await round_trip(url, "polling")

        # The browser client is package data, served from the installed package.
        package = Path(socketwire.__file__).resolve().parent
        for name in CLIENT_FILES:
            status, headers, body = await http_get(port, f"/socket.io/{name}")
            assert status == 200, (name, status)
            assert headers["content-type"] == CLIENT_FILES[name], (name, headers)
            assert body == (package / "static" / name).read_bytes(), name
        status, headers, body = await http_get(
            port, "/socket.io/socket.io.min.js", "Accept-Encoding: gzip\r\n"
        )
        assert status == 200 and headers["content-encoding"] == "gzip", headers
        assert gzip.decompress(body) == (package / "static" / "socket.io.min.js").read_bytes()
        # A file the package does not have: 404, said once in one log line.
        for _ in range(2):
            status, _, body = await http_get(port, "/socket.io/socket.io.js.map")
            assert status == 404, status
        said = [r.getMessage() for r in captured.records if "socket.io.js.map" in r.getMessage()]
        assert len(said) == 1 and "\n" not in said[0], said
        if driver:
            await browser_step(url, driver)
    finally:
        await sio.close()
    print(f"smoke: socketwire {socketwire.__version__} from {Path(socketwire.__file__).parent}: ok")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2:]))
