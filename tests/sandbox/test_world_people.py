"""People across systems in the sandbox world: linked accounts seeded, then changed at runtime and collected."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from collector.collect import collect
from collector.config import load_settings
from sandbox.aws_seed import IAM_PEOPLE, IAM_SERVICE_USERS
from sandbox.github_seed import DEPARTED, OUTSIDE_COLLABORATOR, SAML_EMAILS, UNLINKED
from sandbox.world import DEMO_ENV, SandboxWorld, WorldEndpoints, running_world
from storage import Store

DENNIS = "dennis.ritchie@example.com"
PEOPLE_STREAMS = ["okta.users", "github.members", "aws.iam_users"]


@pytest.fixture(scope="module")
def world() -> Iterator[tuple[SandboxWorld, WorldEndpoints]]:
    now = datetime.now(UTC)
    with running_world(now, start=now - timedelta(days=2)) as started:
        yield started


def _settings(folder: Path, ep: WorldEndpoints) -> Any:
    path = folder / "config.toml"
    path.write_text(
        f'[storage]\nurl = "sqlite:///{folder / "evidence.db"}"\n\n'
        f'[connectors.aws]\nendpoint_url = "{ep.aws}"\nstreams = ["iam_users"]\n\n'
        f'[connectors.okta]\norg_url = "{ep.okta}"\nstreams = ["users"]\n\n'
        f'[connectors.github]\norg = "acme"\nbase_url = "{ep.github}"\nrequest_spacing_ms = 0\n'
        'streams = ["members"]\n')
    return load_settings(path)


def _latest(store: Store) -> dict[str, dict[str, dict[str, Any]]]:
    """Per stream, the data of each source key in its newest read."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    with store.engine.connect() as conn:
        for stream in PEOPLE_STREAMS:
            rows = [orjson.loads(b) for b in conn.execute(
                sa.text("SELECT body FROM evidence WHERE stream = :s"), {"s": stream}).scalars()]
            newest = max(r["observed_at"] for r in rows)
            out[stream] = {r["source_key"]: r["data"] for r in rows if r["observed_at"] == newest}
    return out


def test_the_departed_person_still_has_accounts_and_is_gone_after_removal(
        world: tuple[SandboxWorld, WorldEndpoints], tmp_path: Path) -> None:
    """The world seeds Dennis Ritchie DEPROVISIONED in Okta long ago with a GitHub membership (SAML
    email) and an IAM user (email tag); removed in the fakes, the next collection has neither."""
    sandbox, ep = world
    settings = _settings(tmp_path, ep)
    store = Store.open(settings.storage_url)
    first = collect(settings, store, PEOPLE_STREAMS, env=DEMO_ENV)
    assert {r.stream: r.status for r in first} == dict.fromkeys(PEOPLE_STREAMS, "ok")
    latest = _latest(store)
    [okta] = [d for d in latest["okta.users"].values() if d["email"] == DENNIS]
    assert okta["status"] == "DEPROVISIONED"
    assert datetime.fromisoformat(okta["status_changed"]) < sandbox.start - timedelta(days=7)
    members = {d["login"]: d for d in latest["github.members"].values()}
    assert members[DEPARTED]["saml_email"] == DENNIS and members[UNLINKED]["saml_email"] is None
    assert members[OUTSIDE_COLLABORATOR]["role"] == "outside_collaborator"
    assert {login: d["saml_email"] for login, d in members.items() if d["saml_email"]} == SAML_EMAILS
    users = {d["user_name"]: d for d in latest["aws.iam_users"].values()}
    assert users["dritchie"]["email"] == DENNIS and users["dritchie"]["active"] is True
    assert {name: d["email"] for name, d in users.items() if d["email"]} == IAM_PEOPLE
    assert set(IAM_SERVICE_USERS) <= set(users) and users["ci-deploy"]["console_access"] is False

    sandbox.remove_github_member(DEPARTED)
    sandbox.delete_iam_user("dritchie")
    sandbox.deactivate_okta_user("ada.lovelace@example.com", status="SUSPENDED")
    second = collect(settings, store, PEOPLE_STREAMS, env=DEMO_ENV)
    assert all(r.status == "ok" for r in second)
    latest = _latest(store)
    store.close()
    assert DEPARTED not in {d["login"] for d in latest["github.members"].values()}
    assert "dritchie" not in {d["user_name"] for d in latest["aws.iam_users"].values()}
    [ada] = [d for d in latest["okta.users"].values() if d["email"] == "ada.lovelace@example.com"]
    assert ada["status"] == "SUSPENDED"
    log = sandbox.fakes["okta"].events
    assert log[-1]["eventType"] == "user.lifecycle.suspend"
    assert log[-1]["target"][0]["alternateId"] == "ada.lovelace@example.com"
