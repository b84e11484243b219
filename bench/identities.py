"""Identity checks benchmark: offboarding, orphans and revocations over 100,000 stored state records.

Seeds one newest read each of okta.users (40%), github.members (30%) and aws.iam_users (30%) in
a SQLite store (5% of people departed past the grace, 1% of accounts linked to nobody, 500
revoke decisions), then times ``run_identity_checks`` (read, link, check, store the findings as
three runs). The same-run baseline reads the same three reads and parses every body, the least
any check over stored state must do. Usage: python bench/identities.py [--records 100000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
ACCOUNT = "123456789012"


def _okta(n: int) -> tuple[str, dict[str, Any]]:
    departed = n % 20 == 0
    return f"00u{n:08d}", {"user_id": f"00u{n:08d}", "login": f"p{n}@acme.example",
                           "email": f"p{n}@acme.example", "status": "DEPROVISIONED" if departed else "ACTIVE",
                           "last_login": None,
                           "status_changed": "2026-11-10T00:00:00.000Z" if departed else None,
                           "factors": [], "active_factors": 1}


def _member(n: int) -> tuple[str, dict[str, Any]]:
    email = None if n % 100 == 0 else f"p{n}@acme.example"
    return f"acme/gh{n}", {"org": "acme", "login": f"gh{n}", "user_id": n, "role": "member",
                           "two_factor_enabled": True, "saml_email": email, "active": True}


def _iam(n: int) -> tuple[str, dict[str, Any]]:
    arn = f"arn:aws:iam::{ACCOUNT}:user/u{n}"
    email = None if n % 100 == 0 else f"p{n}@acme.example"
    return arn, {"account_id": ACCOUNT, "user_name": f"u{n}", "user_id": f"AIDA{n}", "arn": arn,
                 "created": "2025-01-01T00:00:00Z", "groups": ["developers"], "attached_policies": [],
                 "inline_policies": [], "console_access": True, "password_last_used": None,
                 "active_keys": [], "tags": {"email": email} if email else {}, "email": email, "active": True}


def _seed(store: Any, records: int) -> None:
    from collector.records import build_record, format_ts, parsed_body

    stamp = format_ts(NOW - timedelta(hours=1))
    plan = (("okta.users", "mfa_status", _okta, records * 4 // 10),
            ("github.members", "account", _member, records * 3 // 10),
            ("aws.iam_users", "account", _iam, records - records * 7 // 10))
    for stream, kind, make, count in plan:
        rows = []
        for n in range(count):
            key, data = make(n)
            rows.append(build_record(stream=stream, source_key=key, kind=kind, observed_at=stamp,
                                     collected_at=stamp, actor=None, source_url=None, raw_sha256="0" * 64,
                                     data=data, exception_reason=None, controls=("CC6.1",), run_id="seed"))
        filings = [(c, r.observed_at, r.id, r.stream, r.status)
                   for r in rows for c in parsed_body(r)["controls"]]
        with store.engine.begin() as conn:
            store.insert_records(conn, rows, filings)


def _seed_decisions(settings: Any, store: Any, count: int) -> None:
    from collector.manual.streams import AttestationStream, prepared_item, store_items
    from connectors.sdk.items import Normalised

    at = NOW - timedelta(days=9)
    items = []
    for n in range(1, count + 1):
        arn = f"arn:aws:iam::{ACCOUNT}:user/u{n}"
        data = {"type": "access_review", "person": "lead@acme.example", "item": f"aws-2026-Q4/{arn}",
                "at": "2026-11-11T09:00:00.000000Z", "campaign": "aws-2026-Q4", "system": "aws",
                "account": arn,
                "account_key": arn, "subject": f"p{n}@acme.example", "decision": "revoke", "comment": "",
                "line": n + 1, "file_sha256": "0" * 64, "worksheet_sha256": "0" * 64}
        items.append(prepared_item(f"access_review/lead@acme.example/aws-2026-Q4/{arn}", at, Normalised(
            kind="attestation", actor="lead@acme.example", source_url=None, data=data, criteria=("CC6.2",))))
    store_items(settings, store, AttestationStream(items))


def _baseline(store: Any) -> int:
    from storage.manual_queries import latest_read

    parsed = 0
    with store.engine.connect() as conn:
        for stream in ("okta.users", "github.members", "aws.iam_users"):
            _, bodies = latest_read(conn, stream)
            parsed += sum(1 for body in bodies if orjson.loads(body))
    return parsed


def main() -> None:
    """Seed, run the baseline and the checks (each timed once, after one warm-up read), print both."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
    from collector.config import load_settings
    from collector.identities import run_identity_checks
    from storage import Store

    folder = Path(tempfile.mkdtemp(prefix="bench-identities-"))
    config = folder / "config.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///{folder / "e.db"}"\n')
    settings = load_settings(config)
    store = Store.open(settings.storage_url)
    _seed(store, args.records)
    _seed_decisions(settings, store, 500)
    _baseline(store)  # warm the page cache for both measurements
    started, cpu = time.perf_counter(), time.process_time()
    parsed = _baseline(store)
    baseline, baseline_cpu = time.perf_counter() - started, time.process_time() - cpu
    started, cpu = time.perf_counter(), time.process_time()
    results = run_identity_checks(settings, store, now=NOW + timedelta(minutes=uuid.uuid4().int % 7))
    checks, checks_cpu = time.perf_counter() - started, time.process_time() - cpu
    found = {r.stream: r.records_new for r in results}
    store.close()
    print(f"stored state records read: {parsed:,} (okta.users, github.members, aws.iam_users)")
    print(f"baseline (read and parse the three newest reads): {baseline:.2f} s ({baseline_cpu:.2f} s CPU)")
    print(f"identity checks (read, link, check, store {sum(found.values()):,} findings in "
          f"{len(found)} runs): {checks:.2f} s ({checks_cpu:.2f} s CPU)  [bar: < 2 s]")
    for stream, count in found.items():
        print(f"  {stream}: {count:,} records")
    # On a shared machine wall time is CPU time times the contention: the load says how much.
    print(f"load average (1 min): {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
