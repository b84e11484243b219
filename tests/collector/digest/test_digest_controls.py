"""The organisation's controls in the digest: figures by selector at digest time, evidence at any age,
documents by type, week and window status, owners, exclusions and Type 1 readiness."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from digest_seed import NOW, at, event, insert, record, seeded_scope, user_read

from collector.catalog import Catalog
from collector.controls import ControlLibrary, Exclusion
from collector.digest import build_digest
from collector.records import EvidenceRecord
from storage import Store

CATALOG = Catalog.builtin()


def _library(*controls: str) -> ControlLibrary:
    return ControlLibrary.from_toml("\n".join(controls), "own.toml", CATALOG, None)


def _control(cid: str, criteria: str, evidence: str, every: str = "7d", owner: str = "alice@acme.example") -> str:
    return (f'[[controls]]\nid = "{cid}"\ntitle = "{cid} title"\nstatement = "{cid} is done."\n'
            f'owner = "{owner}"\ncriteria = {criteria}\nevery = "{every}"\nevidence = {evidence}\n')


def _digest(tmp_path: Path, records: list[EvidenceRecord], library: ControlLibrary,
            in_scope: tuple[str, ...] = ("CC6.1", "CC7.2", "CC8.1", "A1.2"),
            excluded: tuple[Exclusion, ...] = ()) -> dict[str, Any]:
    store = Store.open(f"sqlite:///{tmp_path / 'e.db'}")
    try:
        insert(store, records)
        scope = replace(seeded_scope(), in_scope=in_scope, streams=(), library=library, excluded=excluded)
        return build_digest(store, scope, NOW)
    finally:
        store.close()


def _controls(digest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in digest["controls"]}


def _document(doc_type: str, observed: datetime, stream: str = "manual.documents") -> EvidenceRecord:
    """A stand-in for a document or attestation record: what the lookup reads is its stream and its
    ``<type>/...`` source key (the kind these records will carry is another issue's)."""
    return record(stream, f"{doc_type}/{observed:%Y%m%d}", "config_state", observed, ("CC1.1",))


def test_evidence_is_found_at_any_age_per_stream_and_kind(tmp_path: Path) -> None:
    """The newest record of each (stream, kind) counts however old it is, and a kind of a multi-kind
    stream that fell silent months ago is found exactly while another kind goes on."""
    library = _library(
        _control("MFA-1", '["CC6.1"]', '[{stream = "synthetic.users"}]', every="1d"),
        _control("JML-1", '["CC6.1"]', '[{stream = "okta.system_log", kind = "user_lifecycle"}]', every="90d"),
        _control("LOG-1", '["CC7.2"]', '[{stream = "okta.system_log", kind = "access_log"}]', every="1d"),
    )
    august = datetime(2026, 8, 3, 9, tzinfo=UTC)
    september = datetime(2026, 9, 14, 9, tzinfo=UTC)
    records = [
        user_read("u1", august),
        record("okta.system_log", "lc-1", "user_lifecycle", september, ("CC6.2",)),
        *(record("okta.system_log", f"in-{n}", "access_log", at(29, 10 + n), ("CC6.1",)) for n in range(3)),
    ]
    controls = _controls(_digest(tmp_path, records, library))
    assert (controls["MFA-1"]["status"], controls["MFA-1"]["last_evidence_at"]) == (
        "stale", "2026-08-03T09:00:00.000000Z")
    # 77 days before the week's end: inside JML-1's 90-day cadence, although 2 months before the window.
    assert (controls["JML-1"]["status"], controls["JML-1"]["last_evidence_at"]) == (
        "operating", "2026-09-14T09:00:00.000000Z")
    assert (controls["LOG-1"]["status"], controls["LOG-1"]["records_week"]) == ("operating", 3)


def test_documents_and_attestations_are_read_by_type(tmp_path: Path) -> None:
    """The newest document or attestation of each type before the week's end decides a document
    selector: current is operating, older than its cadence or missing is due, none at all is no
    evidence; one observed after the week does not count."""
    library = _library(
        _control("GOV-A", '["CC1.2"]', '[{document = "board-minutes", every = "90d"}]', every="90d"),
        _control("GOV-B", '["CC1.3"]', '[{document = "org-chart", every = "1y"}]', every="1y"),
        _control("GOV-C", '["CC1.1"]',
                 '[{document = "code-of-conduct", every = "1y"}, {document = "policy_ack", every = "1y"}]',
                 every="1y"),
        _control("GOV-D", '["CC1.4"]', '[{document = "background-check"}]', every="1y"),
    )
    records = [
        _document("board-minutes", at(20)),
        _document("org-chart", datetime(2025, 10, 1, tzinfo=UTC)),
        _document("org-chart", at(30, 12)),  # after the week: not yet in force at its end
        record("manual.attestations", "policy_ack/alice@acme.example/infosec-policy@v3", "config_state",
               at(2), ("CC1.1",)),
        _document("background-check", at(30, 12)),
    ]
    controls = _controls(_digest(tmp_path, records, library, in_scope=("CC1.1", "CC1.2", "CC1.3", "CC1.4")))
    assert controls["GOV-A"]["status"] == "operating" and controls["GOV-A"]["due"] == []
    assert controls["GOV-A"]["last_evidence_at"] == "2026-11-20T12:00:00.000000Z"
    assert controls["GOV-B"]["status"] == "due"
    assert controls["GOV-B"]["due"] == [{"type": "org-chart", "every": "1y",
                                         "last_at": "2025-10-01T00:00:00.000000Z"}]
    assert controls["GOV-C"]["status"] == "due"
    assert controls["GOV-C"]["due"] == [{"type": "code-of-conduct", "every": "1y", "last_at": None}]
    assert controls["GOV-D"]["status"] == "no_evidence"


def test_week_and_window_to_date_are_judged_apart(tmp_path: Path) -> None:
    """A control whose only exception fell earlier in the window operates this week yet shows
    exceptions for the window to date, with both periods' counts."""
    library = _library(_control("CHG-X", '["CC8.1"]', '[{stream = "github.pull_requests"}]'))
    records = [
        record("github.pull_requests", "acme/api#1", "code_change", at(5), ("CC8.1",), "merged without review"),
        record("github.pull_requests", "acme/api#2", "code_change", at(12), ("CC8.1",)),
        record("github.pull_requests", "acme/api#3", "code_change", at(27), ("CC8.1",)),
    ]
    entry = _controls(_digest(tmp_path, records, library))["CHG-X"]
    assert (entry["status"], entry["records_week"], entry["exceptions_week"]) == ("operating", 1, 0)
    assert (entry["status_window"], entry["records_window"], entry["exceptions_window"]) == ("exceptions", 3, 1)


def test_owners_readiness_and_exclusions(tmp_path: Path) -> None:
    """Each owner is listed with the controls needing action (exceptions first) and why; coverage
    lists the exclusions with reasons; readiness is reached only when every criterion in scope is
    designed and every mapped control has current evidence."""
    changes = _control("CHG-X", '["CC8.1"]', '[{stream = "github.pull_requests"}]', owner="eng@acme.example")
    library = _library(
        changes,
        _control("LOG-1", '["CC6.1"]', '[{kind = "access_log"}]', every="1d"),
        _control("MFA-1", '["CC6.1"]', '[{kind = "mfa_status"}]', every="1d"),
    )
    pr = record("github.pull_requests", "acme/api#3", "code_change", at(27), ("CC8.1",))
    excluded = (Exclusion("CC6.4", "no data centre: hosted on AWS"),)
    ready = _digest(tmp_path / "a", [pr], _library(changes), in_scope=("CC8.1",))
    assert ready["readiness"] == {"ready": True, "gaps": []}
    digest = _digest(tmp_path / "b", [pr, user_read("u1", at(29, 20), "active user has no MFA factor")],
                     library, in_scope=("CC6.1", "CC8.1", "CC9.2"), excluded=excluded)
    assert digest["coverage"] == {"in_scope": 3, "designed": 2, "operating": 1, "ratio": 0.333,
                                  "covered": 2, "excluded": [{"criterion": "CC6.4",
                                                              "reason": "no data centre: hosted on AWS"}]}
    owners = {o["owner"]: o for o in digest["owners"]}
    assert owners["eng@acme.example"]["actions"] == [] and owners["eng@acme.example"]["controls"] == 1
    assert [(a["control"], a["status"]) for a in owners["alice@acme.example"]["actions"]] == [
        ("MFA-1", "exceptions"), ("LOG-1", "no_evidence")]
    assert digest["readiness"]["ready"] is False
    assert digest["readiness"]["gaps"][0] == "CC9.2: no control maps to it"
    assert digest["readiness"]["gaps"][1].startswith("LOG-1 (alice@acme.example): no_evidence: ")
    criteria = {c["id"]: c for c in digest["criteria"]}
    assert (criteria["CC9.2"]["status"], criteria["CC9.2"]["controls"]) == ("no_control", [])
    assert criteria["CC6.1"]["controls"] == ["LOG-1", "MFA-1"] and criteria["CC6.1"]["operating"] == []
    assert [c["id"] for c in digest["criteria"]][:1] == ["CC9.2"]  # design gaps first


def test_sign_in_events_name_their_controls(tmp_path: Path) -> None:
    """An exception line names the criteria its record is filed under and the controls whose
    selectors match the record, computed from the library in use."""
    library = _library(_control("LOG-1", '["CC7.2"]', '[{kind = "access_log"}]', every="1d"),
                       _control("EVT-1", '["CC6.1"]', '[{stream = "synthetic.events"}]', every="1d"))
    digest = _digest(tmp_path, [event("evt-x", at(26, 15), "successful sign-in without MFA")], library)
    [line] = digest["exceptions"]
    assert (line["criteria"], line["controls"], line["control"]) == (["CC6.1", "CC7.2"], ["LOG-1", "EVT-1"], "CC6.1")
