"""Seal and verify benchmark: N records in one monthly window, sealed then verified offline.

Seeds N records (built by ``build_record``, bulk-inserted with raw sqlite3 into a migrated
store), then runs each phase in its own subprocess so peak RSS is per phase:

  seal    Sealer.seal("2026-10") -> 2026-10.tar (schema v2 with the starter control library and
          the security and availability criteria in scope: records, the populations of every
          criterion and control, controls.json, OSCAL, sums, signature)
  verify  `collector verify 2026-10.tar --key ...` (every check of the verifier, the controls'
          populations re-derived from controls.json)

Baselines measured in the same run: streaming the window's rows out of the store (the same
query the sealer runs) and doing nothing with them (the floor under sealing), and `sha256sum`
of the tar (the floor under verifying: read and hash every byte once).
Usage: python bench/seal.py [--records N] [--keep DIR] [--no-library]
(--no-library: no control library, so only the criteria's populations, as schema v1 had)
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

BAR_SECONDS = 20.0
BAR_RSS_MB = 300.0


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _seed(db: Path, n: int) -> None:
    from collector.records import build_record, format_ts
    from storage import Store

    Store.open(f"sqlite:///{db}").close()
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    base = datetime(2026, 10, 1, tzinfo=UTC)
    step = timedelta(microseconds=(31 * 86400 * 10**6) // max(n, 1))
    collected = format_ts(datetime(2026, 11, 2, tzinfo=UTC))
    batch: list[tuple[object, ...]] = []
    for seq in range(n):
        key = f"evt-{seq:09d}"
        exception = "successful sign-in without MFA" if seq % 50 == 7 else None
        controls = ("CC6.1", "CC7.2") if seq % 10 else ("CC6.1", "CC6.3", "CC7.2")
        r = build_record(
            stream="okta.system_log", source_key=key, kind="access_log",
            observed_at=format_ts(base + step * seq), collected_at=collected,
            actor=f"user{seq % 997}@example.com",
            source_url=f"https://acme.okta.com/api/v1/logs?filter=uuid+eq+%22{key}%22",
            raw_sha256=f"{seq:064x}",
            data={"event": "user.session.start", "outcome": "FAILURE" if seq % 10 == 3 else "SUCCESS",
                  "mfa_used": seq % 50 != 7, "source_ip": f"10.0.{seq % 256}.{(seq // 256) % 256}",
                  "user_agent": "Mozilla/5.0 (X11; Linux x86_64)"},
            exception_reason=exception, controls=controls, run_id="00000000-0000-4000-8000-000000000001",
        )
        batch.append(r)
        if len(batch) == 50_000:
            conn.executemany("INSERT INTO evidence (id, stream, source_key, kind, observed_at, collected_at, "
                             "status, actor, run_id, body) VALUES (?,?,?,?,?,?,?,?,?,?)", batch)
            batch.clear()
    conn.executemany("INSERT INTO evidence (id, stream, source_key, kind, observed_at, collected_at, "
                     "status, actor, run_id, body) VALUES (?,?,?,?,?,?,?,?,?,?)", batch)
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def _phase_seal(db: Path, out: Path, key_file: Path, with_library: bool) -> dict[str, float]:
    from collector.catalog import Catalog
    from collector.controls import STARTER_FILE, ControlLibrary, resolve_scope
    from collector.seal.keys import load_sealing_key
    from collector.seal.snapshot import Sealer, SealOptions, sealed_library
    from storage import Store

    store = Store.open(f"sqlite:///{db}")
    scope = resolve_scope(Catalog.builtin(), ("security", "availability"))
    library = sealed_library(ControlLibrary.starter(), scope, STARTER_FILE) if with_library else None
    options = SealOptions(period="month", zone="UTC", out_dir=out, library=library)
    sealer = Sealer(store, options, load_sealing_key(key_file),
                    clock=lambda: datetime(2026, 11, 20, tzinfo=UTC))
    started, cpu = time.perf_counter(), time.process_time()
    [sealed] = sealer.seal("2026-10")
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    store.close()
    return {"seconds": elapsed, "cpu": cpu, "rss_mb": _rss_mb(), "records": sealed.records}


def _phase_floor(db: Path) -> dict[str, float]:
    from storage import Store
    from storage.snapshots import stream_window

    store = Store.open(f"sqlite:///{db}")
    started = time.perf_counter()
    count = sum(1 for _ in stream_window(store, "2026-10-01T00:00:00.000000Z",
                                         "2026-11-01T00:00:00.000000Z"))
    elapsed = time.perf_counter() - started
    store.close()
    return {"seconds": elapsed, "rss_mb": _rss_mb(), "records": count}


def _phase_verify(tar: Path, pub: Path) -> dict[str, float]:
    import contextlib
    import io

    from collector.cli import main

    started, cpu = time.perf_counter(), time.process_time()
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(["verify", str(tar), "--key", str(pub)])
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert code == 0
    return {"seconds": elapsed, "cpu": cpu, "rss_mb": _rss_mb()}


def _child(phase: str, *args: str) -> dict[str, float]:
    proc = subprocess.run([sys.executable, __file__, "--phase", phase, *args],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"phase {phase} failed:\n{proc.stderr}")
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, default=None, help="work here and keep the files")
    parser.add_argument("--no-library", action="store_true",
                        help="seal without the starter control library")
    parser.add_argument("--phase", default=None, help=argparse.SUPPRESS)
    parser.add_argument("args", nargs="*", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.phase:
        phases = {"seed": lambda: (_seed(Path(opts.args[0]), int(opts.args[1])), {})[1],
                  "seal": lambda: _phase_seal(Path(opts.args[0]), Path(opts.args[1]), Path(opts.args[2]),
                                              opts.args[3] == "library"),
                  "floor": lambda: _phase_floor(Path(opts.args[0])),
                  "verify": lambda: _phase_verify(Path(opts.args[0]), Path(opts.args[1]))}
        print(json.dumps(phases[opts.phase]()))
        return
    work = opts.keep or Path(tempfile.mkdtemp(prefix="ec-seal-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        from collector.seal.keys import create_key, public_key_path

        db, out, key_file = work / "evidence.db", work / "snapshots", work / "seal.pem"
        for stale in (db, db.with_name("evidence.db-wal"), db.with_name("evidence.db-shm"), key_file,
                      public_key_path(key_file)):
            stale.unlink(missing_ok=True)
        shutil.rmtree(out, ignore_errors=True)
        create_key(key_file)
        n = opts.records
        started = time.perf_counter()
        _child("seed", str(db), str(n))
        print(f"seeded {n:,} records in {time.perf_counter() - started:.1f} s "
              f"({db.stat().st_size / 2**20:.0f} MB SQLite)")
        floor = _child("floor", str(db))
        sealed = _child("seal", str(db), str(out), str(key_file),
                        "none" if opts.no_library else "library")
        tar = out / "2026-10.tar"
        started = time.perf_counter()
        subprocess.run(["sha256sum", str(tar)], check=True, capture_output=True)
        hash_floor = time.perf_counter() - started
        verified = _child("verify", str(tar), str(public_key_path(key_file)))
        assert sealed["records"] == n
        size = tar.stat().st_size / 2**20
        print(f"snapshot: {size:.0f} MB tar")
        rows = [("seal", sealed), ("verify", verified)]
        print(f"{'phase':<8}{'seconds':>9}{'CPU s':>8}{'records/s':>12}{'peak RSS MB':>13}   bar")
        for name, r in rows:
            ok = r["seconds"] <= BAR_SECONDS and r["rss_mb"] <= BAR_RSS_MB
            print(f"{name:<8}{r['seconds']:>9.2f}{r['cpu']:>8.2f}{n / r['seconds']:>12,.0f}"
                  f"{r['rss_mb']:>13.0f}   "
                  f"{'ok' if ok else 'MISSED'} (<= {BAR_SECONDS:.0f} s, <= {BAR_RSS_MB:.0f} MB)")
        print(f"baseline: stream the window's rows from the store, nothing else: "
              f"{floor['seconds']:.2f} s ({floor['rss_mb']:.0f} MB)")
        print(f"baseline: sha256sum of the tar: {hash_floor:.2f} s")
    finally:
        if opts.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
