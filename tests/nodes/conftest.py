"""Fixtures of the nodes tests: a real redis-server, a real nginx (Debian's)
with the committed ``deploy/nginx/socketwire.conf``, and socketwire nodes in
subprocesses (``python -m socketwire app:sio``).

nginx is given its listening socket already bound (the ``NGINX`` variable of
its binary upgrade names inherited descriptors), so it accepts the moment it
starts: nothing waits for it to come up.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.cluster.conftest import RedisServer
from tests.test_cli import Cli

ROOT = Path(__file__).resolve().parents[2]
NGINX_CONF = ROOT / "deploy" / "nginx" / "socketwire.conf"

APP = """
import os
import socketwire
from socketwire.adapters.redis import create_adapter

sio = socketwire.Server(adapter=create_adapter({url!r}, key={key!r}, requests_timeout=5))


def me():
    routing = sio.session_routing
    return dict(routing.stats() if routing is not None else {{}}, pid=os.getpid())


@sio.on("echo")
def echo(socket, *args):
    return list(args)


@sio.on("whoami")
def whoami(socket):
    return dict(me(), sid=socket.id, address=socket.handshake.address)


@sio.on("stats")
async def stats(socket):
    others = await sio.server_side_emit_with_ack("stats", timeout=5)
    return [me(), *others]


@sio.on_server_side_emit("stats")
def on_stats():
    return me()


@sio.on("join")
def join(socket, room):
    socket.join(room)
    return True


@sio.on("shout")
def shout(socket, room, *args):
    sio.to(room).emit("news", *args)
    return True


@sio.on("count")
async def count(socket, room=None):
    found = await (sio.in_(room) if room else sio.sockets).fetch_sockets()
    return sorted(s.id for s in found)
"""


def render_nginx(listen: int, nodes: list[int]) -> str:
    """The committed config with this test's nginx port and nodes."""
    text = NGINX_CONF.read_text()
    servers = "".join(f"    server 127.0.0.1:{port};\n" for port in nodes)
    text, n = re.subn(r"(?m)^\s*server \d+\.\d+\.\d+\.\d+:\d+;\n", "", text)
    assert n == 2, "the upstream of deploy/nginx/socketwire.conf changed"
    text = text.replace("upstream socketwire_nodes {\n", "upstream socketwire_nodes {\n" + servers)
    assert "    listen 80;\n" in text
    return text.replace("    listen 80;\n", f"    listen 127.0.0.1:{listen};\n")


class Nginx:
    """``nginx -c CONF -p PREFIX -g 'daemon off;'`` in front of ``nodes``."""

    def __init__(self, nodes: list[int]) -> None:
        self.nodes = nodes
        self.prefix = Path(tempfile.mkdtemp(prefix="socketwire-nginx-"))
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port: int = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        exe = shutil.which("nginx") or "/usr/sbin/nginx"
        if not os.path.exists(exe):
            raise RuntimeError("nginx is not installed (scripts/bootstrap.sh installs it)")
        prefix = self.prefix
        (prefix / "socketwire.conf").write_text(render_nginx(self.port, self.nodes))
        temp = " ".join(
            f"{kind}_temp_path {prefix / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (prefix / "nginx.conf").write_text(
            f"worker_processes 1;\n"  # one worker: one round robin, strictly alternating
            f"pid {prefix / 'nginx.pid'};\n"
            f"error_log stderr notice;\n"
            f"events {{ worker_connections 1024; }}\n"
            f"http {{\n"
            f"    access_log {prefix / 'access.log'};\n"
            f"    {temp}\n"
            f"    include {prefix / 'socketwire.conf'};\n"
            f"}}\n"
        )
        os.chmod(prefix, 0o755)
        fd = self.sock.fileno()
        self.proc = subprocess.Popen(
            [exe, "-e", "stderr", "-c", str(prefix / "nginx.conf"), "-p", str(prefix),
             "-g", "daemon off;"],
            pass_fds=(fd,),
            env=dict(os.environ, NGINX=f"{fd};"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip

    def access_log(self) -> str:
        path = self.prefix / "access.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stderr is not None:
                proc.stderr.close()
        self.sock.close()
        shutil.rmtree(self.prefix, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def key() -> str:
    """The Redis adapter's key of this test only."""
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def app_dir(tmp_path: Path, redis_server: RedisServer, key: str) -> Path:
    (tmp_path / "app.py").write_text(APP.format(url=redis_server.url, key=key))
    return tmp_path


class Cluster:
    """Two nodes on one Redis behind one nginx."""

    def __init__(self, nodes: list[Cli], nginx: Nginx) -> None:
        self.nodes = nodes
        self.nginx = nginx
        self.url = nginx.url
        self.stopped: list[Cli] = []  # nodes replaced by restart, stopped at the end too

    @property
    def ports(self) -> list[int]:
        """The nodes' ports, in the order of ``nodes`` (nginx's upstream)."""
        return self.nginx.nodes

    async def restart(self, index: int) -> Cli:
        """Start node ``index`` again, on its port (the old process has exited)."""
        old = self.nodes[index]
        args = list(old.args)
        args[args.index("--port") + 1] = str(self.ports[index])
        node = Cli(old.directory, *args)
        self.stopped.append(old)
        self.nodes[index] = node
        await node.start()
        await node.url()
        return node

    def node_with_pid(self, pid: int) -> Cli:
        return next(n for n in self.nodes if n.proc is not None and n.proc.pid == pid)

    def log(self) -> str:
        return "\n".join(line for node in self.nodes for line in node.lines)


@contextlib.asynccontextmanager
async def cluster(
    app_dir: Path, redis_url: str, key: str, *, routing: bool = True
) -> AsyncIterator[Cluster]:
    """Two nodes (``--session-routing`` on Redis unless ``routing`` is False)
    behind a round-robin nginx."""
    flags = ["--session-routing", redis_url, "--routing-key", key] if routing else []
    # nginx is their proxy: the client's address comes from its X-Forwarded-For.
    flags += ["--proxy-headers", "--forwarded-allow-ips", "127.0.0.1"]
    nodes = [
        Cli(app_dir, "app:sio", "--port", "0", "--log-level", "info", *flags) for _ in range(2)
    ]
    nginx: Nginx | None = None
    running: Cluster | None = None
    try:
        for node in nodes:
            await node.start()
        ports = [int((await node.url()).rsplit(":", 1)[1]) for node in nodes]
        nginx = Nginx(ports)
        nginx.start()
        running = Cluster(nodes, nginx)
        yield running
    finally:
        await asyncio.gather(*(node.stop() for node in nodes), return_exceptions=True)
        if running is not None:
            await asyncio.gather(*(node.stop() for node in running.stopped), return_exceptions=True)
        if nginx is not None:
            nginx.stop()
