"""Where a wearable sits on the body (wrist, waist/belt, neck/pendant, chest, unknown).

Revision ID: 0012
Revises: 0006
Create Date: 2026-12-02
"""

from devices.migrations.steps import plain

revision = "0012"
down_revision = "0006"

# The fall detector picks its model by placement; devices registered before this know none.
UPGRADE = (
    "ALTER TABLE devices ADD COLUMN placement text NOT NULL DEFAULT 'unknown' "
    "CHECK (placement IN ('wrist', 'waist', 'neck', 'chest', 'unknown'))"
)
DOWNGRADE = "ALTER TABLE devices DROP COLUMN placement"


upgrade, downgrade = plain(UPGRADE, DOWNGRADE)
