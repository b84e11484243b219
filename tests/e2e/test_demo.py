"""`collector demo` end to end: collect from every fake, digest, seal, verify, stop everything."""

from __future__ import annotations

import json
import os
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
SAID: list[str] = []
"""What the shared demo run printed as it went."""


def _listening(url: str) -> bool:
    parsed = urlparse(url)
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((parsed.hostname or "127.0.0.1", parsed.port or 80)) == 0


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> object:
    """One demo run shared by the checks below (it takes a few seconds)."""
    return run_demo(tmp_path_factory.mktemp("demo") / "d", now=NOW, say=SAID.append)


def test_every_stream_collects_and_known_exceptions_are_found(demo: object) -> None:
    """Each built-in stream stores records from its fake, and the seeded exceptions are detected."""
    from collector.demo import DemoResult

    assert isinstance(demo, DemoResult) and demo.ok
    assert {r.stream for r in demo.runs} == {
        "aws.cloudtrail", "aws.iam_credential_report", "aws.backup_jobs", "aws.rds_snapshots",
        "aws.iam_users", "okta.system_log", "okta.users", "github.pull_requests", "github.branch_protection",
        "github.org_settings", "github.members", "jira.change_tickets", "jira.incidents",
        "identity.offboarding", "identity.orphans",
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


def test_nothing_is_sealed_before_it_was_collected(demo: object, tmp_path: Path) -> None:
    """Every demo snapshot's sealed_at is at or after each of its records' collected_at, and its
    verify.sh passes with the fingerprint the demo prints."""
    from collector.demo import DemoResult

    assert isinstance(demo, DemoResult)
    for path in demo.snapshots:
        with tarfile.open(path) as tar:
            manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
            lines = tar.extractfile("records.jsonl").read().splitlines()  # type: ignore[union-attr]
            tar.extractall(tmp_path / path.stem, filter="data")
        newest = max((json.loads(line)["collected_at"] for line in lines), default="")
        assert newest <= manifest["sealed_at"], path.name
        done = subprocess.run(["sh", str(tmp_path / path.stem / "verify.sh"), demo.fingerprint],
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr


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


def test_demo_seals_into_the_configured_out_dir_and_says_each_snapshot_is_valid(demo: object) -> None:
    """The demo's snapshots are in its config's [seal] out_dir (where `collector seal` with that
    config writes too), and its verify step reports every snapshot and the chain valid."""
    from collector.config import load_settings
    from collector.demo import DemoResult

    assert isinstance(demo, DemoResult)
    out_dir = load_settings(demo.config).resolve(load_settings(demo.config).seal.out_dir)
    assert out_dir == demo.directory / "snapshots"
    assert all(p.parent == out_dir for p in demo.snapshots)
    verified = SAID[next(i for i, line in enumerate(SAID) if line.startswith("[6/7]")) + 1:]
    for path in demo.snapshots:
        assert any(path.name in line and " valid (" in line for line in verified), SAID
    assert any(f"the chain of {len(demo.snapshots)} snapshots is valid" in line for line in verified)


def test_demo_refuses_a_folder_in_use(tmp_path: Path) -> None:
    """Pointed at a non-empty folder, the demo stops with a clear input error before starting anything."""
    (tmp_path / "something").write_text("x")
    with pytest.raises(InputError, match="not empty"):
        run_demo(tmp_path)


@pytest.mark.slow
def test_readme_demo_command_succeeds(tmp_path: Path) -> None:
    """The README's first command, as a fresh process from an unactivated virtualenv: exit 0, each
    snapshot reported valid, and the verify commands it prints run as printed, from the same folder."""
    script = Path(sys.executable).parent / "collector"
    assert script.is_file()
    env = {**os.environ, "PATH": "/usr/bin:/bin"}  # the virtualenv is not activated
    result = subprocess.run([str(script), "demo", "--dir", str(tmp_path / "d")], cwd=tmp_path,
                            capture_output=True, text=True, timeout=240, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Snapshots:" in result.stdout and "sha256sum -c --strict SHA256SUMS" in result.stdout
    assert "Traceback" not in result.stderr
    assert f"{BEFORE.id}.tar" in result.stdout and "valid" in result.stdout + result.stderr
    lines = result.stdout.splitlines()
    verify = next(line.strip() for line in lines if " verify " in line and "--fingerprint" in line)
    assert verify.startswith(f"{script} verify "), verify  # not a bare `collector`: not on $PATH
    done = subprocess.run(verify, shell=True, cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, env=env)
    assert done.returncode == 0 and "OK chain of 2 snapshots" in done.stdout, done.stderr
    start = next(i for i, line in enumerate(lines) if line.startswith("Verify by hand"))
    by_hand = " && ".join(line.strip().split("   #")[0] for line in lines[start + 1:start + 5])
    done = subprocess.run(["sh", "-c", by_hand], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    fingerprint = verify.rsplit(" ", 1)[1]
    assert done.returncode == 0 and fingerprint in done.stdout and "Signature Verified" in done.stdout, \
        done.stdout + done.stderr


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
    # The access review made 10 days ago is in this window only early in a month.
    documents = [d for d in documents if d["data"]["type"] != "access_review"]
    assert {d["data"]["type"] for d in documents} == {
        "infosec-policy", "training-material", "restore-test", "policy_ack-export", "training-export"}
    assert {d["data"]["file_sha256"] for d in documents} == {d.sha256 for d in demo.documents}
    assert any(b'"stream":"manual.attestations"' in x for x in lines)


def test_demo_without_the_sandbox_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the sandbox is not installed (the production image), the demo is an input error saying
    why, not a traceback, and it starts nothing."""
    monkeypatch.setitem(sys.modules, "sandbox", None)
    monkeypatch.setitem(sys.modules, "sandbox.world", None)
    with pytest.raises(InputError, match="the demo needs the sandbox"):
        run_demo(tmp_path / "d")
    assert not (tmp_path / "d" / "config.toml").exists()
def test_the_departed_person_and_the_overdue_revocation_reach_the_digest(demo: object) -> None:
    """Dennis Ritchie, DEPROVISIONED in Okta, still holds his GitHub membership and IAM user; the
    AWS review revoked bob 10 days ago and his IAM user remains: both are in the digest."""
    from collector.demo import DemoResult

    assert isinstance(demo, DemoResult)
    ids = demo.summary["identities"]
    dennis = next(p for p in ids["left_week"] if p["person"] == "dennis.ritchie@example.com")
    assert {(a["system"], a["account"], a["state"]) for a in dennis["still_active"]} == {
        ("github", "acme/dmr", "overdue"), ("aws", "dritchie", "overdue")}
    (campaign,) = ids["campaigns"]
    assert campaign["system"] == "aws" and campaign["revocations"]["overdue"] == 1
    assert campaign["decided"] == 4 and campaign["population"] == 5
    (overdue,) = ids["revocations_overdue"]
    assert overdue["account"].endswith(":user/bob")
    markdown = demo.digest["md"].read_text()
    assert "dennis.ritchie@example.com" in markdown and "| revocation overdue |" in markdown
