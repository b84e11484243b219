"""CloudTrail hostile-file bounds: what the nesting pre-scan costs, and the memory one log file takes.

Builds a CloudTrail-like log file in memory (console logins and AssumeRole calls; with
``--policies`` every other record carries an escaped IAM policy document, the worst case for
the pre-scan), then prints, each the median of ``--repeat`` alternated runs:
  the time of ``check_depth`` against its same-run baseline, ``json.loads`` of the same bytes;
  the peak traced memory of ``parse_log_file`` (inflate + pre-scan + exact spans) relative to
  the inflated size, which is what ``cloudtrail_max_inflated_mib`` multiplies.
Usage: python bench/cloudtrail_limits.py [--records 60000] [--repeat 3] [--policies]
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from connectors.aws.cloudtrail import MAX_NESTING, parse_log_file
from connectors.sdk.rawjson import check_depth
from sandbox.aws_seed import console_login, event

_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::b/*"]}]}, indent=4)


def _file(records: int, policies: bool) -> bytes:
    now = datetime.now(UTC)
    out: list[dict[str, Any]] = []
    for i in range(records):
        if i % 2:
            out.append(console_login(now, f"e{i}"))
        else:
            params: dict[str, Any] = {"roleArn": "arn:aws:iam::111122223333:role/x", "roleSessionName": "s"}
            if policies:
                params["policy"] = _POLICY
            out.append(event("AssumeRole", now, source="sts.amazonaws.com", event_id=f"e{i}", params=params))
    return json.dumps({"Records": out}, separators=(",", ":")).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=60_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--policies", action="store_true")
    args = parser.parse_args()
    raw = _file(args.records, args.policies)
    scans, loads = [], []
    for _ in range(args.repeat):
        started = time.perf_counter()
        check_depth(raw, MAX_NESTING)
        scans.append(time.perf_counter() - started)
        started = time.perf_counter()
        json.loads(raw)
        loads.append(time.perf_counter() - started)
    scan, load = statistics.median(scans), statistics.median(loads)
    print(f"log file: {args.records:,} records, {len(raw) / 2**20:.1f} MiB inflated"
          f"{', every other with an escaped policy' if args.policies else ''}")
    print(f"check_depth: {scan:.3f} s; baseline json.loads of the same bytes: {load:.3f} s; "
          f"ratio {scan / load:.0%}")
    body = gzip.compress(raw, 6, mtime=0)
    tracemalloc.start()
    parsed = parse_log_file(body)
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"parse_log_file: {len(parsed):,} records; peak traced memory {peak / 2**20:.0f} MiB = "
          f"{peak / len(raw):.1f}x the inflated size (kept after: {current / len(raw):.1f}x)")


if __name__ == "__main__":
    main()
