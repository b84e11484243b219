"""Okta against the fake: requests per 1,000 evidence records and records/s, per stream.

Run: .venv/bin/python bench/saas_okta.py [--days N] [--users N] [--page-size N]
The baseline, measured in the same run, is the synthetic connector through the same
pipeline and store (no HTTP), so the figures show what the Okta path adds.
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


if __name__ == "__main__":
    main()
