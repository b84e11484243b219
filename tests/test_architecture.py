"""The import direction schedules -> collector -> {connectors, storage} holds in every module."""

from __future__ import annotations

import ast
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
# `collector demo` is the one product command that runs the sandbox: it alone may import it.
EXTRA = {"collector/demo.py": {"sandbox"}}


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
