"""`collector sample`: a reproducible sample of a criterion's population, as CSV; needs no config."""

from __future__ import annotations

import argparse
import csv
import sys

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The snapshot, the criterion, the size and the auditor's seed."""
    parser.add_argument("snapshot", metavar="SNAPSHOT")
    parser.add_argument("--control", required=True, metavar="ID", help="a criterion such as CC6.1")
    parser.add_argument("--size", required=True, type=int, metavar="N")
    parser.add_argument("--seed", default="", metavar="TEXT",
                        help="your own value, chosen after you received the snapshot, so that nobody "
                             "who sealed it could have steered the sample")


def run(args: argparse.Namespace) -> int:
    """Print the sample as CSV with the population file's header; exit 0."""
    from collector.seal.sample import sample

    rows = sample(args.snapshot, args.control, args.size, args.seed)
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerows(rows)
    return 0
