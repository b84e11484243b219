"""Queries for sealed snapshots: their rows in sealing order, their contents, and inserting both."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import Column, Integer, LargeBinary, MetaData, String, Table, Text, func, insert, select

from storage.models import Evidence, Snapshot
from storage.store import Store

__all__ = ["SnapshotContents", "SnapshotRow", "earliest_observed", "insert_snapshot",
           "snapshot_contents", "snapshot_rows", "stream_window"]

_meta = MetaData()
contents_table = Table(
    "snapshot_contents", _meta,
    Column("window_id", String(16), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("record_ids", LargeBinary, nullable=False),
    Column("public_key", Text, nullable=False),
    Column("timestamp_token", LargeBinary, nullable=True),
)


@dataclass(frozen=True, slots=True)
class SnapshotRow:
    """One sealed snapshot (``seq`` 0) or amendment (``seq`` >= 1) as stored."""

    window_id: str
    seq: int
    file_name: str
    window_start: str
    window_end: str
    sealed_at: str
    record_count: int
    merkle_root: str
    sums_sha256: str
    signature: str
    key_spki_sha256: str
    manifest: str


@dataclass(frozen=True, slots=True)
class SnapshotContents:
    """What a snapshot sealed: record ids (32 bytes each, in file order), key and token."""

    record_ids: bytes | bytearray
    public_key: str
    timestamp_token: bytes | None


def snapshot_rows(store: Store) -> list[SnapshotRow]:
    """Every snapshot in sealing order (``sealed_at`` strictly increases along the chain)."""
    query = select(Snapshot.__table__).order_by(Snapshot.sealed_at, Snapshot.window_id, Snapshot.seq)
    with store.engine.connect() as conn:
        return [SnapshotRow(**row._mapping) for row in conn.execute(query)]


def snapshot_contents(store: Store, window_id: str, seq: int) -> SnapshotContents:
    """The contents row of a snapshot; LookupError if the store lacks it."""
    query = select(contents_table.c.record_ids, contents_table.c.public_key,
                   contents_table.c.timestamp_token).where(
        contents_table.c.window_id == window_id, contents_table.c.seq == seq)
    with store.engine.connect() as conn:
        row = conn.execute(query).first()
    if row is None:
        raise LookupError(f"snapshot {window_id} #{seq} has no stored contents")
    return SnapshotContents(bytes(row[0]), row[1], None if row[2] is None else bytes(row[2]))


def insert_snapshot(store: Store, row: SnapshotRow, contents: SnapshotContents) -> None:
    """Store a snapshot and its contents in one transaction (a repeated key fails)."""
    with store.engine.begin() as conn:
        conn.execute(insert(Snapshot).values(**{f: getattr(row, f) for f in row.__slots__}))
        conn.execute(insert(contents_table).values(
            window_id=row.window_id, seq=row.seq, record_ids=contents.record_ids,
            public_key=contents.public_key, timestamp_token=contents.timestamp_token,
        ))


def stream_window(store: Store, start: str, end: str, batch: int = 20000
                  ) -> Iterator[tuple[str, str, str, str]]:
    """(id, body, collected_at, run_id) with ``start <= observed_at < end`` in (observed_at, id)
    order, from one query in one read transaction, streamed ``batch`` rows at a time."""
    query = (select(Evidence.id, Evidence.body, Evidence.collected_at, Evidence.run_id)
             .where(Evidence.observed_at >= start, Evidence.observed_at < end)
             .order_by(Evidence.observed_at, Evidence.id))
    with store.engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=batch).execute(query)
        for row in result:
            yield row[0], row[1], row[2], row[3]


def earliest_observed(store: Store) -> str | None:
    """The smallest ``observed_at`` of any stored record, or None for an empty store."""
    with store.engine.connect() as conn:
        value = conn.execute(select(func.min(Evidence.observed_at))).scalar()
    return None if value is None else str(value)
