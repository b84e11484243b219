"""`collector show RECORD_ID`: the stored record, canonical, with its filing; unknown ids exit 2."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from collector.cli import main


@pytest.fixture
def config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A config whose store holds one collection of the synthetic connector."""
    path = tmp_path / "config.toml"
    path.write_text("[connectors.synthetic]\ncount = 5\nusers = 2\n")
    assert main(["--config", str(path), "collect"]) == 0
    capsys.readouterr()
    return path


def _stored(config: Path) -> tuple[str, str]:
    """(id, stream) of one stored record, read with plain sqlite3."""
    with sqlite3.connect(config.parent / "data" / "evidence.db") as conn:
        row = conn.execute("SELECT id, stream FROM evidence WHERE stream = 'synthetic.users' "
                           "ORDER BY id LIMIT 1").fetchone()
    return row[0], row[1]


def test_show_prints_the_canonical_record_and_its_filing(config: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """By full id or by the 12 digits a digest shows: the record's canonical JSON (whose body hashes
    to its id), the criteria it is filed under, the controls that match it, and its window."""
    from collector.canonical import canonical

    rid, stream = _stored(config)
    for given in (rid, rid[:12].upper()):
        assert main(["--config", str(config), "show", given]) == 0
        out = capsys.readouterr().out.splitlines()
        record = json.loads(out[0])
        assert record["id"] == rid and record["stream"] == stream
        body = {k: v for k, v in record.items() if k not in ("id", "collected_at", "run_id")}
        assert hashlib.sha256(canonical(body)).hexdigest() == rid
        assert out[0].encode() == canonical(record)
        assert out[1] == "criteria: " + ", ".join(record["controls"])
        assert out[2].startswith("controls: ") and "@" in out[2]  # each control with its owner
        assert out[3].startswith("window:   ") and out[3].endswith("not sealed yet")


@pytest.mark.parametrize("given, why", [
    ("0" * 64, "no such record in the store"),
    ("abc", "not a record id"),
])
def test_show_refuses_an_unknown_or_malformed_id(config: Path, given: str, why: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """An id that names no record, or is no id at all: one line naming it, exit 2, no traceback."""
    assert main(["--config", str(config), "show", given]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and given in err and why in err
