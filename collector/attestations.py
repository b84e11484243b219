"""Attestations from HR and learning-system CSV exports: a column mapping, rows validated one by one."""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from collector.errors import InputError

__all__ = [
    "REQUIRED_ROLES",
    "Attestation",
    "ColumnMap",
    "iter_attestations",
    "parse_columns",
    "read_attestations",
]

REQUIRED_ROLES = ("person", "item", "at")
MAX_ITEM_CHARS = 256
_MAX_EMAIL_CHARS = 254  # RFC 5321's limit on a forward path
_IDENTIFIER = re.compile(r"[a-z][a-z0-9_]*")
# Pragmatic, not RFC 5322: one @, a dotted domain, no spaces, and no '/' because the person is a
# segment of the source key `<type>/<person>/<item>`.
_EMAIL = re.compile(r"[^@\s/]+@[^@\s/.]+(\.[^@\s/.]+)+")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")
_NAIVE = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?")


@dataclass(frozen=True, slots=True)
class ColumnMap:
    """Which CSV column holds each role: ``roles`` pairs (role, header) in the order given."""

    roles: tuple[tuple[str, str], ...]

    def column(self, role: str) -> str:
        """The header mapped to ``role``."""
        return dict(self.roles)[role]

    @property
    def optional(self) -> tuple[tuple[str, str], ...]:
        """The mapped roles beyond person, item and at."""
        return tuple(pair for pair in self.roles if pair[0] not in REQUIRED_ROLES)


@dataclass(frozen=True, slots=True)
class Attestation:
    """One person's statement: ``type`` (e.g. ``policy_ack``), who, about what, when, from which line.

    ``person`` is a lowercased email; ``at`` is timezone-aware UTC; ``line`` is the row's first
    line in the file (the header is line 1); ``extra`` holds the optional mapped roles' values.
    """

    type: str
    person: str
    item: str
    at: datetime
    line: int
    extra: tuple[tuple[str, str], ...] = ()

    @property
    def source_key(self) -> str:
        """``<type>/<person>/<item>``: the same line imported again has the same key."""
        return f"{self.type}/{self.person}/{self.item}"


def parse_columns(text: str) -> ColumnMap:
    """Parse ``person=Email,item=Policy,at=Signed`` (optional roles may follow); `InputError` if wrong."""
    roles: list[tuple[str, str]] = []
    for part in text.split(","):
        role, sep, header = (s.strip() for s in part.partition("="))
        if not sep or not role or not header:
            raise InputError(f"--columns: {part.strip()!r} is not role=Column (e.g. person=Email)")
        if not _IDENTIFIER.fullmatch(role):
            raise InputError(f"--columns: role {role!r} must be lowercase letters, digits and _")
        if role in dict(roles):
            raise InputError(f"--columns: role {role!r} is mapped twice")
        roles.append((role, header))
    missing = [r for r in REQUIRED_ROLES if r not in dict(roles)]
    if missing:
        raise InputError(f"--columns: {', '.join(missing)} not mapped (person, item and at are required)")
    return ColumnMap(tuple(roles))


def read_attestations(path: Path, *, type: str, columns: ColumnMap) -> list[Attestation]:
    """Every attestation in the CSV at ``path``, or `InputError` at the first bad row (then none)."""
    try:
        with path.open("rb") as binary:
            return list(iter_attestations(binary, name=str(path), type=type, columns=columns))
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from exc


