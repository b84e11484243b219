"""`collector evidence add`: a document into the blob store and its record through the pipeline, once."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from manual_helpers import Env, filings, rows, runs

from collector.cli import main
from collector.errors import InputError
from collector.manual import DocumentFacts, add_document, parse_period

NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


def _file(env: Env, name: str = "restore-test-q3.pdf", body: bytes = b"%PDF-1.7 restore test\n") -> Path:
    path = env.dir / name
    path.write_bytes(body)
    return path


def test_a_document_is_stored_with_its_file_facts_and_filed_under_its_controls(env: Env) -> None:
    """The record holds the file's SHA-256, size, media type, name and the person's facts, is filed
    under the named controls' criteria, and the blob store holds the bytes under that SHA-256."""
    path = _file(env)
    facts = DocumentFacts("restore-test", ("AV-03",), title="Q3 restore test", owner="sre@acme.example",
                          approved_by="cto@acme.example", period=parse_period("2026-07-01..2026-09-30"))
    added = add_document(env.settings, env.store, env.blobs, path, facts, now=NOW)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert added.new and added.sha256 == digest and added.size == path.stat().st_size
    [record] = rows(env.store, "manual.documents")
    assert record["id"] == added.record_id
    assert record["source_key"] == f"restore-test/{digest}" and record["kind"] == "document"
    assert record["data"] == {
        "file_sha256": digest, "size": path.stat().st_size, "media_type": "application/pdf",
        "name": "restore-test-q3.pdf", "type": "restore-test", "title": "Q3 restore test",
        "owner": "sre@acme.example", "approved_by": "cto@acme.example",
        "period": {"start": "2026-07-01", "end": "2026-09-30"},
    }
    assert record["actor"] == "cto@acme.example" and record["status"] == "ok"
    assert record["observed_at"] == "2026-09-30T00:00:00.000000Z"  # the period's end
    assert record["controls"] == ["A1.2", "A1.3"] == filings(env.store, added.record_id)
    assert runs(env.store, "manual.documents") == [("ok", 1, 1)]
    with env.blobs.open(digest) as blob:
        assert blob.read() == path.read_bytes()


def test_adding_the_same_file_again_stores_nothing_new(env: Env) -> None:
    """A second add of the same bytes as the same type names the first record and stores nothing,
    even with another title or time."""
    path = _file(env)
    first = add_document(env.settings, env.store, env.blobs, path, DocumentFacts("restore-test", ("AV-03",)),
                         now=NOW)
    copy = _file(env, "copy of the report.pdf", path.read_bytes())
    again = add_document(env.settings, env.store, env.blobs, copy,
                         DocumentFacts("restore-test", ("AV-03",), title="other"), now=NOW + timedelta(days=3))
    assert not again.new and again.record_id == first.record_id
    assert len(rows(env.store, "manual.documents")) == 1


def test_observed_at_defaults_to_now_and_follows_the_approval_time(env: Env) -> None:
    """Without a period the record is observed now, or at --observed-at; the owner defaults to the
    first control's owner and the title to the file name."""
    plain = add_document(env.settings, env.store, env.blobs, _file(env, "a.md", b"one"),
                         DocumentFacts("restore-test", ("AV-03",)), now=NOW)
    signed = add_document(env.settings, env.store, env.blobs, _file(env, "b.md", b"two"),
                          DocumentFacts("restore-test", ("AV-03",), observed_at=NOW - timedelta(days=2)),
                          now=NOW)
    by_id = {r["id"]: r for r in rows(env.store, "manual.documents")}
    assert by_id[plain.record_id]["observed_at"] == "2026-11-20T09:30:00.000000Z"
    assert by_id[signed.record_id]["observed_at"] == "2026-11-18T09:30:00.000000Z"
    assert by_id[plain.record_id]["data"]["owner"] == "it-ops@example.com"
    assert by_id[plain.record_id]["data"]["title"] == "a.md"
    assert by_id[plain.record_id]["data"]["media_type"] == "text/markdown"


