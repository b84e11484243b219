"""`collector review start|import|status`: quarterly access reviews of Okta, GitHub and AWS accounts."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from collector.cli._common import add_json_option, print_json, settings_from

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``start``, ``import`` and ``status`` actions."""
    actions = parser.add_subparsers(dest="review_command", metavar="ACTION")
    actions.required = True
    start = actions.add_parser("start", help="write a system's population worksheet and store it")
    start.add_argument("--system", required=True, choices=("okta", "github", "aws"),
                       help="the system whose accounts are reviewed")
    start.add_argument("--quarter", metavar="Q", help="the quarter reviewed, e.g. 2026-Q4 (default: now's)")
    start.add_argument("--out", metavar="FILE.csv", type=Path,
                       help="where to write the worksheet (default: access-review-<campaign>.csv)")
    imp = actions.add_parser("import", help="store each decided row of a filled-in worksheet")
    imp.add_argument("file", metavar="FILE.csv", type=Path,
                     help="the worksheet with decision and comment filled in")
    imp.add_argument("--reviewer", required=True, metavar="EMAIL", help="who decided")
    status = actions.add_parser("status", help="each campaign's progress and its revocations")
    add_json_option(status)


def run(args: argparse.Namespace) -> int:
    """Exit 0 when done, 2 for a wrong argument or row (nothing stored), 1 if the store failed."""
    from collector.config import open_store
    from collector.identities.review import campaign_status, import_decisions, start_review
    from collector.manual import open_files

    settings = settings_from(args)
    blobs = open_files(settings)
    store = open_store(settings)
    try:
        if args.review_command == "start":
            started = start_review(settings, store, blobs, args.system, quarter=args.quarter, out=args.out)
            verb = "started" if started.new else "already started; worksheet written again"
            print(f"{started.campaign.id}: {verb}: {len(started.campaign.rows)} accounts in {started.path} "
                  f"(worksheet sha256 {started.campaign.file_sha256})")
            return 0
        if args.review_command == "import":
            done = import_decisions(settings, store, blobs, args.file, args.reviewer)
            print(f"{args.file}: stored {done.keep + done.revoke} decisions ({done.keep} keep, {done.revoke} "
                  f"revoke) by {args.reviewer.strip().lower()}; file sha256 {done.document.sha256}")
            return 0
        rows = campaign_status(settings, store, blobs)
    finally:
        store.close()
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("no access review started (collector review start --system okta|github|aws)", file=sys.stderr)
        return 0
    for row in rows:
        rev = row["revocations"]
        print(f"{row['campaign']}: {row['decided']} of {row['population']} decided ({row['keep']} keep, "
              f"{row['revoke']} revoke); revocations {rev['done']} done, {rev['pending']} pending, "
              f"{rev['overdue']} overdue")
    return 0
