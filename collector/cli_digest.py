"""The `digest` command: write the weekly coverage digest and deliver it where configured."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(sub: Any) -> None:
    """Add `digest` to the command parser."""
    p = sub.add_parser("digest", help="write the weekly coverage digest (JSON, Markdown, HTML)")
    p.add_argument("--week", metavar="ID", default=None,
                   help="ISO week such as 2026-W48 (default: the last complete week)")
    p.add_argument("--out", metavar="DIR", default=None, help="output directory (default: [digest].out_dir)")
    p.add_argument("--no-deliver", action="store_true", help="write the files only")
    p.set_defaults(func=cmd_digest)


def cmd_digest(args: argparse.Namespace) -> int:
    """`collector digest`: exit 0 when written (and delivered), 1 when a delivery failed."""
    from collector.cli_collect import open_store, settings_from
    from collector.digest.job import run_digest

    settings = settings_from(args)
    store = open_store(settings)
    try:
        run = run_digest(settings, store, week=args.week,
                         out_dir=Path(args.out) if args.out else None, send=not args.no_deliver)
    finally:
        store.close()
    for path in run.paths.values():
        print(path)
    cov = run.digest["coverage"]
    print(f"{run.digest['week']}: {cov['covered']} of {cov['in_scope']} criteria covered, "
          f"{len(run.digest['exceptions'])} exception lines", file=sys.stderr)
    for r in run.deliveries:
        print(f"delivery {r.channel}: {'ok' if r.ok else 'failed: ' + str(r.error)}", file=sys.stderr)
    return 0 if run.delivered else 1