def test_a_period_ending_after_now_is_observed_now(env: Env) -> None:
    """A policy valid into next year is evidence now, not in a window that has not begun."""
    added = add_document(env.settings, env.store, env.blobs, _file(env),
                         DocumentFacts("restore-test", ("AV-03",), period=parse_period("2026-01-01..2027-12-31")),
                         now=NOW)
    assert rows(env.store, "manual.documents")[0]["observed_at"] == "2026-11-20T09:30:00.000000Z"
    assert added.new


@pytest.mark.parametrize(("controls", "doc_type", "message"), [
    (("NOPE-9",), "restore-test", "--control NOPE-9: no such control in collector/data/controls.toml"),
    (("AC-01",), "restore-test", "--control AC-01 has no document selector of type 'restore-test'"),
    (("AV-03",), "Restore Test", "--type 'Restore Test': a document type is lower-case"),
])
def test_a_control_that_does_not_require_the_type_is_refused(sqlite_env: Env, controls: tuple[str, ...],
                                                             doc_type: str, message: str) -> None:
    """A control that does not exist, or has no document selector of the type, is an input error
    naming both, and nothing reaches either store."""
    with pytest.raises(InputError) as error:
        add_document(sqlite_env.settings, sqlite_env.store, sqlite_env.blobs, _file(sqlite_env),
                     DocumentFacts(doc_type, controls), now=NOW)
    assert str(error.value).startswith(message)
    assert rows(sqlite_env.store, "manual.documents") == []
    assert not (sqlite_env.dir / "files" / "sha256").exists()


def test_an_approval_in_the_future_is_refused(sqlite_env: Env) -> None:
    """An --observed-at later than now (beyond clock skew) is a typing mistake, not evidence."""
    with pytest.raises(InputError, match=re.escape("--observed-at: 2026-12-20T09:30:00.000000Z is in the future")):
        add_document(sqlite_env.settings, sqlite_env.store, sqlite_env.blobs, _file(sqlite_env),
                     DocumentFacts("restore-test", ("AV-03",), observed_at=NOW + timedelta(days=30)), now=NOW)


def test_the_cli_prints_the_record_id_and_sha256(sqlite_env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    """`collector evidence add` prints the record id and the file's SHA-256, and says so again when
    the file was already stored (exit 0 both times)."""
    path = _file(sqlite_env)
    argv = ["--config", str(sqlite_env.config), "evidence", "add", str(path), "--type", "restore-test",
            "--control", "AV-03", "--observed-at", "2026-09-30"]
    assert main(argv) == 0
    out = capsys.readouterr()
    [record] = rows(sqlite_env.store, "manual.documents")
    assert out.out == f"record  {record['id']}\nsha256  {record['data']['file_sha256']}\n"
    assert out.err.startswith("stored: restore-test-q3.pdf")
    assert main(argv) == 0
    assert "already stored (nothing new)" in capsys.readouterr().err


def test_the_cli_names_the_control_and_the_type_and_exits_2(sqlite_env: Env,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """A control without a selector of the type is one line naming both, exit 2."""
    code = main(["--config", str(sqlite_env.config), "evidence", "add", str(_file(sqlite_env)), "--type",
                 "restore-test", "--control", "AC-01"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "AC-01" in err and "'restore-test'" in err


def test_period_and_observed_at_cannot_both_be_given(sqlite_env: Env,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """--period and --observed-at exclude each other (argparse's usage error, exit 2)."""
    with pytest.raises(SystemExit) as stop:
        main(["--config", str(sqlite_env.config), "evidence", "add", "x", "--type", "t", "--control", "C",
              "--period", "2026-01-01..2026-01-31", "--observed-at", "2026-01-31"])
    assert stop.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


@pytest.mark.parametrize(("text", "message"), [
    ("2026-07-01", "expected START..END"),
    ("2026-09-30..2026-07-01", "starts (2026-09-30) after it ends (2026-07-01)"),
    ("2026-07-01..2026-09-31", "'2026-09-31' is not a date"),
    ("2026-07-01T00:00:00..2026-09-30", "'2026-07-01T00:00:00' is not a date"),
])
def test_a_bad_period_is_named(text: str, message: str) -> None:
    """A period must be START..END of real dates or times with an offset, in order."""
    with pytest.raises(InputError) as error:
        parse_period(text)
    assert message in str(error.value)
