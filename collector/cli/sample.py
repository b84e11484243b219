"""`collector sample`: a reproducible sample of a criterion's or control's population, as CSV; no config."""

from __future__ import annotations

import argparse
import csv
import sys

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The snapshot, the criterion or control, the size and the auditor's seed."""
    parser.add_argument("snapshot", metavar="SNAPSHOT", help="a sealed snapshot (<window>.tar)")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--criterion", metavar="ID",
                       help="a criterion such as CC6.1 (its population criteria/<ID>.csv)")
    which.add_argument("--control", metavar="ID",
                       help="one of the organisation's controls, such as AC-03 (controls/<ID>.csv); "
                            "in a schema v1 snapshot, a criterion")
    parser.add_argument("--size", required=True, type=int, metavar="N",
                        help="how many records to draw (the whole population when it has fewer)")
    parser.add_argument("--seed", default="", metavar="TEXT",
                        help="your own value, chosen after you received the snapshot, so that nobody "
                             "who sealed it could have steered the sample")
    parser.add_argument("--key", action="append", default=[], metavar="PUB",
                        help="a trusted public key (PEM): the signature over SHA256SUMS is checked "
                             "before sampling; repeatable")
    parser.add_argument("--fingerprint", action="append", default=[], metavar="HEX",
                        help="a trusted key's SPKI SHA-256 (the embedded key must match it); repeatable")


def run(args: argparse.Namespace) -> int:
    """Print the sample as CSV with the population file's header; exit 0. With ``--key`` or
    ``--fingerprint`` the snapshot's signature is checked first (exit 1 when it does not hold)."""
    from collector.cli.verify import trusted_keys
    from collector.seal.sample import sample

    by = "criterion" if args.criterion is not None else "control"
    trust = trusted_keys(args) if args.key or args.fingerprint else None
    rows = sample(args.snapshot, args.criterion or args.control, args.size, args.seed, by=by,
                  trust=trust)
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerows(rows)
    return 0
