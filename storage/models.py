"""The store's tables: SQLAlchemy Core ``Table`` objects on one ``METADATA``, as the migrations build them."""

from __future__ import annotations

# Core tables, not ORM models: nothing here maps rows to objects, and declarative models imported
# sqlalchemy.orm into every command that opens a store (~0.08 s and ~6 MiB of a one-shot collect).
from sqlalchemy import (
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

__all__ = [
    "APPEND_ONLY_TABLES",
    "METADATA",
    "VERSION_TABLE",
    "CursorTable",
    "DeliveryTable",
    "EvidenceTable",
    "FilingTable",
    "RunTable",
    "SnapshotContentsTable",
    "SnapshotIdsTable",
    "SnapshotLibraryTable",
    "SnapshotTable",
]

APPEND_ONLY_TABLES = ("evidence", "filings", "snapshots", "snapshot_contents", "snapshot_record_ids",
                      "snapshot_libraries")
"""Every table whose rows the database itself refuses to update or delete (storage/guards.py)."""

TS = String(27)  # RFC 3339 UTC, fixed width (2026-11-28T07:16:25.123456Z): text order is time order

METADATA = MetaData()
"""Every table of the store as the newest migration leaves it (a test compares the two schemas)."""

# One evidence record (a row is a ``storage.rows.EvidenceRecord``); ``body`` is the canonical JSON
# whose SHA-256 is ``id``.
#
# The key is (observed_at, id). Since ``observed_at`` is part of the hashed body, the same id
# always comes with the same observed_at, so this key is unique exactly when ``id`` is; and
# unlike a key on a random hash alone it grows in time order, which keeps bulk inserts inside
# the page cache (3.4x faster at 1M records) and serves the window scans directly.
EvidenceTable = Table(
    "evidence",
    METADATA,
    Column("observed_at", TS, primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("stream", String(100), nullable=False),
    Column("source_key", Text, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("collected_at", TS, nullable=False),
    Column("status", String(16), nullable=False),
    Column("actor", Text),
    Column("run_id", String(36), nullable=False),
    Column("body", Text, nullable=False),
    # Records per stream in a week: a covering range scan per stream (migration 0002).
    Index("ix_evidence_stream_observed", "stream", "observed_at"),
    # A control's records by (stream, kind), counted without reading them (migration 0004).
    Index("ix_evidence_stream_kind", "stream", "kind", "observed_at", "status"),
)

# A record filed under one criterion; keyed for per-criterion, per-window aggregation.
FilingTable = Table(
    "filings",
    METADATA,
    Column("criterion", String(16), primary_key=True),
    Column("observed_at", TS, primary_key=True),
    Column("record_id", String(64), primary_key=True),
    Column("stream", String(100), nullable=False),
    Column("status", String(16), nullable=False),
    sqlite_with_rowid=False,
)

# One collection run of one stream.
RunTable = Table(
    "runs",
    METADATA,
    Column("id", String(36), primary_key=True),
    Column("stream", String(100), nullable=False),
    Column("started_at", TS, nullable=False),
    Column("ended_at", TS),
    Column("status", String(16), nullable=False),
    Column("items", Integer, nullable=False, default=0, server_default="0"),
    Column("records_new", Integer, nullable=False, default=0, server_default="0"),
    Column("failures", Integer, nullable=False, default=0, server_default="0"),
    Column("error_class", String(100)),
    Column("error", Text),
    Column("cursor_before", Text),
    Column("cursor_after", Text),
    Index("ix_runs_stream_started", "stream", "started_at"),
)

# The last committed position of a stream (JSON text); advanced with the records it covers.
CursorTable = Table(
    "cursors",
    METADATA,
    Column("stream", String(100), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("run_id", String(36), nullable=False),
)

# A sealed window snapshot (``seq`` 0) or an amendment to it (``seq`` 1, 2, ...).
SnapshotTable = Table(
    "snapshots",
    METADATA,
    Column("window_id", String(16), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("file_name", String(64), nullable=False),
    Column("window_start", TS, nullable=False),
    Column("window_end", TS, nullable=False),
    Column("sealed_at", TS, nullable=False),
    Column("record_count", Integer, nullable=False),
    Column("merkle_root", String(64), nullable=False),
    Column("sums_sha256", String(64), nullable=False),
    Column("signature", String(128), nullable=False),
    Column("key_spki_sha256", String(64), nullable=False),
    Column("manifest", Text, nullable=False),
)

# A snapshot's public key (PEM) and RFC 3161 timestamp token (migration 0003).
SnapshotContentsTable = Table(
    "snapshot_contents",
    METADATA,
    Column("window_id", String(16), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("public_key", Text, nullable=False),
    Column("timestamp_token", LargeBinary, nullable=True),
)

# The record ids a snapshot sealed, 32 bytes each in file order, in parts of at most 1 MiB
# (migration 0003).
SnapshotIdsTable = Table(
    "snapshot_record_ids",
    METADATA,
    Column("window_id", String(16), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("part", Integer, primary_key=True),
    Column("ids", LargeBinary, nullable=False),
)

# The control library (controls.json bytes) a schema-v2 snapshot was sealed with, so re-sealing
# reproduces it however the library changed since (migration 0005).
SnapshotLibraryTable = Table(
    "snapshot_libraries",
    METADATA,
    Column("window_id", String(16), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("library", LargeBinary, nullable=False),
)

# One row per digest delivery attempt (status ``ok`` or ``failed``); not evidence (migration 0002).
DeliveryTable = Table(
    "digest_deliveries",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("week", String(10), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("attempted_at", String(27), nullable=False),
    Column("status", String(8), nullable=False),
    Column("error", Text),
    Index("ix_digest_deliveries_week", "week", "channel"),
)

VERSION_TABLE = Table(
    "alembic_version",
    MetaData(),
    Column("version_num", String(32), nullable=False),
    PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)
"""Alembic's version table, as Alembic creates it: a new store built from ``METADATA`` is stamped
here with the head revision, so later migrations apply to it as to a migrated store. Kept off
``METADATA``: it is Alembic's table, not part of the schema the migrations describe."""
