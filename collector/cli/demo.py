"""`collector demo`: the whole product against local fakes, with a short report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--dir D``."""
    parser.add_argument("--dir", metavar="D", default=None,
                        help="new or empty folder for the config, key, store, digest and snapshots "
                             "(default: a fresh temporary folder)")


def run(args: argparse.Namespace) -> int:
    """Exit 0 when every stream collected and the sealed chain verified."""
    from collector.demo import print_report, run_demo
    from collector.logs import configure_logging

    configure_logging(args.log_level or "error")
    result = run_demo(Path(args.dir) if args.dir else None,
                      say=lambda line: print(line, file=sys.stderr, flush=True))
    print_report(result)
    return 0 if result.ok else 1
