"""What the store holds for each of the organisation's controls, read per (stream, kind) and period."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from collector.config import MANUAL_STREAMS
from collector.controls import ControlEvidence, ControlLibrary, ControlState, PairTotals, aggregate
from collector.records import format_ts, parse_ts
from storage.digest_queries import pair_bucket_totals, source_key_newest, stream_newest_before

__all__ = [
    "LOOKBACK_CAP",
    "EvidenceReading",
    "Period",
    "control_entry",
    "document_types",
    "lookback",
    "read_evidence",
]

LOOKBACK_CAP = timedelta(days=7)
"""The longest stretch before the periods read that is scanned record by record for the newest
evidence of each (stream, kind). Scanning a control's whole cadence (90 days for the starter's
incident controls) would read three months of records for one timestamp; older evidence is found
per stream instead (see ``read_evidence``)."""


@dataclass(frozen=True, slots=True)
class Period:
    """A named stretch ``[start, end)``; the controls are judged as of ``end``."""

    name: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class EvidenceReading:
    """Per period: totals per (stream, kind) (records and exceptions in the period, newest record
    before its end) and the newest document or attestation of each type before its end."""

    totals: Mapping[str, tuple[PairTotals, ...]]
    documents: Mapping[str, Mapping[str, datetime]]

    def control_evidence(self, library: ControlLibrary, period: str) -> dict[str, ControlEvidence]:
        """Each control's evidence in ``period``, by control id (selectors applied now, so a
        changed library applies to every record already stored)."""
        return aggregate(library, self.totals[period], self.documents[period])

    def stream_records(self, period: str) -> dict[str, int]:
        """Records per stream observed in ``period``."""
        out: dict[str, int] = {}
        for pair in self.totals[period]:
            out[pair.stream] = out.get(pair.stream, 0) + pair.records
        return out


def lookback(library: ControlLibrary) -> timedelta:
    """How far before the periods' ends each (stream, kind) is read exactly: the longest cadence of
    a control with stream/kind selectors, at most ``LOOKBACK_CAP``."""
    cadences = [c.every.period for c in library.controls if c.automated]
    return min(max(cadences, default=timedelta(0)), LOOKBACK_CAP)


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


def read_evidence(conn: Connection, library: ControlLibrary, periods: Sequence[Period]) -> EvidenceReading:
    """Read, in one pass over the records, what each period needs to judge the controls.

    The pass covers every period and, before the earliest period end, ``lookback(library)``: in that
    range records, exceptions and the newest record are exact per (stream, kind). Evidence older than
    the pass is found per stream (its newest record and that record's kind, through the stream
    index), so a single-kind stream's newest evidence is exact at any age; a kind of a multi-kind
    stream that fell silent before the pass while another kind went on is not seen. Such a control
    reads ``no_evidence`` instead of ``stale``: not operating either way.
    """
    if not periods:
        return EvidenceReading({}, {})
    look = lookback(library)
    start = min(*(p.start for p in periods), *(p.end - look for p in periods))
    end = max(p.end for p in periods)
    edges = sorted({start, end, *(p.start for p in periods), *(p.end for p in periods)})
    edges = [e for e in edges if start <= e <= end]
    buckets = pair_bucket_totals(conn, [format_ts(e) for e in edges])
    older = {(s, k): parse_ts(t) for s, k, t in stream_newest_before(conn, format_ts(start))}
    totals: dict[str, tuple[PairTotals, ...]] = {}
    documents: dict[str, Mapping[str, datetime]] = {}
    for period in periods:
        records: dict[tuple[str, str], list[int]] = {}
        newest: dict[tuple[str, str], str] = {}
        for b in buckets:
            lo, hi = edges[b.bucket], edges[b.bucket + 1]
            pair = (b.stream, b.kind)
            if hi <= period.end and (pair not in newest or b.newest > newest[pair]):
                newest[pair] = b.newest
            if lo >= period.start and hi <= period.end:
                figures = records.setdefault(pair, [0, 0])
                figures[0] += b.records
                figures[1] += b.exceptions
        found: list[PairTotals] = []
        for pair in sorted(set(records) | set(newest) | set(older)):
            at = parse_ts(newest[pair]) if pair in newest else older.get(pair)
            n, x = records.get(pair, (0, 0))
            found.append(PairTotals(pair[0], pair[1], at, n, x))
        totals[period.name] = tuple(found)
        documents[period.name] = document_types(
            source_key_newest(conn, MANUAL_STREAMS, format_ts(period.end)))
    return EvidenceReading(totals, documents)


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
