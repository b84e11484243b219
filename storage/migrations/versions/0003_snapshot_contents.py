"""Snapshot contents: the record ids a snapshot sealed, its public key and timestamp token."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.guards import install_append_only

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``snapshot_contents`` (append-only), one row per ``snapshots`` row."""
    op.create_table(
        "snapshot_contents",
        sa.Column("window_id", sa.String(16), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("record_ids", sa.LargeBinary, nullable=False),
        sa.Column("public_key", sa.Text, nullable=False),
        sa.Column("timestamp_token", sa.LargeBinary, nullable=True),
    )
    install_append_only(op.get_bind(), ("snapshot_contents",))


def downgrade() -> None:
    """Sealed snapshots are append-only evidence: there is no downgrade."""
    raise RuntimeError("the evidence store cannot be downgraded")
