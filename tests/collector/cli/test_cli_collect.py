"""`collector collect`: its table, its exit codes, and what streams and controls then report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from collector.cli import main


def _config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f"[connectors.synthetic]\ncount = 30\nusers = 3\n{extra}")
    return path


def test_collect_then_streams_and_controls(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A collection exits 0 and prints its table; streams and controls report what was stored."""
    config = _config(tmp_path)
    assert main(["--config", str(config), "collect"]) == 0
    out = capsys.readouterr().out
    assert "synthetic.events" in out and "30" in out
    assert main(["--config", str(config), "streams", "--json"]) == 0
    streams = {s["id"]: s for s in json.loads(capsys.readouterr().out)}
    assert streams["synthetic.events"]["records"] == 30
    assert streams["synthetic.events"]["status"] == "ok" and streams["synthetic.events"]["cursor"] == "30"
    assert main(["--config", str(config), "controls", "--criteria", "--json"]) == 0
    controls = {c["id"]: c for c in json.loads(capsys.readouterr().out)}
    assert len(controls) == 61
    assert controls["CC7.2"]["records"] == 30 and controls["CC7.2"]["in_scope"]
    assert controls["CC6.1"]["records"] == 33  # 30 sign-ins + 3 MFA states
    assert controls["CC6.1"]["streams"] == ["synthetic.events", "synthetic.users"]
    assert controls["CC1.1"]["in_scope"] and not controls["A1.2"]["in_scope"]  # [scope] default: security


def test_failed_stream_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """When a stream fails, collect still runs the others and exits 1."""
    config = _config(tmp_path, "fail_at = 5\n")
    assert main(["--config", str(config), "collect"]) == 1
    out = capsys.readouterr().out
    assert "failed" in out and "synthetic.users" in out


def test_unknown_stream_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Naming a stream that is unknown or not enabled is a clear input error."""
    config = _config(tmp_path)
    assert main(["--config", str(config), "collect", "--stream", "okta.bogus"]) == 2
    assert "--stream okta.bogus: is not a known stream" in capsys.readouterr().err
    assert main(["--config", str(config), "collect", "--stream", "synthetic.events"]) == 0


def test_unusable_store_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A store URL that cannot be opened is reported against storage.url, without a traceback."""
    config = tmp_path / "config.toml"
    config.write_text('[storage]\nurl = "postgresql+psycopg://nobody@127.0.0.1:1/none"\n'
                      "[connectors.synthetic]\ncount = 1\n")
    assert main(["--config", str(config), "collect"]) == 2
    err = capsys.readouterr().err
    assert "storage.url" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


_PROBE = """
import json, sys
from collector.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def test_collect_imports_no_orm(tmp_path: Path) -> None:
    """A one-shot collection into a new store and again into the same one imports SQLAlchemy's Core
    only, never its ORM (the store's tables are Core tables)."""
    config = _config(tmp_path)
    for _ in range(2):
        proc = subprocess.run([sys.executable, "-c", _PROBE, "--config", str(config), "collect"],
                              capture_output=True, text=True, timeout=120, check=True, cwd=tmp_path)
        seen = json.loads(proc.stdout.strip().splitlines()[-1])
        assert seen["code"] == 0 and "sqlalchemy" in seen["modules"]
        assert [m for m in seen["modules"] if m.startswith("sqlalchemy.orm")] == []
