"""Digest deliveries: a log of each Slack/e-mail attempt, so a failure is reported in the next digest."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``digest_deliveries`` (not evidence: no append-only triggers needed, but never updated)."""
    op.create_table(
        "digest_deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("week", sa.String(10), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("attempted_at", sa.String(27), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_digest_deliveries_week", "digest_deliveries", ["week", "channel"])


def downgrade() -> None:
    """Drop the delivery log (it holds no evidence)."""
    op.drop_table("digest_deliveries")
