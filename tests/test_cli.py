"""The command line (``python -m socketwire``), run in subprocesses.

Each test writes a small application module into a temporary directory, starts
``python -m socketwire chat:sio --port 0 ...`` there and reads the bound address
from its log (``serving chat:sio on http://127.0.0.1:PORT``): a client round-trips
over TCP, a Unix socket and TLS; proxy headers set ``socket.handshake["address"]``
only when asked; ``--reload`` serves edited code; a bad target is one line and
an exit status; SIGTERM lets an ack in flight arrive before the process exits,
within ``--timeout-graceful-shutdown``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import socketwire
from socketwire.client import Client
from tests.certificates import self_signed
from tests.waits import WAIT, scaled

SRC = Path(socketwire.__file__).resolve().parents[1]
ROOT = Path(__file__).resolve().parents[1]

APP = """
import asyncio
import socketwire

sio = socketwire.Server()
VERSION = 1


@sio.on("echo")
def echo(socket, *args):
    return args


@sio.on("whoami")
def whoami(socket):
    return {"address": socket.handshake.address, "secure": socket.handshake.secure}


@sio.on("version")
def version(socket):
    return VERSION


@sio.on("slow")
async def slow(socket):
    socket.emit("started")
    await asyncio.sleep(1.0)  # a slow handler, in flight when SIGTERM comes
    return "done"


@sio.on("stuck")
async def stuck(socket):
    await asyncio.Event().wait()  # never answers: the shutdown must not wait forever


def make():
    return sio
