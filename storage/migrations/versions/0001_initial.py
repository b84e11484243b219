"""Initial schema: evidence, filings, runs, cursors, snapshots, and append-only triggers."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.guards import install_append_only

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.String(27)


def upgrade() -> None:
    """Create the tables, their indexes and the triggers that refuse UPDATE and DELETE."""
    op.create_table(
        "evidence",
        # Key (observed_at, id): unique exactly when id is (observed_at is inside the hashed
        # body), and time-ordered, so inserts stay in cache; see storage/models.py.
        sa.Column("observed_at", TS, primary_key=True),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("stream", sa.String(100), nullable=False),
        sa.Column("source_key", sa.Text, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("collected_at", TS, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("actor", sa.Text),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_table(
        "filings",
        sa.Column("criterion", sa.String(16), primary_key=True),
        sa.Column("observed_at", TS, primary_key=True),
        sa.Column("record_id", sa.String(64), primary_key=True),
        sa.Column("stream", sa.String(100), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("stream", sa.String(100), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("ended_at", TS),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("items", sa.Integer, nullable=False, server_default="0"),
        sa.Column("records_new", sa.Integer, nullable=False, server_default="0"),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error_class", sa.String(100)),
        sa.Column("error", sa.Text),
        sa.Column("cursor_before", sa.Text),
        sa.Column("cursor_after", sa.Text),
    )
    op.create_index("ix_runs_stream_started", "runs", ["stream", "started_at"])
    op.create_table(
        "cursors",
        sa.Column("stream", sa.String(100), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("run_id", sa.String(36), nullable=False),
    )
    op.create_table(
        "snapshots",
        sa.Column("window_id", sa.String(16), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("file_name", sa.String(64), nullable=False),
        sa.Column("window_start", TS, nullable=False),
        sa.Column("window_end", TS, nullable=False),
        sa.Column("sealed_at", TS, nullable=False),
        sa.Column("record_count", sa.Integer, nullable=False),
        sa.Column("merkle_root", sa.String(64), nullable=False),
        sa.Column("sums_sha256", sa.String(64), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
        sa.Column("key_spki_sha256", sa.String(64), nullable=False),
        sa.Column("manifest", sa.Text, nullable=False),
    )
    install_append_only(op.get_bind(), ("evidence", "filings", "snapshots"))


def downgrade() -> None:
    """Evidence is append-only: there is no downgrade that drops it."""
    raise RuntimeError("the evidence store cannot be downgraded")
