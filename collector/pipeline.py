"""Runs one stream: normalise, canonicalise, hash, file and store in batches, with its cursor."""

from __future__ import annotations

import gc
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from hashlib import sha256
from operator import attrgetter
from threading import Event, Lock
from typing import Any

import orjson
import structlog

from collector.catalog import Filing
from collector.errors import RecordError, clip
from collector.records import EvidenceRecord, build_record, format_ts
from connectors.sdk.base import ConnectorConfig, Stream
from connectors.sdk.errors import ConnectorError
from connectors.sdk.items import KEEP, Checkpoint, Cursor, ItemFailure, Skipped, SourceItem
from storage import BatchJob, CursorConflict, FilingRow, Store

__all__ = ["BatchReport", "Pipeline", "RunResult"]

log = structlog.get_logger("collector.pipeline")

MAX_REPORTED_FAILURES = 20
_MAX_KEY_SHOWN = 500
"""A failed item's key in the run's error is cut here: a vendor's key can be as long as its text."""


@dataclass(frozen=True, slots=True)
class BatchReport:
    """What one committed batch stored, for metrics and progress."""

    stream: str
    run_id: str
    items: int
    new: int
    kinds: Counter[str]
    exceptions: Counter[str]


@dataclass(slots=True)
class RunResult:
    """The outcome of one run of one stream."""

    stream: str
    run_id: str
    status: str = "running"
    items: int = 0
    records_new: int = 0
    failures: int = 0
    error_class: str | None = None
    error: str | None = None
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    ended_at: datetime | None = None
    skipped: Counter[str] = field(default_factory=Counter)
    """Items the stream read and deliberately did not store, by reason (``Skipped``)."""

    @property
    def seconds(self) -> float:
        """Wall-clock duration of the run."""
        end = self.ended_at or datetime.now(UTC)
        return (end - self.started_at).total_seconds()


