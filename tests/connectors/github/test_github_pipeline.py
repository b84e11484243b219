"""GitHub through the real pipeline and store: incremental cost, faults survived, auth failures, filing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from collector.catalog import Catalog, Filing
from collector.collect import collect
from collector.config import load_settings
from collector.errors import ConfigError
from collector.pipeline import Pipeline
from connectors.github import GithubConfig, GithubConnector
from connectors.sdk.base import HttpOptions
from sandbox._http import Drop, Truncated
from sandbox.github import FakeGithub, internal_error, secondary_rate_limit, too_many_requests
from sandbox.github_seed import SeededOrg
from storage import Store

TOKEN = "ghp_fake_token"
ENV = {"GITHUB_TOKEN": TOKEN}
PRS = "github.pull_requests"


def _settings(directory: Path, base_url: str, extra: str = "") -> Any:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "config.toml"
    path.write_text(
        f'[storage]\nurl = "sqlite:///{directory / "evidence.db"}"\n\n'
        f'[connectors.github]\norg = "acme"\nbase_url = "{base_url}"\nrequest_spacing_ms = 0\n{extra}'
    )
    return load_settings(path)


def _rows(store: Store, stream: str = PRS) -> dict[str, tuple[str, str]]:
    with store.engine.connect() as conn:
        result = conn.execute(sa.text("SELECT id, source_key, status FROM evidence WHERE stream = :s"), {"s": stream})
        return {row.id: (row.source_key, row.status) for row in result}


def _collect(directory: Path, fake: FakeGithub, streams: list[str] | None = None,
             env: dict[str, str] = ENV, api: str = "rest") -> tuple[dict[str, Any], Store]:
    settings = _settings(directory, fake.url, f'api = "{api}"\n')
    store = Store.open(settings.storage_url)
    results = {r.stream: r for r in collect(settings, store, streams, env=env)}
    return results, store


@pytest.mark.parametrize("api", ["rest", "graphql"])
def test_second_collection_costs_one_list_request_per_repository(tmp_path: Path, fake: FakeGithub,
                                                                 api: str) -> None:
    """Re-collecting with no changes lists each repository once (one REST list or one GraphQL
    query, plus org calls) and stores no new code_change record."""
    first, store = _collect(tmp_path, fake, api=api)
    assert all(r.status == "ok" for r in first.values()), first
    stored = _rows(store)
    assert len(stored) == first[PRS].records_new > 0
    fake.clear_log()
    settings = _settings(tmp_path, fake.url, f'api = "{api}"\n')
    [again] = collect(settings, store, [PRS], env=ENV)
    assert again.status == "ok" and again.items == 0 and again.records_new == 0
    if api == "rest":
        pull_lists = [r.path for r in fake.requests if r.path.endswith("/pulls")]
        assert sorted(pull_lists) == sorted(f"/repos/acme/{name}/pulls" for name in fake.org.repos)
    else:
        assert fake.count("POST", "/graphql") == len(fake.org.repos)
    assert len(fake.requests) == len(fake.org.repos) + 2  # GET /orgs/acme and /orgs/acme/repos
    assert _rows(store) == stored
    store.close()


def test_stored_records_carry_the_seeded_exceptions(tmp_path: Path, fake: FakeGithub, seeded: SeededOrg) -> None:
    """Each seeded control failure is stored as an exception record and nothing else is."""
    _, store = _collect(tmp_path, fake)
    known = seeded.known
    expected = {
        PRS: {known.pr_unreviewed, known.pr_self_approved, known.pr_approval_withdrawn,
              known.pr_dismissed_before_merge, known.pr_approved_after_merge},
        "github.branch_protection": {known.unprotected_branch, known.zero_approvals_branch},
        "github.org_settings": {known.org, known.member_2fa_disabled},
        "github.members": {known.member_2fa_disabled},
    }
    for stream, keys in expected.items():
        assert {key for key, status in _rows(store, stream).values() if status == "exception"} == keys
    assert store.filing_counts()["CC8.1"] >= len(_rows(store))
    store.close()


def test_injected_429s_and_500_store_the_same_ids_as_a_clean_run(tmp_path: Path, fake: FakeGithub) -> None:
    """With 2x429 and 1x500 injected, the stored pull request records equal a clean run's."""
    clean, clean_store = _collect(tmp_path / "clean", fake, [PRS])
    assert clean[PRS].status == "ok"
    fake.faults.push(too_many_requests(retry_after=1), path_prefix="/repos/acme/api/pulls")
    fake.faults.push(too_many_requests(retry_after=1), path_prefix="/repos/acme/infra/pulls/")
    fake.faults.push(internal_error(500), path_prefix="/repos/acme/web/pulls")
    faulted, store = _collect(tmp_path / "faulted", fake, [PRS])
    assert faulted[PRS].status == "ok" and fake.faults.pending == 0
    assert _rows(store) == _rows(clean_store)
    clean_store.close()
    store.close()


