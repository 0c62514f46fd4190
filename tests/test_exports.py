"""The public names: what ``import socketwire`` gives, and every public module's ``__all__``.

* ``socketwire.__all__`` is exactly the import statement of the README's "Public
  names" section, and that statement runs;
* every public module of the package (no part of its dotted name starts with
  ``_``) defines ``__all__``, a list of distinct strings naming attributes the
  module really has.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from pathlib import Path
from types import ModuleType

import pytest

import socketwire

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def public_module_names() -> list[str]:
    names = ["socketwire"]
    for info in pkgutil.walk_packages(socketwire.__path__, "socketwire."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


PUBLIC_MODULES = public_module_names()


def readme_import() -> ast.ImportFrom:
    """The ``from socketwire import (...)`` statement of the README's "Public names"."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Public names\n", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    (statement,) = ast.parse(code).body
    assert isinstance(statement, ast.ImportFrom) and statement.module == "socketwire"
    return statement


def test_discovery_finds_the_modules() -> None:
    # guard against a discovery bug that would make the parametrized test vacuous
    for expected in ("socketwire", "socketwire.core.notepack", "socketwire.client.engine"):
        assert expected in PUBLIC_MODULES
    assert not any(part.startswith("_") for name in PUBLIC_MODULES for part in name.split("."))


def test_package_exports_are_what_the_readme_documents() -> None:
    documented = [alias.name for alias in readme_import().names]
    assert len(documented) == len(set(documented))
    assert sorted(documented) == sorted(socketwire.__all__)


def test_the_readme_import_runs() -> None:
    namespace: dict[str, object] = {}
    exec(
        compile(ast.Module(body=[readme_import()], type_ignores=[]), "README.md", "exec"), namespace
    )
    for name in socketwire.__all__:
        assert namespace[name] is getattr(socketwire, name)


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_public_module_declares_its_names(name: str) -> None:
    module: ModuleType = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert isinstance(exported, list), f"{name} has no __all__ list"
    assert all(type(item) is str for item in exported)
    assert len(exported) == len(set(exported)), f"{name}.__all__ repeats a name"
    missing = [item for item in exported if not hasattr(module, item)]
    assert not missing, f"{name}.__all__ names what it lacks: {missing}"
