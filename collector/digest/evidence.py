"""What the store holds for each of the organisation's controls, read per (stream, kind) and period."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from collector.config import DERIVED_STREAMS, MANUAL_STREAMS
from collector.controls import ControlEvidence, ControlLibrary, ControlState, PairTotals, aggregate
from collector.records import format_ts, parse_ts
from storage.digest_queries import (
    evidence_pairs,
    pair_bucket_totals,
    pair_newest_before,
    source_key_newest,
)
from storage.manual_queries import source_keys_between

_PEOPLE_COVERAGE = DERIVED_STREAMS[0]

__all__ = [
    "EvidenceReading",
    "Period",
    "control_entry",
    "document_types",
    "read_evidence",
]


@dataclass(frozen=True, slots=True)
class Period:
    """A named stretch ``[start, end)``; the controls are judged as of ``end``."""

    name: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class EvidenceReading:
    """Per period: totals per (stream, kind) (records and exceptions in the period, newest record
    before its end), the newest document or attestation of each type before its end, and the
    people-coverage exceptions in the period per attestation type (someone missing one)."""

    totals: Mapping[str, tuple[PairTotals, ...]]
    documents: Mapping[str, Mapping[str, datetime]]
    people_exceptions: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    def control_evidence(self, library: ControlLibrary, period: str) -> dict[str, ControlEvidence]:
        """Each control's evidence in ``period``, by control id (selectors applied now, so a
        changed library applies to every record already stored). A person missing a required
        attestation is an exception of every control that requires that attestation type."""
        evidence = aggregate(library, self.totals[period], self.documents[period])
        missing = self.people_exceptions.get(period, {})
        for control in library.controls if missing else ():
            n = sum(missing.get(doc_type, 0) for doc_type, _ in control.documents)
            if n:
                found = evidence[control.id]
                evidence[control.id] = replace(found, records=found.records + n,
                                               exceptions=found.exceptions + n)
        return evidence

    def stream_records(self, period: str) -> dict[str, int]:
        """Records per stream observed in ``period``."""
        out: dict[str, int] = {}
        for pair in self.totals[period]:
            out[pair.stream] = out.get(pair.stream, 0) + pair.records
        return out


def document_types(source_keys: Iterable[tuple[str, str]]) -> dict[str, datetime]:
    """The newest time per document type, from (source_key, observed_at) pairs of the document and
    attestation streams, whose source keys are ``<type>/...``."""
    out: dict[str, datetime] = {}
    for key, observed in source_keys:
        doc_type, slash, _ = key.partition("/")
        if not slash or not doc_type:
            continue
        at = parse_ts(observed)
        if doc_type not in out or at > out[doc_type]:
            out[doc_type] = at
    return out


def read_evidence(conn: Connection, periods: Sequence[Period]) -> EvidenceReading:
    """Read what each period needs to judge the controls, per (stream, kind) in the store: records
    and exceptions observed in the period, and the newest record before its end however old (one
    index probe each), plus the newest document or attestation of each type before its end.

    Every pair is read, whatever the library: its selectors are applied afterwards
    (``EvidenceReading.control_evidence``), so a changed library needs no other reading.
    """
    if not periods:
        return EvidenceReading({}, {})
    edges = sorted({*(p.start for p in periods), *(p.end for p in periods)})
    pairs = evidence_pairs(conn)
    buckets = pair_bucket_totals(conn, pairs, [format_ts(e) for e in edges])
    totals: dict[str, tuple[PairTotals, ...]] = {}
    documents: dict[str, Mapping[str, datetime]] = {}
    missing: dict[str, Mapping[str, int]] = {}
    for period in periods:
        newest = pair_newest_before(conn, pairs, format_ts(period.end))
        records: dict[tuple[str, str], list[int]] = {}
        for b in buckets:
            if edges[b.bucket] >= period.start and edges[b.bucket + 1] <= period.end:
                figures = records.setdefault((b.stream, b.kind), [0, 0])
                figures[0] += b.records
                figures[1] += b.exceptions
        found: list[PairTotals] = []
        for pair in sorted(set(records) | set(newest)):
            n, x = records.get(pair, (0, 0))
            at = parse_ts(newest[pair]) if pair in newest else None
            found.append(PairTotals(pair[0], pair[1], at, n, x))
        totals[period.name] = tuple(found)
        documents[period.name] = document_types(
            source_key_newest(conn, MANUAL_STREAMS, format_ts(period.end)))
        keys = source_keys_between(conn, _PEOPLE_COVERAGE, format_ts(period.start),
                                   format_ts(period.end), status="exception")
        missing[period.name] = Counter(key.partition("/")[0] for key in keys)
    return EvidenceReading(totals, documents, missing)


def control_entry(week: ControlState, window: ControlState) -> dict[str, Any]:
    """One control of the library as the digest shows it: this week's status and why, and the
    window to date's."""
    c = week.control
    last = week.last_evidence_at
    return {
        "id": c.id, "title": c.title, "owner": c.owner, "criteria": list(c.criteria),
        "status": week.status, "reasons": list(week.reasons), "every": c.every.text,
        "last_evidence_at": format_ts(last) if last is not None else None,
        "records_week": week.records, "exceptions_week": week.exceptions,
        "due": [{"type": d.type, "every": d.every,
                 "last_at": format_ts(d.last_at) if d.last_at is not None else None} for d in week.due],
        "status_window": window.status, "records_window": window.records,
        "exceptions_window": window.exceptions,
    }
