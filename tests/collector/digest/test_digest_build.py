"""The digest's figures over a seeded store: coverage, per-criterion counts, grouped exceptions,
stream status, changes since last week, scope and time-zone days."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from digest_seed import (
    NOW,
    at,
    event,
    insert,
    seed_records,
    seed_runs,
    seeded_scope,
    user_read,
)

from collector.catalog import Catalog
from collector.config import load_settings
from collector.digest import build_digest, default_week, scope_from_settings
from collector.windows import parse_window
from storage import Store
from storage.digest_queries import record_delivery


def _by_id(digest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in digest["criteria"]}


def test_contract_fields_and_exact_figures(store_url: str) -> None:
    """On SQLite and PostgreSQL the digest has the contract's keys and exactly the seeded counts."""
    store = Store.open(store_url)
    insert(store, seed_records())
    seed_runs(store)
    digest = build_digest(store, seeded_scope(), NOW)
    store.close()
    assert digest["week"] == "2026-W48"
    assert digest["windows"] == ["2026-11"]
    assert digest["generated_at"] == "2026-11-30T08:00:00.000000Z"
    # Operating: only CC8.1 (CHG-01's pull requests are within 7 days); CC6.1 and CC7.2 have
    # exceptions, A1.2's backups are stale. Covered: criteria with evidence filed this week.
    assert digest["coverage"] == {"in_scope": 4, "designed": 4, "operating": 1, "ratio": 0.25,
                                  "covered": 3, "excluded": []}
    contract = {"id", "records_week", "records_window", "exceptions_week", "last_evidence_at", "status",
                "controls"}
    assert all(contract <= c.keys() for c in digest["criteria"])
    figures = [(c["id"], c["records_week"], c["records_window"], c["exceptions_week"], c["status"],
                c["last_evidence_at"]) for c in digest["criteria"]]
    assert figures == [
        ("A1.2", 0, 1, 0, "no_evidence", "2026-11-19T12:00:00.000000Z"),
        ("CC6.1", 21, 27, 8, "exceptions", "2026-11-29T06:00:00.000000Z"),
        ("CC7.2", 7, 12, 1, "exceptions", "2026-11-26T15:00:00.000000Z"),
        ("CC8.1", 2, 2, 0, "covered", "2026-11-27T11:00:00.000000Z"),
    ]
    by_id = _by_id(digest)
    assert by_id["CC6.1"]["records_by_day"] == [5, 4, 2, 4, 2, 2, 2]
    assert by_id["CC7.2"]["records_by_day"] == [3, 2, 0, 2, 0, 0, 0]
    assert digest["days"][0] == "2026-11-23" and digest["days"][-1] == "2026-11-29"


def test_repeated_state_reads_are_one_exception_line(digest: dict[str, Any], seeded_store: Store) -> None:
    """Seven daily reads of one user without MFA are one line (occurrences 7, latest record id),
    and every exception line names a stored exception record."""
    contract = ["record_id", "control", "stream", "source_key", "reason", "first_seen", "last_seen",
                "occurrences"]
    lines = [[e[k] for k in contract[1:]] for e in digest["exceptions"]]
    assert lines == [
        ["CC6.1", "synthetic.events", "evt-x", "successful sign-in without MFA",
         "2026-11-26T15:00:00.000000Z", "2026-11-26T15:00:00.000000Z", 1],
        ["CC6.1", "synthetic.users", "u00001", "active user has no MFA factor",
         "2026-11-23T06:00:00.000000Z", "2026-11-29T06:00:00.000000Z", 7],
    ]
    latest_read = user_read("u00001", at(29, 6), "active user has no MFA factor")
    assert digest["exceptions"][1]["record_id"] == latest_read.id
    assert digest["exceptions"][0]["actor"] == "bob@example.com"
    assert digest["exceptions"][0]["source_url"] == "https://source.invalid/synthetic.events/evt-x"
    with seeded_store.engine.connect() as conn:
        for line in digest["exceptions"] + digest["changes"]["resolved_exceptions"]:
            status = conn.execute(sa.text("SELECT status FROM evidence WHERE id = :i"),
                                  {"i": line["record_id"]}).scalar_one()
            assert status == "exception"


def test_stream_status_ok_failing_stale(digest: dict[str, Any]) -> None:
    """A failed latest run is failing with its error; no ok run within 2x interval (or never) is
    stale; a run stopped by shutdown after a recent success is still ok."""
    streams = {s["id"]: (s["status"], s["records_week"], s["error"]) for s in digest["streams"]}
    assert streams == {
        "synthetic.events": ("ok", 7, None),
        "synthetic.users": ("failing", 14, "AuthError: okta: token rejected"),
        "github.pull_requests": ("stale", 2, "no successful run within 2h"),
        "aws.backup_jobs": ("ok", 0, None),
        "okta.system_log": ("stale", 0, "never collected successfully"),
    }
    users = next(s for s in digest["streams"] if s["id"] == "synthetic.users")
    assert users["last_success_at"] == "2026-11-30T05:01:00.000000Z"


def test_changes_since_last_week(digest: dict[str, Any]) -> None:
    """New, resolved and continuing exception groups and coverage changes are computed against the
    previous week in the store."""
    changes = digest["changes"]
    assert changes["previous_week"] == "2026-W47"
    # W47: CC6.1 and A1.2 had exceptions, CC7.2's sign-ins were stale, CC8.1 had no evidence.
    assert changes["coverage"] == {
        "previous": {"in_scope": 4, "designed": 4, "operating": 0, "ratio": 0.0, "covered": 3},
        "operating_delta": 1, "covered_delta": 0, "ratio_delta": 0.25}
    assert changes["newly_covered"] == ["CC8.1"]
    assert changes["newly_uncovered"] == ["A1.2"]
    assert [(e["stream"], e["source_key"]) for e in changes["new_exceptions"]] == [
        ("synthetic.events", "evt-x")]
    assert [(e["stream"], e["source_key"], e["reason"], e["control"])
            for e in changes["resolved_exceptions"]] == [
        ("aws.backup_jobs", "job-1", "backup job FAILED", "A1.2")]
    assert changes["continuing_exceptions"] == 1


