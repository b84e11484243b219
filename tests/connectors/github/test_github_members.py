"""github.members through real PyGithub over loopback against the fake: roles, 2FA, SAML, removal."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

from collector.catalog import Catalog, Filing
from collector.pipeline import Pipeline
from connectors.github import GithubConnector
from connectors.github.members import MEMBER_2FA_DISABLED, saml_email
from connectors.github.streams import OrgSettings
from connectors.sdk.items import Cursor, ItemFailure, Normalised, SourceItem
from sandbox.github import FakeGithub
from sandbox.github_seed import DEPARTED, OUTSIDE_COLLABORATOR, SAML_EMAILS, UNLINKED
from storage import Store

MakeConnector = Callable[..., GithubConnector]


def _read(connector: GithubConnector, ceiling: datetime | None = None) -> tuple[list[SourceItem], list[Any]]:
    ceiling = ceiling or datetime.now(UTC)
    outputs = list(connector.stream("members").fetch(Cursor(None, ceiling, ceiling - timedelta(days=1))))
    return [o for o in outputs if isinstance(o, SourceItem)], [o for o in outputs if isinstance(o, ItemFailure)]


def _records(connector: GithubConnector, ceiling: datetime | None = None) -> dict[str, Normalised]:
    items, failures = _read(connector, ceiling)
    assert failures == []
    stream = connector.stream("members")
    return {item.key: stream.normalise(item) for item in items}


def test_members_carry_role_2fa_and_the_saml_email(make_connector: MakeConnector, fake: FakeGithub) -> None:
    """Every member and outside collaborator is one account record in the agreed shape: owners are
    admins, the SAML identity's email links where one exists, and 2FA disabled is the exception."""
    records = _records(make_connector())
    expected = {f"acme/{login}" for login in [*fake.org.members, OUTSIDE_COLLABORATOR]}
    assert set(records) == expected
    alice = records["acme/alice"]
    assert alice.kind == "account" and alice.actor == "alice" and alice.exception is None
    assert alice.data == {"org": "acme", "login": "alice", "user_id": alice.data["user_id"], "role": "admin",
                          "two_factor_enabled": True, "saml_email": SAML_EMAILS["alice"], "active": True}
    assert isinstance(alice.data["user_id"], int)
    assert records[f"acme/{DEPARTED}"].data["saml_email"] == "dennis.ritchie@example.com"
    assert records[f"acme/{UNLINKED}"].data["saml_email"] is None
    outside = records[f"acme/{OUTSIDE_COLLABORATOR}"].data
    assert outside["role"] == "outside_collaborator" and outside["saml_email"] is None
    assert {k for k, r in records.items() if r.exception} == {"acme/mallory"}
    assert records["acme/mallory"].exception == MEMBER_2FA_DISABLED
    assert records["acme/mallory"].data["two_factor_enabled"] is False
    assert {r.data["role"] for k, r in records.items() if k != "acme/alice"} == {"member", "outside_collaborator"}


def test_the_member_exception_has_the_same_words_as_org_settings(make_connector: MakeConnector) -> None:
    """A member with 2FA disabled reads the same in github.members and github.org_settings."""
    connector = make_connector()
    stream = connector.stream("org_settings")
    assert isinstance(stream, OrgSettings)
    ceiling = datetime.now(UTC)
    items = [o for o in stream.fetch(Cursor(None, ceiling, ceiling)) if isinstance(o, SourceItem)]
    reasons = {i.key: stream.normalise(i).exception for i in items}
    assert reasons["acme/mallory"] == MEMBER_2FA_DISABLED


def test_org_without_saml_gives_null_emails(make_connector: MakeConnector, fake: FakeGithub) -> None:
    """When the org has no SAML provider every saml_email is null and the read is complete."""
    with fake.lock:
        fake.org.saml_emails = None
    records = _records(make_connector())
    assert records and all(r.data["saml_email"] is None for r in records.values())


