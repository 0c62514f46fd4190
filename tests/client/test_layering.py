"""Layering: the client imports the sans-I/O core and the errors, never the server side.

A fresh interpreter gets an empty ``socketwire`` package object (so that the package
``__init__``, which imports the server, does not run), then imports the client; and
every client module's source is read for imports that would only run later (in a
function, or for the type checker).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import socketwire
from tests.source_tree import imports, modules, owner

PACKAGE_DIR = Path(socketwire.__file__).resolve().parent

PROBE = """
import importlib, json, sys, types
stub = types.ModuleType("socketwire")
stub.__path__ = [sys.argv[1]]
sys.modules["socketwire"] = stub
importlib.import_module("socketwire.client")
print(json.dumps(sorted(m for m in sys.modules if m.startswith("socketwire"))))
"""

FORBIDDEN = ("socketwire.server", "socketwire.engine", "socketwire.serve", "socketwire.adapters")


def test_client_does_not_import_the_server() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(PACKAGE_DIR)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    loaded = json.loads(proc.stdout)
    assert "socketwire.client.socket" in loaded  # the probe really imported the client
    assert "socketwire.core.socketio.packet" in loaded
    bad = [m for m in loaded if m.startswith(FORBIDDEN)]
    assert bad == [], f"the client imports {bad}"


CLIENT_MODULES = sorted(name for name in modules() if name.startswith("socketwire.client"))


def test_client_modules_are_found() -> None:
    assert "socketwire.client.manager" in CLIENT_MODULES
    assert "socketwire.client.transports" in CLIENT_MODULES


@pytest.mark.parametrize("name", CLIENT_MODULES)
def test_client_source_never_names_the_server_side(name: str) -> None:
    """Read with ast: imports in functions and under TYPE_CHECKING count too."""
    bad = [
        f"line {imp.line}: {target}"
        for imp in imports(modules()[name])
        if (target := owner(imp.target)) is not None and target.startswith(FORBIDDEN)
    ]
    assert bad == [], f"{name} imports {bad}"
