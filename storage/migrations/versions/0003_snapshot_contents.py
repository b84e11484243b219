"""Snapshot contents: the public key and timestamp token of each snapshot, and the record ids it sealed."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.guards import install_append_only

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``snapshot_contents`` and ``snapshot_record_ids`` (both append-only)."""
    op.create_table(
        "snapshot_contents",
        sa.Column("window_id", sa.String(16), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("public_key", sa.Text, nullable=False),
        sa.Column("timestamp_token", sa.LargeBinary, nullable=True),
    )
    # The sealed record ids, 32 bytes each in file order, in parts of at most 1 MiB so neither
    # writing nor reading a million-record window needs the whole list in one value.
    op.create_table(
        "snapshot_record_ids",
        sa.Column("window_id", sa.String(16), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("part", sa.Integer, primary_key=True),
        sa.Column("ids", sa.LargeBinary, nullable=False),
    )
    install_append_only(op.get_bind(), ("snapshot_contents", "snapshot_record_ids"))


def downgrade() -> None:
    """Sealed snapshots are append-only evidence: there is no downgrade."""
    raise RuntimeError("the evidence store cannot be downgraded")
