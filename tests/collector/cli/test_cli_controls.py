"""`collector controls`: the organisation's controls with owners and status, the criteria in scope with
their gaps (in the SOC 2, ISO 27001 and NIST CSF views), `controls init`, and a tailored library
applied to the records already stored."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from collector.cli import main
from collector.controls import starter_text
from collector.records import format_ts
from collector.windows import window_containing

NOW = datetime.now(UTC)
# Events hourly from midnight nine days ago up to now: sequence 7 signs in without MFA.
START = (NOW - timedelta(days=9)).replace(hour=0, minute=0, second=0, microsecond=0)
WEEK = window_containing(START + timedelta(hours=7), "week", "UTC")

OWN = """
[[controls]]
id = "ACME-7"
title = "Sign-ins watched"
statement = "Every sign-in is logged and one without MFA is chased within a day."
owner = "alice@acme.example"
criteria = ["CC6.1"]
every = "7d"
evidence = [{stream = "synthetic.events"}]
"""

# The same control now names a kind no synthetic event has; a second control takes the sign-ins.
CHANGED = OWN.replace('{stream = "synthetic.events"}', '{stream = "synthetic.events", kind = "mfa_status"}') + """
[[controls]]
id = "ACME-8"
title = "Sign-ins watched by IT"
statement = "Every sign-in is logged and reviewed by IT."
owner = "it@acme.example"
criteria = ["CC7.2"]
every = "7d"
evidence = [{kind = "access_log"}]
"""


def _config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[storage]\nurl = "sqlite:///{tmp_path / "evidence.db"}"\n[digest]\nout_dir = "digests"\n'
        f'[connectors.synthetic]\ncount = 240\nstep_seconds = 3600\nusers = 7\n'
        f'start = "{START.strftime("%Y-%m-%dT%H:%M:%SZ")}"\n{extra}'
    )
    return path


def _count(tmp_path: Path, stream: str, start: datetime, end: datetime, status: str | None = None) -> int:
    """Records of ``stream`` observed in [start, end), read straight from the store."""
    sql = "SELECT count(*) FROM evidence WHERE stream = ? AND observed_at >= ? AND observed_at < ?"
    args: list[str] = [stream, format_ts(start), format_ts(end)]
    if status:
        sql += " AND status = ?"
        args.append(status)
    with sqlite3.connect(tmp_path / "evidence.db") as conn:
        return int(conn.execute(sql, args).fetchone()[0])


def test_controls_framework_views(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The ISO 27001 and NIST CSF views show each criterion's mapped references."""
    config = tmp_path / "config.toml"
    config.write_text("[connectors.synthetic]\ncount = 30\nusers = 3\n")
    assert main(["--config", str(config), "controls", "--framework", "iso27001", "--json"]) == 0
    iso = {c["id"]: c["mapped"] for c in json.loads(capsys.readouterr().out)}
    assert "A.5.15" in iso["CC6.1"]
    assert main(["--config", str(config), "controls", "--framework", "nist-csf"]) == 0
    assert "PR.AA" in capsys.readouterr().out


