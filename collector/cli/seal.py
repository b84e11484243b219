"""`collector seal`: seal an ended window (earlier unsealed ones first), amend a sealed one, or seal a
Type 1 snapshot as of a day."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from collector.cli._common import settings_from
from collector.errors import InputError

if TYPE_CHECKING:
    from collector.config import Settings

__all__ = ["add_arguments", "run", "state_streams"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--window``, ``--amend``, ``--as-of`` and ``--out``."""
    parser.add_argument("--window", metavar="ID", help="e.g. 2026-11, 2026-W48, 2026-Q4 "
                        "(default: the last window whose end plus [windows].seal_grace has passed)")
    parser.add_argument("--amend", action="store_true",
                        help="seal records stored since the window was sealed into an amendment")
    parser.add_argument("--as-of", metavar="DATE", default=None,
                        help="seal a Type 1 snapshot type1-<DATE>.tar instead: the control library, "
                             "the newest read of every state stream and the documents in force at "
                             "the end of DATE (YYYY-MM-DD, in [windows].timezone); outside the chain")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="where snapshots are written (default: [seal] out_dir, data/snapshots "
                             "beside the config)")


def run(args: argparse.Namespace) -> int:
    """Print each snapshot written; exit 0."""
    from collector.config import open_store
    from collector.seal.snapshot import sealer_from_settings

    settings = settings_from(args)
    if args.amend and not args.window:
        raise InputError("--amend needs --window ID: the sealed window to amend")
    if args.as_of and (args.window or args.amend):
        raise InputError("--as-of seals a Type 1 snapshot, outside the windows: give it without "
                         "--window and --amend")
    store = open_store(settings)
    try:
        sealer = sealer_from_settings(settings, store, Path(args.out) if args.out else None)
        if args.as_of:
            done = sealer.seal_as_of(args.as_of, state_streams(settings))
            print(f"sealed {done.path} (Type 1 as of {args.as_of}: {done.records:,} records, "
                  f"Merkle root {done.merkle_root})")
            return 0
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


def state_streams(settings: Settings) -> set[str]:
    """The ids of every state stream (``Stream.mode == "state"``) of the built-in connectors and
    of those the config names: whatever connector stored records, its state reads count."""
    from connectors.sdk.registry import BUILTIN

    out: set[str] = set()
    for name in sorted({*BUILTIN, *settings.connectors}):
        connector = settings.registry.load(name)
        out.update(f"{name}.{s.name}" for s in connector.stream_types if s.mode == "state")
    return out
