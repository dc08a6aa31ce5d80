"""Where a wearable sits on the body (wrist, waist/belt, neck/pendant, chest, unknown).

Revision ID: 0012
Revises: 0006
Create Date: 2026-12-02
"""

from alembic import op

revision = "0012"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The fall detector picks its model by placement; devices registered before this know none.
    op.execute(
        "ALTER TABLE devices ADD COLUMN placement text NOT NULL DEFAULT 'unknown' "
        "CHECK (placement IN ('wrist', 'waist', 'neck', 'chest', 'unknown'))"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE devices DROP COLUMN placement")
