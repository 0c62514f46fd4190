"""No module of the package uses another module's underscored names.

A leading underscore marks a name as its module's (or its class's) own business.
What another module needs goes through a public name: a port method, a property.
The check reads every module with ``ast``:

* ``obj._name`` is allowed when the module itself binds ``_name`` (a function, a
  class, a ``self._name`` attribute, a ``__slots__`` entry...), or when one of
  the module's classes inherits it from a class of the package (a subclass may
  use its base class's protected members); ``self._name`` and ``cls._name`` are
  always the class's own;
* ``from module import _name`` of another module of the package is refused.

Dunder and enum-style ``_sunder_`` names are not private names. The check goes
by name, not by type: a module that binds a name itself cannot misuse another
module's name of the same spelling unnoticed, but it is reported by neither.
"""

from __future__ import annotations

import ast

import pytest

from tests.source_tree import Module, ancestors, classes_of, local_names, modules, owner, parse

# Accesses in modules that still reach into another module: each entry is
# (module, name). The list may only shrink.
KNOWN: frozenset[tuple[str, str]] = frozenset()


def _private(name: str) -> bool:
    if name.startswith("__") and name.endswith("__"):
        return False
    if len(name) > 2 and name.startswith("_") and name.endswith("_"):
        return False  # _sunder_ (enum's _value2member_map_, _missing_...)
    return name.startswith("_") and not name.startswith("__")


def _bound_names(module: Module) -> set[str]:
    """The private names that the module binds itself."""
    names: set[str] = set()
    for node in ast.walk(module.tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.alias) and node.asname:
            names.add(node.asname)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    for info in classes_of(module):
        names |= info.members
    return {n for n in names if _private(n)}


def _inherited_names(module: Module) -> set[str]:
    """Private members that the module's classes inherit from the package's classes."""
    names: set[str] = set()
    for info in classes_of(module):
        for base in ancestors(info):
            names |= base.members
    return {n for n in names if _private(n)}


def _is_self(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return node.id in ("self", "cls")
    # super()._name: the base class's own, reached from its subclass
    return (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"
    )


def violations(module: Module) -> list[tuple[int, str]]:
    """Where ``module`` uses another module's private names: ``(line, name)``."""
    allowed = _bound_names(module) | _inherited_names(module)
    table = local_names(module)
    found: list[tuple[int, str]] = []
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            value = node.value
            # ``other_module._name``: never the module's own, whatever it binds.
            foreign = (
                isinstance(value, ast.Name)
                and value.id in table
                and owner(table[value.id]) == table[value.id] != module.name
            )
            if not foreign and (_is_self(value) or node.attr in allowed):
                continue
            found.append((node.lineno, node.attr))
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if not _private(alias.name):
                    continue
                target = owner(f"{node.module}.{alias.name}") if not node.level else None
                if node.level or (target is not None and target != module.name):
                    found.append((node.lineno, alias.name))
    return sorted(found)


MODULES = sorted(modules())


def test_every_module_is_read() -> None:
    assert "socketwire.engine.socket" in MODULES
    assert "socketwire.adapters.base" in MODULES
    assert "socketwire.server.namespace" in MODULES
    assert len(MODULES) > 40


@pytest.mark.parametrize("name", MODULES)
def test_no_private_names_of_other_modules(name: str) -> None:
    module = modules()[name]
    found = [(line, attr) for line, attr in violations(module) if (name, attr) not in KNOWN]
    assert found == [], f"{name} uses private names of other modules: {found}"


def test_known_exceptions_still_exist() -> None:
    """An exception that no longer happens is removed from KNOWN."""
    for name, attr in KNOWN:
        assert attr in {a for _, a in violations(modules()[name])}, (name, attr)


def test_the_check_notices_a_foreign_private_name() -> None:
    module = parse(
        "socketwire.server.example",
        "from socketwire.engine.server import _REFUSED\n"
        "def f(engine):\n"
        "    engine._respond_busy(None)\n"
        "    engine.respond_ok(None)\n",
    )
    assert violations(module) == [(1, "_REFUSED"), (3, "_respond_busy")]


def test_the_check_allows_own_and_inherited_names() -> None:
    module = parse(
        "socketwire.server.example",
        "from socketwire.handlers import Emitter\n"
        "class Thing(Emitter):\n"
        "    __slots__ = ('_mine',)\n"
        "    def copy_from(self, other):\n"
        "        self._mine = other._mine\n"
        "        self._listeners = other._listeners\n"
        "        return super()._take('x')\n",
    )
    assert violations(module) == []


def test_the_check_sees_through_a_local_alias() -> None:
    module = parse(
        "socketwire.core.example",
        "from socketwire.core.socketio import packet\n_short = packet._short\n",
    )
    assert violations(module) == [(2, "_short")]
