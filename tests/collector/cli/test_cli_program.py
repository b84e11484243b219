"""The `collector` a printed command names is one that runs from where the user is."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from collector.cli._common import program


@pytest.fixture
def script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A console script at ./.venv/bin/collector, the working folder being its clone."""
    path = tmp_path / ".venv" / "bin" / "collector"
    path.parent.mkdir(parents=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    return path


def test_an_unactivated_virtualenv_is_named_by_its_path(script: Path) -> None:
    """Run as .venv/bin/collector with the virtualenv not on $PATH: the path, as the user can type it."""
    assert program(str(script), path="/usr/bin:/bin") == ".venv/bin/collector"


def test_a_collector_on_path_is_named_bare(script: Path) -> None:
    """When `collector` on $PATH is this very program (an activated virtualenv), the bare name."""
    assert program(str(script), path=f"{script.parent}:/usr/bin") == "collector"


def test_another_collector_on_path_is_not_taken_for_this_one(script: Path, tmp_path: Path) -> None:
    """A different `collector` earlier on $PATH does not make the bare name right."""
    other = tmp_path / "other" / "collector"
    other.parent.mkdir()
    other.write_text("#!/bin/sh\n")
    other.chmod(0o755)
    assert program(str(script), path=f"{other.parent}:{script.parent}") == ".venv/bin/collector"


def test_python_dash_m_names_the_script_beside_this_python(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Run as `python -m collector.cli`: the console script installed beside that Python."""
    monkeypatch.chdir(tmp_path)
    beside = Path(sys.executable).parent / "collector"
    assert beside.is_file()
    assert program("/x/collector/cli/__main__.py", path="/usr/bin") == str(beside.absolute())
