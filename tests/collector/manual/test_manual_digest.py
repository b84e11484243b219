"""The digest shows the evidence people bring: documents received and due, attestations, people missing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from manual_helpers import Env

from collector.attestations import parse_columns
from collector.digest import build_digest, render_html, render_markdown
from collector.digest.build import scope_from_settings
from collector.digest.job import run_digest
from collector.manual import DocumentFacts, add_document, check_people, import_attestations

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # Monday after 2026-W47 (16-22 November)


def _at(day: int) -> datetime:
    return datetime(2026, 11, day, 12, 0, tzinfo=UTC)


def _seed(env: Env) -> None:
    """In W47: a restore test (AV-03), the policy (POL-01), acknowledgements by two of three people
    with a check on the 20th, and training for all three; no training material (HR-03 stays due)."""
    for name, doc_type, control, day in (("restore.pdf", "restore-test", "AV-03", 18),
                                         ("policy.pdf", "infosec-policy", "POL-01", 17)):
        path = env.dir / name
        path.write_bytes(name.encode())
        add_document(env.settings, env.store, env.blobs, path,
                     DocumentFacts(doc_type, (control,), observed_at=_at(day)), now=_at(day))
    acks = env.dir / "acks.csv"
    acks.write_text("Email,Policy,Signed\nalice@acme.example,infosec-policy@v3,2026-11-18\n"
                    "bob@acme.example,infosec-policy@v3,2026-11-19\n")
    import_attestations(env.settings, env.store, env.blobs, acks, doc_type="policy_ack",
                        columns=parse_columns("person=Email,item=Policy,at=Signed"), now=_at(20))
    lms = env.dir / "lms.csv"
    lms.write_text("User,Course,Done\n" + "".join(
        f"{p}@acme.example,Security awareness,2026-11-19\n" for p in ("alice", "bob", "carol")))
    import_attestations(env.settings, env.store, env.blobs, lms, doc_type="training",
                        columns=parse_columns("person=User,item=Course,at=Done"), now=_at(20))
    check_people(env.settings, env.store, now=_at(20))


@pytest.fixture
def digest(env: Env) -> dict[str, Any]:
    """The W47 digest after the seed, with a people check at generation."""
    _seed(env)
    check_people(env.settings, env.store, now=NOW)
    return build_digest(env.store, scope_from_settings(env.settings, "2026-W47", NOW), NOW)


def test_documents_make_their_controls_operate_and_the_missing_ones_are_due(digest: dict[str, Any]) -> None:
    """The restore test makes AV-03 operating; HR-03 lacks its training material, listed as due
    under its owner; the documents received in the week are listed with their files."""
    controls = {c["id"]: c for c in digest["controls"]}
    assert controls["AV-03"]["status"] == "operating"
    assert controls["HR-03"]["status"] == "due"
    assert {"owner": "security-lead@example.com", "control": "HR-03", "title": controls["HR-03"]["title"],
            "type": "training-material", "every": "1y", "last_at": None} in digest["documents"]["due"]
    received = {d["type"]: d for d in digest["documents"]["received_week"]}
    assert set(received) == {"restore-test", "infosec-policy", "policy_ack-export", "training-export"}
    assert received["restore-test"]["controls"] == ["AV-03"] and received["restore-test"]["name"] == "restore.pdf"


def test_a_person_missing_an_acknowledgement_is_an_exception_of_the_requiring_controls(
        digest: dict[str, Any]) -> None:
    """Carol's missing acknowledgement in the week's check makes POL-01 and GOV-01 show exceptions,
    and the exception line names those controls."""
    controls = {c["id"]: c for c in digest["controls"]}
    assert controls["POL-01"]["status"] == "exceptions" and controls["POL-01"]["exceptions_week"] == 1
    [line] = [e for e in digest["exceptions"] if e["stream"] == "people.coverage"]
    assert line["source_key"] == "policy_ack/carol@acme.example/infosec-policy@v3"
    assert line["controls"] == ["GOV-01", "POL-01"] and line["actor"] == "carol@acme.example"


def test_attestations_are_counted_by_type_and_people_missing_come_from_the_latest_check(
        digest: dict[str, Any]) -> None:
    """This week's attestations per type; the people section is the check made at generation."""
    assert digest["attestations"]["week"] == {"policy_ack": 2, "training": 3}
    people = digest["people"]
    assert people["checked_at"] == "2026-11-23T08:00:00.000000Z" and people["roster"] == "roster.csv"
    assert people["missing"] == [{"type": "policy_ack", "item": "infosec-policy@v3", "every": None,
                                  "person": "carol@acme.example", "last_at": None,
                                  "reason": "no policy_ack of 'infosec-policy@v3' on record",
                                  "controls": ["GOV-01", "POL-01"]}]
    assert {(r["type"], r["covered"], r["people"]) for r in people["requirements"]} == {
        ("policy_ack", 2, 3), ("training", 3, 3)}


def test_markdown_and_html_say_the_same(digest: dict[str, Any]) -> None:
    """Both renderings list the documents due, the attestation counts and who is missing what."""
    markdown, html = render_markdown(digest), render_html(digest)
    for text in (markdown, html):
        assert "Documents and attestations" in text and "training-material" in text
        assert "policy_ack 2, training 3" in text and "carol@acme.example" in text


def test_the_digest_job_checks_people_first_and_says_when_it_cannot(tmp_path: Path, env: Env) -> None:
    """run_digest makes a fresh check before building; a roster it cannot read is said in people.error."""
    _seed(env)
    done = run_digest(env.settings, env.store, week="2026-W47", out_dir=tmp_path / "out", now=NOW, send=False)
    assert done.digest["people"]["checked_at"] == "2026-11-23T08:00:00.000000Z"
    (env.dir / "roster.csv").unlink()
    later = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    done = run_digest(env.settings, env.store, week="2026-W47", out_dir=tmp_path / "out", now=later, send=False)
    assert "roster.csv does not exist" in done.digest["people"]["error"]
    assert done.digest["people"]["checked_at"] == "2026-11-23T08:00:00.000000Z"  # the last good one
