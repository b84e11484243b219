"""Adding a document (the file to the blob store, its record to the store) and importing attestations."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from collector.attestations import Attestation, ColumnMap, iter_attestations
from collector.config import Settings
from collector.controls import ControlLibrary
from collector.errors import ConfigError, InputError, open_input
from collector.manual.streams import (
    ATTESTATIONS,
    DOCUMENTS,
    AttestationStream,
    DocumentStream,
    StoreFailed,
    criteria_of,
    prepared_item,
    store_items,
)
from collector.media import media_type, sanitise_filename
from collector.records import format_ts
from connectors.sdk.items import Normalised
from storage import Store
from storage.blobs import BlobError, BlobInfo, BlobStore, open_blob_store
from storage.manual_queries import record_for_source_key, source_keys_with_prefix

__all__ = [
    "MAX_FUTURE",
    "AddedDocument",
    "DocumentFacts",
    "ImportedAttestations",
    "Period",
    "add_document",
    "check_controls",
    "controls_requiring",
    "import_attestations",
    "observed_from",
    "open_files",
    "parse_moment",
    "parse_period",
]

MAX_FUTURE = timedelta(minutes=5)
"""How far past now an ``observed_at`` or an attestation's time may lie (clock skew); further is
a typing mistake, refused rather than stored as evidence of something that has not happened."""

_DOCUMENT_TYPE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_MAX_TEXT = 500
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def open_files(settings: Settings) -> BlobStore:
    """The blob store ``[files]`` names; a store that cannot be opened is a ConfigError on its url."""
    try:
        return open_blob_store(settings.files_url, object_lock_days=settings.files.object_lock_days)
    except BlobError as exc:
        raise ConfigError(str(settings.path), "files.url", str(exc)) from None


@dataclass(frozen=True, slots=True)
class Period:
    """The stretch a document covers, as written (a date or an RFC 3339 time) and as instants."""

    start_text: str
    end_text: str
    start: datetime
    end: datetime

    def as_data(self) -> dict[str, str]:
        """``{"start", "end"}`` for the record."""
        return {"start": self.start_text, "end": self.end_text}


def parse_moment(text: str, what: str) -> tuple[str, datetime]:
    """A date (``2026-09-30``, that day's 00:00 UTC) or an RFC 3339 time with its offset, as the
    normalised text the record keeps and the UTC instant; `InputError` naming ``what`` otherwise."""
    value = text.strip()
    try:
        if _DATE.fullmatch(value):
            day = date.fromisoformat(value)
            return day.isoformat(), datetime.combine(day, datetime.min.time(), UTC)
        moment = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise InputError(f"{what}: {value!r} is not a date (2026-09-30) or an RFC 3339 time with "
                         "its offset (2026-09-30T12:00:00Z)")
    moment = moment.astimezone(UTC)
    return format_ts(moment), moment


def parse_period(text: str, what: str = "--period") -> Period:
    """``START..END`` (dates or RFC 3339 times), START not after END."""
    start_text, sep, end_text = text.partition("..")
    if not sep:
        raise InputError(f"{what}: expected START..END such as 2026-07-01..2026-09-30, got {text!r}")
    start = parse_moment(start_text, what)
    end = parse_moment(end_text, what)
    if start[1] > end[1]:
        raise InputError(f"{what}: starts ({start[0]}) after it ends ({end[0]})")
    return Period(start[0], end[0], start[1], end[1])


def _text(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    clean = " ".join(value.split())
    if not clean:
        return None
    if len(clean) > _MAX_TEXT or not clean.isprintable():
        raise InputError(f"{what}: must be printable text of at most {_MAX_TEXT} characters")
    return clean


def controls_requiring(library: ControlLibrary, doc_type: str) -> tuple[str, ...]:
    """The ids of the controls with a ``{document = doc_type}`` selector, in library order."""
    return tuple(c.id for c in library.for_document(doc_type))


def check_controls(library: ControlLibrary, doc_type: str, control_ids: Sequence[str]) -> None:
    """Each control exists and requires documents of ``doc_type``; else `InputError` naming both."""
    if not _DOCUMENT_TYPE.fullmatch(doc_type):
        raise InputError(f"--type {doc_type!r}: a document type is lower-case letters, digits, "
                         "'-', '_' and '.' (e.g. restore-test)")
    if not control_ids:
        raise InputError("--control: name at least one control the document is evidence of")
    for cid in control_ids:
        control = library.get(cid)
        if control is None:
            raise InputError(f"--control {cid}: no such control in {library.source}")
        if not control.matches_document(doc_type):
            types = ", ".join(t for t, _ in control.documents) or "none"
            raise InputError(f"--control {cid} has no document selector of type {doc_type!r} "
                             f"(its document types: {types})")


@dataclass(frozen=True, slots=True)
class DocumentFacts:
    """What a person says about a file: its type, the controls it is evidence of, and the rest.

    ``observed_at`` is when it was approved or signed; without it, a document covering a
    ``period`` is observed at the period's end (evidence about a stretch is complete when the
    stretch is), never later than now; otherwise now.
    """

    type: str
    controls: tuple[str, ...]
    title: str | None = None
    owner: str | None = None
    approved_by: str | None = None
    period: Period | None = None
    observed_at: datetime | None = None

    def observed(self, now: datetime) -> datetime:
        """The record's ``observed_at`` (see the class docstring)."""
        if self.observed_at is not None:
            return self.observed_at
        if self.period is not None:
            return min(self.period.end, now)
        return now


