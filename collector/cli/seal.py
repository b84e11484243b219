"""`collector seal`: seal an ended window (earlier unsealed ones first), or amend a sealed one."""

from __future__ import annotations

import argparse
from pathlib import Path

from collector.cli._common import settings_from
from collector.errors import InputError

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--window``, ``--amend`` and ``--out``."""
    parser.add_argument("--window", metavar="ID", help="e.g. 2026-11, 2026-W48, 2026-Q4 "
                        "(default: the last window whose end plus [windows].seal_grace has passed)")
    parser.add_argument("--amend", action="store_true",
                        help="seal records stored since the window was sealed into an amendment")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="where snapshots are written (default: data/snapshots beside the config)")


def run(args: argparse.Namespace) -> int:
    """Print each snapshot written; exit 0."""
    from collector.config import open_store
    from collector.seal.snapshot import sealer_from_settings

    settings = settings_from(args)
    if args.amend and not args.window:
        raise InputError("--amend needs --window ID: the sealed window to amend")
    store = open_store(settings)
    try:
        sealer = sealer_from_settings(settings, store, Path(args.out) if args.out else None)
        if args.amend:
            amended = sealer.amend(args.window)
            if amended is None:
                print(f"window {args.window}: no records stored since it was sealed; nothing to amend")
                return 0
            results = [amended]
        else:
            results = sealer.seal(args.window)
    finally:
        store.close()
    for r in results:
        verb = "re-wrote" if r.reproduced else "sealed"
        print(f"{verb} {r.path} ({r.records:,} records, Merkle root {r.merkle_root})")
    return 0
