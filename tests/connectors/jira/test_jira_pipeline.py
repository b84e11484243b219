"""The Jira connector through the real pipeline: config file, collect(), a real store, the fake on loopback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from collector.collect import collect
from collector.config import Settings, load_settings
from collector.errors import ConfigError
from collector.pipeline import RunResult
from sandbox._http import Drop, Slow, Status, Truncated
from sandbox.jira import DEFAULT_EMAIL, DEFAULT_TOKEN, FakeJira
from storage import Store

ENV = {"JIRA_EMAIL": DEFAULT_EMAIL, "JIRA_API_TOKEN": DEFAULT_TOKEN}
SEARCH = "/rest/api/2/search/jql"


def _settings(tmp_path: Path, fake: FakeJira, url: str | None = None, extra: str = "",
              name: str = "config.toml") -> Settings:
    path = tmp_path / name
    store = url or f"sqlite:///{tmp_path / (name + '.db')}"
    path.write_text(
        f'[storage]\nurl = "{store}"\n[connectors.jira]\nurl = "{fake.url}"\nemail_env = "JIRA_EMAIL"\n'
        f'token_env = "JIRA_API_TOKEN"\nchange_jql = "project = CHG"\n{extra}'
    )
    return load_settings(path)


def _collect(settings: Settings, env: dict[str, str] | None = None) -> dict[str, RunResult]:
    store = Store.open(settings.storage_url)
    try:
        return {r.stream: r for r in collect(settings, store, env=env or ENV)}
    finally:
        store.close()


def _rows(settings: Settings) -> list[dict[str, Any]]:
    store = Store.open(settings.storage_url)
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT id, stream, source_key, status, actor, observed_at, body FROM evidence")).mappings()
            return [dict(r) for r in rows]
    finally:
        store.close()


def _ids(settings: Settings) -> set[str]:
    return {r["id"] for r in _rows(settings)}


@pytest.fixture
def fake() -> Any:
    with FakeJira.seeded(now=datetime.now(UTC)) as server:
        yield server


@pytest.fixture
def clean(tmp_path: Path, fake: FakeJira) -> set[str]:
    """The record ids of a clean collection from ``fake``, into a store of its own."""
    settings = _settings(tmp_path, fake, name="clean.toml")
    results = _collect(settings)
    assert all(r.status == "ok" for r in results.values())
    fake.clear_log()
    return _ids(settings)


def test_a_second_collection_without_changes_costs_one_search_per_stream(
        tmp_path: Path, fake: FakeJira, store_url: str) -> None:
    """With nothing changed, a collection makes one search per stream (plus serverInfo, myself and
    field once) and stores nothing new."""
    settings = _settings(tmp_path, fake, store_url)
    first = _collect(settings)
    assert first["jira.change_tickets"].records_new == 40 and first["jira.incidents"].records_new == 12
    fake.clear_log()
    second = _collect(settings)
    assert all(r.status == "ok" and r.records_new == 0 and r.items == 0 for r in second.values())
    assert fake.searches() == 2
    assert sorted(r.path for r in fake.requests if not r.path.endswith("/search/jql")) == [
        "/rest/api/2/field", "/rest/api/2/myself", "/rest/api/2/serverInfo"]


def test_an_approval_added_later_is_a_second_record_for_the_same_key(tmp_path: Path, fake: FakeJira) -> None:
    """A ticket approved after it was collected gets a new record; the first one stays as it was."""
    settings = _settings(tmp_path, fake)
    _collect(settings)
    key = fake.cases["open"]
    fake.data.transition(key, "Approved", by="frank@example.com")
    second = _collect(settings)
    assert second["jira.change_tickets"].records_new == 1 and second["jira.incidents"].records_new == 0
    rows = sorted((r for r in _rows(settings) if r["source_key"] == key), key=lambda r: r["observed_at"])
    assert len(rows) == 2
    before, after = (orjson.loads(r["body"])["data"] for r in rows)
    assert before["approved"] is False and after["approved"] is True
    assert after["approvers"] == ["frank@example.com"] and rows[1]["actor"] == "frank@example.com"


def test_rate_limits_and_a_server_error_store_the_same_records_as_a_clean_run(
        tmp_path: Path, fake: FakeJira, clean: set[str]) -> None:
    """With 2x429 and a 500 injected, the stored record ids equal a clean run's."""
    fake.rate_limit(times=2, retry_after=1, path_prefix=SEARCH)
    fake.faults.push(Status(500), path_prefix=SEARCH)
    settings = _settings(tmp_path, fake)
    results = _collect(settings)
    assert all(r.status == "ok" for r in results.values())
    assert fake.faults.pending == 0 and [r.status for r in fake.requests if r.fault] == [429, 429, 500]
    assert _ids(settings) == clean


def test_truncated_slow_and_dropped_answers_are_survived(
        tmp_path: Path, fake: FakeJira, clean: set[str]) -> None:
    """A truncated search page, a dropped changelog request and a slow answer cost retries, not records."""
    fake.faults.push(Truncated(), path_prefix=SEARCH)
    fake.faults.push(Drop(), path_prefix="/rest/api/2/issue/")
    fake.faults.push(Slow(0.3), path_prefix="/rest/api/2/field")
    settings = _settings(tmp_path, fake)
    results = _collect(settings)
    assert all(r.status == "ok" for r in results.values())
    assert fake.faults.pending == 0
    assert _ids(settings) == clean


