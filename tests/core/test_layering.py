"""Layering: dependencies point down, and the sans-I/O core never imports asyncio.

Every module of the package belongs to a layer: the sans-I/O core (0), the
asyncio runtimes of Engine.IO and of the adapters (1), the Socket.IO server and
the client (2), the front doors (3). Its imports, read with ``ast`` (those in
functions and under ``if TYPE_CHECKING`` too), reach its own layer or lower.

The asyncio checks run in a fresh interpreter. Importing ``socketwire.core.x`` normally runs
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
from tests.source_tree import Module, imports, modules, owner, parse

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


# -- every module: imports point down (read with ast) ------------------------------------

# Layers, lowest first: a module imports its own layer or lower. The longest
# matching prefix decides; ``socketwire`` itself is the package's public face.
LAYERS: dict[str, int] = {
    "socketwire.core": 0,
    "socketwire.errors": 0,
    "socketwire.ids": 0,
    "socketwire.durations": 0,
    "socketwire.rooms": 0,
    "socketwire._speedups": 0,
    # What the server's Socket and the client's Client share.
    "socketwire.handlers": 1,
    "socketwire.acks": 1,
    "socketwire.listeners": 1,
    "socketwire.emit_options": 1,
    "socketwire.signatures": 1,
    "socketwire.engine": 1,
    # The compiled write loop of engine.fanout.
    "socketwire._fanout": 1,
    "socketwire.adapters": 1,
    # Publishes to a cluster's adapters, as an adapter does; never a server.
    "socketwire.emitter": 1,
    "socketwire.server": 2,
    "socketwire.client": 2,
    "socketwire.serve": 3,
    "socketwire.asgi": 3,
    "socketwire.http": 3,
    "socketwire.demo": 3,
    "socketwire.__main__": 3,
    "socketwire.cli": 3,
    "socketwire.reload": 3,
    "socketwire.workers": 3,
    "socketwire.nodes": 3,
    "socketwire": 3,
}

# Packages of one layer that never import each other.
INDEPENDENT = (
    ("socketwire.engine", "socketwire.adapters"),
    ("socketwire.engine", "socketwire.emitter"),
    ("socketwire.server", "socketwire.client"),
)

# ``listen``/``run``/``asgi_app`` start a front door of layer 3: they import it
# when called, so that importing the lower layer never brings the front door in.
FRONT_DOOR_ENTRY_POINTS = frozenset(
    {
        ("socketwire.engine.server", "socketwire.serve"),
        ("socketwire.server.server", "socketwire.serve"),
        ("socketwire.server.server", "socketwire.asgi"),
    }
)


def layer_of(name: str) -> int | None:
    best: str | None = None
    for prefix in LAYERS:
        if (name == prefix or name.startswith(prefix + ".")) and (
            best is None or len(prefix) > len(best)
        ):
            best = prefix
    return None if best is None else LAYERS[best]


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def layering_violations(module: Module) -> list[str]:
    """The imports of ``module`` that point up, or across independent packages."""
    found: list[str] = []
    mine = layer_of(module.name)
    assert mine is not None, f"{module.name} has no layer"
    for imp in imports(module):
        target = owner(imp.target)
        if target is None or target == module.name:
            continue
        theirs = layer_of(target)
        where = f"line {imp.line}: {target}" + (" (TYPE_CHECKING)" if imp.type_only else "")
        if theirs is None:
            found.append(f"{where}: no layer")
        elif theirs > mine:
            # A type-only import never runs: the front door stays out of the lower layer.
            if (imp.lazy or imp.type_only) and any(
                module.name == entry and _within(target, door)
                for entry, door in FRONT_DOOR_ENTRY_POINTS
            ):
                continue
            found.append(f"{where}: layer {theirs} above {mine}")
        for a, b in INDEPENDENT:
            for this, other in ((a, b), (b, a)):
                if _within(module.name, this) and _within(target, other):
                    found.append(f"{where}: {this} never imports {other}")
    return found


ALL_MODULES = sorted(modules())


def test_every_module_has_a_layer() -> None:
    assert [name for name in ALL_MODULES if layer_of(name) is None] == []
    assert "socketwire.adapters.redis_bus" in ALL_MODULES  # discovery reads subpackages


@pytest.mark.parametrize("name", ALL_MODULES)
def test_imports_point_down(name: str) -> None:
    assert layering_violations(modules()[name]) == []


def test_the_layer_check_notices_an_upward_import() -> None:
    module = parse(
        "socketwire.adapters.example",
        "from typing import TYPE_CHECKING\n"
        "from socketwire.core.engineio.message import OutgoingMessage\n"
        "if TYPE_CHECKING:\n"
        "    from socketwire.server.acks import BroadcastAck\n"
        "def f():\n"
        "    from socketwire.engine.socket import EngineSocket\n"
        "    import socketwire.serve\n",
    )
    assert layering_violations(module) == [
        "line 4: socketwire.server.acks (TYPE_CHECKING): layer 2 above 1",
        "line 6: socketwire.engine.socket: socketwire.adapters never imports socketwire.engine",
        "line 7: socketwire.serve: layer 3 above 1",
    ]


def test_front_doors_are_imported_lazily_only() -> None:
    module = parse("socketwire.engine.server", "from socketwire.serve import listen_engine\n")
    assert layering_violations(module) == ["line 1: socketwire.serve: layer 3 above 1"]
