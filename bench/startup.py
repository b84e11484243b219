"""Start-up cost: wall time and peak RSS of a one-shot AWS-only `collector collect`, beside `python -c pass`.

A moto server (a separate process, not counted) holds a small fake-AWS world seeded by
``sandbox.aws_seed.seed_all`` (trail files, IAM users, RDS instances); the AWS Backup fake runs
in this process. Each repeat runs, as fresh subprocesses under GNU time (for each one's own peak
RSS, so neither moto nor this process is counted): `python -c pass`, `collector collect` into a
new store, and `collector collect` into a store that an untimed first collection created (warm).
The project's modules are byte-compiled first, as installing the package does (an editable
install under PYTHONDONTWRITEBYTECODE=1 would otherwise compile them from source on every run).
Medians are printed with the bar (1.0 s, 90 MiB).
Usage: python bench/startup.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from _moto import start_moto

BUCKET = "org-trail"
REGION = "us-east-1"
TIME = "/usr/bin/time"  # GNU time: its %M is the command's own peak RSS
BAR_SECONDS = 1.0
BAR_MIB = 90.0
ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
       "AWS_DEFAULT_REGION": REGION}

CONFIG = """\
[storage]
url = "sqlite:///evidence.db"

[connectors.aws]
endpoint_url = "{aws}"
service_endpoints = ["backup={backup}"]
cloudtrail_bucket = "{bucket}"
"""


def _seed(aws: str, now: datetime) -> None:
    import boto3

    from sandbox.aws_seed import seed_all

    session = boto3.Session(aws_access_key_id=ENV["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=ENV["AWS_SECRET_ACCESS_KEY"], region_name=REGION)
    seed_all(session, bucket=BUCKET, region=REGION, endpoint_url=aws, now=now)


def _timed(argv: Sequence[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, float, int]:
    """(wall seconds, CPU seconds, peak RSS in MiB, exit code) of one subprocess.

    CPU time (user + system) moves less than wall time on a busy machine. The figures come
    from /usr/bin/time, a small process that forks the command: a child forked
    from this process (boto3 and moto loaded) would report this process's size as its own
    peak, since Linux carries the parent's high-water RSS across fork and exec.
    """
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        started = time.perf_counter()
        code = subprocess.call([TIME, "-q", "-f", "%U %S %M", "-o", rss.name, *argv], cwd=cwd,
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - started
        user, system, kib = rss.read().split()[-3:]
    return wall, float(user) + float(system), int(kib) / 1024, code


def _compile() -> None:
    """Byte-compile the project's packages into their ``__pycache__``, as ``pip install`` does."""
    root = Path(__file__).resolve().parent.parent
    for package in ("collector", "connectors", "storage", "schedules", "sandbox"):
        compileall.compile_dir(root / package, quiet=1)


def _collector() -> list[str]:
    script = Path(sys.executable).parent / "collector"
    return [str(script)] if script.exists() else [sys.executable, "-m", "collector.cli"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from sandbox.aws_backup import FakeBackup, demo_jobs

    _compile()
    now = datetime.now(UTC)
    env = {**os.environ, **ENV}
    aws, stop_moto = start_moto()
    backup = FakeBackup(demo_jobs(now))
    backup.start()
    rows: dict[str, list[tuple[float, float, float, int]]] = {
        "python -c pass": [], "collect, new store": [], "collect, warm store": []}
    try:
        _seed(aws, now)
        with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
            root = Path(tmp)
            config = CONFIG.format(aws=aws, backup=backup.url, bucket=BUCKET)
            warm = root / "warm"
            warm.mkdir()
            (warm / "config.toml").write_text(config)
            collect = [*_collector(), "--config", "config.toml", "collect"]
            _timed(collect, warm, env)  # untimed: creates the warm store
            for n in range(args.repeat):
                work = root / f"run{n}"
                work.mkdir()
                (work / "config.toml").write_text(config)
                rows["python -c pass"].append(_timed([sys.executable, "-c", "pass"], work, env))
                rows["collect, new store"].append(_timed(collect, work, env))
                rows["collect, warm store"].append(_timed(collect, warm, env))
    finally:
        backup.stop()
        stop_moto()

    print(f"{'':20} {'wall s':>8} {'cpu s':>8} {'peak MiB':>9} {'exit':>5}   (medians of {args.repeat})")
    verdicts = []
    for name, runs in rows.items():
        wall, cpu, rss = (statistics.median(r[i] for r in runs) for i in range(3))
        codes = ",".join(sorted({str(r[3]) for r in runs}))
        print(f"{name:20} {wall:8.3f} {cpu:8.3f} {rss:9.1f} {codes:>5}")
        if name != "python -c pass":
            verdicts.append(f"{name.split(', ')[1]}: "
                            f"{'within' if wall <= BAR_SECONDS and rss <= BAR_MIB else 'outside'}")
    print(f"bar: at most {BAR_SECONDS:.1f} s wall and {BAR_MIB:.0f} MiB -> {'; '.join(verdicts)} "
          "(exit 1 is aws.cloudtrail partial: the seed holds a truncated trail file on purpose)")


if __name__ == "__main__":
    main()
