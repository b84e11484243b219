"""A collection of okta.users against the Okta fake is followed by the identity checks, each its own run."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from identity_seed import member, records_of, store_read

from collector.collect import collect
from collector.config import load_settings
from collector.identities import OFFBOARDING, ORPHANS
from sandbox.okta import DEFAULT_TOKEN, FakeOkta
from sandbox.okta_data import seed_org
from storage import Store


def test_collecting_okta_users_runs_the_identity_checks(tmp_path: Path) -> None:
    """Dennis is DEPROVISIONED in the Okta fake and still a GitHub member (read stored before):
    collecting okta.users stores the offboarding exception and the orphan check in their own runs."""
    now = datetime.now(UTC)
    with FakeOkta(seed_org(seed=7, now=now, days=3)) as fake:
        config = tmp_path / "config.toml"
        config.write_text(f'[storage]\nurl = "sqlite:///{tmp_path / "e.db"}"\n\n'
                          f'[connectors.okta]\norg_url = "{fake.url}"\nstreams = ["users"]\n')
        settings = load_settings(config)
        store = Store.open(settings.storage_url)
        try:
            store_read(store, "github.members", [member("dmr", "dennis.ritchie@example.com"),
                                                  member("nobody")], now)
            results = collect(settings, store, ["okta.users"], env={"OKTA_API_TOKEN": DEFAULT_TOKEN})
            assert [(r.stream, r.status) for r in results] == [
                ("okta.users", "ok"), (OFFBOARDING, "ok"), (ORPHANS, "ok")]
            offboarding = records_of(store, OFFBOARDING)
            assert offboarding["github/acme/dmr"]["status"] == "exception"
            assert "dennis.ritchie@example.com was deactivated in Okta" in \
                offboarding["github/acme/dmr"]["exception_reason"]
            assert records_of(store, ORPHANS)["github/acme/nobody"]["status"] == "exception"
        finally:
            store.close()


def test_the_daemon_collect_job_runs_the_checks_and_tracks_their_health(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The daemon's collect job for okta.users runs the identity checks too: their records are
    stored and their runs reach the stream health the daemon serves."""
    import threading

    from schedules.health import HealthState
    from schedules.jobs import JobContext, collect_stream
    from schedules.metrics import Metrics

    now = datetime.now(UTC)
    with FakeOkta(seed_org(seed=7, now=now, days=3)) as fake:
        config = tmp_path / "config.toml"
        config.write_text(f'[storage]\nurl = "sqlite:///{tmp_path / "e.db"}"\n\n'
                          f'[connectors.okta]\norg_url = "{fake.url}"\nstreams = ["users"]\n'
                          'token_env = "EC_TEST_OKTA_TOKEN"\n')
        monkeypatch.setenv("EC_TEST_OKTA_TOKEN", DEFAULT_TOKEN)
        settings = load_settings(config)
        store = Store.open(settings.storage_url)
        try:
            store_read(store, "github.members", [member("dmr", "dennis.ritchie@example.com")], now)
            health = HealthState(3, ["okta.users"])
            ctx = JobContext(settings, store, Metrics(), health, threading.Event(), lambda: now)
            collect_stream(ctx, "okta.users")
            assert records_of(store, OFFBOARDING)["github/acme/dmr"]["status"] == "exception"
            for check in ("identity.offboarding", "identity.orphans"):
                assert health.stream(check).last_status == "ok", check
        finally:
            store.close()
