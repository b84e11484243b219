"""Benchmark: build and render the weekly digest over a SQLite window holding 1,000,000 records.

Seeds the store with raw sqlite3 executemany (records + filings, ~1% exceptions, hourly state
reads), then times `build_digest` + rendering/writing (median of 3) with the starter control
library judged on the security and availability criteria (46 controls, 36 criteria), against a
baseline measured in the same run (the store's existing `filing_counts` over the same window),
and prints the query plans of the digest's aggregate queries.

    .venv/bin/python bench/digest.py [--records 1000000] [--dir DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sqlite3
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from collector.catalog import Catalog
from collector.collect import PlannedStream
from collector.controls import ControlLibrary, resolve_scope
from collector.digest import DigestScope, build_digest
from collector.digest.render import write_files
from collector.records import format_ts
from collector.windows import parse_window
from storage import Store

WEEK = "2026-W48"
WINDOW_START = datetime(2026, 11, 1, tzinfo=UTC)
WINDOW_END = datetime(2026, 11, 30, tzinfo=UTC)  # end of W48: the window to date
NOW = datetime(2026, 11, 30, 8, tzinfo=UTC)

# (stream, kind, criteria, share of records, exception reason, distinct source keys)
STREAMS: list[tuple[str, str, tuple[str, ...], float, str, int]] = [
    ("okta.system_log", "access_log", ("CC6.1", "CC7.2"), 0.45, "", 0),
    ("aws.cloudtrail", "access_log", ("CC6.1", "CC7.2"), 0.20, "console login without MFA", 0),
    ("okta.users", "mfa_status", ("CC6.1",), 0.15, "ACTIVE user has no active MFA factor", 400),
    ("github.pull_requests", "code_change", ("CC8.1",), 0.08, "merged without an approving review", 0),
    ("jira.change_tickets", "change_ticket", ("CC8.1",), 0.05, "resolved without approval", 0),
    ("github.branch_protection", "config_state", ("CC6.1", "CC7.2", "CC8.1"), 0.04,
     "no protection on the default branch", 60),
    ("aws.backup_jobs", "backup_result", ("A1.2",), 0.03, "backup job FAILED", 0),
]


def seed(path: Path, total: int) -> tuple[int, int]:
    """Insert ``total`` records spread evenly over the window, and their filings."""
    Store.open(f"sqlite:///{path}").close()  # migrations, indexes and triggers as in production
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous=OFF")
    span = (WINDOW_END - WINDOW_START).total_seconds()
    records: list[tuple[Any, ...]] = []
    filings: list[tuple[str, str, str, str, str]] = []
    run_id = str(uuid.uuid4())
    n = 0
    for stream, kind, criteria, share, reason, keys in STREAMS:
        count = int(total * share) if stream != STREAMS[-1][0] else total - n
        for i in range(count):
            observed = format_ts(WINDOW_START + timedelta(seconds=span * (i + 0.5) / count))
            key = f"{stream}-{i % keys}" if keys else f"{stream}-{i}"
            # State streams: the same few keys fail every read; event streams: ~1% of events fail.
            failing = bool(reason) and ((keys and i % keys < 3) or (not keys and i % 97 == 5))
            status = "exception" if failing else "ok"
            body = orjson.dumps({
                "stream": stream, "source_key": key, "kind": kind, "observed_at": observed,
                "actor": f"user{i % 500}@example.com", "source_url": f"https://example.invalid/{key}",
                "raw_sha256": "0" * 64, "data": {"n": i}, "status": status,
                "exception_reason": reason if failing else None, "controls": list(criteria),
            }, option=orjson.OPT_SORT_KEYS).decode()
            rid = hashlib.sha256(body.encode()).hexdigest()
            records.append((rid, stream, key, kind, observed, observed, status,
                            f"user{i % 500}@example.com", run_id, body))
            filings.extend((c, observed, rid, stream, status) for c in criteria)
        n += count
    records.sort(key=lambda r: (r[4], r[0]))
    filings.sort()
    with db:
        db.executemany("INSERT INTO evidence (id, stream, source_key, kind, observed_at, collected_at, "
                       "status, actor, run_id, body) VALUES (?,?,?,?,?,?,?,?,?,?)", records)
        db.executemany("INSERT INTO filings (criterion, observed_at, record_id, stream, status) "
                       "VALUES (?,?,?,?,?)", filings)
        for stream, *_ in STREAMS:
            db.execute("INSERT INTO runs (id, stream, started_at, ended_at, status, items, records_new, "
                       "failures) VALUES (?,?,?,?,'ok',0,0,0)",
                       (str(uuid.uuid4()), stream, format_ts(NOW - timedelta(minutes=30)),
                        format_ts(NOW - timedelta(minutes=29))))
    db.close()
    return len(records), len(filings)


def plans(path: Path) -> None:
    """EXPLAIN QUERY PLAN of each aggregate the digest runs (parameters as in the benchmark)."""
    crit = ", ".join(f"'{c}'" for c in Catalog.builtin().criteria)
    start, end = "2026-11-23T00:00:00.000000Z", "2026-11-30T00:00:00.000000Z"
    queries = {
        "per criterion, one day of the week (x7)":
            f"SELECT criterion, count(*), sum(CASE WHEN status = 'exception' THEN 1 ELSE 0 END) "
            f"FROM filings WHERE criterion IN ({crit}) AND observed_at >= '{start}' "
            f"AND observed_at < '2026-11-24T00:00:00.000000Z' GROUP BY criterion",
        "per criterion (window start to week start)":
            f"SELECT criterion, count(*) FROM filings WHERE criterion IN ({crit}) AND observed_at >= "
            f"'2026-11-01T00:00:00.000000Z' AND observed_at < '{start}' GROUP BY criterion",
        "last evidence (one criterion)":
            f"SELECT max(observed_at) FROM filings WHERE criterion = 'CC6.1' AND observed_at < '{end}'",
        "exception records (week)":
            "SELECT DISTINCT e.id, e.stream, e.source_key, e.observed_at, e.actor, e.body "
            "FROM filings f JOIN evidence e ON e.observed_at = f.observed_at AND e.id = f.record_id "
            f"WHERE f.criterion IN ({crit}) AND f.observed_at >= '{start}' AND f.observed_at < '{end}' "
            "AND f.status = 'exception' ORDER BY e.observed_at, e.id",
        "records per (stream, kind) and period (one per pair and period)":
            "SELECT count(*), sum(CASE WHEN status = 'exception' THEN 1 ELSE 0 END), max(observed_at) "
            "FROM evidence WHERE stream = 'okta.system_log' AND kind = 'access_log' "
            f"AND observed_at >= '2026-11-01T00:00:00.000000Z' AND observed_at < '{start}'",
        "newest record of a (stream, kind) before a period's end":
            "SELECT max(observed_at) FROM evidence WHERE stream = 'okta.users' AND kind = 'mfa_status' "
            f"AND observed_at < '{end}'",
        "next (stream, kind) in the store (loose scan)":
            "SELECT kind FROM evidence WHERE stream = 'aws.cloudtrail' AND kind > 'access_log' "
            "ORDER BY stream, kind LIMIT 1",
    }
    db = sqlite3.connect(path)
    for name, sql in queries.items():
        print(f"  {name}:")
        for row in db.execute(f"EXPLAIN QUERY PLAN {sql}"):
            print(f"    {row[3]}")
    db.close()


def main() -> None:
    """Seed, time the baseline and the digest, print the figures and the query plans."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=None, help="work directory (default: a temp dir)")
    args = parser.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="ec-bench-digest-"))
    work.mkdir(parents=True, exist_ok=True)
    db_path = work / "evidence.db"
    db_path.unlink(missing_ok=True)
    t0 = time.perf_counter()
    n_records, n_filings = seed(db_path, args.records)
    print(f"seeded {n_records:,} records and {n_filings:,} filings in the window 2026-11 "
          f"({time.perf_counter() - t0:.1f} s)  db={db_path} ({db_path.stat().st_size / 2**20:.0f} MiB)")

    catalog = Catalog.builtin()
    streams = tuple(PlannedStream(sid.partition(".")[0], sid.partition(".")[2], frozenset({kind}),
                                  timedelta(hours=1)) for sid, kind, *_ in STREAMS)
    criteria = resolve_scope(catalog, ("security", "availability"))
    library = ControlLibrary.starter()
    scope = DigestScope(parse_window(WEEK, "UTC"), "month", criteria.criteria, streams, catalog,
                        library, criteria.excluded)
    store = Store.open(f"sqlite:///{db_path}")
    baseline, digest_times, render_times = [], [], []
    digest: dict[str, Any] = {}
    for _ in range(3):
        t = time.perf_counter()
        store.filing_counts("2026-11-01T00:00:00.000000Z", "2026-11-30T00:00:00.000000Z")
        baseline.append(time.perf_counter() - t)
        t = time.perf_counter()
        digest = build_digest(store, scope, NOW)
        t_built = time.perf_counter()
        write_files(digest, work / "digests")
        digest_times.append(time.perf_counter() - t)
        render_times.append(time.perf_counter() - t_built)
    store.close()
    window_total = sum(c["records_window"] for c in digest["criteria"])
    cov = digest["coverage"]
    operating = sum(1 for c in digest["controls"] if c["status"] == "operating")
    print(f"digest {WEEK} with {len(library)} controls ({library.source}) on {cov['in_scope']} criteria: "
          f"operating {cov['operating']}, designed {cov['designed']}, {operating} controls operating; "
          f"{len(digest['exceptions'])} exception lines from "
          f"{sum(e['occurrences'] for e in digest['exceptions']):,} records, "
          f"{window_total:,} filings window-to-date")
    print(f"baseline  Store.filing_counts(window)      median {statistics.median(baseline):.3f} s  "
          f"runs {', '.join(f'{x:.3f}' for x in baseline)}")
    print(f"digest    build + render + write 3 files   median {statistics.median(digest_times):.3f} s  "
          f"runs {', '.join(f'{x:.3f}' for x in digest_times)}  (render+write median "
          f"{statistics.median(render_times):.3f} s)   bar <= 2 s")
    print("query plans:")
    plans(db_path)
    if args.dir is None:
        shutil.rmtree(work, ignore_errors=True)  # ~1.2 GB at the default size


if __name__ == "__main__":
    main()
