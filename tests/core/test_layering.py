"""Layering: the sans-I/O core (socketwire.core) never imports asyncio.

Each check runs in a fresh interpreter. Importing ``socketwire.core.x`` normally runs
``socketwire/__init__.py``, which pulls in the asyncio server; so the subprocess puts
an empty module object for ``socketwire`` (with ``__path__`` set to the package
directory) in ``sys.modules`` first, then imports the core module by its dotted name.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import socketwire

PACKAGE_DIR = Path(socketwire.__file__).resolve().parent
CORE_DIR = PACKAGE_DIR / "core"

CORE_MODULES = sorted(
    ".".join(("socketwire", *p.relative_to(PACKAGE_DIR).with_suffix("").parts)).removesuffix(
        ".__init__"
    )
    for p in CORE_DIR.rglob("*.py")
)

# Prints a JSON report of what got imported.
PROBE = """
import importlib, json, sys, types
pkg_dir, name = sys.argv[1], sys.argv[2]
stub = types.ModuleType("socketwire")
stub.__path__ = [pkg_dir]
sys.modules["socketwire"] = stub
importlib.import_module("socketwire.errors")
mod = importlib.import_module(name)
print(json.dumps({
    "asyncio": sorted(m for m in sys.modules if m == "asyncio" or m.startswith("asyncio.")),
    "stub_kept": sys.modules["socketwire"] is stub and not hasattr(stub, "Server"),
    "file": getattr(mod, "__file__", None),
}))
"""


def run_probe(name: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(PACKAGE_DIR), name],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout)
    return result


def test_discovery_finds_the_core_modules() -> None:
    # guard against a discovery bug that would make the parametrized test vacuous
    for expected in (
        "socketwire.core",
        "socketwire.core.timers",
        "socketwire.core.engineio.packet",
        "socketwire.core.engineio.session",
        "socketwire.core.websocket.frames",
        "socketwire.core.websocket.protocol",
    ):
        assert expected in CORE_MODULES
    assert len(CORE_MODULES) == len(list(CORE_DIR.rglob("*.py")))


@pytest.mark.parametrize("name", CORE_MODULES)
def test_core_module_does_not_import_asyncio(name: str) -> None:
    result = run_probe(name)
    # the package __init__ (which imports the asyncio server) did not run
    assert result["stub_kept"] is True
    # the module really came from this source tree
    assert isinstance(result["file"], str)
    assert Path(result["file"]).resolve().is_relative_to(CORE_DIR)
    assert result["asyncio"] == [], f"{name} imports {result['asyncio']}"


def test_probe_detects_asyncio() -> None:
    """The probe would notice: importing asyncio shows up in the report."""
    result = run_probe("asyncio")
    assert "asyncio" in result["asyncio"]
    assert result["stub_kept"] is True


def test_plain_import_runs_the_package_init() -> None:
    """Why the stub is needed: a plain import of a core module runs the package
    ``__init__``, which brings asyncio in."""
    code = (
        "import sys, socketwire.core.timers; "
        "print(hasattr(sys.modules['socketwire'], 'Server'), 'asyncio' in sys.modules)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "True"]