def test_saml_identities_are_paged(make_connector: MakeConnector, fake: FakeGithub) -> None:
    """With two identities a page, every linked member still gets its email."""
    records = _records(make_connector(per_page=2))
    assert sum(1 for _ in fake.requests if _.path == "/graphql") == -(-len(SAML_EMAILS) // 2)
    assert {r.data["login"]: r.data["saml_email"] for r in records.values() if r.data["saml_email"]} == SAML_EMAILS


def test_a_token_that_is_not_an_owners_leaves_2fa_and_saml_unknown(make_connector: MakeConnector,
                                                                    fake: FakeGithub) -> None:
    """Without owner rights 2FA and the SAML email are null (never guessed) and each refusal is an
    item failure naming it, so the run is partial; no 2FA exception is raised on unknown."""
    with fake.lock:
        fake.org.owner_token = False
    connector = make_connector()
    items, failures = _read(connector)
    stream = connector.stream("members")
    records = [stream.normalise(i) for i in items]
    assert len(records) == len(fake.org.members) + 1
    assert all(r.data["two_factor_enabled"] is None and r.data["saml_email"] is None and r.exception is None
               for r in records)
    assert {f.key for f in failures} == {"acme/members?filter=2fa_disabled", "acme/saml"}
    assert any("Only owners can use this filter" in f.error for f in failures)


def test_unchanged_reads_are_identical_and_a_removed_member_is_absent(make_connector: MakeConnector,
                                                                      fake: FakeGithub) -> None:
    """Two reads with nothing changed give the same keys, bytes and data; after the member is
    removed in the fake, the next read has no record for it."""
    connector = make_connector()
    ceiling = datetime(2030, 1, 1, tzinfo=UTC)
    first, _ = _read(connector, ceiling)
    second, _ = _read(connector, ceiling)
    assert [(i.key, i.raw) for i in first] == [(i.key, i.raw) for i in second]
    assert all(i.observed_at == ceiling for i in first)
    fake.remove_member(DEPARTED)
    after = _records(connector)
    assert f"acme/{DEPARTED}" not in after and len(after) == len(first) - 1


def test_stored_account_records_are_filed_under_cc6(tmp_path: Path, make_connector: MakeConnector,
                                                    fake: FakeGithub) -> None:
    """Through the pipeline each read stores one account record per member filed CC6.1-CC6.3; a
    second read with no change stores the same data under new ids (a state read per collection)."""
    store = Store.open(f"sqlite:///{tmp_path / 'evidence.db'}")
    pipeline = Pipeline(store, Filing(Catalog.builtin(), {}), batch_size=50)
    connector = make_connector()
    first = pipeline.run(connector.stream("members"), connector.config)
    second = pipeline.run(connector.stream("members"), connector.config)
    assert first.status == second.status == "ok"
    with store.engine.connect() as conn:
        bodies = [orjson.loads(row.body) | {"id": row.id} for row in conn.execute(
            sa.text("SELECT id, body FROM evidence WHERE stream = 'github.members'"))]
    store.close()
    count = len(fake.org.members) + 1
    assert len(bodies) == 2 * count and len({b["id"] for b in bodies}) == 2 * count
    assert all(b["kind"] == "account" and b["controls"] == ["CC6.1", "CC6.2", "CC6.3"] for b in bodies)
    by_key: dict[str, list[Any]] = {}
    for body in bodies:
        by_key.setdefault(body["source_key"], []).append((body["data"], body["raw_sha256"]))
    assert all(len(v) == 2 and v[0] == v[1] for v in by_key.values())


def test_saml_email_prefers_a_listed_email_then_an_email_name_id() -> None:
    """The identity's first email wins; a name id is used only when it is an email."""
    assert saml_email({"samlIdentity": {"nameId": "x@a", "emails": [{"value": "y@b"}]}}) == "y@b"
    assert saml_email({"samlIdentity": {"nameId": "x@a", "emails": []}}) == "x@a"
    assert saml_email({"samlIdentity": {"nameId": "00u123", "emails": None}}) is None