@dataclass(frozen=True, slots=True)
class AddedDocument:
    """A document in the store: its record id, the file's SHA-256 and size, and whether this
    call stored it (False: the same file of the same type was already there)."""

    record_id: str
    sha256: str
    size: int
    name: str
    new: bool


def _check_time(moment: datetime, now: datetime, what: str) -> None:
    if moment > now + MAX_FUTURE:
        raise InputError(f"{what}: {format_ts(moment)} is in the future")


def _document_record(facts: DocumentFacts, library: ControlLibrary, info: BlobInfo, name: str,
                     now: datetime, criteria: tuple[str, ...] | None) -> tuple[str, datetime, Normalised]:
    first = library.get(facts.controls[0]) if facts.controls else None
    owner = facts.owner or (first.owner if first is not None else None)
    data = {
        "file_sha256": info.sha256, "size": info.size, "media_type": media_type(name), "name": name,
        "type": facts.type, "title": facts.title or name, "owner": owner,
        "approved_by": facts.approved_by,
        "period": None if facts.period is None else facts.period.as_data(),
    }
    normalised = Normalised(kind="document", actor=facts.approved_by or owner, source_url=None,
                            data=data, criteria=criteria or criteria_of(library, facts.controls))
    return f"{facts.type}/{info.sha256}", facts.observed(now), normalised


def add_document(settings: Settings, store: Store, blobs: BlobStore, path: Path,
                 facts: DocumentFacts, *, now: datetime | None = None,
                 display_name: str | None = None) -> AddedDocument:
    """Stream the file into the blob store, then store its record, once per (type, content).

    The blob goes first and the record second, so a record never names a blob the store lacks;
    a kill between the two leaves a blob without a record, which adding the file again uses.
    Raises `InputError` for a wrong control, type, time or file (exit 2).
    """
    now = now or datetime.now(UTC)
    library = settings.library
    check_controls(library, facts.type, facts.controls)
    facts = DocumentFacts(facts.type, facts.controls, _text(facts.title, "--title"),
                          _text(facts.owner, "--owner"), _text(facts.approved_by, "--approved-by"),
                          facts.period, facts.observed_at)
    if facts.observed_at is not None:
        _check_time(facts.observed_at, now, "--observed-at")
    name = sanitise_filename(display_name or path.name)
    info = _put(blobs, path)
    return _store_document(settings, store, facts, info, name, now, None)


def _put(blobs: BlobStore, path: Path) -> BlobInfo:
    with open_input(path) as stream:
        return blobs.put(stream)


def _store_document(settings: Settings, store: Store, facts: DocumentFacts, info: BlobInfo, name: str,
                    now: datetime, criteria: tuple[str, ...] | None) -> AddedDocument:
    key, observed, normalised = _document_record(facts, settings.library, info, name, now, criteria)
    with store.engine.connect() as conn:
        existing = record_for_source_key(conn, DOCUMENTS, key)
    if existing is not None:
        return AddedDocument(existing, info.sha256, info.size, name, new=False)
    store_items(settings, store, DocumentStream([prepared_item(key, observed, normalised)]))
    with store.engine.connect() as conn:
        stored = record_for_source_key(conn, DOCUMENTS, key)
    if stored is None:  # the run ended ok, so its record is there: a bug if not
        raise StoreFailed(f"{DOCUMENTS} {key}: stored, but the record cannot be read back")
    return AddedDocument(stored, info.sha256, info.size, name, new=True)


