"""The import direction schedules -> collector -> {connectors, storage} holds in every module, and no
project module imports itself back through others."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("collector", "connectors", "schedules", "storage", "sandbox")
ALLOWED = {
    "schedules": {"schedules", "collector", "connectors", "storage"},
    "collector": {"collector", "connectors", "storage"},
    "connectors": {"connectors"},
    "storage": {"storage"},
    "sandbox": {"sandbox"},
}
# The CLI is the composition root: `collector demo` alone may import the sandbox it runs, and
# `collector run` alone the daemon layer it starts.
EXTRA = {"collector/demo.py": {"sandbox"}, "collector/cli/run.py": {"schedules"}}



def _project_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & set(PACKAGES)


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_point_one_way(package: str) -> None:
    """No module imports a project package its layer may not depend on."""
    violations = []
    for path in sorted((ROOT / package).rglob("*.py")):
        relative = str(path.relative_to(ROOT))
        bad = _project_imports(path) - ALLOWED[package] - EXTRA.get(relative, set())
        if bad:
            violations.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert not violations, "\n".join(violations)


def test_checker_sees_a_violation(tmp_path: Path) -> None:
    """The checker itself detects a forbidden import (so the test above can fail)."""
    sample = tmp_path / "m.py"
    sample.write_text("from collector.records import build_record\nimport storage.models\n")
    assert _project_imports(sample) == {"collector", "storage"}


def _modules(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Dotted module name -> file, for every module of ``packages`` under ``root``."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in (root / package).rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _module_imports(name: str, path: Path, modules: Mapping[str, Path]) -> set[str]:
    """The project modules ``name`` imports anywhere in its file: at the top, inside functions,
    and under ``if TYPE_CHECKING:`` alike. ``from p import x`` names the submodule ``p.x`` when
    there is one, else the module ``p``."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in modules:
                    found.add(sub)
                elif base in modules:
                    found.add(base)
    found.discard(name)
    return found


def _cycles(graph: Mapping[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(frozenset(component))
    return found


def _import_cycles(root: Path, packages: Iterable[str]) -> list[frozenset[str]]:
    modules = _modules(root, packages)
    return _cycles({name: _module_imports(name, path, modules) for name, path in modules.items()})


def test_no_import_cycles() -> None:
    """No project module imports itself back through other modules, counting imports inside
    functions and under TYPE_CHECKING."""
    cycles = [sorted(c) for c in _import_cycles(ROOT, PACKAGES)]
    assert cycles == [], "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_cycle_checker_sees_a_planted_cycle(tmp_path: Path) -> None:
    """A cycle through a TYPE_CHECKING import and a relative import is found (so the test above can fail)."""
    pkg = tmp_path / "collector" / "plant"
    pkg.mkdir(parents=True)
    (tmp_path / "collector" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                              "    from collector.plant.b import B\n")
    (pkg / "b.py").write_text("from . import c\n")
    (pkg / "c.py").write_text("def f():\n    import collector.plant.a\n")
    (pkg / "d.py").write_text("from collector.plant import a\n")  # into the cycle, not part of it
    assert _import_cycles(tmp_path, ["collector"]) == [
        frozenset({"collector.plant.a", "collector.plant.b", "collector.plant.c"})]