def test_secondary_limit_drop_and_truncation_are_survived(tmp_path: Path, fake: FakeGithub) -> None:
    """A secondary-limit 403, a dropped connection and a truncated body leave the records unchanged."""
    _, clean_store = _collect(tmp_path / "clean", fake, [PRS])
    fake.faults.push(secondary_rate_limit(retry_after=1), path_prefix="/orgs/acme/repos")
    fake.faults.push(Drop(), path_prefix="/repos/acme/infra/pulls")
    fake.faults.push(Truncated(), path_prefix="/repos/acme/api/pulls/")
    faulted, store = _collect(tmp_path / "faulted", fake, [PRS])
    assert faulted[PRS].status == "ok" and fake.faults.pending == 0
    assert _rows(store) == _rows(clean_store)
    clean_store.close()
    store.close()


def test_a_run_failed_by_a_lasting_fault_converges_next_run(tmp_path: Path, fake: FakeGithub) -> None:
    """A fault outlasting the retries fails the run with its error; the next run stores exactly
    what a clean run does, keeping what the failed run committed."""
    _, clean_store = _collect(tmp_path / "clean", fake, [PRS])
    settings = _settings(tmp_path / "faulted", fake.url, 'api = "rest"\n')
    store = Store.open(settings.storage_url)
    config = settings.connectors["github"]
    assert isinstance(config, GithubConfig)
    fast = HttpOptions(max_attempts=6, backoff=0.01, max_backoff=0.05, timeout=5.0)
    pipeline = Pipeline(store, Filing(Catalog.builtin(), settings.filing))
    fake.faults.push(internal_error(503), times=50, path_prefix="/repos/acme/web/pulls")
    connector = GithubConnector(config, env=ENV, http=fast)
    failed = pipeline.run(connector.stream("pull_requests"), config)
    assert failed.status == "failed" and failed.error_class == "RetriableError"
    assert "503" in (failed.error or "")
    partial = _rows(store)
    assert partial and set(partial) < set(_rows(clean_store))
    fake.faults.clear()
    resumed = pipeline.run(connector.stream("pull_requests"), config)
    assert resumed.status == "ok"
    assert _rows(store) == _rows(clean_store)
    connector.close()
    clean_store.close()
    store.close()


def test_graphql_faults_store_the_same_ids_as_a_clean_rest_run(tmp_path: Path, fake: FakeGithub) -> None:
    """A 429, a 502, a dropped connection and a truncated body on GraphQL queries are retried,
    and the stored records equal a clean REST collection's, ids included."""
    _, clean_store = _collect(tmp_path / "clean", fake, [PRS], api="rest")
    fake.faults.push(too_many_requests(retry_after=1), path_prefix="/graphql")
    fake.faults.push(internal_error(502), path_prefix="/graphql")
    fake.faults.push(Drop(), path_prefix="/graphql")
    fake.faults.push(Truncated(), path_prefix="/graphql")
    fake.clear_log()
    faulted, store = _collect(tmp_path / "faulted", fake, [PRS], api="graphql")
    assert faulted[PRS].status == "ok" and fake.faults.pending == 0
    assert sum(1 for r in fake.requests if r.fault) == 4
    assert _rows(store) == _rows(clean_store)
    clean_store.close()
    store.close()


def test_bad_token_fails_the_stream_once_naming_the_variable(tmp_path: Path, fake: FakeGithub) -> None:
    """A 401 fails the run with an AuthError naming $GITHUB_TOKEN after exactly one request."""
    results, store = _collect(tmp_path, fake, [PRS], env={"GITHUB_TOKEN": "ghp_revoked"})
    run = results[PRS]
    assert run.status == "failed" and run.error_class == "AuthError"
    assert "$GITHUB_TOKEN" in (run.error or "") and "github" in (run.error or "")
    assert [r.status for r in fake.requests] == [401]
    assert _rows(store) == {}
    store.close()


def test_new_pull_between_collections_is_one_new_record(tmp_path: Path, fake: FakeGithub) -> None:
    """A pull merged between collections becomes exactly one new record, filed under CC8.1."""
    _, store = _collect(tmp_path, fake, [PRS])
    before = _rows(store)
    with fake.lock:
        added = fake.org.add_pull("docs", author="alice", merged_at=datetime.now(UTC) - timedelta(minutes=2))
    settings = _settings(tmp_path, fake.url)
    [run] = collect(settings, store, [PRS], env=ENV)
    after = _rows(store)
    new = {k: v for k, v in after.items() if k not in before}
    assert run.records_new == 1 and list(new.values()) == [(f"acme/docs#{added.number}", "exception")]
    store.close()


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ('base_url = "ftp://example.com"\n', "connectors.github.base_url"),
        ("per_page = 500\n", "connectors.github.per_page"),
        ('repos = ["other/api"]\n', "connectors.github.repos[0]"),
    ],
)
def test_bad_config_is_one_line_naming_the_key(tmp_path: Path, extra: str, key: str) -> None:
    """An unusable GitHub setting is a ConfigError naming the key, before any request."""
    path = tmp_path / "config.toml"
    base = "" if "base_url" in extra else 'base_url = "http://127.0.0.1:1"\n'
    path.write_text(f'[connectors.github]\norg = "acme"\n{base}{extra}')
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert key in str(info.value)


def test_missing_org_is_reported_by_name(tmp_path: Path) -> None:
    """The org is the connector's identity: a section without it names connectors.github.org."""
    path = tmp_path / "config.toml"
    path.write_text('[connectors.github]\ntoken_env = "GH"\n')
    with pytest.raises(ConfigError, match=r"connectors\.github\.org"):
        load_settings(path)
