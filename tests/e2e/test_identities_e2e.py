"""People across systems end to end: deactivate in the Okta fake, collect, digest, remove, collect again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from sqlalchemy import text

from collector.collect import collect
from collector.config import load_settings
from collector.digest import build_digest, scope_from_settings
from collector.digest.render import render_markdown
from collector.windows import window_containing
from sandbox.world import running_world
from storage import Store

CONFIG = """
[storage]
url = "sqlite:///{db}"

[identities]
service_accounts = ["ci-deploy", "svc-deploy"]

[connectors.aws]
endpoint_url = "{aws}"
cloudtrail_bucket = "org-trail"
streams = ["iam_users"]

[connectors.okta]
org_url = "{okta}"
streams = ["users"]

[connectors.github]
org = "acme"
base_url = "{github}"
request_spacing_ms = 0
streams = ["members"]
"""


def _newest(store: Store, stream: str) -> dict[str, dict[str, object]]:
    """The newest read of ``stream`` by source key."""
    with store.engine.connect() as conn:
        newest = conn.execute(text("SELECT max(observed_at) FROM evidence WHERE stream = :s"), {"s": stream}).scalar()
        rows = conn.execute(text("SELECT body FROM evidence WHERE stream = :s AND observed_at = :t"),
                            {"s": stream, "t": newest}).scalars().all()
    return {str(orjson.loads(b)["source_key"]): orjson.loads(b) for b in rows}


def test_a_deactivated_person_is_listed_until_their_accounts_are_removed(tmp_path: Path) -> None:
    """Ada leaves Okta two days ago: one collection later the digest lists her GitHub membership
    and IAM user as still active past the grace; once both are removed in the fakes, the next
    collection's reads no longer hold them and the offboarding check finds nothing of hers."""
    now = datetime.now(UTC)
    left = now - timedelta(days=2)
    with running_world(now) as (world, ep):
        config = tmp_path / "config.toml"
        config.write_text(CONFIG.format(db=tmp_path / "e.db", aws=ep.aws, okta=ep.okta, github=ep.github))
        settings = load_settings(config)
        store = Store.open(settings.storage_url)
        try:
            world.deactivate_okta_user("ada.lovelace@example.com", at=left)
            results = collect(settings, store)
            assert {r.stream: r.status for r in results} == {
                "aws.iam_users": "ok", "okta.users": "ok", "github.members": "ok",
                "identity.offboarding": "ok", "identity.orphans": "ok"}
            week = window_containing(left, "week", "UTC")
            digest = build_digest(store, scope_from_settings(settings, week.id, now), now)
            ada = next(p for p in digest["identities"]["left_week"] if p["person"] == "ada.lovelace@example.com")
            assert ada["this_week"] is True
            assert {(a["system"], a["account"], a["state"]) for a in ada["still_active"]} == {
                ("github", "acme/alice", "overdue"), ("aws", "alice", "overdue")}
            assert "ada.lovelace@example.com" in render_markdown(digest)

            world.remove_github_member("alice")
            world.delete_iam_user("alice")
            collect(settings, store)
            assert "acme/alice" not in _newest(store, "github.members")
            assert not any(k.endswith(":user/alice") for k in _newest(store, "aws.iam_users"))
            check = _newest(store, "identity.offboarding")
            assert not [b for b in check.values()
                        if (b["data"] or {}).get("person") == "ada.lovelace@example.com"]  # type: ignore[union-attr]
            digest = build_digest(store, scope_from_settings(settings, week.id, now), now)
            ada = next(p for p in digest["identities"]["left_week"] if p["person"] == "ada.lovelace@example.com")
            assert ada["still_active"] == []
        finally:
            store.close()
