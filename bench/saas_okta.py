"""Okta against the fake: requests per 1,000 evidence records and records/s, per stream.

Run: .venv/bin/python bench/saas_okta.py [--days N] [--users N] [--page-size N] [--org-users N]
The baseline, measured in the same run, is the synthetic connector through the same
pipeline and store (no HTTP), so the figures show what the Okta path adds.

Then okta.users on an org of ``--org-users`` users, each read after an okta.system_log run (as
``collect`` and the daemon run them): a full read (every user's factors), a read with no factor
changes (the listing pages: the factor changes come from okta.system_log's read), and a read after
``--changes`` users changed factors, each with its requests per 200 users, the full read's beside
it; then a read with no okta.system_log read in the process (one System Log query more).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from collector.catalog import Catalog, Filing
from collector.logs import configure_logging
from collector.pipeline import Pipeline, RunResult
from connectors.okta import OktaConfig, OktaConnector
from connectors.synthetic import SyntheticConfig, SyntheticConnector
from sandbox.okta import DEFAULT_TOKEN, FakeOkta
from sandbox.okta_data import seed_org
from storage import Store


def _line(label: str, result: RunResult, requests: int, seconds: float) -> None:
    per_k = requests * 1000 / result.records_new if result.records_new else float("nan")
    rate = result.records_new / seconds if seconds else float("nan")
    print(f"{label:<28} records={result.records_new:>7} requests={requests:>5} "
          f"requests/1k={per_k:>8.2f} records/s={rate:>9.0f} seconds={seconds:.2f} status={result.status}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--users", type=int, default=25)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--org-users", type=int, default=2000)
    parser.add_argument("--changes", type=int, default=10)
    args = parser.parse_args()
    configure_logging("warning")
    org = seed_org(seed=7, now=datetime.now(UTC) - timedelta(minutes=5), days=args.days, users=args.users)
    with tempfile.TemporaryDirectory() as tmp, FakeOkta(org) as fake:
        filing = Filing(Catalog.builtin(), {})
        store = Store.open(f"sqlite:///{Path(tmp) / 'okta.db'}")
        config = OktaConfig(org_url=fake.url, page_size=args.page_size,
                            backfill=timedelta(days=args.days + 1))
        connector = OktaConnector(config, env={"OKTA_API_TOKEN": DEFAULT_TOKEN})
        pipeline = Pipeline(store, filing)
        for label, stream in (("okta.system_log first", "system_log"),
                              ("okta.system_log re-run", "system_log"),
                              ("okta.users", "users")):
            fake.clear_log()
            started = time.perf_counter()
            result = pipeline.run(connector.stream(stream), config)
            _line(label, result, fake.count(), time.perf_counter() - started)
        connector.close()
        store.close()

        baseline_store = Store.open(f"sqlite:///{Path(tmp) / 'synthetic.db'}")
        count = sum(1 for _ in org.events)
        synthetic = SyntheticConnector(SyntheticConfig(count=count, streams=("events",)))
        started = time.perf_counter()
        result = Pipeline(baseline_store, filing).run(synthetic.stream("events"), synthetic.config)
        _line("baseline synthetic.events", result, 0, time.perf_counter() - started)
        baseline_store.close()
    _factor_reads(args.org_users, args.changes)


def _factor_reads(users: int, changes: int) -> None:
    """okta.users full, unchanged and changed reads on an org of ``users`` users, each after an
    okta.system_log run, as ``collect`` and the daemon run them (system_log first): the users
    read's own requests, and system_log's beside them (made whether or not okta.users runs)."""
    org = seed_org(seed=7, now=datetime.now(UTC) - timedelta(minutes=5), days=1, users=users)
    with tempfile.TemporaryDirectory() as tmp, FakeOkta(org) as fake:
        for limit in fake.limits.values():
            limit.limit = 1_000_000  # the figures are about requests made, not Okta's pacing
        store = Store.open(f"sqlite:///{Path(tmp) / 'users.db'}")
        # settle 0s: the fake shows every event at once (the default 1m would leave the changes
        # made just before a read to the next read, and this read would show no factor request).
        config = OktaConfig(org_url=fake.url, low_remaining=0, settle=timedelta(0))
        connector = OktaConnector(config, env={"OKTA_API_TOKEN": DEFAULT_TOKEN})
        pipeline = Pipeline(store, Filing(Catalog.builtin(), {}))
        figures: dict[str, float] = {}
        active = [u["id"] for u in fake.users if u["status"] == "ACTIVE"]
        deprovisioned = sum(1 for u in fake.users if u["status"] == "DEPROVISIONED")
        print(f"okta.users org: {users} users ({deprovisioned} DEPROVISIONED), listing pages of 200")
        for label in ("full read", "no factor changes", f"{changes} users changed"):
            if label.endswith("changed"):
                for user_id in active[:changes]:
                    fake.change_factors(user_id, [])
            time.sleep(0.01)  # the System Log's until is exclusive: past the last change
            fake.clear_log()
            pipeline.run(connector.stream("system_log"), config)
            system_log = fake.count()
            fake.clear_log()
            started = time.perf_counter()
            result = pipeline.run(connector.stream("users"), config)
            seconds = time.perf_counter() - started
            requests = fake.count()
            figures[label] = requests * 200 / users
            factors = sum(1 for r in fake.requests if r.path.endswith("/factors"))
            listing = sum(1 for r in fake.requests if r.path == "/api/v1/users")
            logs = fake.count(path_prefix="/api/v1/logs")
            print(f"okta.users {label:<22} records={result.records_new:>6} "
                  f"requests={requests:>5} (listing pages {listing}, log queries {logs}, factors {factors}) "
                  f"requests/200 users={figures[label]:>7.2f} seconds={seconds:.2f} status={result.status}; "
                  f"okta.system_log's run before it: {system_log} request(s)")
        print(f"okta.users requests/200 users: no changes {figures['no factor changes']:.2f} "
              f"beside a full read's {figures['full read']:.2f} (bar: at most 1.00 with no changes)")
        # Without okta.system_log's read (a replica that did not run it, or it is disabled),
        # okta.users asks the System Log itself: one more request.
        from connectors.okta._factor_changes import FACTOR_CHANGES

        FACTOR_CHANGES.clear()
        fake.clear_log()
        pipeline.run(connector.stream("users"), config)
        print(f"okta.users no factor changes, no okta.system_log read in this process: "
              f"{fake.count()} requests ({fake.count() * 200 / users:.2f} per 200 users)")
        connector.close()
        store.close()


if __name__ == "__main__":
    main()
