"""Ingest benchmark: N synthetic records through the pipeline into SQLite, against the floor.

The floor is the unavoidable work for the same records with no pipeline: build the same body,
canonicalise, hash, and bulk-insert evidence + filings with raw sqlite3. Pipeline and floor
runs alternate, each in its own subprocess, so both see the same machine and peak RSS is per
run; any process the collection starts is counted beside it (it starts none today).
Bar: pipeline at least 0.85 of the floor, the collection's peak memory at most 160 MB.
Usage: python bench/ingest.py [--records N] [--repeat R]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

BAR_RATIO = 0.85
BAR_RSS_MB = 160.0


def _pipeline(n: int, folder: Path) -> float:
    from collector.catalog import Catalog, Filing
    from collector.logs import configure_logging
    from collector.pipeline import Pipeline
    from connectors.synthetic import SyntheticConfig, SyntheticConnector
    from storage import Store

    configure_logging("error")
    store = Store.open(f"sqlite:///{folder / 'pipeline.db'}")
    connector = SyntheticConnector(SyntheticConfig(count=n, start="2020-01-01T00:00:00Z", step_seconds=1))
    pipeline = Pipeline(store, Filing(Catalog.builtin(), {}), batch_size=5000)
    started = time.perf_counter()
    result = pipeline.run(connector.stream("events"), connector.config)
    elapsed = time.perf_counter() - started
    assert result.status == "ok" and result.records_new == n, result
    store.close()
    return elapsed


EVIDENCE_INSERT = (
    "INSERT OR IGNORE INTO evidence (id, stream, source_key, kind, observed_at, collected_at, status, "
    "actor, run_id, body) VALUES (?,?,?,?,?,?,?,?,?,?)"
)


def _floor(n: int, folder: Path) -> float:
    from storage import Store

    Store.open(f"sqlite:///{folder / 'floor.db'}").close()  # same schema, same triggers
    conn = sqlite3.connect(folder / "floor.db")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA cache_size=-65536")
    conn.execute("PRAGMA wal_autocheckpoint=5000")
    base = datetime(2020, 1, 1, tzinfo=UTC)
    collected = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    started = time.perf_counter()
    records: list[tuple[object, ...]] = []
    filings: list[tuple[object, ...]] = []
    for seq in range(n):
        observed = (base + timedelta(seconds=seq)).isoformat(timespec="microseconds")[:-6] + "Z"
        raw = orjson.dumps({"uuid": f"evt-{seq:09d}", "seq": seq})
        body = orjson.dumps({
            "stream": "synthetic.events", "source_key": f"evt-{seq:09d}", "kind": "access_log",
            "observed_at": observed, "actor": f"user{seq % 20}@example.com",
            "source_url": f"https://synthetic.invalid/events/evt-{seq:09d}",
            "raw_sha256": hashlib.sha256(raw).hexdigest(),
            "data": {"event": "user.session.start", "outcome": "SUCCESS", "mfa_used": True,
                     "source_ip": "10.0.0.1"},
            "status": "ok", "exception_reason": None, "controls": ["CC6.1", "CC7.2"],
        }, option=orjson.OPT_SORT_KEYS)
        rid = hashlib.sha256(body).hexdigest()
        records.append((rid, "synthetic.events", f"evt-{seq:09d}", "access_log", observed, collected,
                        "ok", f"user{seq % 20}@example.com", "run", body.decode()))
        filings.append(("CC6.1", observed, rid, "synthetic.events", "ok"))
        filings.append(("CC7.2", observed, rid, "synthetic.events", "ok"))
        if len(records) == 5000:
            with conn:
                conn.executemany(EVIDENCE_INSERT, records)
                conn.executemany("INSERT OR IGNORE INTO filings VALUES (?,?,?,?,?)", filings)
            records, filings = [], []
    with conn:
        conn.executemany(EVIDENCE_INSERT, records)
        conn.executemany("INSERT OR IGNORE INTO filings VALUES (?,?,?,?,?)", filings)
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def _child(phase: str, n: int) -> None:
    with tempfile.TemporaryDirectory(prefix="ec-bench-") as tmp:
        elapsed = _floor(n, Path(tmp)) if phase == "floor" else _pipeline(n, Path(tmp))
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # Every process the collection started and waited for (none today: the pipeline commits
    # its own batches); counted so that one added later cannot hide from the memory bar.
    children_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"phase": phase, "n": n, "seconds": elapsed, "rss_mb": rss_mb,
                      "children_rss_mb": children_mb}))


def _run(phase: str, n: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--child", phase, "--records", str(n)],
                         check=True, capture_output=True, text=True).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", choices=("pipeline", "floor"))
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.records)
        return
    n = args.records
    pipe: list[dict[str, float]] = []
    floor: list[dict[str, float]] = []
    for _ in range(args.repeat):  # alternated, so a busy spell on the machine hits both alike
        pipe.append(_run("pipeline", n))
        floor.append(_run("floor", n))
    small = _run("pipeline", max(1, n // 10))
    p_med = statistics.median(r["seconds"] for r in pipe)
    f_med = statistics.median(r["seconds"] for r in floor)
    ratio = f_med / p_med
    peak = max(r["rss_mb"] + r["children_rss_mb"] for r in pipe)
    small_peak = small["rss_mb"] + small["children_rss_mb"]
    print(f"records:              {n:,} (median of {args.repeat} runs each, alternated, SQLite WAL)")
    p_runs = ", ".join(f"{r['seconds']:.2f}" for r in pipe)
    f_runs = ", ".join(f"{r['seconds']:.2f}" for r in floor)
    print(f"pipeline end to end:  {n / p_med:,.0f} records/s  ({p_med:.2f} s; runs {p_runs})")
    print(f"floor (hash+insert):  {n / f_med:,.0f} records/s  ({f_med:.2f} s; runs {f_runs})")
    print(f"pipeline / floor:     {ratio:.3f}  {'ok' if ratio >= BAR_RATIO else 'MISSED'} "
          f"(>= {BAR_RATIO})")
    print(f"peak RSS collection:  {peak:.0f} MB at {n:,} (pipeline process "
          f"{max(r['rss_mb'] for r in pipe):.0f} MB + processes it started "
          f"{max(r['children_rss_mb'] for r in pipe):.0f} MB)  "
          f"{'ok' if peak <= BAR_RSS_MB else 'MISSED'} (<= {BAR_RSS_MB:.0f} MB);  "
          f"{small_peak:.0f} MB at {small['n']:,} (ratio {peak / small_peak:.2f})")


if __name__ == "__main__":
    main()
