"""The derived identity checks: offboarding and orphan accounts, from stored state reads only."""

from __future__ import annotations

from identity_seed import DAY, HOUR, NOW, IdEnv, iam_user, member, okta, records_of, store_read
from sqlalchemy import text

from collector.identities import OFFBOARDING, ORPHANS, run_identity_checks


def _people(env: IdEnv) -> None:
    """Okta: alice active, bob deprovisioned 3 days ago, dave suspended 2 hours ago, erin left 3
    days ago; their GitHub and AWS accounts read now."""
    store_read(env.store, "okta.users", [
        okta("00u1", "alice@acme.example"),
        okta("00u2", "bob@acme.example", "DEPROVISIONED", NOW - 3 * DAY),
        okta("00u3", "dave@acme.example", "SUSPENDED", NOW - 2 * HOUR),
        okta("00u4", "erin@acme.example", "DEPROVISIONED", NOW - 3 * DAY),
        okta("00u5", "carol@acme.example"),
    ], NOW - HOUR)


def test_an_account_active_past_the_grace_after_its_person_left_is_an_exception(env: IdEnv) -> None:
    """Bob left Okta 3 days ago and still has a GitHub membership and an active IAM user: one
    exception each, filed under CC6.2 and CC6.3, naming person, system, account and the time."""
    _people(env)
    store_read(env.store, "github.members", [member("alice-gh", "alice@acme.example"),
                                              member("bob-gh", "bob@acme.example")], NOW)
    store_read(env.store, "aws.iam_users", [iam_user("bob", "bob@acme.example")], NOW)
    results = run_identity_checks(env.settings, env.store, ["github.members"], now=NOW)
    assert {r.stream: r.status for r in results} == {OFFBOARDING: "ok", ORPHANS: "ok"}
    found = records_of(env.store, OFFBOARDING, NOW)
    github, aws = found["github/acme/bob-gh"], found["aws/arn:aws:iam::123456789012:user/bob"]
    assert github["status"] == aws["status"] == "exception"
    assert github["controls"] == ["CC6.2", "CC6.3"] and github["actor"] == "bob@acme.example"
    assert github["exception_reason"] == ("github account acme/bob-gh still active more than 1d after "
                                          "bob@acme.example was deactivated in Okta "
                                          "(2026-11-17T09:00:00.000000Z)")
    assert aws["data"]["person"] == "bob@acme.example" and aws["data"]["account"] == "bob"
    assert aws["data"]["deactivated_at"] == "2026-11-17T09:00:00.000000Z"
    with env.store.engine.connect() as conn:
        filed = conn.execute(text("SELECT criterion FROM filings WHERE record_id = :r"),
                             {"r": github["id"]}).scalars().all()
    assert sorted(filed) == ["CC6.2", "CC6.3"]
    assert found["summary"]["status"] == "ok"
    assert found["summary"]["data"]["active_after_grace"] == 2
    assert set(found) == {"summary", "github/acme/bob-gh", "aws/arn:aws:iam::123456789012:user/bob"}


def test_accounts_within_the_grace_removed_or_inactive_are_not_exceptions(env: IdEnv) -> None:
    """Dave left 2 hours ago (within 24h): his membership is recorded, status ok, within the grace;
    Erin's accounts are gone or cannot sign in, Alice is active: nothing else but the summary."""
    _people(env)
    store_read(env.store, "github.members", [member("alice-gh", "alice@acme.example"),
                                              member("dave-gh", "dave@acme.example")], NOW)
    store_read(env.store, "aws.iam_users", [iam_user("erin", "erin@acme.example", active=False)], NOW)
    run_identity_checks(env.settings, env.store, now=NOW)
    found = records_of(env.store, OFFBOARDING, NOW)
    assert set(found) == {"summary", "github/acme/dave-gh"}
    assert found["github/acme/dave-gh"]["status"] == "ok"
    assert found["github/acme/dave-gh"]["data"]["state"] == "within_grace"
    assert found["summary"]["data"]["departed"] == 3
    assert found["summary"]["data"]["active_within_grace"] == 1


def test_each_read_is_judged_at_its_own_time(env: IdEnv) -> None:
    """A GitHub read made within the grace is fine; the next read, past the grace, is the
    exception; a read after the membership was removed stores no exception again."""
    store_read(env.store, "okta.users", [okta("00u1", "alice@acme.example"),
                                          okta("00u2", "bob@acme.example", "DEPROVISIONED", NOW - 3 * DAY)],
               NOW - 3 * DAY)
    store_read(env.store, "github.members", [member("bob-gh", "bob@acme.example")], NOW - 3 * DAY + HOUR)
    run_identity_checks(env.settings, env.store, now=NOW - 3 * DAY + 2 * HOUR)
    first = records_of(env.store, OFFBOARDING, NOW - 3 * DAY + 2 * HOUR)
    assert first["github/acme/bob-gh"]["status"] == "ok"
    store_read(env.store, "github.members", [member("bob-gh", "bob@acme.example")], NOW - DAY)
    run_identity_checks(env.settings, env.store, now=NOW - DAY)
    assert records_of(env.store, OFFBOARDING, NOW - DAY)["github/acme/bob-gh"]["status"] == "exception"
    store_read(env.store, "github.members", [member("alice-gh", "alice@acme.example")], NOW)
    run_identity_checks(env.settings, env.store, now=NOW)
    assert list(records_of(env.store, OFFBOARDING, NOW)) == ["summary"]


def test_an_account_linked_to_no_person_is_an_orphan(env: IdEnv) -> None:
    """A member without SAML email or override, and an IAM user tagged with an email Okta does not
    know, are orphans; the declared service account and the overridden login are not."""
    _people(env)
    store_read(env.store, "github.members", [member("ghost"), member("carol-dev"),
                                              member("alice-gh", "alice@acme.example")], NOW)
    store_read(env.store, "aws.iam_users", [iam_user("ci-deploy"), iam_user("temp", "zed@acme.example"),
                                             iam_user("old-unused", active=False)], NOW)
    run_identity_checks(env.settings, env.store, ["aws.iam_users"], now=NOW)
    found = records_of(env.store, ORPHANS, NOW)
    assert set(found) == {"summary", "github/acme/ghost", "aws/arn:aws:iam::123456789012:user/temp"}
    ghost = found["github/acme/ghost"]
    assert ghost["status"] == "exception" and ghost["controls"] == ["CC6.2", "CC6.3"]
    assert ghost["exception_reason"] == ("github account acme/ghost links to no person and is not a "
                                         "declared service account: no SAML identity email and no "
                                         "[identities.overrides.github] entry")
    assert "zed@acme.example (email) matches no Okta user" in \
        found["aws/arn:aws:iam::123456789012:user/temp"]["exception_reason"]
    assert found["summary"]["data"] | {"reads": None} == {
        "accounts": 6, "linked": 2, "service_accounts": 1, "orphans": 2, "reads": None}


def test_checks_run_only_after_their_inputs(sqlite_env: IdEnv) -> None:
    """A collection of another stream runs no check; with no account stream stored, none runs."""
    assert run_identity_checks(sqlite_env.settings, sqlite_env.store, ["okta.users"], now=NOW) == []
    store_read(sqlite_env.store, "github.members", [member("ghost")], NOW)
    assert run_identity_checks(sqlite_env.settings, sqlite_env.store, ["jira.change_tickets"], now=NOW) == []
    results = run_identity_checks(sqlite_env.settings, sqlite_env.store, ["github.members"], now=NOW)
    assert [r.stream for r in results] == [ORPHANS]  # no okta.users read: nothing to offboard against
