"""`collector digest`: write the weekly coverage digest and deliver it where configured."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from collector.cli._common import settings_from

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--week``, ``--out`` and ``--no-deliver``."""
    parser.add_argument("--week", metavar="ID", default=None,
                        help="ISO week such as 2026-W48 (default: the last complete week)")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="output directory (default: [digest].out_dir)")
    parser.add_argument("--no-deliver", action="store_true", help="write the files only")


def run(args: argparse.Namespace) -> int:
    """Exit 0 when written (and delivered), 1 when a delivery failed."""
    from collector.config import open_store
    from collector.digest.job import run_digest

    settings = settings_from(args)
    store = open_store(settings)
    try:
        done = run_digest(settings, store, week=args.week,
                          out_dir=Path(args.out) if args.out else None, send=not args.no_deliver)
    finally:
        store.close()
    for path in done.paths.values():
        print(path)
    cov = done.digest["coverage"]
    print(f"{done.digest['week']}: operating {cov['operating']} of {cov['in_scope']} criteria "
          f"({cov['ratio'] * 100:.1f}%), designed {cov['designed']}, "
          f"{len(done.digest['exceptions'])} exception lines", file=sys.stderr)
    for r in done.deliveries:
        print(f"delivery {r.channel}: {'ok' if r.ok else 'failed: ' + str(r.error)}", file=sys.stderr)
    return 0 if done.delivered else 1