def test_a_run_that_fails_midway_converges_on_the_next(
        tmp_path: Path, fake: FakeJira, clean: set[str]) -> None:
    """A rate limit longer than the request deadline fails the run with what it stored kept; the next
    run resumes from the cursor and ends with exactly a clean run's records."""
    long_key = fake.cases["long_changelog"]
    fake.rate_limit(retry_after=600, path_prefix=f"/rest/api/2/issue/{long_key}/changelog")
    settings = _settings(tmp_path, fake)
    failed = _collect(settings)
    run = failed["jira.change_tickets"]
    assert run.status == "failed" and run.error_class == "RetriableError" and "429" in (run.error or "")
    assert 0 < run.records_new < 40 and failed["jira.incidents"].status == "ok"
    resumed = _collect(settings)
    assert resumed["jira.change_tickets"].status == "ok"
    assert run.records_new + resumed["jira.change_tickets"].records_new == 40
    assert _ids(settings) == clean


def test_a_rejected_token_fails_both_streams_after_one_request(tmp_path: Path, fake: FakeJira) -> None:
    """A 401 is an AuthError naming the connector and both env vars, after a single request."""
    settings = _settings(tmp_path, fake)
    results = _collect(settings, {**ENV, "JIRA_API_TOKEN": "revoked-token"})
    for result in results.values():
        assert result.status == "failed" and result.error_class == "AuthError"
        assert (result.error or "").startswith("jira: authentication failed")
        assert "$JIRA_EMAIL" in (result.error or "") and "$JIRA_API_TOKEN" in (result.error or "")
        assert "revoked-token" not in (result.error or "")
    assert len(fake.requests) == 1 and fake.requests[0].status == 401


def test_exceptions_and_filing_of_the_seeded_data(tmp_path: Path, fake: FakeJira) -> None:
    """The unapproved change is stored as an exception, approved ones (the truncated one too) as ok;
    change tickets file under CC8.1 and incidents under CC7.3-CC7.5; the legacy search is never hit."""
    settings = _settings(tmp_path, fake)
    _collect(settings)
    rows = {r["source_key"]: r for r in _rows(settings)}
    bad = orjson.loads(rows[fake.cases["unapproved"]]["body"])
    assert bad["status"] == "exception" and "without passing the 'Approved' status" in bad["exception_reason"]
    for case in ("approved", "long_changelog"):
        body = orjson.loads(rows[fake.cases[case]]["body"])
        assert body["status"] == "ok" and body["data"]["approved"] is True
        assert body["source_url"] == f"{fake.url}/browse/{fake.cases[case]}"
    assert [k for k, r in rows.items() if r["status"] == "exception"] == [fake.cases["unapproved"]]
    store = Store.open(settings.storage_url)
    counts = store.filing_counts()
    store.close()
    assert counts["CC8.1"] == 40 and counts["CC7.3"] == counts["CC7.4"] == counts["CC7.5"] == 12
    assert not [r for r in fake.requests if r.path.endswith("/search")]


def test_config_problems_are_one_line_naming_the_key(tmp_path: Path, fake: FakeJira) -> None:
    """A missing change_jql, an ORDER BY in the JQL, a bad url or an unset env var name the key."""
    cases = {
        "connectors.jira.change_jql": ('url = "https://x.atlassian.net"\nemail_env = "E"\n'
                                       'token_env = "T"\n'),
        "connectors.jira.incident_jql": 'incident_jql = "project = INC ORDER BY created"\n',
    }
    path = tmp_path / "bad.toml"
    path.write_text(f"[connectors.jira]\n{cases['connectors.jira.change_jql']}")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.key == "connectors.jira.change_jql"
    with pytest.raises(ConfigError) as caught:
        _settings(tmp_path, fake, extra=cases["connectors.jira.incident_jql"], name="order.toml")
    assert caught.value.key == "connectors.jira.incident_jql" and "ORDER BY" in caught.value.problem
    path.write_text('[connectors.jira]\nurl = "acme.atlassian.net"\nemail_env = "E"\ntoken_env = "T"\n'
                    'change_jql = "project = CHG"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.key == "connectors.jira.url"
    settings = _settings(tmp_path, fake, name="ok.toml")
    store = Store.open(settings.storage_url)
    with pytest.raises(ConfigError) as caught:
        collect(settings, store, env={"JIRA_API_TOKEN": DEFAULT_TOKEN})
    store.close()
    assert caught.value.key == "connectors.jira.email_env" and "$JIRA_EMAIL" in caught.value.problem
    assert fake.requests == ()


def test_the_window_of_a_first_collection_is_the_backfill(tmp_path: Path, fake: FakeJira) -> None:
    """A first collection reads back only as far as ``backfill``."""
    settings = _settings(tmp_path, fake, extra='backfill = "20d"\nstreams = ["incidents"]\n')
    results = _collect(settings)
    floor = datetime.now(UTC) - timedelta(days=20)
    incidents = [i for i in fake.data.snapshot() if i.project == "INC"]

    def since(at: datetime) -> int:
        return sum(1 for i in incidents if i.updated >= at)

    # The query reads from the floor less a minute, floored to the minute: at most 2 minutes early.
    assert since(floor) <= results["jira.incidents"].records_new <= since(floor - timedelta(minutes=3))
    assert 0 < results["jira.incidents"].records_new < len(incidents)
    assert list(results) == ["jira.incidents"]
