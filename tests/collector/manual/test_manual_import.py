"""`collector evidence import`: every row checked first, the CSV stored as a document, one attestation per row."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from manual_helpers import Env, filings, rows, runs

from collector.attestations import parse_columns
from collector.cli import main
from collector.errors import InputError
from collector.manual import import_attestations

NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
COLUMNS = parse_columns("person=Email,item=Policy,at=Signed")
ACKS = ("Email,Policy,Signed\n"
        "alice@acme.example,infosec-policy@v3,2026-11-02\n"
        "Bob@Acme.example,infosec-policy@v3,2026-11-03T10:15:00+01:00\n")


def _csv(env: Env, text: str = ACKS, name: str = "acks.csv") -> Path:
    path = env.dir / name
    path.write_text(text)
    return path


def test_each_row_is_an_attestation_pointing_to_the_stored_csv(env: Env) -> None:
    """The CSV is a policy_ack-export document in the blob store; each row an attestation holding
    the CSV's SHA-256, observed at its own time, filed under the controls requiring policy_ack."""
    path = _csv(env)
    done = import_attestations(env.settings, env.store, env.blobs, path, doc_type="policy_ack",
                               columns=COLUMNS, now=NOW)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert (done.rows, done.new, done.already) == (2, 2, 0) and done.document.sha256 == digest
    [document] = rows(env.store, "manual.documents")
    assert document["source_key"] == f"policy_ack-export/{digest}"
    assert document["data"]["period"] == {"start": "2026-11-02T00:00:00.000000Z",
                                          "end": "2026-11-03T09:15:00.000000Z"}
    assert document["observed_at"] == "2026-11-03T09:15:00.000000Z"
    alice, bob = rows(env.store, "manual.attestations")
    assert alice["source_key"] == "policy_ack/alice@acme.example/infosec-policy@v3"
    assert alice["data"] == {"type": "policy_ack", "person": "alice@acme.example",
                             "item": "infosec-policy@v3", "at": "2026-11-02T00:00:00.000000Z",
                             "file_sha256": digest, "line": 2}
    assert bob["actor"] == "bob@acme.example" and bob["observed_at"] == "2026-11-03T09:15:00.000000Z"
    # GOV-01 (CC1.1, CC1.5) and POL-01 (CC1.1, CC2.2, CC5.3) require policy_ack.
    assert alice["controls"] == ["CC1.1", "CC1.5", "CC2.2", "CC5.3"] == filings(env.store, alice["id"])
    assert env.blobs.exists(digest)
    assert runs(env.store, "manual.attestations") == [("ok", 2, 2)]


def test_importing_the_same_csv_again_stores_nothing(env: Env) -> None:
    """A second import of the same file stores no document and no attestation."""
    path = _csv(env)
    import_attestations(env.settings, env.store, env.blobs, path, doc_type="policy_ack", columns=COLUMNS,
                        now=NOW)
    again = import_attestations(env.settings, env.store, env.blobs, path, doc_type="policy_ack",
                                columns=COLUMNS, now=NOW)
    assert (again.new, again.already, again.document.new) == (0, 2, False)
    assert len(rows(env.store, "manual.attestations")) == 2 and len(rows(env.store, "manual.documents")) == 1


def test_a_later_export_stores_only_its_new_statements(env: Env) -> None:
    """An export repeating earlier rows (in another order, another file) adds only the new ones."""
    import_attestations(env.settings, env.store, env.blobs, _csv(env), doc_type="policy_ack", columns=COLUMNS,
                        now=NOW)
    later = ("Email,Policy,Signed\n"
             "carol@acme.example,infosec-policy@v3,2026-11-10\n"
             "bob@acme.example,infosec-policy@v3,2026-11-03T09:15:00Z\n"
             "alice@acme.example,infosec-policy@v3,2026-11-02\n")
    done = import_attestations(env.settings, env.store, env.blobs, _csv(env, later, "acks-2.csv"),
                               doc_type="policy_ack", columns=COLUMNS, now=NOW)
    assert (done.new, done.already, done.document.new) == (1, 2, True)
    people = [r["data"]["person"] for r in rows(env.store, "manual.attestations")]
    assert sorted(people) == ["alice@acme.example", "bob@acme.example", "carol@acme.example"]


def test_a_bad_row_stores_nothing_of_the_file(env: Env) -> None:
    """A bad row anywhere is one error naming the file, line and column, and neither the CSV nor
    any row is stored (not even the blob)."""
    path = _csv(env, ACKS + "dave@acme.example,infosec-policy@v3,31/12/2026\n")
    with pytest.raises(InputError) as error:
        import_attestations(env.settings, env.store, env.blobs, path, doc_type="policy_ack",
                            columns=COLUMNS, now=NOW)
    assert str(error.value) == (f"{path}: line 4: column 'Signed' (at): '31/12/2026' is not a date "
                                "(2026-03-31) or an RFC 3339 time (2026-03-31T14:05:00Z)")
    assert rows(env.store, "manual.documents") == [] == rows(env.store, "manual.attestations")
    assert not env.blobs.exists(hashlib.sha256(path.read_bytes()).hexdigest())


def test_a_statement_dated_in_the_future_is_a_bad_row(sqlite_env: Env) -> None:
    """A signing time past now is refused with its line and column, like any bad cell."""
    path = _csv(sqlite_env, ACKS + "dave@acme.example,infosec-policy@v3,2027-01-01\n")
    with pytest.raises(InputError, match=r"line 4: column 'Signed' \(at\): 2027-01-01T00:00:00.000000Z is in the future"):
        import_attestations(sqlite_env.settings, sqlite_env.store, sqlite_env.blobs, path,
                            doc_type="policy_ack", columns=COLUMNS, now=NOW)


def test_a_type_no_control_requires_is_refused(sqlite_env: Env) -> None:
    """Attestations of a type no control requires would be filed nowhere: refused, naming the type."""
    with pytest.raises(InputError, match=re.escape(
            "--type vendor_ack: no control of collector/data/controls.toml requires 'vendor_ack'")):
        import_attestations(sqlite_env.settings, sqlite_env.store, sqlite_env.blobs, _csv(sqlite_env),
                            doc_type="vendor_ack", columns=COLUMNS, now=NOW)


def test_the_cli_imports_then_reports_people_coverage(sqlite_env: Env,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """`collector evidence import` prints the export's record and SHA-256, the counts, and who on
    the roster is still missing each requirement; a bad row is exit 2 with one line."""
    path = _csv(sqlite_env)
    base = ["--config", str(sqlite_env.config), "evidence", "import", "--type", "policy_ack"]
    assert main([*base, str(path), "--columns", "person=Email,item=Policy,at=Signed"]) == 0
    out = capsys.readouterr()
    [document] = rows(sqlite_env.store, "manual.documents")
    assert out.out == f"record  {document['id']}\nsha256  {document['data']['file_sha256']}\n"
    assert "policy_ack: 2 rows, 2 new attestations, 0 already stored; the export stored" in out.err
    assert ("people coverage: policy_ack infosec-policy@v3: 2 of 3 people (roster.csv); "
            "missing: carol@acme.example") in out.err
    bad = _csv(sqlite_env, "Email,Policy,Signed\nnot-an-email,infosec-policy@v3,2026-11-02\n", "bad.csv")
    assert main([*base, str(bad), "--columns", "person=Email,item=Policy,at=Signed"]) == 2
    err = capsys.readouterr().err
    assert err == f"collector: error: {bad}: line 2: column 'Email' (person): 'not-an-email' is not an email address\n"
