"""Runs one stream: normalise, canonicalise, hash, file and store in batches, with its cursor."""

from __future__ import annotations

import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from hashlib import sha256
from threading import Event
from typing import Any

import orjson
import structlog

from collector.catalog import Filing
from collector.errors import RecordError
from collector.records import format_ts, record_body
from connectors.sdk.base import ConnectorConfig, Stream
from connectors.sdk.errors import ConnectorError
from connectors.sdk.items import KEEP, Checkpoint, Cursor, ItemFailure, SourceItem
from storage import CursorConflict, EvidenceRow, FilingRow, Store
from storage.writer import BatchJob, WriterError, WriterProcess

__all__ = ["BatchReport", "Pipeline", "RunResult"]

log = structlog.get_logger("collector.pipeline")

MAX_REPORTED_FAILURES = 20


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

    @property
    def seconds(self) -> float:
        """Wall-clock duration of the run."""
        end = self.ended_at or datetime.now(UTC)
        return (end - self.started_at).total_seconds()


def _cursor_text(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


class _Batch:
    """Records and filings waiting for the next commit, with the cursor they bring."""

    __slots__ = ("exceptions", "filings", "items", "kinds", "records")

    def __init__(self) -> None:
        self.records: list[EvidenceRow] = []
        self.filings: list[FilingRow] = []
        self.items = 0
        self.kinds: Counter[str] = Counter()
        self.exceptions: Counter[str] = Counter()


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
        parallel: bool = True,
        writer_after: float = 1.0,
    ) -> None:
        self.store = store
        self.filing = filing
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self.clock = clock
        self.on_batch = on_batch
        self.stop = stop or Event()
        # A run that is still filling whole batches after ``writer_after`` seconds hands them to
        # a writer process (a second core). Shorter runs commit inline: the writer's start-up
        # (~0.5 s of imports) would cost them more than it gives. So do stores a second
        # process cannot open (in-memory SQLite).
        self.parallel = parallel and store.engine.url.database not in (None, "", ":memory:")
        self.writer_after = writer_after
        self._tick = -1.0
        self._stamp = ""

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
            bound.error("store_failed", error_class=type(exc).__name__, error=str(exc)[:300])
            return result
        bound.info("run_started", cursor=committed)
        state = _RunState(committed)
        sid = stream.id
        batch = _Batch()
        conflict = store_failed = False
        handoff: _Handoff | None = None
        flush_at = time.monotonic() + self.flush_seconds
        writer_at = time.monotonic() + self.writer_after
        try:
            for output in stream.fetch(cursor):
                if isinstance(output, SourceItem):
                    self._add(stream, sid, output, run_id, batch, state, result)
                elif isinstance(output, Checkpoint):
                    state.offer(output.cursor)
                elif isinstance(output, ItemFailure):
                    state.fail(output.key, output.error, output.error_class, result)
                    bound.warning("item_failed", key=output.key, error_class=output.error_class)
                if batch.items >= self.batch_size or (
                    batch.items and time.monotonic() >= flush_at
                ):
                    if (handoff is None and self.parallel and batch.items >= self.batch_size
                            and time.monotonic() >= writer_at):
                        handoff = _Handoff(self, result)
                    counts = {"items": result.items, "failures": result.failures}
                    if handoff is not None and handoff.ready():
                        handoff.submit(batch, state.committed, state.pending, counts)
                    else:  # inline: a small run, or while the writer is still starting
                        self.commit(sid, batch, state.committed, state.pending, result, counts)
                    state.committed = state.pending
                    batch = _Batch()
                    flush_at = time.monotonic() + self.flush_seconds
                if self.stop.is_set():
                    result.status = "partial"
                    result.error_class = "Shutdown"
                    result.error = "collection stopped by shutdown; the next run resumes"
                    break
        except CursorConflict:
            conflict = True
        except WriterError as exc:
            self._failed(result, exc)
            store_failed = True
        except ConnectorError as exc:
            self._failed(result, exc)
        except Exception as exc:
            self._failed(result, exc)
            bound.error("connector_bug", error_class=type(exc).__name__,
                        trace=traceback.format_exc(limit=8))
        if handoff is not None:  # the batch still in flight commits (or fails) before the last
            try:
                handoff.close(drain=not (conflict or store_failed))
            except CursorConflict:
                conflict = True
            except WriterError as exc:
                self._failed(result, exc)
                store_failed = True
            except Exception as exc:  # on_batch raised for a batch the writer did commit
                self._failed(result, exc)
        self._finish(batch, state, result, conflict, store_failed)
        log_event = bound.info if result.status == "ok" else bound.warning
        log_event(
            "run_finished", status=result.status, items=result.items,
            records_new=result.records_new, failures=result.failures,
            error_class=result.error_class, seconds=round(result.seconds, 3),
        )
        return result

    @staticmethod
    def _failed(result: RunResult, exc: BaseException) -> None:
        result.status = "failed"
        result.error_class = type(exc).__name__
        result.error = str(exc)[:2000]

    def _add(self, stream: Stream[Any], sid: str, item: SourceItem, run_id: str, batch: _Batch,
             state: _RunState, result: RunResult) -> None:
        result.items += 1
        try:
            evidence = stream.normalise(item)
            kind = evidence.kind
            if kind not in stream.kinds:
                raise RecordError(f"kind {kind!r} is not declared by {sid}")
            controls = self.filing.controls(sid, kind)
            observed = format_ts(item.observed_at)
            body = record_body(
                stream=sid, source_key=item.key, kind=kind, observed_at=observed,
                actor=evidence.actor, source_url=evidence.source_url,
                raw_sha256=sha256(item.raw).hexdigest(), data=evidence.data,
                exception_reason=evidence.exception, controls=controls,
            )
        except Exception as exc:  # one bad item is reported, not fatal
            state.fail(item.key, str(exc)[:500], type(exc).__name__, result)
            return
        record_id = sha256(body).hexdigest()
        status = "exception" if evidence.exception else "ok"
        batch.records.append((
            record_id, sid, item.key, kind, observed, self._collected_at(), status,
            evidence.actor, run_id, body.decode(),
        ))
        for criterion in controls:
            batch.filings.append((criterion, observed, record_id, sid, status))
            if status == "exception":
                batch.exceptions[criterion] += 1
        batch.kinds[kind] += 1
        batch.items += 1
        if item.cursor is not KEEP:
            state.offer(item.cursor)

    def _collected_at(self) -> str:
        """The collection time, re-read from the clock at most once per millisecond."""
        tick = time.monotonic()
        if tick - self._tick >= 0.001:
            self._tick = tick
            self._stamp = format_ts(self.clock())
        return self._stamp

    def commit(self, stream_id: str, batch: _Batch, expected: str | None, cursor: str | None,
               result: RunResult, counts: dict[str, Any]) -> None:
        """Store a batch, move the cursor from ``expected`` and update the run row: one transaction."""
        new = self.store.commit_batch(*self._job(batch, expected, cursor, result, counts).row())
        self._stored(stream_id, batch, new, result)

    def _job(self, batch: _Batch, expected: str | None, cursor: str | None, result: RunResult,
             counts: dict[str, Any]) -> BatchJob:
        """What one batch commit stores, whether inline or through the writer process."""
        return BatchJob(result.stream, result.run_id, batch.records, batch.filings, expected,
                        cursor, format_ts(self.clock()),
                        {**counts, "records_new": result.records_new})

    def _stored(self, stream_id: str, batch: _Batch, new: int, result: RunResult) -> None:
        """Account for a committed batch and report it."""
        result.records_new += new
        if self.on_batch is not None and batch.records:
            self.on_batch(BatchReport(stream_id, result.run_id, batch.items, new, batch.kinds,
                                      batch.exceptions))

    def _finish(self, batch: _Batch, state: _RunState, result: RunResult, conflict: bool,
                store_failed: bool = False) -> None:
        """Commit the last batch with the run's final row; a cursor conflict fails the run instead.

        When the writer process failed, the batch it held was not stored and the cursor did
        not move past it: the last batch is dropped too (the next run reads both again) and
        only the run row is closed.
        """
        if result.status == "running":
            result.status = "partial" if result.failures else "ok"
            if result.failures and result.error is None:
                result.error_class = "ItemFailures"
                result.error = "; ".join(state.reported)
        ended = result.ended_at = self.clock()
        counts: dict[str, Any] = {"items": result.items, "failures": result.failures}
        if store_failed:
            self._close_row(result, counts, ended, recount=True)
            return
        if not conflict:
            try:
                self.commit(result.stream, batch, state.committed, state.pending, result,
                            {**counts, **_final_row(result, ended)})
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

    def _close_row(self, result: RunResult, counts: dict[str, Any], ended: datetime, *,
                   recount: bool = False) -> None:
        """Write the run's final row alone; a store that cannot is logged, never raised.

        ``recount`` takes records_new from the row as committed: a writer that died after a
        commit but before its answer stored a batch this process never heard of.
        """
        try:
            with self.store.engine.begin() as conn:
                if recount:
                    result.records_new = self.store.run_records_new(conn, result.run_id)
                self.store.update_run(conn, result.run_id, **counts, **_final_row(result, ended))
        except Exception as exc:
            log.error("store_failed", stream=result.stream, error_class=type(exc).__name__)