def _cursor_text(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


class _Batch:
    """Records and filings waiting for the next commit (the run's one batch, emptied by each)."""

    __slots__ = ("filings", "records")

    def __init__(self) -> None:
        self.records: list[EvidenceRecord] = []
        self.filings: list[FilingRow] = []

    def report(self, stream: str, run_id: str, new: int) -> BatchReport:
        """What this batch stored: counted here, once per batch, rather than per record."""
        exceptions = Counter(f[0] for f in self.filings if f[4] == "exception")
        return BatchReport(stream, run_id, len(self.records), new,
                           Counter(map(_KIND, self.records)), exceptions)


_KIND = attrgetter("kind")
_YOUNG_GC_THRESHOLD = 50_000
"""Net new container objects before CPython collects its youngest generation while a run reads
(default 700); see ``_YoungGC``."""
_STOP_CHECK_SECONDS = 0.01
"""How often a fast stream looks at the stop flag (a slow one, after every item)."""
_STAMP_SECONDS = 0.001
"""How often the collection time stamp is read again from the clock."""


class _YoungGC:
    """Raises the young-generation GC threshold while any run reads, then restores it.

    A batch keeps about three container objects per record (its record and filing tuples)
    until it is committed; with CPython's default threshold of 700 new objects, a collection
    runs every ~230 records and each record is traversed by several of them before its batch
    is freed, and an ``EvidenceRecord`` (a tuple subclass) is never untracked, so it goes on
    to trigger full collections. With 50,000, a 5,000-record batch is committed and freed
    before a collection sees it: 10-14% less CPU for a 1M-record backfill (bench/ingest.py,
    measured twice each way). Only garbage in reference cycles waits longer, at most 50,000
    objects. The setting is process-wide, so concurrent runs share it: the first in raises
    it and the last out restores it.
    """

    def __init__(self) -> None:
        self._lock = Lock()
        self._runs = 0
        self._saved: tuple[int, int, int] | None = None

    def __enter__(self) -> None:
        with self._lock:
            self._runs += 1
            if self._runs == 1:
                self._saved = gc.get_threshold()
                if self._saved[0] < _YOUNG_GC_THRESHOLD:
                    gc.set_threshold(_YOUNG_GC_THRESHOLD, *self._saved[1:])

    def __exit__(self, *_exc: object) -> None:
        with self._lock:
            self._runs -= 1
            if self._runs == 0 and self._saved is not None:
                gc.set_threshold(*self._saved)
                self._saved = None


_young_gc = _YoungGC()


class Pipeline:
    """Turns a stream's items into stored records; one transaction per batch, cursor included."""

    def __init__(
        self,
        store: Store,
        filing: Filing,
        *,
        batch_size: int = 5000,
        flush_seconds: float = 2.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_batch: Callable[[BatchReport], None] | None = None,
        stop: Event | None = None,
    ) -> None:
        self.store = store
        self.filing = filing
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self.clock = clock
        self.on_batch = on_batch
        self.stop = stop or Event()

    def run(self, stream: Stream[Any], config: ConnectorConfig) -> RunResult:
        """Collect ``stream`` once from its committed cursor; never raises for source errors."""
        run_id = str(uuid.uuid4())
        started = self.clock()
        result = RunResult(stream=stream.id, run_id=run_id, started_at=started)
        bound = log.bind(run_id=run_id, stream=stream.id, connector=stream.connector_name)
        started_text = format_ts(started)
        try:
            self.store.abandon_stale_runs(stream.id, started_text, started_text)
            committed = self.store.read_cursor(stream.id)
            cursor = Cursor(
                value=None if committed is None else orjson.loads(committed),
                ceiling=started,
                floor=started - config.backfill,
            )
            self.store.start_run(run_id, stream.id, started_text, committed)
        except Exception as exc:  # the store cannot start a run (disk full, locked, gone)
            self._failed(result, exc)
            result.ended_at = self.clock()
            bound.error("store_failed", error_class=type(exc).__name__, error=clip(str(exc), 300))
            return result
        # A state stream's cursor can hold per-user state (okta.users: ~100 bytes a user): cut short.
        shown = committed if committed is None or len(committed) <= 300 \
            else f"{committed[:300]}… ({len(committed)} chars)"
        bound.info("run_started", cursor=shown)
        state = _RunState(committed)
        batch = _Batch()
        conflict = False
        try:
            with _young_gc:
                self._read(stream, cursor, batch, state, result, bound)
        except CursorConflict:
            conflict = True
        except ConnectorError as exc:
            self._failed(result, exc)
        except Exception as exc:
            self._failed(result, exc)
            bound.error("connector_bug", error_class=type(exc).__name__,
                        trace=traceback.format_exc(limit=8))
        self._finish(batch, state, result, conflict)
        log_event = bound.info if result.status == "ok" else bound.warning
        log_event(
            "run_finished", status=result.status, items=result.items,
            records_new=result.records_new, failures=result.failures, skipped=dict(result.skipped),
            error_class=result.error_class, seconds=round(result.seconds, 3),
        )
        return result

    def _read(self, stream: Stream[Any], cursor: Cursor, batch: _Batch, state: _RunState,
              result: RunResult, bound: Any) -> None:
        """Fetch the stream, turning each item into a record filed in ``batch``, which is committed
        whenever it is full or ``flush_seconds`` old; the last one is left for ``_finish``.

        This loop runs once per item (a million times in a backfill), so the stream's and the
        run's attributes are held in locals and nothing is counted per record that can be
        counted per batch.
        """
        sid, run_id = stream.id, result.run_id
        normalise, declared, filing, clock = stream.normalise, stream.kinds, self.filing, self.clock
        controls_of: dict[str, tuple[str, ...]] = {}
        size, monotonic = self.batch_size, time.monotonic
        records, filings = batch.records, batch.filings
        now = stamped = stop_check = monotonic()
        flush_at = now + self.flush_seconds
        collected = format_ts(clock())
        for output in stream.fetch(cursor):
            now = monotonic()
            if isinstance(output, SourceItem):
                result.items += 1
                try:
                    evidence = normalise(output)
                    kind = evidence.kind
                    if kind not in declared:
                        raise RecordError(f"kind {kind!r} is not declared by {sid}")
                    controls = evidence.criteria or controls_of.get(kind)
                    if controls is None:
                        controls = controls_of[kind] = filing.controls(sid, kind)
                    if now - stamped >= _STAMP_SECONDS:
                        stamped, collected = now, format_ts(clock())
                    record = build_record(
                        stream=sid, source_key=output.key, kind=kind,
                        observed_at=format_ts(output.observed_at), collected_at=collected,
                        actor=evidence.actor, source_url=evidence.source_url,
                        raw_sha256=sha256(output.raw).hexdigest(), data=evidence.data,
                        exception_reason=evidence.exception, controls=controls, run_id=run_id,
                    )
                except Exception as exc:  # one bad item is reported, not fatal
                    state.fail(output.key, str(exc)[:500], type(exc).__name__, result)
                else:
                    records.append(record)
                    record_id, observed, status = record.id, record.observed_at, record.status
                    for criterion in controls:
                        filings.append((criterion, observed, record_id, sid, status))
                    if output.cursor is not KEEP:
                        state.offer(output.cursor)
            elif isinstance(output, Checkpoint):
                state.offer(output.cursor)
            elif isinstance(output, ItemFailure):
                state.fail(output.key, output.error, output.error_class, result)
                bound.warning("item_failed", key=output.key[:_MAX_KEY_SHOWN], error_class=output.error_class)
            elif isinstance(output, Skipped):
                result.skipped[output.reason] += output.count
            if len(records) >= size or (records and now >= flush_at):
                self._commit(batch, state, result,
                             {"items": result.items, "failures": result.failures})
                records, filings = batch.records, batch.filings
                flush_at = monotonic() + self.flush_seconds
            if now >= stop_check:
                stop_check = now + _STOP_CHECK_SECONDS
                if self.stop.is_set():
                    result.status = "partial"
                    result.error_class = "Shutdown"
                    result.error = "collection stopped by shutdown; the next run resumes"
                    return

    @staticmethod
    def _failed(result: RunResult, exc: BaseException) -> None:
        result.status = "failed"
        result.error_class = type(exc).__name__
        result.error = clip(str(exc), 2000)

    def _commit(self, batch: _Batch, state: _RunState, result: RunResult,
                run_values: dict[str, Any]) -> None:
        """Store the batch, move the cursor to the pending one and update the run row, in one
        transaction; then report the batch and start the next one empty."""
        cursor = state.pending
        new = self.store.commit_batch(BatchJob(
            result.stream, result.run_id, batch.records, batch.filings, state.committed, cursor,
            format_ts(self.clock()), {**run_values, "records_new": result.records_new},
        ))
        state.committed = cursor
        result.records_new += new
        if self.on_batch is not None and batch.records:
            self.on_batch(batch.report(result.stream, result.run_id, new))
        batch.records, batch.filings = [], []

    def _finish(self, batch: _Batch, state: _RunState, result: RunResult, conflict: bool) -> None:
        """Commit the last batch with the run's final row; a cursor conflict fails the run instead."""
        if result.status == "running":
            result.status = "partial" if result.failures else "ok"
            if result.failures and result.error is None:
                result.error_class = "ItemFailures"
                result.error = "; ".join(state.reported)
        ended = result.ended_at = self.clock()
        counts: dict[str, Any] = {"items": result.items, "failures": result.failures}
        if not conflict:
            try:
                self._commit(batch, state, result, {**counts, **_final_row(result, ended)})
                return
            except CursorConflict:
                pass
            except Exception as exc:  # the store itself failed: report, never crash the daemon
                self._failed(result, exc)
                log.error("store_failed", stream=result.stream, error_class=type(exc).__name__)
                return
        result.status, result.error_class = "failed", "CursorConflict"
        result.error = "another collection of this stream ran at the same time"
        self._close_row(result, counts, ended)

    def _close_row(self, result: RunResult, counts: dict[str, Any], ended: datetime) -> None:
        """Write the run's final row alone; a store that cannot is logged, never raised."""
        try:
            with self.store.engine.begin() as conn:
                self.store.update_run(conn, result.run_id, **counts, **_final_row(result, ended))
        except Exception as exc:
            log.error("store_failed", stream=result.stream, error_class=type(exc).__name__)


def _final_row(result: RunResult, ended: datetime) -> dict[str, Any]:
    """The run row's closing columns."""
    return {"status": result.status, "ended_at": format_ts(ended),
            "error_class": result.error_class, "error": result.error}


class _RunState:
    """Cursor bookkeeping: the committed value, the value pending with the batch, and failures."""

    __slots__ = ("_raw", "_text", "committed", "frozen", "reported")

    def __init__(self, committed: str | None) -> None:
        self.committed = committed
        self._text: str | None = committed
        self._raw: Any = KEEP
        self.frozen = False
        self.reported: list[str] = []

    @property
    def pending(self) -> str | None:
        """The cursor to store with the next commit, serialised once per batch, not per item."""
        if self._raw is not KEEP:
            self._text = _cursor_text(self._raw)
            self._raw = KEEP
        return self._text

    def offer(self, value: Any) -> None:
        """Move the pending cursor, unless an earlier item failed in this run."""
        if not self.frozen:
            self._raw = value

    def fail(self, key: str, error: str, error_class: str, result: RunResult) -> None:
        """Record a failed item; the cursor stays before it for the rest of the run."""
        self.frozen = True
        result.failures += 1
        if len(self.reported) < MAX_REPORTED_FAILURES:
            shown = key if len(key) <= _MAX_KEY_SHOWN else f"{key[:_MAX_KEY_SHOWN]}…"
            self.reported.append(f"{shown}: {error_class}: {error}")
