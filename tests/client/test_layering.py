"""Layering: the client imports the sans-I/O core and the errors, never the server side.

A fresh interpreter gets an empty ``socketwire`` package object (so that the package
``__init__``, which imports the server, does not run), then imports the client; and
every client module's source is read for imports that would only run later (in a
function, or for the type checker).
The client's modules import each other one way only (read from their source, every
import statement counted), and the modules both sides share import neither side.
"""

from __future__ import annotations

import ast
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


def _imports(path: Path) -> set[str]:
    """Every ``socketwire`` module a file imports, wherever the import statement is
    (module level, inside functions, under ``TYPE_CHECKING``)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return {name for name in found if name.startswith("socketwire")}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts).removesuffix(".__init__")


def test_client_modules_have_no_import_cycle() -> None:
    """socket.py and manager.py (and the rest) import each other one way only."""
    files = sorted((PACKAGE_DIR / "client").glob("*.py"))
    modules = {_module_name(p): p for p in files if p.name != "__init__.py"}
    graph = {name: _imports(path) & modules.keys() for name, path in modules.items()}
    assert "socketwire.client.socket" in graph["socketwire.client.manager"]
    assert "socketwire.client.manager" not in graph["socketwire.client.socket"]

    def visit(name: str, stack: list[str]) -> None:
        assert name not in stack, f"import cycle: {' -> '.join([*stack, name])}"
        for dep in graph[name]:
            visit(dep, [*stack, name])

    for name in graph:
        visit(name, [])


SHARED = ("handlers", "acks", "listeners", "emit_options")


def test_shared_modules_import_neither_side() -> None:
    """What both sides share lives below them: it imports no server, client or engine."""
    for name in SHARED:
        imported = _imports(PACKAGE_DIR / f"{name}.py")
        bad = [m for m in imported if m.startswith((*FORBIDDEN, "socketwire.client"))]
        assert bad == [], f"socketwire.{name} imports {bad}"