def test_week_spanning_two_windows_lists_both(tmp_path: Path) -> None:
    """A week that crosses a month boundary lists both windows; window-to-date starts at the first."""
    store = Store.open(f"sqlite:///{tmp_path / 'e.db'}")
    insert(store, [event("sep", datetime(2026, 9, 29, 12, tzinfo=UTC)),
                   event("oct", datetime(2026, 10, 2, 12, tzinfo=UTC))])
    scope = replace(seeded_scope(), week=parse_window("2026-W40", "UTC"), streams=())
    digest = build_digest(store, scope, NOW)
    assert digest["windows"] == ["2026-09", "2026-10"]
    assert _by_id(digest)["CC7.2"]["records_window"] == 2
    assert _by_id(digest)["CC7.2"]["records_week"] == 2


def test_days_follow_the_configured_time_zone(tmp_path: Path) -> None:
    """In America/New_York, an event at 02:00 UTC on Tuesday counts on Monday's local day."""
    store = Store.open(f"sqlite:///{tmp_path / 'e.db'}")
    insert(store, [event("late", datetime(2026, 11, 24, 2, tzinfo=UTC))])
    scope = replace(seeded_scope(), week=parse_window("2026-W48", "America/New_York"), streams=())
    digest = build_digest(store, scope, NOW)
    assert digest["week_start"] == "2026-11-23T05:00:00.000000Z"
    assert _by_id(digest)["CC7.2"]["records_by_day"] == [1, 0, 0, 0, 0, 0, 0]


def test_scope_is_every_criterion_of_the_chosen_categories(tmp_path: Path) -> None:
    """Scope is every criterion of [scope] categories (default security: CC1.1-CC9.2) minus the
    exclusions, whatever the enabled streams file under. The default week is the last complete one."""
    config = tmp_path / "config.toml"
    config.write_text('[connectors.synthetic]\ninterval = "15m"\n'
                      '[filing]\n"synthetic.users" = ["CC6.1", "CC6.2"]\n')
    settings = load_settings(config)
    scope = scope_from_settings(settings, None, NOW)
    assert len(scope.in_scope) == 33
    assert scope.in_scope[0] == "CC1.1" and scope.in_scope[-1] == "CC9.2"
    assert scope.week.id == "2026-W48"
    assert [(s.id, s.interval) for s in scope.streams] == [
        ("synthetic.events", timedelta(minutes=15)), ("synthetic.users", timedelta(minutes=15))]
    config.write_text('[connectors.synthetic]\n[scope]\ncategories = ["security", "availability"]\n'
                      'exclude = [{criterion = "CC6.4", reason = "no data centre: hosted on AWS"}]\n')
    in_scope = scope_from_settings(load_settings(config), "2026-W40", NOW).in_scope
    assert len(in_scope) == 35 and "CC6.4" not in in_scope and in_scope[-3:] == ("A1.1", "A1.2", "A1.3")
    assert default_week("UTC", datetime(2026, 11, 30, 0, 0, tzinfo=UTC)).id == "2026-W48"
    assert default_week("UTC", datetime(2026, 11, 29, 23, 59, tzinfo=UTC)).id == "2026-W47"


def test_out_of_scope_criteria_with_evidence_follow_the_in_scope_ones(tmp_path: Path) -> None:
    """A criterion with evidence but not in scope is listed after every in-scope one and does not
    count towards coverage."""
    store = Store.open(f"sqlite:///{tmp_path / 'e.db'}")
    # Late on Sunday: AC-02 (sign-ins, every 1d) is operating at the end of the week, so CC6.1
    # and CC7.2 are covered, yet neither counts: only CC8.1 is in scope.
    insert(store, [event("a", at(29, 23))])
    scope = replace(seeded_scope(), in_scope=("CC8.1",), streams=())
    digest = build_digest(store, scope, NOW)
    assert [(c["id"], c["in_scope"], c["status"], c["records_week"]) for c in digest["criteria"]] == [
        ("CC8.1", True, "no_evidence", 0), ("CC6.1", False, "covered", 1), ("CC7.2", False, "covered", 1)]
    assert digest["coverage"] == {"in_scope": 1, "designed": 1, "operating": 0, "ratio": 0.0,
                                  "covered": 0, "excluded": []}
    assert Catalog.builtin().criteria["CC8.1"].title == digest["criteria"][0]["title"]


def test_failed_deliveries_of_earlier_digests_are_reported(seeded_store: Store) -> None:
    """A failed delivery of last week's digest appears in this week's digest until a later attempt
    for the same week and channel succeeds."""
    engine = seeded_store.engine
    record_delivery(engine, "2026-W47", "slack", "2026-11-23T07:00:00.000000Z", "failed", "HTTP 500")
    record_delivery(engine, "2026-W47", "email", "2026-11-23T07:00:00.000000Z", "failed", "refused")
    record_delivery(engine, "2026-W47", "email", "2026-11-23T08:00:00.000000Z", "ok", None)
    record_delivery(engine, "2026-W48", "slack", "2026-11-30T07:00:00.000000Z", "failed", "same week")
    digest = build_digest(seeded_store, seeded_scope(), NOW)
    assert digest["delivery_failures"] == [
        {"week": "2026-W47", "channel": "slack", "attempted_at": "2026-11-23T07:00:00.000000Z",
         "error": "HTTP 500"}]
