"""`collector controls`: the criteria in the SOC 2, ISO 27001 and NIST CSF views."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from collector.cli import main


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text("[connectors.synthetic]\ncount = 30\nusers = 3\n")
    return path


def test_controls_framework_views(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The ISO 27001 and NIST CSF views show each criterion's mapped references."""
    config = _config(tmp_path)
    assert main(["--config", str(config), "controls", "--framework", "iso27001", "--json"]) == 0
    iso = {c["id"]: c["mapped"] for c in json.loads(capsys.readouterr().out)}
    assert "A.5.15" in iso["CC6.1"]
    assert main(["--config", str(config), "controls", "--framework", "nist-csf"]) == 0
    assert "PR.AA" in capsys.readouterr().out
