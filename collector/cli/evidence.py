"""`collector evidence add` and `collector evidence import`: documents and attestations people bring."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from collector.cli._common import settings_from

if TYPE_CHECKING:
    from collector.config import Settings
    from storage import Store
    from storage.blobs import BlobStore

__all__ = ["add_arguments", "report_people", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``add`` and ``import`` actions."""
    actions = parser.add_subparsers(dest="evidence_command", metavar="ACTION")
    actions.required = True
    add = actions.add_parser("add", help="store a document (policy, report, minutes) as evidence of controls")
    add.add_argument("file", metavar="FILE", type=Path, help="the document")
    add.add_argument("--type", required=True, metavar="T",
                     help="its document type, as the control library names it (e.g. restore-test)")
    add.add_argument("--control", action="append", required=True, metavar="ID", default=[],
                     help="a control it is evidence of (its selectors must name the type); repeatable")
    add.add_argument("--title", metavar="TEXT", help="its title (default: the file name)")
    add.add_argument("--owner", metavar="EMAIL", help="who owns it (default: the first control's owner)")
    add.add_argument("--approved-by", metavar="EMAIL", help="who approved or signed it")
    when = add.add_mutually_exclusive_group()
    when.add_argument("--period", metavar="START..END",
                      help="the stretch it covers, e.g. 2026-07-01..2026-09-30 (observed at its end)")
    when.add_argument("--observed-at", metavar="TIME",
                      help="when it was approved or signed: 2026-09-30 or 2026-09-30T12:00:00Z "
                           "(default: now)")
    imp = actions.add_parser("import",
                             help="import acknowledgements or training completions from a CSV export")
    imp.add_argument("file", metavar="FILE.csv", type=Path, help="the export (UTF-8 CSV with a header line)")
    imp.add_argument("--type", required=True, metavar="T",
                     help="policy_ack or training (any attestation type a control requires)")
    imp.add_argument("--columns", required=True, metavar="MAP",
                     help="which column holds what: person=Email,item=Policy,at=Signed")
    imp.add_argument("--owner", metavar="EMAIL", help="who owns the export (default: the control's owner)")


def run(args: argparse.Namespace) -> int:
    """Exit 0 when stored (or already stored), 2 for a wrong argument or file, 1 if the store failed."""
    from collector.config import open_store
    from collector.manual import open_files

    settings = settings_from(args)
    blobs = open_files(settings)
    store = open_store(settings)
    try:
        if args.evidence_command == "add":
            return _add(args, settings, store, blobs)
        return _import(args, settings, store, blobs)
    finally:
        store.close()


def _add(args: argparse.Namespace, settings: Settings, store: Store, blobs: BlobStore) -> int:
    from collector.manual import DocumentFacts, add_document, observed_from, parse_period

    facts = DocumentFacts(
        args.type, tuple(dict.fromkeys(args.control)), args.title, args.owner, args.approved_by,
        parse_period(args.period) if args.period else None, observed_from(args.observed_at))
    added = add_document(settings, store, blobs, args.file, facts)
    print(f"record  {added.record_id}")
    print(f"sha256  {added.sha256}")
    state = "stored" if added.new else "already stored (nothing new)"
    print(f"{state}: {added.name}, {added.size:,} bytes, {args.type} for {', '.join(facts.controls)}",
          file=sys.stderr)
    return 0


def _import(args: argparse.Namespace, settings: Settings, store: Store, blobs: BlobStore) -> int:
    from collector.attestations import parse_columns
    from collector.manual import import_attestations

    columns = parse_columns(args.columns)
    done = import_attestations(settings, store, blobs, args.file, doc_type=args.type, columns=columns,
                               owner=args.owner)
    print(f"record  {done.document.record_id}")
    print(f"sha256  {done.document.sha256}")
    print(f"{done.type}: {done.rows:,} rows, {done.new:,} new attestations, {done.already:,} already "
          f"stored; the export {'stored' if done.document.new else 'was already stored'}", file=sys.stderr)
    if done.new or done.document.new:  # nothing new: coverage is what the last check said
        report_people(settings, store)
    return 0


def report_people(settings: Settings, store: Store) -> None:
    """Check people coverage (when ``[people]`` requires something) and say who is missing what,
    on stderr; a roster that cannot be read is said too, and never fails the command."""
    from collector.errors import CollectorError
    from collector.manual import check_people

    try:
        check = check_people(settings, store)
    except CollectorError as exc:
        print(f"people coverage not checked: {exc}", file=sys.stderr)
        return
    if check is None:
        return
    for (kind, item), missing in check.missing.items():
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        print(f"people coverage: {kind} {item}: {len(check.roster.people) - len(missing)} of "
              f"{len(check.roster.people)} people ({check.roster.source})"
              + (f"; missing: {shown}" if missing else ""), file=sys.stderr)
