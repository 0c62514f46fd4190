"""Layering: the client imports the sans-I/O core and the errors, never the server side.

A fresh interpreter gets an empty ``socketwire`` package object (so that the package
``__init__``, which imports the server, does not run), then imports the client.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import socketwire

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
