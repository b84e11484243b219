"""The organisation's controls: an evidence index on (stream, kind, observed_at, status), so the digest
reads each control's records per (stream, kind) without reading the records themselves."""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``ix_evidence_stream_kind``."""
    # A control's evidence is chosen by stream and kind at digest time. Without this index the
    # digest grouped every record of the window by (stream, kind): a read of each row and a sort of
    # a million of them (1.3 s over a 1M-record window); with it, one covering range count per
    # (stream, kind) and period (0.2 s), and the newest record of a pair at any age is one probe.
    op.create_index("ix_evidence_stream_kind", "evidence", ["stream", "kind", "observed_at", "status"])


def downgrade() -> None:
    """Drop the index (it holds no evidence)."""
    op.drop_index("ix_evidence_stream_kind", table_name="evidence")
