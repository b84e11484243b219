"""The rows the store writes and reads: an evidence record, its filings, and one batch commit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

__all__ = ["BatchJob", "EvidenceRecord", "FilingRow"]


class EvidenceRecord(NamedTuple):
    """One stored piece of evidence: the ``evidence`` table's columns, in its insert order.

    ``body`` is the canonical JSON (RFC 8785) of the record without ``id``, ``collected_at`` and
    ``run_id``, and ``id`` is its SHA-256; timestamps are RFC 3339 UTC text of fixed width.
    This one type carries a record from the pipeline (``collector.records.build_record`` makes
    it) through ``Store.commit_batch`` and back out of the store to the seal, which writes it
    as one line of ``records.jsonl``. It is defined here, not in the collector, because the
    store both binds it (a tuple is what the database driver takes, with no copy) and reads it
    back, and the store imports nothing of the collector; ``collector.records`` re-exports it.
    """

    id: str
    stream: str
    source_key: str
    kind: str
    observed_at: str
    collected_at: str
    status: str
    actor: str | None
    run_id: str
    body: str


FilingRow = tuple[str, str, str, str, str]
"""(criterion, observed_at, record_id, stream, status): a record filed under one criterion."""


@dataclass(frozen=True, slots=True)
class BatchJob:
    """What one ``Store.commit_batch`` stores in one transaction.

    The records and their filings, the stream's cursor moved from ``expected`` to ``cursor``
    (stamped ``at``), and the run row's new values; ``run_values["records_new"]`` is the run's
    count before this batch.
    """

    stream: str
    run_id: str
    records: Sequence[EvidenceRecord]
    filings: Sequence[FilingRow]
    expected: str | None
    cursor: str | None
    at: str
    run_values: Mapping[str, Any]
