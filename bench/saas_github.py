"""GitHub connector against the sandbox fake: requests per 1,000 merged pull requests and records/s.

Runs github.pull_requests through the real pipeline into SQLite with ``api = "graphql"`` and
with ``api = "rest"``, each twice (a first collection and a re-collection with nothing new),
prints both side by side and whether the two stores hold the same record ids, with the fake's
own listing cost as the baseline measured in the same run (every page of every repository's
closed pulls, no detail reads). Usage: python bench/saas_github.py [--days N] [--every-hours H]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import github
import sqlalchemy as sa


def main() -> None:
    from collector.collect import collect
    from collector.config import load_settings
    from collector.logs import configure_logging
    from sandbox.github import FakeGithub
    from sandbox.github_seed import seed_org
    from storage import Store

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--every-hours", type=int, default=8)
    args = parser.parse_args()
    configure_logging("error")
    seeded = seed_org(seed=1, now=datetime.now(UTC) - timedelta(hours=1), days=args.days,
                      every_hours=args.every_hours)
    with FakeGithub(seeded.org, token="bench") as fake, tempfile.TemporaryDirectory() as tmp:
        gh = github.Github(auth=github.Auth.Token("bench"), base_url=fake.url, per_page=100,
                           seconds_between_requests=None, seconds_between_writes=None)
        started = time.perf_counter()
        listed = sum(1 for name in seeded.org.repos
                     for _ in gh.get_repo(f"acme/{name}").get_pulls(state="closed", sort="updated",
                                                                    direction="desc"))
        baseline_s = time.perf_counter() - started
        baseline_requests = len(fake.requests)
        gh.close()
        fake.clear_log()

        merged = sum(1 for repo in seeded.org.repos.values() for p in repo.pulls if p.merged_at)
        env = {"GITHUB_TOKEN": "bench"}
        ids: dict[str, set[str]] = {}
        first_cost: dict[str, float] = {}
        for api in ("graphql", "rest"):
            config = Path(tmp) / f"{api}.toml"
            config.write_text(
                f'[storage]\nurl = "sqlite:///{Path(tmp) / f"{api}.db"}"\n\n[connectors.github]\n'
                f'org = "acme"\nbase_url = "{fake.url}"\nrequest_spacing_ms = 0\n'
                f'backfill = "{args.days + 1}d"\napi = "{api}"\n'
            )
            settings = load_settings(config)
            store = Store.open(settings.storage_url)
            for label in ("first collection", "re-collection"):
                fake.clear_log()
                started = time.perf_counter()
                [run] = collect(settings, store, ["github.pull_requests"], env=env)
                seconds = time.perf_counter() - started
                requests = len(fake.requests)
                per_1000 = requests * 1000 / merged
                if label == "first collection":
                    first_cost[api] = per_1000
                rate = run.records_new / seconds
                print(f"{api:7s} {label:17s} records={run.records_new:6d} requests={requests:6d} "
                      f"requests/1000 merged pulls={per_1000:8.1f} records/s={rate:8.1f} "
                      f"seconds={seconds:6.2f} status={run.status}")
            with store.engine.connect() as conn:
                ids[api] = set(conn.execute(sa.text(
                    "SELECT id FROM evidence WHERE stream = 'github.pull_requests'")).scalars())
            store.close()
        same = ids["graphql"] == ids["rest"]
        print(f"merged pulls={merged} graphql requests/1000={first_cost['graphql']:.1f} "
              f"rest requests/1000={first_cost['rest']:.1f} same record ids={same} "
              f"({len(ids['graphql'])} graphql, {len(ids['rest'])} rest)")
        print(f"baseline (list only) pulls={listed:6d} requests={baseline_requests:6d} "
              f"seconds={baseline_s:6.2f} pulls/s={listed / baseline_s:8.1f}")
        print(f"repositories={len(seeded.org.repos)}: a re-collection should cost "
              f"{len(seeded.org.repos)} list requests (or queries) + 2 org calls")
        if not same or first_cost["graphql"] > 30:
            sys.exit(1)


if __name__ == "__main__":
    main()
