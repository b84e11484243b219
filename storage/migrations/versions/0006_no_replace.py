"""SQLite REPLACE/UPSERT guards: INSERT OR REPLACE can no longer rewrite an append-only row."""

from __future__ import annotations

from alembic import op

from storage.guards import install_no_replace

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TABLES = ("evidence", "filings", "snapshots", "snapshot_contents", "snapshot_record_ids",
           "snapshot_libraries")


def upgrade() -> None:
    """Install the BEFORE INSERT triggers that refuse a REPLACE on every append-only table (SQLite)."""
    install_no_replace(op.get_bind(), _TABLES)


def downgrade() -> None:
    """The evidence store cannot be downgraded."""
    raise RuntimeError("the evidence store cannot be downgraded")
