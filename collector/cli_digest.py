"""The `digest` command: write the weekly coverage digest and deliver it where configured."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
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
    from collector.digest import build_digest, check_delivery_config, deliver, scope_from_settings
    from collector.digest.render import write_digest

    settings = settings_from(args)
    if not args.no_deliver:
        check_delivery_config(settings)
    now = datetime.now(UTC)
    scope = scope_from_settings(settings, args.week, now)
    out = Path(args.out) if args.out else settings.resolve(settings.digest.out_dir)
    store = open_store(settings)
    try:
        digest = build_digest(store, scope, now)
        paths = write_digest(digest, out)
        for path in paths.values():
            print(path)
        results = [] if args.no_deliver else deliver(settings, store, digest, paths, now, os.environ)
    finally:
        store.close()
    cov = digest["coverage"]
    print(f"{digest['week']}: {cov['covered']} of {cov['in_scope']} criteria covered, "
          f"{len(digest['exceptions'])} exception lines", file=sys.stderr)
    failed = [r for r in results if not r.ok]
    for r in results:
        print(f"delivery {r.channel}: {'ok' if r.ok else 'failed: ' + str(r.error)}", file=sys.stderr)
    return 1 if failed else 0
