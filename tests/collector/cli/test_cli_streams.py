"""`collector streams`: the configured streams, and streams with runs whose connector is no longer configured."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from collector.cli import main


def test_streams_of_a_connector_no_longer_configured_are_still_listed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Once its section is removed, a connector's streams that ran are listed as not enabled, with their records."""
    config = tmp_path / "config.toml"
    config.write_text("[connectors.synthetic]\ncount = 5\nusers = 2\n")
    assert main(["--config", str(config), "collect"]) == 0
    capsys.readouterr()
    config.write_text("")
    assert main(["--config", str(config), "streams", "--json"]) == 0
    rows = {row["id"]: row for row in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"synthetic.events", "synthetic.users"}
    assert rows["synthetic.events"]["enabled"] is False and rows["synthetic.events"]["records"] == 5
    assert rows["synthetic.events"]["interval"] is None and rows["synthetic.events"]["status"] == "ok"


def test_streams_with_nothing_configured_or_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An empty config on an empty store lists nothing and says so."""
    config = tmp_path / "config.toml"
    config.write_text("")
    assert main(["--config", str(config), "streams"]) == 0
    assert "no connectors configured" in capsys.readouterr().err
