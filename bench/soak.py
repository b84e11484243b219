"""Soak: `collector run` on a one-second schedule against the synthetic connector; RSS over time.

Prints the daemon's RSS every 30 s with the runs completed so far, then the growth after the first
minute (the baseline is the RSS measured at one minute in the same run; the bar is < 10 MB), and
how long the final SIGTERM took to exit. Usage: python bench/soak.py [--minutes 10] [--users 5]
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BAR_MB = 10.0


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def _runs(port: int) -> tuple[int, int]:
    """(finished runs, stored records) from /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    runs = records = 0.0
    for line in text.splitlines():
        if line.startswith("collector_runs_total{"):
            runs += float(line.rsplit(" ", 1)[1])
        elif line.startswith("collector_records_new_total{"):
            records += float(line.rsplit(" ", 1)[1])
    return int(runs), int(records)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--every", type=float, default=30.0, help="seconds between samples")
    parser.add_argument("--users", type=int, default=5, help="state records per run")
    parser.add_argument("--events", type=int, default=5000, help="events collected once")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="ec-soak-"))
    config = folder / "config.toml"
    config.write_text(
        f'[storage]\nurl = "sqlite:///{folder / "evidence.db"}"\n\n'
        '[daemon]\nlisten = "127.0.0.1:0"\n\n'
        f'[connectors.synthetic]\ninterval = "1s"\ncount = {args.events}\nusers = {args.users}\n'
    )
    port_file = folder / "port"
    log = open(folder / "daemon.log", "wb")  # noqa: SIM115 - held for the daemon's lifetime
    proc = subprocess.Popen(
        [sys.executable, "-m", "collector.cli", "--config", str(config), "run",
         "--port-file", str(port_file)],
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        while not port_file.exists():
            if proc.poll() is not None:
                print(f"daemon exited with {proc.returncode}; see {folder / 'daemon.log'}")
                return 1
            time.sleep(0.05)
        port = int(port_file.read_text())
        started = time.monotonic()
        end = started + args.minutes * 60
        print(f"soak: {args.minutes:g} min, 1 s schedule, synthetic events={args.events} "
              f"users={args.users}, store {folder / 'evidence.db'}")
        print(f"{'t (s)':>6} {'RSS (MB)':>9} {'runs':>6} {'records':>8}")
        baseline: float | None = None
        samples: list[tuple[float, float]] = []
        next_at = started
        while True:
            now = time.monotonic()
            if now >= next_at:
                rss = _rss_mb(proc.pid)
                runs, records = _runs(port)
                t = now - started
                samples.append((t, rss))
                print(f"{t:6.0f} {rss:9.1f} {runs:6d} {records:8d}", flush=True)
                if baseline is None and t >= 60:
                    baseline = rss
                next_at += args.every
            if now >= end:
                break
            time.sleep(min(1.0, max(0.0, min(next_at, end) - now)))
        final = _rss_mb(proc.pid)
        if baseline is None:
            baseline = samples[0][1]
            print("(shorter than a minute: the baseline is the first sample)")
        growth = final - baseline
        verdict = "within" if growth < BAR_MB else "OVER"
        print(f"baseline (RSS at 1 min) {baseline:.1f} MB, final {final:.1f} MB, "
              f"growth {growth:+.1f} MB ({verdict} the {BAR_MB:g} MB bar)")
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        print(f"SIGTERM: exit {code} after {time.monotonic() - t0:.2f} s")
        lines = (folder / "daemon.log").read_text().splitlines()
        bad = [line for line in lines if not line.startswith("{") or "event" not in json.loads(line)]
        print(f"log: {len(lines)} lines, {len(bad)} not JSON events")
        return 0
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()


if __name__ == "__main__":
    sys.exit(main())
