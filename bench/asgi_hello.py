"""Requests per second of a "hello" ASGI app: the built-in server beside uvicorn.

``python bench/asgi_hello.py [--duration 10] [--connections 50] [--threads 1]
[--app plain|fastapi]`` starts, one after the other, each server in a subprocess
on a free port with the same application (``plain``: an ASGI 3 app answering
``GET /`` with ``Hello, world!``; ``fastapi``: a FastAPI app whose ``GET /``
returns ``{"hello": "world"}``):

* ``socketwire``: ``sio.run(port, app=hello)``, the ASGI app beside a Socket.IO
  server on the built-in server (uvloop);
* ``uvicorn``: ``uvicorn --loop uvloop --http httptools --no-access-log``;

and loads it with ``wrk`` (one warm-up run, then the measured one), printing
one Markdown table row per server. Not a test: ``bench/RESULTS.md`` keeps the
figures.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

BODY = b"Hello, world!"


async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The application under test (no lifespan: both servers skip it)."""
    if scope["type"] != "http":
        raise RuntimeError("http only")
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")],
        }
    )
    await send({"type": "http.response.body", "body": BODY})


def make_fastapi() -> Any:
    """The FastAPI variant of the application."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/")
    async def root() -> dict[str, str]:
        return {"hello": "world"}

    return app


def serve_socketwire(port: int, app_name: str) -> None:
    import socketwire

    logging_off()
    app = make_fastapi() if app_name == "fastapi" else hello
    socketwire.Server().run(port, "127.0.0.1", app=app)


def logging_off() -> None:
    import logging

    logging.disable(logging.INFO)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with status {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("the server did not start")


def command(name: str, port: int, app_name: str) -> list[str]:
    if name == "socketwire":
        return [sys.executable, __file__, "--serve-socketwire", str(port), "--app", app_name]
    target = "bench.asgi_hello:make_fastapi" if app_name == "fastapi" else "bench.asgi_hello:hello"
    factory = ["--factory"] if app_name == "fastapi" else []
    return [
        sys.executable, "-m", "uvicorn", target, *factory,
        "--host", "127.0.0.1", "--port", str(port),
        "--loop", "uvloop", "--http", "httptools", "--lifespan", "off",
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip


def wrk(port: int, duration: int, connections: int, threads: int) -> float:
    out = subprocess.run(
        [
            "wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s",
            f"http://127.0.0.1:{port}/",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout  # fmt: skip
    if "Non-2xx" in out or "Socket errors" in out:
        print(out, file=sys.stderr)
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert match is not None, out
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--app", choices=("plain", "fastapi"), default="plain")
    parser.add_argument("--serve-socketwire", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_socketwire is not None:
        serve_socketwire(args.serve_socketwire, args.app)
        return
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]))
    print("| server | requests/s |")
    print("|---|---:|")
    for name in ("socketwire", "uvicorn"):
        port = free_port()
        proc = subprocess.Popen(command(name, port, args.app), cwd=ROOT, env=env)
        try:
            wait_listening(port, proc)
            wrk(port, 2, args.connections, args.threads)  # warm-up
            rate = wrk(port, args.duration, args.connections, args.threads)
            print(f"| {name} | {rate:,.0f} |", flush=True)
        finally:
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    main()
