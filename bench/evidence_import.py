"""`collector evidence import` of a training export, end to end, as a person runs it.

Each figure is one `collector evidence import` process (start-up, config, parsing every row, the
CSV into the blob store, every attestation through the pipeline in one transaction, and the
people-coverage check against a roster of the same people) on a fresh SQLite store:

  first    --rows rows, all new
  again    the same file: nothing new is stored
  later    an export with --rows more rows that repeats the first: only the new rows are stored

Bar: the first import of 10,000 rows under 5 s; importing again stores nothing.
Usage: python bench/evidence_import.py [--rows 10000] [--postgres URL] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BAR_SECONDS = 5.0
ROOT = Path(__file__).resolve().parent.parent
COLUMNS = "person=Employee Email,item=Course,at=Completed On"


def _write_csv(path: Path, first: int, rows: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write("\ufeffEmployee Email,Full Name,Course,Completed On,Score\n")
        for n in range(first, first + rows):
            out.write(f"user{n:06d}@acme.example,User {n},Security awareness,"
                      f"2026-01-{n % 28 + 1:02d}T09:{n % 60:02d}:00Z,{n % 100}\n")


def _config(work: Path, url: str, rows: int) -> Path:
    with (work / "roster.csv").open("w") as out:
        out.write("email\n" + "".join(f"user{n:06d}@acme.example\n" for n in range(2 * rows)))
    config = work / "config.toml"
    config.write_text(f'[storage]\nurl = "{url}"\n\n[files]\nurl = "files"\n\n'
                      '[people]\nroster = "roster.csv"\n\n[[people.require]]\ntype = "training"\n'
                      'item = "Security awareness"\nevery = "1y"\n')
    return config


def _import(config: Path, csv_path: Path) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "collector.cli", "--config", str(config), "evidence",
                           "import", "--type", "training", str(csv_path), "--columns", COLUMNS],
                          check=False, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"import failed ({done.returncode}): {done.stderr.strip()}")
    summary = next(line for line in done.stderr.splitlines() if line.startswith("training:"))
    return seconds, summary


def _count(work: Path, postgres: str | None) -> int:
    """Every record in a SQLite store (-1 for PostgreSQL, which this bench does not read back)."""
    if postgres:
        return -1
    with sqlite3.connect(work / "evidence.db") as conn:
        return int(conn.execute("SELECT count(*) FROM evidence").fetchone()[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000, help="rows in the training export")
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL database URL instead of SQLite")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="ec-bench-import-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        url = args.postgres or f"sqlite:///{work / 'evidence.db'}"
        config = _config(work, url, args.rows)
        first_csv, later_csv = work / "lms-export.csv", work / "lms-export-later.csv"
        _write_csv(first_csv, 0, args.rows)
        _write_csv(later_csv, 0, 2 * args.rows)
        size = first_csv.stat().st_size / 1024 / 1024
        print(f"store     {'PostgreSQL' if args.postgres else 'SQLite'}; export {args.rows:,} rows, "
              f"{size:.1f} MiB; roster {2 * args.rows:,} people ({work})")
        first, first_says = _import(config, first_csv)
        before = _count(work, args.postgres)
        again, again_says = _import(config, first_csv)
        unchanged = _count(work, args.postgres) == before
        later, later_says = _import(config, later_csv)
        print(f"first     {first:6.2f} s  {first_says}")
        store_says = "" if args.postgres else f"; store {'unchanged' if unchanged else 'CHANGED'}"
        print(f"again     {again:6.2f} s  {again_says}{store_says}")
        print(f"later     {later:6.2f} s  {later_says}")
        ok = (first < BAR_SECONDS and unchanged and " 0 new attestations" in again_says
              and "the export was already" in again_says)
        if not args.postgres:
            with sqlite3.connect(work / "evidence.db") as conn:
                stored = conn.execute("SELECT count(*) FROM evidence WHERE stream = 'manual.attestations'"
                                      ).fetchone()[0]
            print(f"stored    {stored:,} attestations (expected {2 * args.rows:,})")
            ok = ok and stored == 2 * args.rows
        print(f"bar       first import under {BAR_SECONDS:.0f} s (with start-up); again stores nothing")
        print("PASS" if ok else "FAIL")
        return 0 if ok else 1
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
