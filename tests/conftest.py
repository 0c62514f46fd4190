"""Shared fixtures: a socketwire server on 127.0.0.1 port 0 and the official npm peers."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import socketwire

ROOT = Path(__file__).resolve().parent.parent
JS_DIR = ROOT / "tests" / "js"
NODE_MODULES = JS_DIR / "node_modules"
# The servers under test serve the package's own browser client unless a test
# says otherwise ($SOCKETWIRE_CLIENT_DIST names another bundle).
os.environ.pop("SOCKETWIRE_CLIENT_DIST", None)


class NodeError(AssertionError):
    pass


async def run_node(script: str | Path, *args: str, timeout: float = 30.0) -> list[Any]:
    """Run a Node.js script with the pinned npm peers on its module path.

    The script prints one JSON value per line on stdout; they are returned in
    order. A non-zero exit or a timeout fails with the script's stderr.
    """
    env = dict(os.environ, NODE_PATH=str(NODE_MODULES))
    proc = await asyncio.create_subprocess_exec(
        "node",
        str(script),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        raise NodeError(
            f"node {script} timed out after {timeout}s\nstdout:\n{out.decode()}\nstderr:\n{err.decode()}"
        ) from None
    if proc.returncode != 0:
        raise NodeError(
            f"node {script} exited {proc.returncode}\nstdout:\n{out.decode()}\nstderr:\n{err.decode()}"
        )
    return [json.loads(line) for line in out.decode().splitlines() if line.strip()]


EXAMPLES = ROOT / "examples"


def load_example(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` once (examples/ is not a package)."""
    module_name = f"socketwire_example_{name}"
    module = sys.modules.get(module_name)
    if module is None:
        spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return module


def create_example_server(name: str, **options: Any) -> socketwire.Server:
    """The server that ``examples/<name>.py`` builds with ``create_server``."""
    sio = load_example(name).create_server(**options)
    assert isinstance(sio, socketwire.Server)
    return sio


ServerStarter = Callable[[socketwire.Server], Awaitable[str]]


@pytest.fixture
async def start_server() -> AsyncIterator[ServerStarter]:
    """``url = await start_server(sio)``: listen on 127.0.0.1:0; closed after the test."""
    started: list[socketwire.Server] = []

    async def start(sio: socketwire.Server) -> str:
        port = await sio.listen(0, "127.0.0.1")
        started.append(sio)
        return f"http://127.0.0.1:{port}"

    yield start
    for sio in started:
        await sio.close()
