"""Reliability figures: kills survived, faults converged, malformed inputs rejected, tamper cases detected.

Runs condensed versions of tests/e2e/test_reliability_*.py against the sandbox (moto plus the
Backup, Okta, GitHub and Jira fakes on loopback, three weeks of seeded activity):

  kills    SIGKILL `collector collect` at seeded random instants against slowed fakes, one or
           two per store, rerun each store to completion, compare with a clean run
  faults   429 (vendor headers), 5xx, truncated, slow and dropped answers at random in every
           fake; each stream ends ok with the clean records or converges within 3 reruns
  inputs   the bad-input matrix: malformed configs/arguments and vendor payloads
  tamper   every tampering of a sealed chain fails `verify` (bench/_tamper.py)

Progress and timings (with the clean collection as the baseline) go to stderr; stdout gets
exactly the four summary lines. Exit 0 when every figure is N/N.
Usage: python bench/reliability.py [--kills 20] [--fault-rounds 3] [--seed 1] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "e2e"), str(ROOT / "tests" / "collector" / "seal"),
                str(ROOT / "bench")]

from _tamper import run_tamper  # noqa: E402
from reliability_inputs import ARG_CASES, PAYLOAD_CASES, prepare, run_arg_case, run_payload_case  # noqa: E402
from reliability_kit import (  # noqa: E402
    clear_faults,
    cli,
    fault_rounds,
    kill_rounds,
    lift_rate_limits,
    record_set,
    slow_down,
    small_world,
    store_problems,
    write_config,
)


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--fault-rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, default=None, help="keep the work folder here")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="reliability-"))
    work.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    started = time.monotonic()
    try:
        with small_world(seed=args.seed) as (world, ep):
            say(f"sandbox up in {time.monotonic() - started:.1f} s: {ep}")
            lift_rate_limits(world)
            t = time.monotonic()
            plain = cli(write_config(work / "baseline", ep), "collect")
            say(f"baseline: clean collection, fakes at full speed: {time.monotonic() - t:.1f} s "
                f"(exit {plain.returncode})")
            slow_down(world, 0.03)
            t = time.monotonic()
            clean = cli(write_config(work / "clean", ep), "collect")
            span = time.monotonic() - t
            clear_faults(world)
            db = work / "clean" / "evidence.db"
            if clean.returncode != 0 or store_problems(db):
                say(f"the clean collection failed: {clean.stderr[-2000:]}")
                return 2
            expected = record_set(db)
            say(f"clean collection with slowed fakes: {span:.1f} s, {len(expected.events):,} event records, "
                f"{len(expected.states)} state reads")

            t = time.monotonic()
            slow_down(world, 0.03)
            kills = kill_rounds(world, ep, work / "kills", expected, kills=args.kills, seed=args.seed,
                                span=span)
            clear_faults(world)
            say(f"kills: {time.monotonic() - t:.1f} s; landed at {', '.join(kills.where)}")
            for failure in kills.failures:
                say(f"  FAILED {failure}")
            lines.append(f"kills survived / tried: {kills.survived}/{kills.tried}")

            t = time.monotonic()
            faults = fault_rounds(world, ep, work / "faults", expected, rounds=args.fault_rounds,
                                  seed=args.seed)
            say(f"faults: {time.monotonic() - t:.1f} s")
            for line in faults.rounds + [f"  FAILED {f}" for f in faults.failures]:
                say(f"  {line}")
            lines.append(f"faults injected / converged: {faults.injected}/{faults.converged}")

            t = time.monotonic()
            bench = prepare(world, ep, work / "inputs")
            outcomes = [run_arg_case(bench, c) for c in ARG_CASES]
            outcomes += [run_payload_case(bench, c) for c in PAYLOAD_CASES]
            say(f"inputs: {len(ARG_CASES)} configs/arguments, {len(PAYLOAD_CASES)} vendor payloads, "
                f"{time.monotonic() - t:.1f} s")
            for o in outcomes:
                if not o.clean:
                    say(f"  FAILED {o.name}: {o.detail}")
            clean_count = sum(o.clean for o in outcomes)
            lines.append(f"malformed inputs rejected cleanly / tried: {clean_count}/{len(outcomes)}")

        t = time.monotonic()
        (work / "tamper").mkdir(exist_ok=True)
        detected, tried, missed = run_tamper(work / "tamper")
        say(f"tamper: {time.monotonic() - t:.1f} s" + (f"; undetected: {missed}" if missed else ""))
        lines.append(f"tamper cases detected / tried: {detected}/{tried}")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    say(f"total {time.monotonic() - started:.1f} s")
    print("\n".join(lines))
    perfect = all(a == b for a, b in (ln.rsplit(" ", 1)[1].split("/") for ln in lines))
    return 0 if perfect and len(lines) == 4 else 1


if __name__ == "__main__":
    sys.exit(main())
