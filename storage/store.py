"""The store's operations: idempotent batch inserts, cursors, runs, snapshots and read queries."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update

from storage.engine import create_store_engine, migrate
from storage.models import Cursor, Evidence, Filing, Run, Snapshot

__all__ = ["CursorConflict", "EvidenceRow", "FilingRow", "RunSummary", "Store"]

EvidenceRow = tuple[str, str, str, str, str, str, str, "str | None", str, str]
"""(id, stream, source_key, kind, observed_at, collected_at, status, actor, run_id, body)."""
FilingRow = tuple[str, str, str, str, str]
"""(criterion, observed_at, record_id, stream, status)."""

_EVIDENCE_COLS = "id, stream, source_key, kind, observed_at, collected_at, status, actor, run_id, body"
_FILING_COLS = "criterion, observed_at, record_id, stream, status"


class CursorConflict(Exception):
    """Another run moved this stream's cursor since this run read it; this batch is rolled back."""


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
            marks = ", ".join("?" * 10)
            self._ins_evidence = f"INSERT OR IGNORE INTO evidence ({_EVIDENCE_COLS}) VALUES ({marks})"
            self._ins_filing = f"INSERT OR IGNORE INTO filings ({_FILING_COLS}) VALUES (?, ?, ?, ?, ?)"
        else:
            marks = ", ".join(["%s"] * 10)
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
        self, conn: Connection, records: Sequence[EvidenceRow], filings: Sequence[FilingRow]
    ) -> int:
        """Insert records and filings, ignoring ones already stored; return how many records were new."""
        if not records:
            return 0
        # The DBAPI cursor of the caller's connection (same transaction): executemany straight
        # into the driver, without SQLAlchemy's per-row parameter processing on the hot path.
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            if self.dialect == "sqlite":
                before = int(cursor.execute("SELECT total_changes()").fetchone()[0])
                cursor.executemany(self._ins_evidence, records)
                # rowcount after executemany varies across sqlite3 versions; total_changes does not.
                new = int(cursor.execute("SELECT total_changes()").fetchone()[0]) - before
            else:
                cursor.executemany(self._ins_evidence, records)
                new = max(int(cursor.rowcount), 0)
            if filings:
                cursor.executemany(self._ins_filing, filings)
        finally:
            cursor.close()
        return new

    def commit_batch(
        self,
        stream: str,
        run_id: str,
        records: Sequence[EvidenceRow],
        filings: Sequence[FilingRow],
        expected: str | None,
        cursor: str | None,
        at: str,
        run_values: dict[str, Any],
    ) -> int:
        """One transaction: store the batch, move the cursor from ``expected``, update the run row.

        ``run_values["records_new"]`` is the run's count before this batch; the row gets the
        count after it. Returns how many records were new. A moved cursor raises CursorConflict
        and nothing of the batch is kept.
        """
        with self.engine.begin() as conn:
            new = self.insert_records(conn, records, filings)
            if cursor is not None and cursor != expected:
                self.advance_cursor(conn, stream, expected, cursor, at, run_id)
            values = dict(run_values, cursor_after=cursor)
            values["records_new"] = int(values.get("records_new", 0)) + new
            self.update_run(conn, run_id, **values)
        return new

    def read_cursor(self, stream: str) -> str | None:
        """The committed cursor JSON of ``stream``, or None before its first run."""
        with self.engine.connect() as conn:
            value = conn.execute(select(Cursor.value).where(Cursor.stream == stream)).scalar()
        return value

    def advance_cursor(
        self, conn: Connection, stream: str, expected: str | None, value: str, at: str, run_id: str
    ) -> None:
        """Set the cursor if it still holds ``expected`` (compare-and-set), else CursorConflict."""
        if expected is None:
            existing = conn.execute(select(Cursor.value).where(Cursor.stream == stream)).scalar()
            if existing is not None:
                raise CursorConflict(stream)
            conn.execute(
                insert(Cursor).values(
                    stream=stream, value=value, updated_at=at, run_id=run_id
                )
            )
            return
        result = conn.execute(
            update(Cursor)
            .where(Cursor.stream == stream, Cursor.value == expected)
            .values(value=value, updated_at=at, run_id=run_id)
        )
        if result.rowcount != 1:
            raise CursorConflict(stream)

    def start_run(self, run_id: str, stream: str, started_at: str, cursor: str | None) -> None:
        """Record that a run began (committed at once, so a killed run leaves a trace)."""
        with self.engine.begin() as conn:
            conn.execute(
                insert(Run).values(
                    id=run_id, stream=stream, started_at=started_at, status="running",
                    items=0, records_new=0, failures=0, cursor_before=cursor,
                )
            )

    def update_run(self, conn: Connection, run_id: str, **values: Any) -> None:
        """Update the run row (counts, status, end) inside the caller's transaction."""
        conn.execute(update(Run).where(Run.id == run_id).values(**values))

    def run_records_new(self, conn: Connection, run_id: str) -> int:
        """The records_new a run's row holds, as committed."""
        value = conn.execute(select(Run.records_new).where(Run.id == run_id)).scalar()
        return int(value or 0)

    def abandon_stale_runs(self, stream: str, before: str, at: str) -> int:
        """Mark runs of ``stream`` still "running" from before ``before`` as interrupted."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(Run)
                .where(Run.stream == stream, Run.status == "running", Run.started_at < before)
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
            select(Run.stream, func.max(Run.started_at).label("started"))
            .group_by(Run.stream)
            .subquery()
        )
        query = select(Run).join(
            latest, (Run.stream == latest.c.stream) & (Run.started_at == latest.c.started)
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
        query = (
            select(Run).where(Run.stream == stream).order_by(Run.started_at.desc()).limit(limit)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            RunSummary(r.stream, r.id, r.started_at, r.ended_at, r.status, r.records_new, r.error)
            for r in rows
        ]

    def record_counts(self) -> dict[str, int]:
        """Stored records per stream."""
        query = select(Evidence.stream, func.count()).group_by(Evidence.stream)
        with self.engine.connect() as conn:
            return {stream: int(n) for stream, n in conn.execute(query)}

    def filing_counts(self, start: str | None = None, end: str | None = None,
                      status: str | None = None) -> dict[str, int]:
        """Records per criterion with ``start <= observed_at < end`` (and ``status``, if given)."""
        query = select(Filing.criterion, func.count()).group_by(Filing.criterion)
        if status is not None:
            query = query.where(Filing.status == status)
        if start is not None:
            query = query.where(Filing.observed_at >= start)
        if end is not None:
            query = query.where(Filing.observed_at < end)
        with self.engine.connect() as conn:
            return {c: int(n) for c, n in conn.execute(query)}

    def count_records(self) -> int:
        """Every stored record."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(Evidence)).scalar_one())

    def iter_records(
        self, start: str | None = None, end: str | None = None, batch: int = 5000
    ) -> Iterator[tuple[str, str, str, str]]:
        """(id, body, collected_at, run_id) ordered by (observed_at, id), streamed in batches."""
        last: tuple[str, str] | None = None
        while True:
            query = select(
                Evidence.id, Evidence.body, Evidence.collected_at, Evidence.run_id,
                Evidence.observed_at,
            ).order_by(Evidence.observed_at, Evidence.id).limit(batch)
            if start is not None:
                query = query.where(Evidence.observed_at >= start)
            if end is not None:
                query = query.where(Evidence.observed_at < end)
            if last is not None:
                query = query.where(
                    (Evidence.observed_at > last[0])
                    | ((Evidence.observed_at == last[0]) & (Evidence.id > last[1]))
                )
            with self.engine.connect() as conn:
                rows = conn.execute(query).all()
            for row in rows:
                yield row[0], row[1], row[2], row[3]
            if len(rows) < batch:
                return
            last = (rows[-1][4], rows[-1][0])

    def snapshots(self) -> list[Any]:
        """Every stored snapshot row (with the Snapshot columns), in sealing order."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(Snapshot.__table__).order_by(Snapshot.window_start, Snapshot.seq)
            ).all()
        return list(rows)
