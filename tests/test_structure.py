"""The package's shape: no import cycles, no imports of another module's private names.

Read from the source with :mod:`ast`, so an import inside a function counts as
much as one at the top of a module: a cycle held together by function-level
imports is still a cycle (issue 11). Imports under ``if TYPE_CHECKING:`` do not
count: they never run.

An edge ``a -> b`` means module ``a`` names module ``b`` in an import:
``import scandeck.b``, ``from . import b`` or ``from .b import name``. Importing
``scandeck.x.y`` also runs ``scandeck/x/__init__.py``, but that implied edge is
not drawn: a package's ``__init__`` re-exporting its submodules would otherwise
make every submodule a cycle.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

import scandeck

PACKAGE = "scandeck"
ROOT = Path(scandeck.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        if "labextension" in path.relative_to(ROOT).parts:
            continue  # the built lab extension's assets, not Python of ours
        out[_module_name(path)] = path
    return out


MODULES = _modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node of ``tree`` except the bodies of ``if TYPE_CHECKING:`` blocks."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _base(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module a ``from ... import`` reads from."""
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    if not is_package:
        parts.pop()
    parts = parts[: len(parts) - (node.level - 1)]
    return ".".join([*parts, node.module] if node.module else parts)


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


class _Imports:
    """The scandeck modules one module imports, and the private names it takes from them."""

    def __init__(self, module: str, path: Path) -> None:
        self.module = module
        self.edges: dict[str, int] = {}  # imported module -> first line
        self.private: list[str] = []  # "line N: from X import _y"
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        is_package = path.name == "__init__.py"
        bound: dict[str, str] = {}  # local name -> scandeck module it is bound to
        nodes = list(_runtime_nodes(tree))
        for node in nodes:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == PACKAGE:
                        self._edge(alias.name, node.lineno)
                        if alias.asname:
                            bound[alias.asname] = alias.name
                        # (`import scandeck.x` binds `scandeck`: its attributes are read below)
                        bound.setdefault(alias.name.split(".")[0], PACKAGE)
            elif isinstance(node, ast.ImportFrom):
                base = _base(module, is_package, node)
                if base.split(".")[0] != PACKAGE:
                    continue
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    if sub in MODULES:  # from . import cli: the module itself
                        self._edge(sub, node.lineno)
                        bound[alias.asname or alias.name] = sub
                    else:
                        self._edge(base, node.lineno)
                    if _private(alias.name):  # a private module counts too: _x is nobody else's
                        self.private.append(f"line {node.lineno}: from {base} import {alias.name}")
        for node in nodes:
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in bound
                and _private(node.attr)
            ):
                target = bound[node.value.id]
                self.private.append(f"line {node.lineno}: {node.value.id}.{node.attr} ({target})")

    def _edge(self, target: str, line: int) -> None:
        # `import scandeck.a.b` names scandeck.a.b; a name not a module file is its package's.
        while target not in MODULES and "." in target:
            target = target.rsplit(".", 1)[0]
        if target != self.module:
            self.edges.setdefault(target, line)


IMPORTS = {name: _Imports(name, path) for name, path in MODULES.items()}


def _find_cycle(graph: dict[str, dict[str, int]]) -> list[str] | None:
    """One cycle of ``graph`` as [a, b, ..., a], or None (iterative DFS, three colours)."""
    colour: dict[str, int] = {}  # 1 on the path, 2 done
    for start in sorted(graph):
        if colour.get(start):
            continue
        path = [start]
        iters = [iter(sorted(graph[start]))]
        colour[start] = 1
        while iters:
            nxt = next(iters[-1], None)
            if nxt is None:
                colour[path.pop()] = 2
                iters.pop()
                continue
            state = colour.get(nxt)
            if state == 1:
                return [*path[path.index(nxt) :], nxt]
            if state is None:
                colour[nxt] = 1
                path.append(nxt)
                iters.append(iter(sorted(graph.get(nxt, {}))))
    return None


@pytest.mark.parametrize("module", sorted(m for m in MODULES if not m.endswith(".__main__")))
def test_every_module_imports(module):
    """Every module imports on its own (a ``__main__`` would run its program: only read)."""
    importlib.import_module(module)


def test_no_import_cycles():
    graph = {name: imp.edges for name, imp in IMPORTS.items()}
    cycle = _find_cycle(graph)
    if cycle is not None:
        steps = [f"{a} -> {b} (line {graph[a][b]})" for a, b in zip(cycle, cycle[1:], strict=False)]
        pytest.fail("import cycle among scandeck modules:\n  " + "\n  ".join(steps))


def test_no_private_names_across_modules():
    found = [f"{name}: {line}" for name, imp in sorted(IMPORTS.items()) for line in imp.private]
    assert not found, (
        "modules use private names of other scandeck modules; make the name public "
        "or move the code:\n  " + "\n  ".join(found)
    )


def test_the_checks_see_what_they_should(tmp_path):
    """The checks themselves: function-level imports count, TYPE_CHECKING ones do not."""
    sample = """
from typing import TYPE_CHECKING
from . import catalog
if TYPE_CHECKING:
    from .sources import protocol
def f():
    from .sources.sqlite import _private_thing
    return catalog._hidden
"""
    path = tmp_path / "probe.py"
    path.write_text(sample)
    imp = _Imports("scandeck.probe", path)
    assert set(imp.edges) == {"scandeck.catalog", "scandeck.sources.sqlite"}
    assert len(imp.private) == 2
    assert _find_cycle({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b": 1}, "b": {}}) is None
