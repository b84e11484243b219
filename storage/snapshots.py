"""Queries for sealed snapshots: their rows in sealing order, their contents, and inserting both."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    func,
    insert,
    select,
)

from storage.models import (
    EvidenceTable,
    SnapshotContentsTable,
    SnapshotIdsTable,
    SnapshotLibraryTable,
    SnapshotTable,
)
from storage.rows import EvidenceRecord
from storage.store import Store

__all__ = ["SnapshotContents", "SnapshotRow", "earliest_observed", "insert_snapshot",
           "snapshot_contents", "snapshot_ids", "snapshot_library", "snapshot_rows",
           "stream_latest", "stream_window"]

_STREAM_CACHE_KIB = -4096  # negative: KiB, as SQLite reads it
# The tables are defined once, with the rest of the schema, in storage/models.py.
contents_table = SnapshotContentsTable
ids_table = SnapshotIdsTable
libraries_table = SnapshotLibraryTable
_PART = 1 << 20


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
    """A snapshot's public key (PEM) and RFC 3161 token, as sealed, and (schema v2) the
    ``controls.json`` it was sealed with."""

    public_key: str
    timestamp_token: bytes | None
    library: bytes | None = None


def snapshot_rows(store: Store) -> list[SnapshotRow]:
    """Every snapshot in sealing order (``sealed_at`` strictly increases along the chain)."""
    table = SnapshotTable
    query = select(table).order_by(table.c.sealed_at, table.c.window_id, table.c.seq)
    with store.engine.connect() as conn:
        return [SnapshotRow(**row._mapping) for row in conn.execute(query)]


def snapshot_contents(store: Store, window_id: str, seq: int) -> SnapshotContents:
    """The contents of a snapshot (its library None when it was sealed in schema v1);
    LookupError if the store lacks them."""
    c = contents_table.c
    query = select(c.public_key, c.timestamp_token).where(c.window_id == window_id, c.seq == seq)
    with store.engine.connect() as conn:
        row = conn.execute(query).first()
    if row is None:
        raise LookupError(f"snapshot {window_id} #{seq} has no stored contents")
    return SnapshotContents(row[0], None if row[1] is None else bytes(row[1]),
                            snapshot_library(store, window_id, seq))


def snapshot_library(store: Store, window_id: str, seq: int) -> bytes | None:
    """The ``controls.json`` a snapshot was sealed with, or None (sealed in schema v1)."""
    c = libraries_table.c
    query = select(c.library).where(c.window_id == window_id, c.seq == seq)
    with store.engine.connect() as conn:
        value = conn.execute(query).scalar()
    return None if value is None else bytes(value)


def snapshot_ids(store: Store, window_id: str, seq: int) -> bytes:
    """The record ids a snapshot sealed: 32 bytes each, in its file order."""
    c = ids_table.c
    query = select(c.ids).where(c.window_id == window_id, c.seq == seq).order_by(c.part)
    with store.engine.connect() as conn:
        return b"".join(bytes(part) for (part,) in conn.execute(query))


def insert_snapshot(store: Store, row: SnapshotRow, contents: SnapshotContents, ids: Path) -> None:
    """Store a snapshot, its contents and the ids in file ``ids``, in one transaction."""
    with store.engine.begin() as conn, _small_cache(conn), ids.open("rb") as src:
        conn.execute(insert(SnapshotTable).values(**{f: getattr(row, f) for f in row.__slots__}))
        conn.execute(insert(contents_table).values(
            window_id=row.window_id, seq=row.seq, public_key=contents.public_key,
            timestamp_token=contents.timestamp_token,
        ))
        if contents.library is not None:
            conn.execute(insert(libraries_table).values(
                window_id=row.window_id, seq=row.seq, library=contents.library))
        part = 0
        while chunk := src.read(_PART):
            conn.execute(insert(ids_table).values(window_id=row.window_id, seq=row.seq,
                                                  part=part, ids=chunk))
            part += 1


@contextmanager
def _small_cache(conn: Connection) -> Iterator[None]:
    """On SQLite, a small page cache while one connection streams many pages, then restore it.

    A single sequential pass gains nothing from the big cache the store sets for inserts, and
    would otherwise keep up to its whole size resident.
    """
    if conn.dialect.name != "sqlite":
        yield
        return
    restore = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    conn.exec_driver_sql(f"PRAGMA cache_size={_STREAM_CACHE_KIB}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size={int(restore or -2000)}")


def stream_window(store: Store, start: str, end: str, batch: int = 20000
                  ) -> Iterator[EvidenceRecord]:
    """Records with ``start <= observed_at < end`` in (observed_at, id) order, from one query in
    one read transaction, streamed ``batch`` rows at a time.

    Read through the driver's own cursor (server-side on PostgreSQL): SQLAlchemy's per-column
    row handling made reading a window's ten columns 1.5x as slow (bench/seal.py).
    """
    mark = "?" if store.dialect == "sqlite" else "%s"
    sql = (f"SELECT {', '.join(EvidenceRecord._fields)} FROM evidence WHERE observed_at >= {mark} "
           f"AND observed_at < {mark} ORDER BY observed_at, id")
    new = tuple.__new__
    with store.engine.connect() as conn, _small_cache(conn):
        driver: Any = conn.connection.dbapi_connection
        if store.dialect == "sqlite":
            cursor = driver.cursor()  # steps through the result as it is iterated
        else:
            cursor = driver.cursor(name="stream_window")
            cursor.itersize = batch
        try:
            cursor.execute(sql, (start, end))
            for row in cursor:
                yield new(EvidenceRecord, row)
        finally:
            cursor.close()


def stream_latest(store: Store, streams: Collection[str], end: str) -> Iterator[EvidenceRecord]:
    """For each (stream, source_key) of ``streams``, its newest record with ``observed_at < end``
    (ties broken by the larger id), in (observed_at, id) order, streamed like ``stream_window``."""
    if not streams:
        return
    mark = "?" if store.dialect == "sqlite" else "%s"
    names = sorted(streams)
    fields = ", ".join(EvidenceRecord._fields)
    sql = (f"SELECT {fields} FROM (SELECT {fields}, ROW_NUMBER() OVER (PARTITION BY stream, "
           f"source_key ORDER BY observed_at DESC, id DESC) AS newest FROM evidence WHERE stream IN "
           f"({', '.join([mark] * len(names))}) AND observed_at < {mark}) AS reads "
           "WHERE newest = 1 ORDER BY observed_at, id")
    new = tuple.__new__
    with store.engine.connect() as conn, _small_cache(conn):
        driver: Any = conn.connection.dbapi_connection
        cursor = driver.cursor() if store.dialect == "sqlite" else driver.cursor(name="stream_latest")
        try:
            cursor.execute(sql, (*names, end))
            for row in cursor:
                yield new(EvidenceRecord, row)
        finally:
            cursor.close()


def earliest_observed(store: Store) -> str | None:
    """The smallest ``observed_at`` of any stored record, or None for an empty store."""
    with store.engine.connect() as conn:
        value = conn.execute(select(func.min(EvidenceTable.c.observed_at))).scalar()
    return None if value is None else str(value)
