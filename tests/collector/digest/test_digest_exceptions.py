"""Exception lines: event streams grouped by who and why across weeks, state streams by source
key; every line listed under each criterion it is filed under, adding up to the criteria table."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from digest_seed import NOW, at, insert, record, seed_records, seeded_scope

from collector.digest import build_digest, render_html, render_markdown
from collector.digest.build import event_streams
from collector.digest.render import exception_rows
from collector.records import EvidenceRecord
from storage import Store


def _digest(tmp_path: Path, records: list[EvidenceRecord]) -> dict[str, Any]:
    store = Store.open(f"sqlite:///{tmp_path / 'e.db'}")
    try:
        insert(store, records)
        return build_digest(store, replace(seeded_scope(), streams=()), NOW)
    finally:
        store.close()


def _sign_in(key: str, day: int, hour: int, actor: str, month: int = 11) -> EvidenceRecord:
    """A console sign-in without MFA (an event, filed under CC6.1 and CC7.2)."""
    return record("synthetic.events", key, "access_log", at(day, hour, month), ("CC6.1", "CC7.2"),
                  "console sign-in without MFA", actor=actor)


def test_one_person_without_mfa_is_one_line_across_weeks(tmp_path: Path) -> None:
    """Carol's sign-ins without MFA (new event ids each time) are one line this week with the event
    ids as its occurrences, continuing from last week rather than new, while Dave, seen only last
    week, is resolved, and a state stream's reads still group by source key."""
    rows = [_sign_in(f"ct-{n:06d}", day, 9, "carol") for n, day in enumerate((17, 18, 24, 26, 27))]
    rows.append(_sign_in("ct-000900", 19, 9, "dave"))
    rows += [record("synthetic.users", "u9", "mfa_status", at(day, 6), ("CC6.1",),
                    "active user has no MFA factor", actor="u9@example.com") for day in (24, 25)]
    digest = _digest(tmp_path, rows)
    [carol] = [e for e in digest["exceptions"] if e["actor"] == "carol"]
    assert carol["grouped_by"] == "actor" and carol["occurrences"] == 3
    assert carol["source_keys"] == ["ct-000002", "ct-000003", "ct-000004"]
    assert carol["source_key"] == "ct-000004" and carol["by_criterion"] == {"CC6.1": 3, "CC7.2": 3}
    [user] = [e for e in digest["exceptions"] if e["stream"] == "synthetic.users"]
    assert user["grouped_by"] == "source_key" and user["occurrences"] == 2
    changes = digest["changes"]
    assert [e["stream"] for e in changes["new_exceptions"]] == ["synthetic.users"]
    assert [e["actor"] for e in changes["resolved_exceptions"]] == ["dave"]
    assert changes["continuing_exceptions"] == 1
    markdown = render_markdown(digest)
    assert "ct-000004 (+2 more)" in markdown


def test_every_criterion_lists_the_exceptions_filed_under_it(tmp_path: Path) -> None:
    """A sign-in filed under CC6.1 and CC7.2 is listed under both, and for every criterion the
    listing's occurrences add up to the criteria table's exceptions this week."""
    digest = _digest(tmp_path, [*seed_records(), _sign_in("ct-1", 24, 9, "carol")])
    rows = exception_rows(digest)
    for criterion in digest["criteria"]:
        listed = sum(r["occurrences"] for r in rows if r["criterion"] == criterion["id"])
        assert listed == criterion["exceptions_week"], criterion["id"]
    assert {r["criterion"] for r in rows if r["e"]["actor"] == "carol"} == {"CC6.1", "CC7.2"}
    markdown = render_markdown(digest)
    assert markdown.count("| carol |") == 2
    # Each line links to the source; the page says how to find the stored record.
    assert "](<https:\\/\\/source.invalid/synthetic.events/ct-1>)" in markdown
    assert "`collector show <latest record>`" in markdown
    assert "<code>collector show</code>" in render_html(digest)


def test_event_streams_come_from_the_connectors_declared_modes(tmp_path: Path) -> None:
    """The streams grouped by actor are those whose connector declares mode "events"."""
    from collector.config import load_settings

    (tmp_path / "config.toml").write_text('[storage]\nurl = "sqlite:///e.db"\n')
    events = event_streams(load_settings(tmp_path / "config.toml"))
    assert {"aws.cloudtrail", "okta.system_log", "github.pull_requests"} <= events
    assert not {"okta.users", "aws.iam_credential_report"} & events
