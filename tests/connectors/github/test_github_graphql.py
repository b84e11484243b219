"""GitHub pull requests through GraphQL: the same records as REST, at a fraction of the requests."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from collector.collect import collect
from collector.config import load_settings
from collector.logs import configure_logging
from connectors.github import GithubConfig
from connectors.github import _client as github_client
from sandbox._http import Status
from sandbox.github import FakeGithub
from storage import Store

ENV = {"GITHUB_TOKEN": "ghp_fake_token"}
PRS = "github.pull_requests"


def _store_of(directory: Path, fake: FakeGithub, api: str) -> tuple[Store, str]:
    """Collect github.pull_requests with ``api`` into a fresh SQLite store; (store, run status)."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "config.toml"
    config.write_text(
        f'[storage]\nurl = "sqlite:///{directory / "evidence.db"}"\n\n'
        f'[connectors.github]\norg = "acme"\nbase_url = "{fake.url}"\nrequest_spacing_ms = 0\n'
        f'api = "{api}"\nbackfill = "400d"\n'
    )
    settings = load_settings(config)
    store = Store.open(settings.storage_url)
    [run] = collect(settings, store, [PRS], env=ENV)
    return store, run.status


def _records(store: Store) -> dict[str, tuple[str, str]]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, source_key, body FROM evidence WHERE stream = :s"), {"s": PRS})
        return {row.id: (row.source_key, row.body) for row in rows}


def _add_edge_cases(fake: FakeGithub) -> tuple[str, str]:
    """A pull merged by a GitHub App's bot and a pull with 101 reviews; their source keys."""
    merged = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    with fake.lock:
        bot = fake.org.add_pull("api", author="dependabot[bot]", merged_at=merged,
                                merged_by="renovate[bot]", reviews=[("carol", "APPROVED")])
        crowded = fake.org.add_pull("web", author="alice", merged_at=merged - timedelta(hours=200),
                                    reviews=[("bob", "COMMENTED")] * 100 + [("bob", "APPROVED")])
    return f"acme/api#{bot.number}", f"acme/web#{crowded.number}"


def test_graphql_and_rest_store_the_same_records(tmp_path: Path, fake: FakeGithub) -> None:
    """Collected through GraphQL and through REST, the pull request records are identical, ids and
    bodies, dismissals, bot actors and a pull with more reviews than one GraphQL page included."""
    bot, crowded = _add_edge_cases(fake)
    rest_store, rest_status = _store_of(tmp_path / "rest", fake, "rest")
    fake.clear_log()
    graphql_store, graphql_status = _store_of(tmp_path / "graphql", fake, "graphql")
    assert rest_status == graphql_status == "ok"
    rest, graphql = _records(rest_store), _records(graphql_store)
    assert len(rest) > 10 and graphql == rest
    keys = {key for key, _ in rest.values()}
    assert {bot, crowded} <= keys
    bodies = {key: json.loads(body) for key, body in rest.values()}
    assert bodies[bot]["actor"] == "renovate[bot]" and bodies[bot]["data"]["author"] == "dependabot[bot]"
    assert len(bodies[crowded]["data"]["reviews"]) == 101
    # GraphQL read every pull but the crowded one in its queries; REST read that one's detail
    # and its two pages of reviews.
    crowded_path = f"/repos/{crowded.replace('#', '/pulls/')}"
    assert fake.count("GET", f"{crowded_path}/reviews") == 2
    assert len([r for r in fake.requests if r.path == crowded_path]) == 1
    assert fake.count("GET", "/repos/acme/api/pulls") == 0
    rest_store.close()
    graphql_store.close()


def test_graphql_costs_a_query_per_hundred_pulls_per_repository(tmp_path: Path, fake: FakeGithub) -> None:
    """A first GraphQL collection costs one query per 100 merged pulls (at least one) per
    repository, plus the org and its repository listing: no request per pull."""
    store, status = _store_of(tmp_path, fake, "graphql")
    assert status == "ok"
    merged = {name: sum(1 for p in repo.pulls if p.merged_at) for name, repo in fake.org.repos.items()}
    expected = sum(max(1, -(-count // 100)) for count in merged.values())
    assert fake.count("POST", "/graphql") == expected
    assert len(fake.requests) == expected + 2
    store.close()


def test_a_server_without_graphql_is_read_through_rest_and_logged_once(
        tmp_path: Path, fake: FakeGithub, monkeypatch: pytest.MonkeyPatch) -> None:
    """When /graphql answers 404 the stream falls back to REST, stores the REST records, logs the
    fallback once, and later runs in the process do not ask GraphQL again."""
    # The process-wide memory of servers without GraphQL, emptied after the test (ports are reused).
    monkeypatch.setattr(github_client, "_NO_GRAPHQL", set())
    rest_store, _ = _store_of(tmp_path / "rest", fake, "rest")
    fake.graphql_enabled = False
    out = io.StringIO()
    configure_logging("warning", out, force_json=True)
    fake.clear_log()
    first, status = _store_of(tmp_path / "first", fake, "graphql")
    assert status == "ok" and _records(first) == _records(rest_store)
    assert fake.count("POST", "/graphql") == 1
    fake.clear_log()
    second, status = _store_of(tmp_path / "second", fake, "graphql")
    assert status == "ok" and fake.count("POST", "/graphql") == 0
    assert _records(second) == _records(rest_store)
    logged = [json.loads(line) for line in out.getvalue().splitlines() if "graphql" in line]
    assert [e["event"] for e in logged] == ["github_graphql_unavailable"]
    assert "ghp_fake_token" not in out.getvalue()
    configure_logging("warning")
    for store in (rest_store, first, second):
        store.close()


def test_a_graphql_error_fails_the_run_naming_it(tmp_path: Path, fake: FakeGithub) -> None:
    """A GraphQL error answer (HTTP 200 with ``errors``) fails the run with the error's message."""
    fake.faults.push(Status(200, body={"errors": [{"message": "Something went wrong while executing"}]}),
                     path_prefix="/graphql")
    store, status = _store_of(tmp_path, fake, "graphql")
    with store.engine.connect() as conn:
        error = conn.execute(sa.text("SELECT error FROM runs WHERE stream = :s"), {"s": PRS}).scalar()
    assert status == "failed" and "GraphQL error on POST /graphql" in str(error)
    assert "Something went wrong while executing" in str(error)
    store.close()


@pytest.mark.parametrize("api", ["graphql", "rest"])
def test_api_key_accepts_graphql_and_rest(api: str) -> None:
    """``api`` is "graphql" or "rest"; either passes the config check."""
    assert GithubConfig(org="acme", api=api).problems() == []


def test_api_key_names_a_wrong_value() -> None:
    """Any other ``api`` value is a problem naming the key and the allowed values."""
    assert GithubConfig(org="acme", api="soap").problems() == [("api", 'expected "graphql" or "rest", got "soap"')]
