"""The digest's identities section: who left this week and where they still have access, reviews, overdue revocations."""

from __future__ import annotations

from datetime import UTC, datetime

from identity_seed import DAY, HOUR, IdEnv, iam_user, member, okta, store_read

from collector.digest import build_digest, scope_from_settings
from collector.digest.render import render_html, render_markdown
from collector.identities import run_identity_checks
from collector.identities.demo import fill_in
from collector.identities.review import import_decisions, start_review
from collector.manual import open_files

# Week 2026-W47 runs Mon 16 Nov .. Sun 22 Nov; the digest is generated on Monday 23 Nov.
LEFT = datetime(2026, 11, 17, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)


def _seed(env: IdEnv) -> None:
    """Bob left on Tuesday and keeps a GitHub membership and an IAM user; Eve left weeks ago and
    her name carries markup; the AWS review of 2026-Q4 revoked Alice's IAM user 10 days ago."""
    store_read(env.store, "okta.users", [
        okta("00u1", "alice@acme.example"), okta("00u2", "bob@acme.example", "DEPROVISIONED", LEFT),
        okta("00u3", "eve<i>@acme.example", "SUSPENDED", LEFT - 30 * DAY)], LEFT - 5 * DAY)
    store_read(env.store, "aws.iam_users", [iam_user("alice", "alice@acme.example")], LEFT - 5 * DAY)
    sheet = env.dir / "sheet.csv"
    blobs = open_files(env.settings)
    start_review(env.settings, env.store, blobs, "aws", quarter="2026-Q4", out=sheet, now=LEFT - 5 * DAY)
    fill_in(sheet, lambda account: ("revoke", "moved to sales"), sheet)  # its one row: alice's IAM user
    import_decisions(env.settings, env.store, blobs, sheet, "lead@acme.example", now=LEFT - 5 * DAY)
    store_read(env.store, "okta.users", [
        okta("00u1", "alice@acme.example"), okta("00u2", "bob@acme.example", "DEPROVISIONED", LEFT),
        okta("00u3", "eve<i>@acme.example", "SUSPENDED", LEFT - 30 * DAY)], NOW - 2 * DAY)
    store_read(env.store, "github.members", [member("bob-gh", "bob@acme.example"),
                                              member("eve-gh", "eve<i>@acme.example")], NOW - 2 * DAY)
    store_read(env.store, "aws.iam_users", [iam_user("alice", "alice@acme.example"),
                                             iam_user("bob", "bob@acme.example")], NOW - 2 * DAY)
    run_identity_checks(env.settings, env.store, now=NOW - 2 * DAY + HOUR)


def test_the_digest_lists_who_left_where_they_still_have_access_and_overdue_revocations(sqlite_env: IdEnv) -> None:
    """Bob (left this week) is listed with his GitHub and AWS accounts past the grace; Eve, who
    left a month ago but keeps her GitHub membership, is listed too; the AWS campaign shows 1 of
    1 decided and its revocation overdue."""
    _seed(sqlite_env)
    digest = build_digest(sqlite_env.store, scope_from_settings(sqlite_env.settings, "2026-W47", NOW), NOW)
    ids = digest["identities"]
    assert [(p["person"], p["this_week"]) for p in ids["left_week"]] == [
        ("eve<i>@acme.example", False), ("bob@acme.example", True)]
    assert [(a["system"], a["account"], a["state"]) for a in ids["left_week"][1]["still_active"]] == [
        ("aws", "bob", "overdue"), ("github", "acme/bob-gh", "overdue")]
    (campaign,) = ids["campaigns"]
    assert {k: campaign[k] for k in ("campaign", "population", "decided", "keep", "revoke", "revocations")} == {
        "campaign": "aws-2026-Q4", "population": 1, "decided": 1, "keep": 0, "revoke": 1,
        "revocations": {"done": 0, "pending": 0, "overdue": 1}}
    (overdue,) = ids["revocations_overdue"]
    assert overdue["account"] == "arn:aws:iam::123456789012:user/alice"
    assert overdue["reviewer"] == "lead@acme.example"
    markdown = render_markdown(digest)
    assert "| bob@acme.example | 2026-11-17 09:00 UTC | aws: bob (overdue), github: acme/bob-gh (overdue) |" \
        in markdown
    assert "| aws-2026-Q4 | 1 | 1 | 0 | 1 | 0 | 0 | 1 |" in markdown
    html = render_html(digest)
    assert 'id="people-left"' in html and 'id="revocations-overdue"' in html


def test_vendor_text_in_the_identities_section_is_escaped_in_html(sqlite_env: IdEnv) -> None:
    """A person whose email carries markup, leaving this week, shows as text in the HTML digest."""
    store_read(sqlite_env.store, "okta.users", [okta("00u3", "eve<i>@acme.example", "SUSPENDED", LEFT)],
               LEFT + HOUR)
    store_read(sqlite_env.store, "github.members", [member("eve-gh", "eve<i>@acme.example")], LEFT + 2 * DAY)
    run_identity_checks(sqlite_env.settings, sqlite_env.store, now=LEFT + 2 * DAY)
    digest = build_digest(sqlite_env.store, scope_from_settings(sqlite_env.settings, "2026-W47", NOW), NOW)
    html = render_html(digest)
    assert "eve&lt;i&gt;@acme.example" in html and "eve<i>@" not in html


def test_a_week_without_departures_or_reviews_says_so(sqlite_env: IdEnv) -> None:
    """With nothing stored, the section says nobody left and no review started."""
    digest = build_digest(sqlite_env.store, scope_from_settings(sqlite_env.settings, "2026-W47", NOW), NOW)
    assert digest["identities"] == {"left_week": [], "campaigns": [], "revocations_overdue": [],
                                    "revocations_checked_at": None}
    markdown = render_markdown(digest)
    assert "Nobody left this week." in markdown and "No access review started." in markdown
