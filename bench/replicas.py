"""Replicas: three `collector run` processes on one real PostgreSQL, one SIGKILLed midway.

A throwaway PostgreSQL server (initdb in a temp dir, loopback, max_connections 200: each
replica may open 15 store and 15 lock connections; stopped at the end) holds the store. A
connector registered for this run only (an entry point in a temp dir on PYTHONPATH) declares
``--streams`` synthetic state streams (the synthetic connector's users stream, three users a
read), all on ``--interval``. ``--replicas`` daemons start on the same config; at half of
``--minutes`` one is SIGKILLed, at the end the others get SIGTERM. Then, from the store's run
rows and each replica's JSON log (which run ids it started):

- runs per replica, beside the baseline of one daemon running every stream once per interval;
- double runs: two runs of one stream for the same due instant (must be 0), and the closest
  two runs of one stream came;
- the longest a stream waited across the kill (between its run before the kill and its first
  after it), against one interval plus the single daemon's jitter.

Usage: python bench/replicas.py [--minutes 3] [--streams 300] [--interval 20s] [--replicas 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from pgserver import PostgresUnavailable, running_postgres  # noqa: E402

from schedules.daemon import jitter_for  # noqa: E402
from schedules.replicas import slot_start  # noqa: E402

CONNECTOR = "replicabench"
MODULE = """\
from connectors.synthetic import SyntheticConnector, SyntheticUsers


def _stream(n):
    return type(f"Users{{n:04d}}", (SyntheticUsers,), {{"name": f"s{{n:04d}}"}})


class ReplicaBench(SyntheticConnector):
    name = "{name}"
    stream_types = tuple(_stream(n) for n in range({streams}))
"""


@contextmanager
def postgres(root: Path) -> Iterator[str]:
    """A PostgreSQL server in ``root`` on loopback (tests/pgserver.py, as the tests start one) with
    room for three replicas' connections, and a database ``bench`` in it; its URL."""
    try:
        with running_postgres(root, ("max_connections=200",)) as port:
            import psycopg

            with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres",
                                 autocommit=True) as conn:
                conn.execute("CREATE DATABASE bench")
            yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/bench"
    except PostgresUnavailable as exc:
        raise SystemExit(f"replicas: {exc}") from None


def _register(folder: Path, streams: int) -> None:
    """The bench connector as an installed distribution visible on PYTHONPATH=folder."""
    (folder / "ec_replicabench.py").write_text(MODULE.format(name=CONNECTOR, streams=streams))
    dist = folder / "ec_replicabench-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ec-replicabench\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        f"[evidence_collector.connectors]\n{CONNECTOR} = ec_replicabench:ReplicaBench\n")


def _parse_interval(text: str) -> timedelta:
    units = {"s": 1, "m": 60, "h": 3600}
    return timedelta(seconds=float(text[:-1]) * units[text[-1]])


class Replica:
    """One `collector run` subprocess, its JSON log in a file."""

    def __init__(self, n: int, folder: Path, config: Path, env: dict[str, str]) -> None:
        self.n = n
        self.log = folder / f"replica-{n}.log"
        self.port_file = folder / f"replica-{n}.port"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "collector.cli", "--config", str(config), "run",
                 "--port-file", str(self.port_file)],
                stdout=out, stderr=subprocess.STDOUT, env=env, cwd=str(folder))

    def wait_listening(self, within: float = 120.0) -> None:
        deadline = time.monotonic() + within
        while not (self.port_file.exists() and self.port_file.read_text().strip()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = self.log.read_text()[-2000:]
                raise SystemExit(f"replicas: replica {self.n} did not start: {tail}")
            time.sleep(0.1)

    def run_ids(self) -> set[str]:
        found = set()
        for line in self.log.read_text().splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue  # the last line of a SIGKILLed replica may be cut
            if event.get("event") == "run_started":
                found.add(event["run_id"])
        return found

    def skips(self) -> float:
        with open(self.port_file) as f:
            port = int(f.read())
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
            text = r.read().decode()
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("collector_runs_skipped_total{"))