def iter_attestations(
    binary: Iterable[bytes], *, name: str, type: str, columns: ColumnMap
) -> Iterator[Attestation]:
    """Stream attestations from a UTF-8 CSV (a binary file; ``name`` is used in errors).

    Raises `InputError` at the first bad row: a caller that stores as it goes must store nothing of
    the file until the iterator is exhausted. A leading BOM is dropped; headers match the mapping
    case-insensitively after trimming; rows with only empty cells are skipped.
    """
    if not _IDENTIFIER.fullmatch(type):
        raise InputError(f"--type: {type!r} must be lowercase letters, digits and _ (e.g. policy_ack)")
    reader = csv.reader(_decoded(binary, name), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise InputError(f"{name}: the file is empty (expected a header line)")
        index = _index(header, columns, name)
        end = reader.line_num
        for row in reader:
            line, end = end + 1, reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            yield _attestation(row, index, type=type, name=name, line=line)
    except csv.Error as exc:
        raise InputError(f"{name}: line {reader.line_num}: not valid CSV: {exc}") from exc


def _decoded(binary: Iterable[bytes], name: str) -> Iterator[str]:
    # Decoded line by line (not by an 8 KiB text buffer) so a bad byte is reported on its own line.
    for number, raw in enumerate(binary, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"{name}: line {number}: not UTF-8 text (export the CSV as UTF-8)") from exc
        yield text.removeprefix("\ufeff") if number == 1 else text


def _index(header: list[str], columns: ColumnMap, name: str) -> dict[str, tuple[int, str]]:
    found: dict[str, int] = {}
    for position, cell in enumerate(header):
        key = _header_key(cell)
        if key in found:
            # Only ambiguous when the mapping asks for it; checked below.
            found[key] = -1
        else:
            found[key] = position
    index: dict[str, tuple[int, str]] = {}
    for role, wanted in columns.roles:
        at = found.get(_header_key(wanted))
        if at is None:
            have = ", ".join(repr(cell.strip()) for cell in header[:20])
            have += ", ..." if len(header) > 20 else ""
            raise InputError(f"{name}: line 1: no column {wanted!r} (for {role}); the columns are {have}")
        if at < 0:
            raise InputError(f"{name}: line 1: column {wanted!r} (for {role}) appears more than once")
        index[role] = (at, header[at].strip())
    return index


def _header_key(cell: str) -> str:
    return unicodedata.normalize("NFC", cell.lstrip("\ufeff")).strip().casefold()


def _attestation(
    row: list[str], index: dict[str, tuple[int, str]], *, type: str, name: str, line: int
) -> Attestation:
    def cell(role: str) -> str:
        position = index[role][0]
        return row[position].strip() if position < len(row) else ""

    def bad(role: str, problem: str) -> InputError:
        return InputError(f"{name}: line {line}: column {index[role][1]!r} ({role}): {problem}")

    person = cell("person")
    if not person:
        raise bad("person", "empty (expected an email address)")
    if len(person) > _MAX_EMAIL_CHARS or not _EMAIL.fullmatch(person) or not person.isprintable():
        raise bad("person", f"{_show(person)} is not an email address")
    # NFC and single spaces: the same item typed or exported differently gets the same key.
    item = " ".join(unicodedata.normalize("NFC", cell("item")).split())
    if not item:
        raise bad("item", "empty")
    if len(item) > MAX_ITEM_CHARS:
        raise bad("item", f"{_show(item)} is longer than {MAX_ITEM_CHARS} characters")
    if not item.isprintable():
        raise bad("item", f"{_show(item)} holds control or formatting characters")
    at = _parse_at(cell("at"))
    if isinstance(at, str):
        raise bad("at", at)
    extra = tuple((role, cell(role)) for role in index if role not in REQUIRED_ROLES)
    return Attestation(type=type, person=person.lower(), item=item, at=at, line=line, extra=extra)


def _parse_at(value: str) -> datetime | str:
    """The time as UTC, or the problem with it as a message."""
    if not value:
        return "empty (expected a date like 2026-03-31 or a time like 2026-03-31T14:05:00Z)"
    try:
        if _DATE.fullmatch(value):
            return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
        if _DATETIME.fullmatch(value):
            return datetime.fromisoformat(value.upper().replace(" ", "T")).astimezone(UTC)
    except ValueError:
        return f"{_show(value)} is not a real date or time"
    if _NAIVE.fullmatch(value):
        return f"{_show(value)} has no UTC offset (add Z or +hh:mm, e.g. 2026-03-31T14:05:00Z)"
    return f"{_show(value)} is not a date (2026-03-31) or an RFC 3339 time (2026-03-31T14:05:00Z)"


def _show(value: str) -> str:
    # Quoted and cut, so a hostile cell cannot flood or rewrite the terminal line.
    shown = value if len(value) <= 60 else value[:57] + "..."
    return repr(shown)