@dataclass(frozen=True, slots=True)
class ImportedAttestations:
    """An import: the CSV stored as a document, the statements in it, and how many were new."""

    document: AddedDocument
    rows: int
    new: int
    already: int
    type: str


class _Hashing:
    """Iterates a binary file's lines while hashing every byte read, so the rows parsed and the
    blob stored are proved to be the same bytes."""

    def __init__(self, stream: BinaryIO) -> None:
        self.digest = hashlib.sha256()
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        for line in self._stream:
            self.digest.update(line)
            yield line


def _read_rows(path: Path, doc_type: str, columns: ColumnMap, now: datetime) -> tuple[list[Attestation], str]:
    """Every row of the CSV (or `InputError` at the first bad one) and the SHA-256 of the bytes read."""
    with open_input(path) as stream:
        hashing = _Hashing(stream)
        rows = list(iter_attestations(hashing, name=str(path), type=doc_type, columns=columns))
        # Whatever the reader left unread (nothing, normally) is part of the file too.
        hashing.digest.update(stream.read())
    at_column = columns.column("at")
    for row in rows:
        if row.at > now + MAX_FUTURE:
            raise InputError(f"{path}: line {row.line}: column {at_column!r} (at): "
                             f"{format_ts(row.at)} is in the future")
    if not rows:
        raise InputError(f"{path}: no rows after the header; nothing to import")
    return rows, hashing.digest.hexdigest()


def import_attestations(settings: Settings, store: Store, blobs: BlobStore, path: Path, *,
                        doc_type: str, columns: ColumnMap, owner: str | None = None,
                        now: datetime | None = None, display_name: str | None = None) -> ImportedAttestations:
    """Import an HR or learning-system export: every row is parsed and checked first (a bad row is
    an `InputError` naming the file, line and column, and nothing is stored); then the CSV is
    stored as a ``<type>-export`` document, and each statement not already stored becomes an
    attestation pointing to it, all in one transaction.

    A statement is the same when its type, person, item and time are: importing the same CSV, or
    a later export repeating earlier rows, stores only what is new.
    """
    now = now or datetime.now(UTC)
    library = settings.library
    controls = controls_requiring(library, doc_type)
    if not controls:
        raise InputError(f"--type {doc_type}: no control of {library.source} requires {doc_type!r} "
                         f"(add {{document = \"{doc_type}\"}} to a control's evidence)")
    rows, read_sha = _read_rows(path, doc_type, columns, now)
    criteria = criteria_of(library, controls)
    earliest, latest = min(r.at for r in rows), max(r.at for r in rows)
    period = Period(format_ts(earliest), format_ts(latest), earliest, latest)
    name = sanitise_filename(display_name or path.name)
    facts = DocumentFacts(f"{doc_type}-export", controls, title=f"{doc_type} export {name}",
                          owner=_text(owner, "--owner"), period=period)
    info = _put(blobs, path)
    if info.sha256 != read_sha:
        raise InputError(f"{path}: the file changed while it was read; import it again once it is "
                         "written completely")
    document = _store_document(settings, store, facts, info, name, now, criteria)
    with store.engine.connect() as conn:
        known = source_keys_with_prefix(conn, ATTESTATIONS, f"{doc_type}/")
    items, seen = [], set(known)
    for row in rows:
        at = format_ts(row.at)
        if (row.source_key, at) in seen:
            continue
        seen.add((row.source_key, at))
        data: dict[str, object] = {"type": row.type, "person": row.person, "item": row.item, "at": at,
                                   "file_sha256": info.sha256, "line": row.line}
        if row.extra:
            data["extra"] = dict(row.extra)
        items.append(prepared_item(row.source_key, row.at, Normalised(
            kind="attestation", actor=row.person, source_url=None, data=data, criteria=criteria)))
    if items:
        store_items(settings, store, AttestationStream(items))
    return ImportedAttestations(document, len(rows), len(items), len(rows) - len(items), doc_type)


def observed_from(text: str | None) -> datetime | None:
    """``--observed-at`` parsed, or None."""
    return None if text is None else parse_moment(text, "--observed-at")[1]

