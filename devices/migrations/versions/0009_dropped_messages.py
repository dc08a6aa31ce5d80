"""Per-device count of messages dropped by ingest's rate limit (device health shows it), and
the partial index that gives life-safety outbox rows first claim in the alerts worker.

Revision ID: 0009
Revises: 0011
Create Date: 2026-12-02
"""

from alembic import op

revision = "0009"
down_revision = "0011"


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE device_status
          ADD COLUMN dropped_messages bigint NOT NULL DEFAULT 0,
          ADD COLUMN dropped_at timestamptz
        """
    )
    op.execute(
        "CREATE INDEX stream_outbox_life_safety ON stream_outbox (id)"
        " WHERE kind = 'event' AND name IN ('sos', 'fall', 'smoke')"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS stream_outbox_life_safety")
    op.execute(
        "ALTER TABLE device_status DROP COLUMN IF EXISTS dropped_messages,"
        " DROP COLUMN IF EXISTS dropped_at"
    )