"""

SERVING = re.compile(r"serving \S+ on (\S+) ")


def env() -> dict[str, str]:
    paths = [str(SRC), str(ROOT), os.environ.get("PYTHONPATH", "")]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in paths if p))


class Cli:
    """``python -m socketwire`` in a subprocess; its log lines collected."""

    def __init__(self, directory: Path, *args: str) -> None:
        self.directory = directory
        self.args = args
        self.lines: list[str] = []
        self.changed = asyncio.Event()
        self.proc: asyncio.subprocess.Process | None = None
        self.reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "socketwire",
            *self.args,
            cwd=self.directory,
            env=env(),
            stderr=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
        )
        self.reader = asyncio.ensure_future(self.read())

    async def read(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        async for raw in self.proc.stderr:
            self.lines.append(raw.decode(errors="replace").rstrip())
            self.changed.set()
        self.changed.set()

    async def wait_line(self, pattern: re.Pattern[str], count: int = 1) -> re.Match[str]:
        """The ``count``-th log line matching ``pattern``."""
        async with asyncio.timeout(scaled(15)):
            while True:
                found = [m for m in map(pattern.search, self.lines) if m]
                if len(found) >= count:
                    return found[count - 1]
                if self.reader is not None and self.reader.done():
                    raise AssertionError("the server exited:\n" + "\n".join(self.lines))
                self.changed.clear()
                await self.changed.wait()

    async def url(self, count: int = 1) -> str:
        return (await self.wait_line(SERVING, count)).group(1)

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    async def wait(self, timeout: float) -> int:
        assert self.proc is not None
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        if self.reader is not None:
            await asyncio.wait_for(self.reader, WAIT)
        return code

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await self.wait(scaled(15))
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(BaseException):
                await self.reader


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "chat.py").write_text(APP)
    return tmp_path


@contextlib.asynccontextmanager
async def cli(directory: Path, *args: str) -> AsyncIterator[Cli]:
    proc = Cli(directory, *args)
    await proc.start()
    try:
        yield proc
    finally:
        await proc.stop()


async def ack(url: str, event: str, *args: Any, **options: Any) -> Any:
    client = Client(url, reconnection=False, **options)
    await asyncio.wait_for(client.connect(), WAIT)
    try:
        return await client.emit_with_ack(event, *args, timeout=WAIT)
    finally:
        await client.disconnect()


async def test_serves_a_server_and_stops_on_sigterm(app_dir: Path) -> None:
    async with cli(app_dir, "chat:sio", "--port", "0") as proc:
        url = await proc.url()
        assert url.startswith("http://127.0.0.1:")
        assert await ack(url, "echo", "hi", 3) == ("hi", 3)
        proc.signal(signal.SIGTERM)
        assert await proc.wait(scaled(10)) == 0


async def test_a_factory(app_dir: Path) -> None:
    async with cli(app_dir, "chat:make", "--factory", "--port", "0") as proc:
        assert await ack(await proc.url(), "echo", 1) == 1


@pytest.mark.parametrize(
    ("target", "status", "message"),
    [
        ("chat", 2, "must be MODULE:ATTR"),
        ("nochat:sio", 1, "cannot import module 'nochat'"),
        ("chat:nothing", 1, "has no attribute 'nothing'"),
        ("chat:make", 1, "not a socketwire.Server; it is callable: if it returns the Server, add --factory"),
        ("chat:VERSION", 1, "chat:VERSION is an int, not a socketwire.Server"),
    ],
)  # fmt: skip
def test_a_bad_target_is_one_line(app_dir: Path, target: str, status: int, message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "socketwire", target],
        cwd=app_dir,
        env=env(),
        capture_output=True,
        text=True,
        timeout=scaled(30),
        check=False,
    )
    assert done.returncode == status
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("socketwire: error: ")
    assert message in lines[0]


async def test_a_unix_socket(app_dir: Path) -> None:
    path = app_dir / "chat.sock"
    async with cli(app_dir, "chat:sio", "--uds", str(path)) as proc:
        assert await proc.url() == f"unix:{path}"
        reader, writer = await asyncio.open_unix_connection(str(path))
        try:
            writer.write(
                b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n"
                b"Connection: close\r\n\r\n"
            )
            answer = await asyncio.wait_for(reader.read(), WAIT)
        finally:
            writer.close()
        assert answer.startswith(b"HTTP/1.1 200 ")
        assert b'"sid"' in answer


async def test_tls(app_dir: Path) -> None:
    cert, key = self_signed(app_dir)
    args = ("chat:sio", "--port", "0", "--ssl-certfile", str(cert), "--ssl-keyfile", str(key))
    async with cli(app_dir, *args) as proc:
        url = await proc.url()
        assert url.startswith("https://127.0.0.1:")
        context = ssl.create_default_context(cafile=str(cert))
        seen = await ack(url, "whoami", ssl=context)
        assert seen == {"address": "127.0.0.1", "secure": True}


@pytest.mark.parametrize("trusted", [True, False])
async def test_proxy_headers(app_dir: Path, trusted: bool) -> None:
    args = ["chat:sio", "--port", "0"]
    if trusted:
        args += ["--proxy-headers", "--forwarded-allow-ips", "127.0.0.1"]
    async with cli(app_dir, *args) as proc:
        headers = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
        seen = await ack(await proc.url(), "whoami", headers=headers)
    if trusted:
        assert seen == {"address": "203.0.113.9", "secure": True}
    else:
        assert seen == {"address": "127.0.0.1", "secure": False}


async def test_reload_serves_the_edited_code(app_dir: Path) -> None:
    async with cli(
        app_dir, "chat:sio", "--port", "0", "--reload", "--reload-delay", "0.05"
    ) as proc:
        url = await proc.url()
        assert await ack(url, "version") == 1
        module = app_dir / "chat.py"
        module.write_text(APP.replace("VERSION = 1", "VERSION = 2"))
        await proc.wait_line(re.compile(r"chat\.py changed: restarting"))
        # The new child serves the socket the supervisor bound: the same address.
        assert await proc.url(2) == url
        assert await ack(url, "version") == 2
        proc.signal(signal.SIGTERM)
        assert await proc.wait(scaled(15)) == 0


async def test_sigterm_lets_an_ack_in_flight_arrive(app_dir: Path) -> None:
    limit = 3.0
    args = ("chat:sio", "--port", "0", "--timeout-graceful-shutdown", str(limit))
    async with cli(app_dir, *args) as proc:
        url = await proc.url()
        client = Client(url, reconnection=False, transports=["websocket"])
        started = asyncio.Event()
        disconnected: list[str] = []
        client.on("started", lambda: started.set())
        client.on("disconnect", lambda reason: disconnected.append(reason))
        await asyncio.wait_for(client.connect(), WAIT)
        try:
            stuck = asyncio.ensure_future(client.emit_with_ack("stuck", timeout=limit + WAIT))
            answer = asyncio.ensure_future(client.emit_with_ack("slow", timeout=WAIT))
            await asyncio.wait_for(started.wait(), WAIT)
            loop = asyncio.get_running_loop()
            begun = loop.time()
            proc.signal(signal.SIGTERM)
            # The slow handler's answer arrives before the process exits...
            assert await answer == "done"
            # ...and the process exits within its limit although "stuck" never answers.
            assert await proc.wait(limit + WAIT) == 0
            assert loop.time() - begun < limit + 1.5
            stuck.cancel()
            with contextlib.suppress(BaseException):
                await stuck
        finally:
            await client.disconnect()
