"""The API reference covers the public API, and the public API has docstrings.

* every public module (no part of its dotted name starts with ``_``) is rendered
  by a ``::: module`` line of a page under ``docs/reference/``, once;
* every class and function named in a public module's ``__all__`` has a docstring;
* so does every public method and property of the classes that ``import
  socketwire`` gives (their own or inherited from the package's classes), since
  mkdocstrings leaves out a member without one.
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

import socketwire
from tests.test_exports import PUBLIC_MODULES

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "reference"


def rendered_modules() -> list[str]:
    found: list[str] = []
    for page in sorted(REFERENCE.glob("*.md")):
        found += re.findall(r"^::: (\S+)$", page.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return found


def test_every_public_module_is_in_the_reference() -> None:
    rendered = rendered_modules()
    assert len(rendered) == len(set(rendered)), "a module is rendered twice"
    assert sorted(set(rendered)) == sorted(PUBLIC_MODULES)


def _undocumented_names(name: str) -> list[str]:
    module = importlib.import_module(name)
    missing = []
    for item in module.__all__:
        obj = getattr(module, item)
        if (inspect.isclass(obj) or inspect.isfunction(obj)) and not obj.__doc__:
            missing.append(item)
    return missing


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_exported_names_have_docstrings(name: str) -> None:
    assert not _undocumented_names(name), f"{name}: no docstring"


def _public_members(cls: type) -> list[tuple[str, object]]:
    members: list[tuple[str, object]] = []
    for attr in dir(cls):
        if attr.startswith("_"):
            continue
        owner = next(base for base in cls.__mro__ if attr in vars(base))
        if not owner.__module__.startswith("socketwire"):
            continue
        value = vars(owner)[attr]
        func = value.fget if isinstance(value, property) else getattr(value, "__func__", value)
        if inspect.isfunction(func):
            members.append((f"{owner.__qualname__}.{attr}", func))
    return members


TOP_CLASSES = [n for n in socketwire.__all__ if inspect.isclass(getattr(socketwire, n))]


@pytest.mark.parametrize("name", TOP_CLASSES)
def test_public_methods_have_docstrings(name: str) -> None:
    members = _public_members(getattr(socketwire, name))
    missing = [qualname for qualname, func in members if not getattr(func, "__doc__", None)]
    assert not missing, f"no docstring: {missing}"


def test_the_member_discovery_finds_methods() -> None:
    names = [q for q, _ in _public_members(socketwire.Server)]
    assert "Server.emit" in names and "Server.volatile" in names and "Server.fetch_sockets" in names
