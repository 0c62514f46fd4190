"""The package's source read with ``ast``: its modules, their imports and their names.

The layering and private-name tests check the source itself, so an import that
only runs in a function or under ``if TYPE_CHECKING`` counts as much as one at
the top of a module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import socketwire

PACKAGE = "socketwire"
PACKAGE_DIR = Path(socketwire.__file__).resolve().parent


@dataclass(frozen=True, slots=True)
class Module:
    """One module of the package: its dotted name, file and syntax tree."""

    name: str
    path: Path
    tree: ast.Module
    is_package: bool

    @property
    def package(self) -> str:
        """The package that relative imports start from."""
        return self.name if self.is_package else self.name.rpartition(".")[0]


@dataclass(frozen=True, slots=True)
class Import:
    """One imported name (a module, or a name of a module) and where it appears."""

    module: Module
    target: str  # dotted: a module of the package, or ``module.name``
    line: int
    lazy: bool  # inside a function: runs when the function does
    type_only: bool  # under ``if TYPE_CHECKING``


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR).with_suffix("").parts
    name = ".".join((PACKAGE, *parts))
    return name.removesuffix(".__init__")


@cache
def modules() -> dict[str, Module]:
    """Every Python module of the package, by dotted name."""
    found: dict[str, Module] = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        name = module_name(path)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        found[name] = Module(name, path, tree, path.name == "__init__.py")
    return found


@cache
def compiled_modules() -> frozenset[str]:
    """The package's compiled modules (known by their ``.pyi`` stubs)."""
    return frozenset(module_name(path) for path in PACKAGE_DIR.rglob("*.pyi"))


def parse(name: str, source: str, *, is_package: bool = False) -> Module:
    """A module made from source text (to show that a check notices a violation)."""
    path = PACKAGE_DIR / (name.removeprefix(PACKAGE + ".").replace(".", "/") + ".py")
    return Module(name, path, ast.parse(source), is_package)


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _walk(
    node: ast.AST, lazy: bool, type_only: bool
) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool, bool]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child, lazy, type_only
        elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            yield from _walk(child, True, type_only)
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for stmt in child.body:
                yield from _walk_one(stmt, lazy, True)
            for stmt in child.orelse:
                yield from _walk_one(stmt, lazy, type_only)
        else:
            yield from _walk(child, lazy, type_only)


def _walk_one(
    node: ast.stmt, lazy: bool, type_only: bool
) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool, bool]]:
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node, lazy, type_only
    else:
        yield from _walk(node, lazy, type_only)


def _absolute(module: Module, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.package.split(".")
    if node.level > 1:
        base = base[: len(base) - node.level + 1]
    return ".".join([*base, *([node.module] if node.module else [])])


def imports(module: Module) -> list[Import]:
    """Every import of ``module``, resolved to absolute dotted names."""
    found: list[Import] = []
    for node, lazy, type_only in _walk(module.tree, False, False):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append(Import(module, alias.name, node.lineno, lazy, type_only))
            continue
        source = _absolute(module, node)
        for alias in node.names:
            # A submodule (``from package import submodule``) or a module's name;
            # ``owner`` tells which module either belongs to.
            found.append(Import(module, f"{source}.{alias.name}", node.lineno, lazy, type_only))
    return found


def owner(target: str) -> str | None:
    """The package module that an import target belongs to (None: not the package's)."""
    if target != PACKAGE and not target.startswith(PACKAGE + "."):
        return None
    known = modules().keys() | compiled_modules()
    name = target
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


@dataclass(slots=True)
class ClassInfo:
    """A class of the package: what it defines and what it derives from."""

    qualname: str  # module.Class
    bases: list[str] = field(default_factory=list)  # resolved dotted names
    members: set[str] = field(default_factory=set)  # names it binds on itself


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return None if head is None else f"{head}.{node.attr}"
    if isinstance(node, ast.Subscript):  # Generic[T], Base[int]
        return _dotted(node.value)
    return None


def local_names(module: Module) -> dict[str, str]:
    """What the names bound by the module's imports stand for (dotted)."""
    table: dict[str, str] = {}
    for node, _lazy, _type_only in _walk(module.tree, False, False):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    table[alias.asname] = alias.name
                else:
                    first = alias.name.split(".")[0]
                    table[first] = first
        else:
            source = _absolute(module, node)
            for alias in node.names:
                table[alias.asname or alias.name] = f"{source}.{alias.name}"
    return table


def _class_members(node: ast.ClassDef) -> set[str]:
    members: set[str] = set()
    for stmt in node.body:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            members.add(stmt.name)
        elif isinstance(stmt, ast.Assign | ast.AnnAssign):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    members.add(target.id)
                    if target.id == "__slots__" and stmt.value is not None:
                        members |= {
                            c.value
                            for c in ast.walk(stmt.value)
                            if isinstance(c, ast.Constant) and isinstance(c.value, str)
                        }
    for sub in ast.walk(node):
        # ``self.x = ...`` (or ``cls.x``) in the class's methods.
        if (
            isinstance(sub, ast.Attribute)
            and isinstance(sub.ctx, ast.Store)
            and isinstance(sub.value, ast.Name)
            and sub.value.id in ("self", "cls")
        ):
            members.add(sub.attr)
    return members


def classes_of(module: Module) -> list[ClassInfo]:
    """The classes that ``module`` defines, bases resolved through its imports."""
    table = local_names(module)
    found: list[ClassInfo] = []
    for node in ast.walk(module.tree):
        if not isinstance(node, ast.ClassDef):
            continue
        info = ClassInfo(f"{module.name}.{node.name}")
        for base in node.bases:
            dotted = _dotted(base)
            if dotted is None:
                continue
            head, _, rest = dotted.partition(".")
            if head in table:
                resolved = table[head] + (f".{rest}" if rest else "")
            else:
                resolved = f"{module.name}.{dotted}"
            info.bases.append(resolved)
        info.members = _class_members(node)
        found.append(info)
    return found


@cache
def classes() -> dict[str, ClassInfo]:
    """Every class of the package by ``module.Class``."""
    return {info.qualname: info for m in modules().values() for info in classes_of(m)}


def ancestors(info: ClassInfo) -> list[ClassInfo]:
    """The package classes that ``info`` derives from, nearest first."""
    index = classes()
    seen: list[ClassInfo] = []
    todo = list(info.bases)
    while todo:
        base = index.get(todo.pop(0))
        if base is None or base in seen:
            continue
        seen.append(base)
        todo.extend(base.bases)
    return seen
