"""The store's operations: idempotent batch inserts, cursors, runs, snapshots and read queries."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update

from storage.engine import create_store_engine, migrate
from storage.errors import CursorConflict
from storage.models import CursorTable, EvidenceTable, FilingTable, RunTable, SnapshotTable
from storage.rows import BatchJob, EvidenceRecord, FilingRow

__all__ = ["RunSummary", "Store", "record_columns"]

# The insert binds an EvidenceRecord as it is, so its fields name the columns, in order.
_EVIDENCE_COLS = ", ".join(EvidenceRecord._fields)
_FILING_COLS = "criterion, observed_at, record_id, stream, status"


_SURROGATE = re.compile("[\ud800-\udfff]")


def _storable(text: str) -> str:
    """``text`` with NUL and lone surrogates as U+FFFD (unchanged, and not copied, when it has none)."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode()
    except UnicodeEncodeError:
        text = _SURROGATE.sub("\ufffd", text)
    return text


def record_columns() -> list[Any]:
    """The evidence table's columns in ``EvidenceRecord`` order, for a select that reads records."""
    return [EvidenceTable.c[name] for name in EvidenceRecord._fields]


@dataclass(frozen=True, slots=True)
class RunSummary:
    """The latest run of a stream, as shown by ``collector streams``."""

    stream: str
    run_id: str
    started_at: str
    ended_at: str | None
    status: str
    records_new: int
    error: str | None


