"""The intake folder: a file with its sidecar is stored once, then moved; a bad one is rejected with why."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from manual_helpers import PEOPLE, Env, open_env, rows

from collector.cli import main
from collector.manual import intake_pass

NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
INTAKE = '\n[intake]\nfolder = "intake"\nsettle = "0s"\n'
SIDECAR = 'type = "restore-test"\ncontrol = "AV-03"\ntitle = "Q3 restore test"\nperiod = "2026-07-01..2026-09-30"\n'


@pytest.fixture
def intake(tmp_path: Path) -> Iterator[Env]:
    """A SQLite config with an intake folder (no settle time)."""
    (tmp_path / "intake").mkdir()
    env = open_env(tmp_path, f"sqlite:///{tmp_path / 'evidence.db'}", PEOPLE + INTAKE)
    yield env
    env.store.close()


def _drop(env: Env, name: str, body: bytes, sidecar: str | None = SIDECAR) -> Path:
    folder = env.dir / "intake"
    (folder / name).write_bytes(body)
    if sidecar is not None:
        (folder / f"{name}.toml").write_text(sidecar)
    return folder


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def test_a_file_with_its_sidecar_is_stored_once_then_moved(intake: Env) -> None:
    """The document is stored with the sidecar's facts, then it and its sidecar move to processed/;
    a later pass finds nothing to do."""
    folder = _drop(intake, "restore-q3.pdf", b"%PDF restore test")
    report = intake_pass(intake.settings, intake.store, intake.blobs, now=NOW)
    assert report.stored == ["restore-q3.pdf"] and not report.rejected
    [record] = rows(intake.store, "manual.documents")
    assert record["data"]["title"] == "Q3 restore test" and record["data"]["name"] == "restore-q3.pdf"
    assert record["observed_at"] == "2026-09-30T00:00:00.000000Z"
    assert _listing(folder) == ["processed", "rejected"]
    assert _listing(folder / "processed") == ["restore-q3.pdf", "restore-q3.pdf.toml"]
    again = intake_pass(intake.settings, intake.store, intake.blobs, now=NOW)
    assert again.stored == [] and len(rows(intake.store, "manual.documents")) == 1


def test_a_bad_sidecar_is_rejected_with_the_reason(intake: Env) -> None:
    """A sidecar naming a control without that document type moves both files to rejected/ with a
    .error file saying why; nothing is stored."""
    folder = _drop(intake, "policy.pdf", b"policy", 'type = "restore-test"\ncontrol = "AC-01"\n')
    report = intake_pass(intake.settings, intake.store, intake.blobs, now=NOW)
    assert list(report.rejected) == ["policy.pdf"]
    assert _listing(folder / "rejected") == ["policy.pdf", "policy.pdf.error", "policy.pdf.toml"]
    reason = (folder / "rejected" / "policy.pdf.error").read_text()
    assert reason == "--control AC-01 has no document selector of type 'restore-test' (its document types: none)\n"
    assert rows(intake.store, "manual.documents") == []


@pytest.mark.parametrize(("sidecar", "reason"), [
    ('type = "restore-test"\n', "required key 'control' is missing"),
    ('type = "restore-test"\ncontrol = "AV-03"\ncolour = "red"\n', "unknown key 'colour'"),
    ('type = "restore-test"\ncontrol = "AV-03"\nperiod = "last quarter"\n', "period: expected START..END"),
    ("type = ", "not valid TOML"),
])
def test_each_sidecar_mistake_is_named(intake: Env, sidecar: str, reason: str) -> None:
    """A missing, unknown or malformed key is the rejection's reason, naming the sidecar."""
    folder = _drop(intake, "doc.txt", b"x", sidecar)
    intake_pass(intake.settings, intake.store, intake.blobs, now=NOW)
    text = (folder / "rejected" / "doc.txt.error").read_text()
    assert reason in text


def test_a_file_without_its_sidecar_waits(intake: Env) -> None:
    """A file whose sidecar has not arrived (or a sidecar whose file has not) is left where it is."""
    folder = _drop(intake, "early.pdf", b"x", sidecar=None)
    (folder / "orphan.pdf.toml").write_text(SIDECAR)
    report = intake_pass(intake.settings, intake.store, intake.blobs, now=NOW)
    assert report.waiting == ["early.pdf", "orphan.pdf.toml"] and not report.stored
    assert _listing(folder) == ["early.pdf", "orphan.pdf.toml", "processed", "rejected"]


