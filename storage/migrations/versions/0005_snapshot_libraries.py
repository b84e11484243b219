"""Snapshot libraries: the control library (controls.json) each schema-v2 snapshot was sealed with."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.guards import install_append_only

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``snapshot_libraries`` (append-only)."""
    # Re-sealing a window must reproduce its tar byte for byte, controls.json included, however
    # the organisation's library has changed since: the sealed library is kept with the snapshot.
    op.create_table(
        "snapshot_libraries",
        sa.Column("window_id", sa.String(16), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("library", sa.LargeBinary, nullable=False),
    )
    install_append_only(op.get_bind(), ("snapshot_libraries",))


def downgrade() -> None:
    """Sealed snapshots are append-only evidence: there is no downgrade."""
    raise RuntimeError("the evidence store cannot be downgraded")