def _runs(url: str) -> list[tuple[str, str, datetime, str]]:
    """(run id, stream, started, status) of every run in the store."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT id, stream, started_at, status FROM runs")).all()
    finally:
        engine.dispose()
    return [(r[0], r[1], datetime.fromisoformat(r[2].replace("Z", "+00:00")), r[3]) for r in rows]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--streams", type=int, default=300)
    parser.add_argument("--interval", default="20s", help="every stream's interval (s, m or h)")
    parser.add_argument("--replicas", type=int, default=3)
    args = parser.parse_args()
    interval = _parse_interval(args.interval)
    seconds = interval.total_seconds()
    jitter = jitter_for(interval) or 0

    root = Path(tempfile.mkdtemp(prefix="ec-replicas-"))
    try:
        with postgres(root) as url:
            work = root / "work"
            work.mkdir()
            _register(work, args.streams)
            config = work / "config.toml"
            config.write_text(
                f'[storage]\nurl = "{url}"\n\n[daemon]\nlisten = "127.0.0.1:0"\n\n'
                f'[connectors.{CONNECTOR}]\ninterval = "{args.interval}"\nusers = 3\n')
            env = {**os.environ, "PYTHONUNBUFFERED": "1",
                   "PYTHONPATH": os.pathsep.join([str(work), str(REPO),
                                                  os.environ.get("PYTHONPATH", "")])}
            replicas = [Replica(n, work, config, env) for n in range(args.replicas)]
            try:
                for replica in replicas:
                    replica.wait_listening()
                started = time.monotonic()
                total = args.minutes * 60
                print(f"{args.replicas} replicas, {args.streams} streams every {args.interval} "
                      f"(jitter bar {jitter}s), {args.minutes:g} min; PostgreSQL {url.split('@')[1]}",
                      flush=True)
                time.sleep(total / 2)
                victim = replicas[1]
                victim.proc.send_signal(signal.SIGKILL)
                victim.proc.wait(timeout=30)
                killed = datetime.now(UTC)
                print(f"SIGKILLed replica {victim.n} at {total / 2:.0f} s", flush=True)
                time.sleep(max(0.0, total - (time.monotonic() - started)))
                skips = {r.n: r.skips() for r in replicas if r is not victim}
            finally:
                for replica in replicas:
                    if replica.proc.poll() is None:
                        replica.proc.send_signal(signal.SIGTERM)
                for replica in replicas:
                    try:
                        replica.proc.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        replica.proc.kill()
            runs = _runs(url)
            owner = {rid: r.n for r in replicas for rid in r.run_ids()}
    finally:
        shutil.rmtree(root, ignore_errors=True)

    per_replica = Counter(owner.get(rid, -1) for rid, _, _, _ in runs)
    print("\nruns per replica:")
    for replica in replicas:
        note = " (SIGKILLed midway)" if replica is victim else ""
        skipped = f", skipped {skips[replica.n]:.0f}" if replica.n in skips else ""
        print(f"  replica {replica.n}: {per_replica[replica.n]} runs{skipped}{note}")
    if per_replica[-1]:
        print(f"  no replica's log names {per_replica[-1]} runs")
    baseline = args.streams * (1 + int(total // seconds))
    print(f"  all: {len(runs)} runs; baseline (one daemon, each stream once per interval): "
          f"about {baseline}; by status: {dict(Counter(st for *_, st in runs))}")

    by_stream: dict[str, list[datetime]] = defaultdict(list)
    for _, stream, at, _ in runs:
        by_stream[stream].append(at)
    per_slot = Counter((s, slot_start(s, interval, at)) for _, s, at, _ in runs)
    doubles = sum(n - 1 for n in per_slot.values() if n > 1)
    def closest(skip: int) -> float:
        return min((b - a).total_seconds() for starts in by_stream.values()
                   for a, b in zip(sorted(starts)[skip:], sorted(starts)[skip + 1:], strict=False))
    late = sorted((at - slot_start(s, interval, at)).total_seconds()
                  for s, starts in by_stream.items() for at in sorted(starts)[1:])
    if late:
        print(f"run start after its due instant: median {late[len(late) // 2]:.2f} s, "
              f"p99 {late[int(len(late) * 0.99)]:.2f} s, max {late[-1]:.2f} s")
    print(f"\ndouble runs (one stream twice for one due instant): {doubles} (must be 0)")
    print(f"closest two runs of one stream: {closest(1):.2f} s apart, {closest(0):.2f} s with the "
          f"start-up runs (interval {seconds:g} s; a start-up run is skipped within a tenth of it)")

    waits = {}
    for stream, starts in by_stream.items():
        before = [t for t in starts if t <= killed]
        after = [t for t in starts if t > killed]
        if before and after:
            waits[stream] = (min(after) - max(before)).total_seconds()
    missing = args.streams - len(waits)
    longest = max(waits.values()) if waits else float("nan")
    bar = seconds + jitter
    print(f"longest wait across the kill: {longest:.2f} s (bar: interval + jitter = {bar:g} s); "
          f"streams not run after the kill: {missing}")
    ok = doubles == 0 and missing == 0 and longest <= bar
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