class Store:
    """One evidence store (SQLite or PostgreSQL), migrated on open."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        if self.dialect == "sqlite":
            marks = ", ".join("?" * len(EvidenceRecord._fields))
            self._ins_evidence = f"INSERT OR IGNORE INTO evidence ({_EVIDENCE_COLS}) VALUES ({marks})"
            self._ins_filing = f"INSERT OR IGNORE INTO filings ({_FILING_COLS}) VALUES (?, ?, ?, ?, ?)"
        else:
            marks = ", ".join(["%s"] * len(EvidenceRecord._fields))
            self._ins_evidence = (
                f"INSERT INTO evidence ({_EVIDENCE_COLS}) VALUES ({marks}) ON CONFLICT DO NOTHING"
            )
            self._ins_filing = (
                f"INSERT INTO filings ({_FILING_COLS}) VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT DO NOTHING"
            )

    @classmethod
    def open(cls, url: str) -> Store:
        """Connect to ``url`` and apply pending migrations."""
        engine = create_store_engine(url)
        migrate(engine)
        return cls(engine)

    def close(self) -> None:
        """Dispose of the connection pool."""
        self.engine.dispose()

    # -- writes -------------------------------------------------------------------------

    def insert_records(
        self, conn: Connection, records: Sequence[EvidenceRecord], filings: Sequence[FilingRow]
    ) -> int:
        """Insert records and filings, ignoring ones already stored; return how many records were new."""
        if not records:
            return 0
        # The DBAPI cursor of the caller's connection (same transaction): executemany straight
        # into the driver, without SQLAlchemy's per-row parameter processing on the hot path.
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        # Plain tuples: sqlite3 binds an exact tuple directly but a tuple subclass (the
        # EvidenceRecord) item by item, which cost more than this copy (~0.4 us a record).
        rows = list(map(tuple, records))
        try:
            if self.dialect == "sqlite":
                before = int(cursor.execute("SELECT total_changes()").fetchone()[0])
                cursor.executemany(self._ins_evidence, rows)
                # rowcount after executemany varies across sqlite3 versions; total_changes does not.
                new = int(cursor.execute("SELECT total_changes()").fetchone()[0]) - before
            else:
                cursor.executemany(self._ins_evidence, rows)
                new = max(int(cursor.rowcount), 0)
            if filings:
                cursor.executemany(self._ins_filing, filings)
        finally:
            cursor.close()
        return new

    def commit_batch(self, job: BatchJob) -> int:
        """One transaction: store the batch, move the cursor from ``job.expected``, update the run row.

        ``job.run_values["records_new"]`` is the run's count before this batch; the row gets the
        count after it. Returns how many records were new. A moved cursor raises CursorConflict
        and nothing of the batch is kept.
        """
        with self.engine.begin() as conn:
            new = self.insert_records(conn, job.records, job.filings)
            if job.cursor is not None and job.cursor != job.expected:
                self.advance_cursor(conn, job.stream, job.expected, job.cursor, job.at, job.run_id)
            values = dict(job.run_values, cursor_after=job.cursor)
            values["records_new"] = int(values.get("records_new", 0)) + new
            self.update_run(conn, job.run_id, **values)
        return new

    def read_cursor(self, stream: str) -> str | None:
        """The committed cursor JSON of ``stream``, or None before its first run."""
        with self.engine.connect() as conn:
            value = conn.execute(select(CursorTable.c.value).where(CursorTable.c.stream == stream)).scalar()
        return value

    def advance_cursor(
        self, conn: Connection, stream: str, expected: str | None, value: str, at: str, run_id: str
    ) -> None:
        """Set the cursor if it still holds ``expected`` (compare-and-set), else CursorConflict."""
        if expected is None:
            query = select(CursorTable.c.value).where(CursorTable.c.stream == stream)
            existing = conn.execute(query).scalar()
            if existing is not None:
                raise CursorConflict(stream)
            conn.execute(
                insert(CursorTable).values(
                    stream=stream, value=value, updated_at=at, run_id=run_id
                )
            )
            return
        result = conn.execute(
            update(CursorTable)
            .where(CursorTable.c.stream == stream, CursorTable.c.value == expected)
            .values(value=value, updated_at=at, run_id=run_id)
        )
        if result.rowcount != 1:
            raise CursorConflict(stream)

    def start_run(self, run_id: str, stream: str, started_at: str, cursor: str | None) -> None:
        """Record that a run began (committed at once, so a killed run leaves a trace)."""
        with self.engine.begin() as conn:
            conn.execute(
                insert(RunTable).values(
                    id=run_id, stream=stream, started_at=started_at, status="running",
                    items=0, records_new=0, failures=0, cursor_before=cursor,
                )
            )

    def update_run(self, conn: Connection, run_id: str, **values: Any) -> None:
        """Update the run row (counts, status, end) inside the caller's transaction.

        Text may quote vendor text (an error naming an item's key): a NUL or a lone surrogate
        in it is stored as U+FFFD on every store, since PostgreSQL text cannot hold U+0000, no
        store can encode a surrogate, and the row is written in the same transaction as the
        batch it describes.
        """
        for name, value in values.items():
            if isinstance(value, str):
                values[name] = _storable(value)
        conn.execute(update(RunTable).where(RunTable.c.id == run_id).values(**values))

    def abandon_stale_runs(self, stream: str, before: str, at: str) -> int:
        """Mark runs of ``stream`` still "running" from before ``before`` as interrupted."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(RunTable)
                .where(RunTable.c.stream == stream, RunTable.c.status == "running",
                       RunTable.c.started_at < before)
                .values(status="failed", ended_at=at, error_class="Interrupted",
                        error="the collector stopped before this run finished")
            )
        return int(result.rowcount or 0)

    # -- reads --------------------------------------------------------------------------

    @contextmanager
    def read_snapshot(self) -> Iterator[Connection]:
        """A read-only connection whose queries all see the store as of the first one.

        For reports built from several queries (the digest), so a collection committing
        meanwhile cannot make one figure disagree with another. PostgreSQL: one REPEATABLE
        READ transaction. SQLite: an explicit BEGIN, since the driver opens none for SELECTs
        and each would otherwise see the latest commit.
        """
        with self.engine.connect() as conn:
            if self.dialect == "sqlite":
                conn.exec_driver_sql("BEGIN")
            else:
                conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            try:
                yield conn
            finally:
                conn.rollback()

    def latest_runs(self) -> dict[str, RunSummary]:
        """The most recent run of every stream that has run."""
        latest = (
            select(RunTable.c.stream, func.max(RunTable.c.started_at).label("started"))
            .group_by(RunTable.c.stream)
            .subquery()
        )
        query = select(RunTable).join(
            latest, (RunTable.c.stream == latest.c.stream) & (RunTable.c.started_at == latest.c.started)
        )
        out: dict[str, RunSummary] = {}
        with self.engine.connect() as conn:
            for r in conn.execute(query).all():
                out[r.stream] = RunSummary(
                    r.stream, r.id, r.started_at, r.ended_at, r.status, r.records_new, r.error
                )
        return out

    def runs_of(self, stream: str, limit: int = 50) -> list[RunSummary]:
        """The latest ``limit`` runs of ``stream``, newest first."""
        query = (select(RunTable).where(RunTable.c.stream == stream)
                 .order_by(RunTable.c.started_at.desc()).limit(limit))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            RunSummary(r.stream, r.id, r.started_at, r.ended_at, r.status, r.records_new, r.error)
            for r in rows
        ]

    def record_counts(self) -> dict[str, int]:
        """Stored records per stream."""
        query = select(EvidenceTable.c.stream, func.count()).group_by(EvidenceTable.c.stream)
        with self.engine.connect() as conn:
            return {stream: int(n) for stream, n in conn.execute(query)}

    def filing_counts(self, start: str | None = None, end: str | None = None,
                      status: str | None = None) -> dict[str, int]:
        """Records per criterion with ``start <= observed_at < end`` (and ``status``, if given)."""
        query = select(FilingTable.c.criterion, func.count()).group_by(FilingTable.c.criterion)
        if status is not None:
            query = query.where(FilingTable.c.status == status)
        if start is not None:
            query = query.where(FilingTable.c.observed_at >= start)
        if end is not None:
            query = query.where(FilingTable.c.observed_at < end)
        with self.engine.connect() as conn:
            return {c: int(n) for c, n in conn.execute(query)}

    def count_records(self) -> int:
        """Every stored record."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(EvidenceTable)).scalar_one())

    def iter_records(
        self, start: str | None = None, end: str | None = None, batch: int = 5000
    ) -> Iterator[EvidenceRecord]:
        """Records with ``start <= observed_at < end`` in (observed_at, id) order, read ``batch``
        at a time, each batch in its own short read (holding no transaction between them)."""
        cols = EvidenceTable.c
        last: tuple[str, str] | None = None
        while True:
            query = select(*record_columns()).order_by(cols.observed_at, cols.id).limit(batch)
            if start is not None:
                query = query.where(cols.observed_at >= start)
            if end is not None:
                query = query.where(cols.observed_at < end)
            if last is not None:
                query = query.where(
                    (cols.observed_at > last[0])
                    | ((cols.observed_at == last[0]) & (cols.id > last[1]))
                )
            with self.engine.connect() as conn:
                rows = [EvidenceRecord._make(row) for row in conn.execute(query)]
            yield from rows
            if len(rows) < batch:
                return
            last = (rows[-1].observed_at, rows[-1].id)

    def snapshots(self) -> list[Any]:
        """Every stored snapshot row (with the SnapshotTable columns), in sealing order."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(SnapshotTable).order_by(SnapshotTable.c.window_start, SnapshotTable.c.seq)
            ).all()
        return list(rows)