def test_controls_lists_every_control_with_owner_and_status(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """With the starter library, `controls --json` lists its 46 controls, each with an owner, a
    status for the week and the window to date, its last evidence and its criteria; the sign-in
    control counts exactly the stored sign-ins of the window to date; the table says the coverage."""
    config = _config(tmp_path)
    assert main(["--config", str(config), "collect"]) == 0
    capsys.readouterr()
    assert main(["--config", str(config), "controls", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 46 and all(r["owner"] and r["criteria"] for r in rows)
    statuses = {"operating", "exceptions", "stale", "no_evidence", "due"}
    assert all(r["status"] in statuses and r["status_window"] in statuses for r in rows)
    ac02 = next(r for r in rows if r["id"] == "AC-02")  # {kind = "access_log"}
    now = datetime.now(UTC)
    window = window_containing(now, "month", "UTC")
    assert ac02["records_window"] == _count(tmp_path, "synthetic.events", window.start, now) > 0
    with sqlite3.connect(tmp_path / "evidence.db") as conn:
        newest = conn.execute("SELECT max(observed_at) FROM evidence WHERE kind = 'access_log'").fetchone()
    assert ac02["last_evidence_at"] == newest[0]
    assert main(["--config", str(config), "controls"]) == 0
    out = capsys.readouterr().out
    assert "AC-02" in out and "security-lead@example.com" in out
    assert "Coverage: operating" in out and "of 33 criteria in scope" in out


def test_criteria_view_names_design_and_operating_gaps_and_exclusions(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`controls --criteria --json` lists each criterion in scope with its controls and its gap (design:
    no control; operating: none operating), then each excluded criterion with its reason."""
    library = tmp_path / "controls.toml"
    library.write_text(OWN)
    config = _config(tmp_path, '[controls]\nlibrary = "controls.toml"\n[scope]\n'
                               'exclude = [{criterion = "CC6.4", reason = "no data centre: hosted on AWS"}]\n')
    assert main(["--config", str(config), "controls", "--criteria", "--json"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert len(rows) == 61 and sum(1 for r in rows.values() if r["in_scope"]) == 32
    assert rows["A1.2"]["in_scope"] is False and rows["A1.2"]["excluded"] is None  # not a chosen category
    assert rows["CC6.1"]["controls"] == ["ACME-7"] and rows["CC6.1"]["gap"] == "operating"
    assert rows["CC6.1"]["status"] == "no_evidence"  # nothing collected yet
    assert rows["CC1.1"]["controls"] == [] and rows["CC1.1"]["gap"] == "design"
    assert rows["CC1.1"]["status"] == "no_control"
    assert rows["CC6.4"]["in_scope"] is False
    assert rows["CC6.4"]["excluded"] == "no data centre: hosted on AWS"
    assert main(["--config", str(config), "controls", "--criteria"]) == 0
    out = capsys.readouterr().out
    assert "Excluded from scope" in out and "no data centre: hosted on AWS" in out
    assert "designed 1 of 32" in out


def test_init_copies_the_starter_and_never_overwrites(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """`controls init` writes the starter to ./controls.toml and prints the config lines that use it
    (which load); run again it refuses with exit 2 and leaves the file alone; it needs no config."""
    from collector.config import load_settings

    monkeypatch.chdir(tmp_path)
    assert main(["controls", "init"]) == 0
    written = tmp_path / "controls.toml"
    assert written.read_text() == starter_text()
    out = capsys.readouterr().out
    assert '[controls]\nlibrary = "controls.toml"\n' in out
    config = tmp_path / "config.toml"
    config.write_text(out[out.index("[controls]"):])
    assert len(load_settings(config).library) == 46
    written.write_text(starter_text() + "\n# tailored\n")
    assert main(["controls", "init"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("collector: error: controls.toml: already exists") and err.count("\n") == 1
    assert written.read_text().endswith("# tailored\n")
    assert main(["controls", "init", str(tmp_path / "mine.toml")]) == 0
    assert (tmp_path / "mine.toml").read_text() == starter_text()


def test_a_tailored_library_applies_to_stored_records(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A control of the organisation's own id, owner and stream selector mapped to CC6.1 appears in
    `collector controls` and the digest with exactly the records its selector matches (and the
    exception lines name it); after the library changes, the next digest follows the new selectors
    over the same stored records."""
    library = tmp_path / "controls.toml"
    library.write_text(OWN)
    config = _config(tmp_path, '[controls]\nlibrary = "controls.toml"\n')
    assert main(["--config", str(config), "collect"]) == 0
    capsys.readouterr()
    now = datetime.now(UTC)
    window = window_containing(now, "month", "UTC")
    assert main(["--config", str(config), "controls", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["id"], r["owner"], r["criteria"]) for r in rows] == [("ACME-7", "alice@acme.example", ["CC6.1"])]
    assert rows[0]["records_window"] == _count(tmp_path, "synthetic.events", window.start, now) > 0

    def digest() -> dict[str, object]:
        assert main(["--config", str(config), "digest", "--week", WEEK.id, "--no-deliver"]) == 0
        capsys.readouterr()
        return orjson.loads((tmp_path / "digests" / f"digest-{WEEK.id}.json").read_bytes())  # type: ignore[no-any-return]

    first = digest()
    events = _count(tmp_path, "synthetic.events", WEEK.start, WEEK.end)
    failed = _count(tmp_path, "synthetic.events", WEEK.start, WEEK.end, "exception")
    assert events > 0 and failed > 0
    controls = first["controls"]
    assert isinstance(controls, list)
    assert [(c["id"], c["owner"], c["records_week"], c["exceptions_week"]) for c in controls] == [
        ("ACME-7", "alice@acme.example", events, failed)]
    assert controls[0]["status"] == "exceptions"
    criteria = {c["id"]: c for c in first["criteria"]}  # type: ignore[attr-defined]
    assert criteria["CC6.1"]["controls"] == ["ACME-7"] and criteria["CC6.1"]["status"] == "exceptions"
    assert first["coverage"] == {"in_scope": 33, "designed": 1, "operating": 0, "ratio": 0.0,
                                 "covered": 2, "excluded": []}
    assert first["exceptions"] and all(e["controls"] == ["ACME-7"] for e in first["exceptions"])  # type: ignore[attr-defined]

    library.write_text(CHANGED)
    second = digest()
    controls = second["controls"]
    assert isinstance(controls, list)
    figures = {c["id"]: (c["records_week"], c["exceptions_week"], c["owner"]) for c in controls}
    assert figures == {"ACME-7": (0, 0, "alice@acme.example"), "ACME-8": (events, failed, "it@acme.example")}
    assert all(e["controls"] == ["ACME-8"] for e in second["exceptions"])  # type: ignore[attr-defined]
    assert second["coverage"]["designed"] == 2  # type: ignore[index]


def test_library_text_is_printed_as_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Brackets in a control's title or an exclusion's reason are the organisation's text, printed as
    written, never read as terminal markup (a stray "[/x]" must not fail the command)."""
    library = tmp_path / "controls.toml"
    library.write_text(OWN.replace('"Sign-ins watched"', '"[draft] Sign-ins [/watched]"'))
    config = _config(tmp_path, '[controls]\nlibrary = "controls.toml"\n[scope]\n'
                               'exclude = [{criterion = "CC6.4", reason = "[b]hosted[/b] on AWS"}]\n')
    assert main(["--config", str(config), "controls"]) == 0
    assert "[draft] Sign-ins [/watched]" in capsys.readouterr().out
    assert main(["--config", str(config), "controls", "--criteria"]) == 0
    assert "[b]hosted[/b] on AWS" in capsys.readouterr().out
