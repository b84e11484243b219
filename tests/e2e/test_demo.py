"""`collector demo` end to end: collect from every fake, digest, seal, verify, stop everything."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tarfile
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

import pytest

from collector.demo import run_demo
from collector.errors import InputError
from collector.windows import window_containing

NOW = datetime.now(UTC)
LAST = window_containing(NOW, "month", "UTC").previous()
BEFORE = LAST.previous()
WEEK = window_containing(NOW, "week", "UTC").previous()


def _listening(url: str) -> bool:
    parsed = urlparse(url)
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((parsed.hostname or "127.0.0.1", parsed.port or 80)) == 0


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> object:
    """One demo run shared by the checks below (it takes a few seconds)."""
    return run_demo(tmp_path_factory.mktemp("demo") / "d", now=NOW)


def test_every_stream_collects_and_known_exceptions_are_found(demo: object) -> None:
    """Each built-in stream stores records from its fake, and the seeded exceptions are detected."""
    from collector.demo import DemoResult

    assert isinstance(demo, DemoResult) and demo.ok
    assert {r.stream for r in demo.runs} == {
        "aws.cloudtrail", "aws.iam_credential_report", "aws.backup_jobs", "aws.rds_snapshots",
        "aws.iam_users", "okta.system_log", "okta.users", "github.pull_requests", "github.branch_protection",
        "github.org_settings", "github.members", "jira.change_tickets", "jira.incidents",
    }
    assert all(demo.records[r.stream] > 0 for r in demo.runs)
    for criterion in ("CC6.1", "CC7.2", "CC8.1", "A1.2"):
        assert demo.exceptions[criterion] > 0, criterion


def test_two_whole_windows_are_sealed_and_the_servers_stopped(demo: object) -> None:
    """The two ended months are sealed as a chain; no fake is still listening afterwards."""
    from collector.demo import DemoResult

    assert isinstance(demo, DemoResult)
    assert [p.name for p in demo.snapshots] == [f"{BEFORE.id}.tar", f"{LAST.id}.tar"]
    with tarfile.open(demo.snapshots[1]) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert manifest["previous"]["window"] == BEFORE.id
    assert manifest["records"]["count"] > 0
    assert not any(_listening(url) for url in demo.endpoints)


def test_plain_tools_verify_the_snapshot(demo: object, tmp_path: Path) -> None:
    """openssl verifies the signature and sha256sum every file, as the report tells an auditor."""
    from collector.demo import DemoResult

    assert isinstance(demo, DemoResult)
    with tarfile.open(demo.snapshots[-1]) as tar:
        tar.extractall(tmp_path, filter="data")
    key = tmp_path / "keys" / "seal.pub.pem"
    der = subprocess.run(["openssl", "pkey", "-pubin", "-in", str(key), "-outform", "DER"],
                         check=True, capture_output=True).stdout
    import hashlib
    assert hashlib.sha256(der).hexdigest() == demo.fingerprint
    subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(key), "-rawin",
                    "-in", "SHA256SUMS", "-sigfile", "SHA256SUMS.ed25519"], cwd=tmp_path, check=True,
                   capture_output=True)
    subprocess.run(["sha256sum", "-c", "--strict", "SHA256SUMS"], cwd=tmp_path, check=True,
                   capture_output=True)


def test_digest_links_every_exception_to_a_stored_record(demo: object) -> None:
    """The digest JSON exists, and each exception line names a record id in the store."""
    import sqlite3

    from collector.demo import DemoResult

    assert isinstance(demo, DemoResult)
    digest = json.loads(demo.digest["json"].read_text())
    assert digest["week"] == WEEK.id and digest["coverage"]["in_scope"] > 0
    with sqlite3.connect(demo.directory / "evidence.db") as conn:
        for line in digest["exceptions"]:
            row = conn.execute("SELECT status FROM evidence WHERE id = ?", (line["record_id"],)).fetchone()
            assert row == ("exception",)


def test_demo_refuses_a_folder_in_use(tmp_path: Path) -> None:
    """Pointed at a non-empty folder, the demo stops with a clear input error before starting anything."""
    (tmp_path / "something").write_text("x")
    with pytest.raises(InputError, match="not empty"):
        run_demo(tmp_path)


@pytest.mark.slow
def test_readme_demo_command_succeeds(tmp_path: Path) -> None:
    """The README's first command, as a fresh process: exit 0 and the report names the snapshots."""
    result = subprocess.run([sys.executable, "-m", "collector.cli", "demo", "--dir", str(tmp_path / "d")],
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Snapshots:" in result.stdout and "sha256sum -c --strict SHA256SUMS" in result.stdout
    assert "Traceback" not in result.stderr


def test_digest_shows_honest_coverage_of_security_and_availability(demo: object) -> None:
    """With the starter library on the security and availability criteria, the demo's digest counts
    all 36 criteria in scope, every one designed, fewer than 36 operating; each operating gap is named
    with the controls mapped to it, each control has an owner, and the report prints the gaps with
    their owners."""
    import io

    from collector.demo import DemoResult, print_report

    assert isinstance(demo, DemoResult)
    digest = json.loads(demo.digest["json"].read_text())
    assert digest == demo.summary
    cov = digest["coverage"]
    assert (cov["in_scope"], cov["designed"]) == (36, 36) and cov["excluded"] == []
    assert 0 < cov["operating"] < 36 and cov["ratio"] == round(cov["operating"] / 36, 3)
    in_scope = [c for c in digest["criteria"] if c["in_scope"]]
    assert len(in_scope) == 36 and all(c["controls"] for c in in_scope)
    gaps = [c for c in in_scope if not c["operating"]]
    assert len(gaps) == 36 - cov["operating"]
    assert len(digest["controls"]) == 46 and all(c["owner"] for c in digest["controls"])
    owner = {c["id"]: c["owner"] for c in digest["controls"]}
    acting = {a["control"] for o in digest["owners"] for a in o["actions"]}
    assert acting == {c["id"] for c in digest["controls"] if c["status"] != "operating"}
    out = io.StringIO()
    print_report(demo, out)
    report = out.getvalue()
    assert f"operating {cov['operating']} of 36 criteria in scope" in report
    assert "designed 36 of 36; design gaps: none" in report
    for gap in gaps:
        first = gap["controls"][0]
        assert gap["id"] in report and f"{first} ({owner[first]})" in report


def test_documents_and_attestations_reach_the_digest_and_the_snapshot(demo: object) -> None:
    """The demo's policy, acknowledgements (one active person missing), training and restore test
    make their controls operate, the digest names the person missing, and the last window's
    snapshot holds their records, each naming its file's SHA-256, and the files themselves."""
    from collector.demo import DemoResult

    assert isinstance(demo, DemoResult)
    digest = json.loads(demo.digest["json"].read_text())
    status = {c["id"]: c["status"] for c in digest["controls"]}
    assert status["POL-01"] == status["HR-03"] == status["AV-03"] == "operating"
    [missing] = digest["people"]["missing"]
    assert missing["type"] == "policy_ack" and missing["controls"] == ["GOV-01", "POL-01"]
    assert list(demo.people_missing.values()) == [(missing["person"],)]
    assert digest["attestations"]["window"]["policy_ack"] > 0
    with tarfile.open(demo.snapshots[-1]) as tar:
        lines = tar.extractfile("records.jsonl").read().splitlines()  # type: ignore[union-attr]
        names = set(tar.getnames())
    assert {f"files/sha256/{d.sha256}" for d in demo.documents} <= names
    documents = [json.loads(x) for x in lines if b'"stream":"manual.documents"' in x]
    assert {d["data"]["type"] for d in documents} == {
        "infosec-policy", "training-material", "restore-test", "policy_ack-export", "training-export"}
    assert {d["data"]["file_sha256"] for d in documents} == {d.sha256 for d in demo.documents}
    assert any(b'"stream":"manual.attestations"' in x for x in lines)
