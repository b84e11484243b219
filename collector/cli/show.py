"""`collector show RECORD_ID`: one stored record, canonical, with its filing and its window."""

from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING, Any

from collector.cli._common import settings_from
from collector.errors import InputError

if TYPE_CHECKING:
    from collector.config import Settings
    from collector.records import EvidenceRecord
    from storage import Store

__all__ = ["MIN_PREFIX", "add_arguments", "filing", "find_record", "run"]

MIN_PREFIX = 12
"""The digest shows a record id's first 12 hex digits; any prefix that long names one record
among billions (a clash is reported, never guessed)."""
_ID = re.compile(rf"[0-9a-f]{{{MIN_PREFIX},64}}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``RECORD_ID``."""
    parser.add_argument("record_id", metavar="RECORD_ID",
                        help=f"a record id (64 hex digits), or its first {MIN_PREFIX} or more, as "
                             "the digest shows it")


def find_record(store: Store, record_id: str) -> EvidenceRecord:
    """The one stored record whose id is ``record_id`` or starts with it; InputError (one line,
    exit 2) when the id is malformed, unknown or names more than one record.

    The store's key is (observed_at, id), so this reads the id column through: fine for one look-up
    by a person, not for a loop.
    """
    from sqlalchemy import select

    from collector.records import EvidenceRecord
    from storage.models import EvidenceTable
    from storage.store import record_columns

    wanted = record_id.strip().lower()
    if not _ID.fullmatch(wanted):
        raise InputError(f"{record_id}: not a record id (64 hex digits, or the first "
                         f"{MIN_PREFIX} or more)")
    cols = EvidenceTable.c
    query = select(*record_columns())
    query = query.where(cols.id == wanted) if len(wanted) == 64 else query.where(
        cols.id.startswith(wanted, autoescape=True))
    with store.engine.connect() as conn:
        rows = [EvidenceRecord._make(row) for row in conn.execute(query.limit(2))]
    if not rows:
        raise InputError(f"{record_id}: no such record in the store")
    if len(rows) > 1:
        raise InputError(f"{record_id}: more than one record starts with it; give more digits")
    return rows[0]


def filing(settings: Settings, body: dict[str, Any]) -> tuple[list[str], list[tuple[str, str]]]:
    """The criteria the record is filed under (its ``controls`` field) and the organisation's
    controls whose selectors match it, as (id, owner), the way the digest and snapshots file it."""
    library = settings.library
    kind = str(body.get("kind", ""))
    matched = library.for_record(str(body.get("stream", "")), kind)
    if kind in ("document", "attestation"):
        doc_type = str((body.get("data") or {}).get("type", ""))
        matched = tuple(dict.fromkeys((*matched, *library.for_document(doc_type))))
    return list(body.get("controls") or []), [(c.id, c.owner) for c in matched]


def run(args: argparse.Namespace) -> int:
    """Print the record as canonical JSON (RFC 8785, one line), then its criteria, controls and
    window (sealed in which snapshot, or not yet); exit 0, or 2 naming an unknown id."""
    from collector.config import open_store
    from collector.records import full_record, parse_ts
    from collector.seal import _format as fmt
    from collector.windows import window_containing

    settings = settings_from(args)
    store = open_store(settings)
    try:
        record = find_record(store, args.record_id)
        snapshots = [(row.window_id, row.file_name) for row in store.snapshots()]
    finally:
        store.close()
    body = full_record(record)
    criteria, controls = filing(settings, body)
    w = settings.windows
    window = window_containing(parse_ts(record.observed_at), w.period, w.timezone).id
    sealed = [name for wid, name in snapshots if wid == window]
    print(fmt.canonical(body).decode())
    print(f"criteria: {', '.join(criteria) or 'none'}")
    print("controls: " + (", ".join(f"{cid} ({owner})" for cid, owner in controls) or "none"))
    print(f"window:   {window}, " + (f"sealed: {', '.join(sealed)} (records.jsonl)" if sealed
                                     else "not sealed yet"))
    return 0
