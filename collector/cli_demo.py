"""The `demo` command: the whole product against local fakes, with a short report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(sub: Any) -> None:
    """Add `demo` to the command parser."""
    p = sub.add_parser("demo", help="run the whole product against local fakes of AWS, Okta, GitHub, Jira")
    p.add_argument("--dir", metavar="D", default=None,
                   help="new or empty folder for the config, key, store, digest and snapshots "
                        "(default: a fresh temporary folder)")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    """`collector demo`: exit 0 when every stream collected and the sealed chain verified."""
    from collector.demo import print_report, run_demo
    from collector.logs import configure_logging

    configure_logging(args.log_level or "error")
    result = run_demo(Path(args.dir) if args.dir else None,
                      say=lambda line: print(line, file=sys.stderr, flush=True))
    print_report(result)
    return 0 if result.ok else 1
