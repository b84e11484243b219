"""Okta through the real pipeline and SQLite store: request budgets, faults, resumption, exceptions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from random import Random
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from collector.catalog import Catalog, Filing
from collector.collect import collect
from collector.config import Settings
from collector.errors import ConfigError
from collector.pipeline import Pipeline, RunResult
from connectors.okta import OktaConnector, event_kind
from sandbox._http import Drop, Fault, Slow, Status, Truncated
from sandbox.okta import DEFAULT_TOKEN, FakeOkta, RateLimit
from sandbox.okta_data import EXCEPTION_LOGINS, OktaOrg, make_event
from storage import Store

Make = Callable[..., Settings]
ENV = {"OKTA_API_TOKEN": DEFAULT_TOKEN}
ADMIN = {"id": "00uadmin000000000001", "alternateId": "admin@example.com", "displayName": "Admin"}


def _collect(settings: Settings, env: dict[str, str] = ENV) -> tuple[Store, dict[str, RunResult]]:
    store = Store.open(settings.storage_url)
    return store, {r.stream: r for r in collect(settings, store, env=env)}


def _ids(store: Store, stream: str) -> set[str]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id FROM evidence WHERE stream = :s"), {"s": stream})
        return set(rows.scalars())


def _states(store: Store) -> set[bytes]:
    """okta.users records without the read time: what a state read says, whenever it was made."""
    with store.engine.connect() as conn:
        bodies = conn.execute(sa.text("SELECT body FROM evidence WHERE stream = 'okta.users'")).scalars()
        out = set()
        for body in bodies:
            record = orjson.loads(body)
            record.pop("observed_at")
            record["data"].pop("factors_read_at")
            record["data"].pop("status_read_at")
            out.add(orjson.dumps(record, option=orjson.OPT_SORT_KEYS))
        return out


def _relevant(org: OktaOrg) -> int:
    return sum(1 for e in org.events if event_kind(e["eventType"]) is not None)


def test_second_collection_costs_one_log_request_and_stores_no_new_event(
    settings_for: Make, fake: FakeOkta, org: OktaOrg
) -> None:
    """A first collection stores every relevant event and user; a second with no changes makes one
    System Log request (okta.system_log's: okta.users takes the factor changes from that read),
    one listing page, reads no factors, and stores no new system_log record."""
    settings = settings_for()
    store, first = _collect(settings)
    assert first["okta.system_log"].status == "ok" and first["okta.users"].status == "ok"
    assert first["okta.system_log"].records_new == _relevant(org)
    assert first["okta.users"].records_new == 25
    fake.clear_log()
    _, second = _collect(settings)
    assert second["okta.system_log"].status == "ok" and second["okta.system_log"].records_new == 0
    assert fake.count(path_prefix="/api/v1/logs") == 1
    # okta.users is a state stream: each collection is a new record of every user, costing one
    # listing page (every status in one filter query); factors were read by the first collection.
    assert second["okta.users"].records_new == 25
    assert fake.count(path_prefix="/api/v1/users") == 1
    store.close()


def test_stored_users_cover_every_status_and_the_known_exceptions(settings_for: Make, org: OktaOrg) -> None:
    """Stored okta.users records include the DEPROVISIONED user and mark exactly the users who can
    sign in without a real active factor as exceptions, filed under CC6.1."""
    store, _ = _collect(settings_for(streams=["users"]))
    with store.engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT actor, status, body FROM evidence WHERE stream = 'okta.users'")).all()
    statuses = {orjson.loads(body)["data"]["status"] for _, _, body in rows}
    assert "DEPROVISIONED" in statuses and len(rows) == 25
    assert {actor for actor, status, _ in rows if status == "exception"} == set(EXCEPTION_LOGINS)
    assert store.filing_counts()["CC6.1"] == 25
    store.close()


def test_rate_limits_and_a_server_error_leave_the_same_records_as_a_clean_run(
    settings_for: Make, fake: FakeOkta
) -> None:
    """With 2x429 (Okta headers) and 1x500 injected, the stored system_log ids equal a clean run's
    and the users say the same as a clean read."""
    clean_store, clean = _collect(settings_for("clean"))
    assert all(r.status == "ok" for r in clean.values())
    fake.faults.push(fake.rate_limited("logs"), times=2, path_prefix="/api/v1/logs")
    fake.faults.push(Status(500), path_prefix="/api/v1/users")
    fake.clear_log()
    store, faulty = _collect(settings_for("faulty"))
    assert all(r.status == "ok" for r in faulty.values())
    assert fake.faults.pending == 0
    assert [r.status for r in fake.requests[:3]] == [429, 429, 200]
    assert _ids(store, "okta.system_log") == _ids(clean_store, "okta.system_log")
    assert _states(store) == _states(clean_store)
    store.close()
    clean_store.close()


def test_a_long_rate_limit_fails_the_run_mid_way_and_the_next_run_completes(
    settings_for: Make, fake: FakeOkta, org: OktaOrg
) -> None:
    """A 429 whose reset lies past the request deadline fails the run, keeping the pages already
    committed; the next run resumes from the cursor and ends with a clean run's records."""
    # low_remaining 0: this test is about the 429, not the pre-emptive pause before it.
    settings = settings_for("resumed", batch_size=100, page_size=200, low_remaining=0,
                            streams=["system_log"])
    fake.limits["logs"] = RateLimit(limit=3, window=3600)
    store, first = _collect(settings)
    run = first["okta.system_log"]
    assert run.status == "failed" and run.error_class == "RetriableError"
    assert "429" in (run.error or "") and run.records_new == 600
    assert store.read_cursor("okta.system_log") is not None
    fake.limits["logs"] = RateLimit()
    _, second = _collect(settings)
    assert second["okta.system_log"].status == "ok"
    assert second["okta.system_log"].records_new == _relevant(org) - 600
    clean_store, _ = _collect(settings_for("clean", streams=["system_log"]))
    assert _ids(store, "okta.system_log") == _ids(clean_store, "okta.system_log")
    store.close()
    clean_store.close()


def test_401_fails_each_stream_with_one_request_and_names_the_variable(settings_for: Make,
                                                                       fake: FakeOkta) -> None:
    """A rejected token fails both streams with an AuthError naming okta and $OKTA_API_TOKEN,
    after exactly one request each, and the token never appears in the stored error."""
    store, results = _collect(settings_for(), env={"OKTA_API_TOKEN": "revoked-token"})
    for result in results.values():
        assert result.status == "failed" and result.error_class == "AuthError"
        assert result.error is not None and result.error.startswith("okta:")
        assert "$OKTA_API_TOKEN" in result.error and "revoked-token" not in result.error
    assert fake.count(path_prefix="/api/v1/logs") == 1
    assert fake.count(path_prefix="/api/v1/users") == 1
    assert store.count_records() == 0
    store.close()


def test_unset_token_is_a_config_error_before_any_request(settings_for: Make, fake: FakeOkta) -> None:
    """With $OKTA_API_TOKEN unset, collection stops with a ConfigError naming the key, contacting nobody."""
    with pytest.raises(ConfigError, match=r"connectors\.okta\.token_env: environment variable "
                                          r"\$OKTA_API_TOKEN is not set"):
        _collect(settings_for(), env={})
    assert fake.requests == ()


def test_events_sharing_a_millisecond_across_pages_and_runs_are_stored_once(
    settings_for: Make, fake: FakeOkta, org: OktaOrg, anchor: Any
) -> None:
    """Events that share the cursor's millisecond and arrive after a run, read with a page size that
    splits them, are each stored exactly once; a third run stores nothing."""
    store, _ = _collect(settings_for(streams=["system_log"]))
    cursor = orjson.loads(store.read_cursor("okta.system_log") or "null")
    last = cursor["position"][0]
    assert last == max(e["published"] for e in org.events if event_kind(e["eventType"]))
    rng = Random(8)
    at = anchor.fromisoformat(last.replace("Z", "+00:00"))
    late = [make_event(rng, "application.user_membership.add", at, ADMIN) for _ in range(5)]
    after = [make_event(rng, "user.lifecycle.deactivate", at + timedelta(seconds=1), ADMIN)
             for _ in range(3)]
    fake.add_events(late + after)
    small_pages = settings_for(page_size=2, streams=["system_log"])  # same store, smaller pages
    before = _ids(store, "okta.system_log")
    _, second = _collect(small_pages)
    assert second["okta.system_log"].records_new == 8
    with store.engine.connect() as conn:
        keys = conn.execute(sa.text("SELECT source_key FROM evidence WHERE stream = 'okta.system_log' "
                                    "AND id NOT IN (SELECT value FROM json_each(:ids))"),
                            {"ids": orjson.dumps(sorted(before)).decode()}).scalars().all()
    assert sorted(keys) == sorted(e["uuid"] for e in late + after)
    _, third = _collect(small_pages)
    assert third["okta.system_log"].records_new == 0 and third["okta.system_log"].items == 0
    store.close()


# -- transport faults, through the pipeline with a fast retry policy -------------------------


def _pipeline_run(store: Store, connector: OktaConnector, stream: str) -> RunResult:
    return Pipeline(store, Filing(Catalog.builtin(), {})).run(connector.stream(stream), connector.config)


@pytest.mark.parametrize("fault", [Truncated(), Drop(), Slow(1.0), Status(503)],
                         ids=["truncated", "dropped", "slow", "503"])
def test_transport_faults_are_survived_with_a_clean_runs_records(
    fault: Fault, tmp_path: Any, fake: FakeOkta, connector_for: Callable[..., OktaConnector]
) -> None:
    """A truncated body, dropped connection, slow answer (past the timeout) or 503 on log and user
    requests is retried, and the run stores the same records as a clean run."""
    clean = Store.open(f"sqlite:///{tmp_path / 'clean.db'}")
    assert _pipeline_run(clean, connector_for(), "system_log").status == "ok"
    assert _pipeline_run(clean, connector_for(), "users").status == "ok"
    fake.faults.push(fault, times=2, path_prefix="/api/v1/logs")
    fake.faults.push(fault, times=2, path_prefix="/api/v1/users")
    store = Store.open(f"sqlite:///{tmp_path / 'faulty.db'}")
    assert _pipeline_run(store, connector_for(), "system_log").status == "ok"
    assert _pipeline_run(store, connector_for(), "users").status == "ok"
    assert fake.faults.pending == 0
    assert _ids(store, "okta.system_log") == _ids(clean, "okta.system_log")
    assert _states(store) == _states(clean)
    store.close()
    clean.close()


def test_a_connection_that_keeps_dropping_fails_the_run_and_the_next_run_converges(
    tmp_path: Any, fake: FakeOkta, connector_for: Callable[..., OktaConnector]
) -> None:
    """When every attempt is dropped the run fails with a RetriableError; once the source answers,
    the next run stores exactly a clean run's records."""
    store = Store.open(f"sqlite:///{tmp_path / 'e.db'}")
    fake.faults.push(Drop(), times=6, path_prefix="/api/v1/logs")
    failed = _pipeline_run(store, connector_for(), "system_log")
    assert failed.status == "failed" and failed.error_class == "RetriableError"
    assert "RemoteProtocolError" in (failed.error or "")
    assert _pipeline_run(store, connector_for(), "system_log").status == "ok"
    clean = Store.open(f"sqlite:///{tmp_path / 'clean.db'}")
    _pipeline_run(clean, connector_for(), "system_log")
    assert _ids(store, "okta.system_log") == _ids(clean, "okta.system_log")
    store.close()
    clean.close()


# -- configuration -------------------------------------------------------------------------


@pytest.mark.parametrize(("line", "key", "problem"), [
    ('org_url = "http://acme.okta.com"', "org_url", "must be https://"),
    ('org_url = "https://acme.okta.com/admin"', "org_url", "without a path"),
    ('org_url = "acme"', "org_url", "expected a URL"),
    ('org_url = "https://acme.okta.com"\npage_size = 0', "page_size", "between 1 and 1000"),
    ('org_url = "https://acme.okta.com"\ninterval = 900', "interval", "duration string"),
    ("interval = \"15m\"", "org_url", "required key is missing"),
])
def test_bad_okta_section_is_one_line_naming_the_key(tmp_path: Any, line: str, key: str,
                                                     problem: str) -> None:
    """A wrong [connectors.okta] value is a ConfigError naming connectors.okta.<key> and the file."""
    from collector.config import load_settings

    path = tmp_path / "config.toml"
    path.write_text(f"[connectors.okta]\n{line}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.key == f"connectors.okta.{key}" and problem in caught.value.problem
    assert str(path) in str(caught.value)


def test_okta_section_defaults(tmp_path: Any) -> None:
    """Only org_url is required; token_env defaults to OKTA_API_TOKEN and interval to 15m."""
    from collector.config import load_settings

    path = tmp_path / "config.toml"
    path.write_text('[connectors.okta]\norg_url = "https://acme.okta.com/"\n')
    config = load_settings(path).connectors["okta"]
    assert config.token_env == "OKTA_API_TOKEN"  # type: ignore[attr-defined]
    assert config.interval == timedelta(minutes=15)
    assert config.base_url == "https://acme.okta.com"  # type: ignore[attr-defined]