def test_a_file_still_being_written_waits_for_the_settle_time(tmp_path: Path) -> None:
    """A file modified within [intake] settle is left for the next pass."""
    (tmp_path / "intake").mkdir()
    env = open_env(tmp_path, f"sqlite:///{tmp_path / 'e.db'}", INTAKE.replace('"0s"', '"1h"'))
    try:
        _drop(env, "fresh.pdf", b"x")
        report = intake_pass(env.settings, env.store, env.blobs, now=NOW)
        assert report.waiting == ["fresh.pdf"] and rows(env.store, "manual.documents") == []
    finally:
        env.store.close()


def test_a_name_processed_before_gets_a_numbered_place(intake: Env) -> None:
    """A second file of the same name keeps the first one in processed/ and lands beside it."""
    folder = _drop(intake, "report.pdf", b"first version")
    intake_pass(intake.settings, intake.store, intake.blobs, now=NOW)
    _drop(intake, "report.pdf", b"second version")
    intake_pass(intake.settings, intake.store, intake.blobs, now=NOW)
    assert _listing(folder / "processed") == ["report (2).pdf", "report (2).pdf.toml", "report.pdf",
                                              "report.pdf.toml"]
    assert (folder / "processed" / "report (2).pdf").read_bytes() == b"second version"
    assert len(rows(intake.store, "manual.documents")) == 2


def test_a_pass_killed_between_its_moves_is_finished_by_the_next(intake: Env) -> None:
    """A journal left by a pass killed after moving the file but not its sidecar is completed
    first: the sidecar joins its file and the journal is gone."""
    folder = _drop(intake, "minutes.pdf", b"board minutes")
    (folder / "processed").mkdir()
    os.rename(folder / "minutes.pdf", folder / "processed" / "minutes.pdf")
    (folder / ".intake-move-0123456789abcdef.json").write_text(json.dumps({"moves": [
        ["minutes.pdf", str(folder / "processed" / "minutes.pdf")],
        ["minutes.pdf.toml", str(folder / "processed" / "minutes.pdf.toml")]]}))
    report = intake_pass(intake.settings, intake.store, intake.blobs, now=NOW)
    assert report.waiting == [] and report.stored == []
    assert _listing(folder / "processed") == ["minutes.pdf", "minutes.pdf.toml"]
    assert [p.name for p in folder.iterdir() if p.name.startswith(".intake-move")] == []


def test_an_hr_export_with_an_import_sidecar_becomes_attestations(intake: Env) -> None:
    """A CSV whose sidecar says attestations and columns is imported like `evidence import`."""
    _drop(intake, "acks.csv", b"Email,Policy,Signed\nalice@acme.example,infosec-policy@v3,2026-11-02\n",
          'attestations = "policy_ack"\ncolumns = "person=Email,item=Policy,at=Signed"\n')
    report = intake_pass(intake.settings, intake.store, intake.blobs, now=NOW)
    assert report.stored == ["acks.csv"] and report.attestations == 1
    assert [r["source_key"] for r in rows(intake.store, "manual.attestations")] == [
        "policy_ack/alice@acme.example/infosec-policy@v3"]


def test_a_second_process_leaves_a_folder_being_processed_alone(intake: Env) -> None:
    """While another process holds the folder's lock, a pass does nothing and says so."""
    _drop(intake, "doc.pdf", b"x")
    fd = os.open(intake.dir / "intake" / ".intake.lock", os.O_RDWR | os.O_CREAT)
    other = os.open(intake.dir / "intake" / ".intake.lock", os.O_RDWR)
    try:
        fcntl.flock(other, fcntl.LOCK_EX)  # held through another open file description
        report = intake_pass(intake.settings, intake.store, intake.blobs, now=NOW)
    finally:
        os.close(other)
        os.close(fd)
    assert report.busy and rows(intake.store, "manual.documents") == []


def test_the_cli_runs_one_pass(intake: Env, capsys: pytest.CaptureFixture[str]) -> None:
    """`collector intake` stores what is ready and lists each file's fate; exit 1 when one was rejected."""
    _drop(intake, "good.pdf", b"good")
    _drop(intake, "bad.pdf", b"bad", 'type = "restore-test"\n')
    assert main(["--config", str(intake.config), "intake"]) == 1
    out = capsys.readouterr().out
    assert "stored     good.pdf" in out and "rejected   bad.pdf: bad.pdf.toml: required key 'control'" in out
