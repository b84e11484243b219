"""Jira connector against the fake: requests per 1,000 records and records/s, with a baseline.

The baseline, measured in the same run against the same fake, pages the same two searches
with plain `requests` and does nothing else: the cost of the wire alone. The figure under
test is a full first collection (jira client, changelog completion, normalise, hash, file,
SQLite commit), then a second collection with nothing changed.

    .venv/bin/python bench/saas_jira.py [--changes 2000] [--incidents 500]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from collector.collect import collect
from collector.config import load_settings
from sandbox.jira import DEFAULT_EMAIL, DEFAULT_TOKEN, FakeJira
from storage import Store

ENV = {"JIRA_EMAIL": DEFAULT_EMAIL, "JIRA_API_TOKEN": DEFAULT_TOKEN}
FIELDS = "summary,issuetype,status,resolution,resolutiondate,reporter,assignee,priority,created,updated"


def baseline(fake: FakeJira) -> tuple[int, int, float]:
    """(issues, requests, seconds) to page both searches with plain requests."""
    session = requests.Session()
    session.auth = (DEFAULT_EMAIL, DEFAULT_TOKEN)
    issues = calls = 0
    started = time.perf_counter()
    for jql in ("project = CHG ORDER BY updated ASC", "project = INC ORDER BY updated ASC"):
        token: str | None = None
        while True:
            params: dict[str, Any] = {"jql": jql, "maxResults": 100, "fields": FIELDS, "expand": "changelog"}
            if token:
                params["nextPageToken"] = token
            body = session.get(f"{fake.url}/rest/api/2/search/jql", params=params, timeout=30).json()
            calls += 1
            issues += len(body["issues"])
            if body["isLast"]:
                break
            token = body["nextPageToken"]
    return issues, calls, time.perf_counter() - started


def collection(fake: FakeJira, workdir: Path) -> list[tuple[str, int, int, float]]:
    """(label, records, requests, seconds) for a first and a second (unchanged) collection."""
    config = workdir / "config.toml"
    config.write_text(
        f'[storage]\nurl = "sqlite:///{workdir / "bench.db"}"\n[connectors.jira]\nurl = "{fake.url}"\n'
        'email_env = "JIRA_EMAIL"\ntoken_env = "JIRA_API_TOKEN"\nchange_jql = "project = CHG"\n'
    )
    settings = load_settings(config)
    store = Store.open(settings.storage_url)
    out = []
    for label in ("first collection", "second, unchanged"):
        fake.clear_log()
        started = time.perf_counter()
        results = collect(settings, store, env=ENV)
        seconds = time.perf_counter() - started
        assert all(r.status == "ok" for r in results), [(r.stream, r.error) for r in results]
        out.append((label, sum(r.records_new for r in results), len(fake.requests), seconds))
    store.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=2000)
    parser.add_argument("--incidents", type=int, default=500)
    args = parser.parse_args()
    with FakeJira.seeded(now=datetime.now(UTC), changes=args.changes, incidents=args.incidents) as fake:
        issues, calls, seconds = baseline(fake)
        fake.clear_log()
        print(f"jira fake: {args.changes} change tickets, {args.incidents} incidents over 60 days")
        print(f"{'run':<28}{'records':>9}{'requests':>10}{'req/1k rec':>12}{'rec/s':>10}")
        print(f"{'baseline: raw paging':<28}{issues:>9}{calls:>10}{1000 * calls / issues:>12.1f}"
              f"{issues / seconds:>10.0f}")
        with tempfile.TemporaryDirectory() as tmp:
            for label, records, requests_made, took in collection(fake, Path(tmp)):
                per_k = f"{1000 * requests_made / records:.1f}" if records else "-"
                rate = f"{records / took:.0f}" if records else "-"
                print(f"{'collector: ' + label:<28}{records:>9}{requests_made:>10}{per_k:>12}{rate:>10}")


if __name__ == "__main__":
    main()