class _Handoff:
    """A run's writer process and the one batch it may hold: submit waits for the one before."""

    __slots__ = ("_in_flight", "_pipeline", "_result", "_writer")

    def __init__(self, pipeline: Pipeline, result: RunResult) -> None:
        self._pipeline = pipeline
        self._result = result
        self._in_flight: _Batch | None = None
        self._writer: WriterProcess | None = None
        try:
            self._writer = WriterProcess(pipeline.store.engine.url.render_as_string(hide_password=False))
        except WriterError as exc:  # no process or fd to spare: the run goes on inline
            log.warning("writer_unavailable", stream=result.stream, error=str(exc))

    def ready(self) -> bool:
        """Whether batches can go to the writer yet (it starts while the run commits inline).

        A writer that failed to start has been handed nothing: the run goes on inline.
        """
        if self._writer is None:
            return False
        try:
            return self._writer.ready()
        except WriterError as exc:
            log.warning("writer_unavailable", stream=self._result.stream, error=str(exc))
            self._writer.close()
            self._writer = None
            return False

    def _collect(self) -> None:
        batch, self._in_flight = self._in_flight, None
        if batch is not None and self._writer is not None:
            new = self._writer.wait()
            self._pipeline._stored(self._result.stream, batch, new, self._result)

    def submit(self, batch: _Batch, expected: str | None, cursor: str | None,
               counts: dict[str, Any]) -> None:
        """Collect the previous batch's outcome (raising its error), then hand this one over."""
        self._collect()
        assert self._writer is not None, "submit only after ready()"
        self._writer.submit(self._pipeline._job(batch, expected, cursor, self._result, counts))
        self._in_flight = batch

    def close(self, *, drain: bool) -> None:
        """Wait for the batch in flight (unless the run already failed) and stop the writer."""
        try:
            if drain:
                self._collect()
        finally:
            if self._writer is not None:
                self._writer.close()


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
            self.reported.append(f"{key}: {error_class}: {error}")
