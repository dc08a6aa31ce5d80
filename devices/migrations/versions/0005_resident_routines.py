"""Cached per-resident routines for the inactivity detector (refitted periodically).

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-23
"""

from devices.migrations.steps import plain

revision = "0005"
down_revision = "0003"

UPGRADE = """
CREATE TABLE resident_routines (
    resident_id   bigint PRIMARY KEY REFERENCES residents ON DELETE CASCADE,
    fitted_at     timestamptz NOT NULL,
    history_from  timestamptz NOT NULL,
    history_to    timestamptz NOT NULL,
    events        integer NOT NULL,
    learned       boolean NOT NULL,
    routine       jsonb NOT NULL
);
"""
DOWNGRADE = "DROP TABLE IF EXISTS resident_routines"


upgrade, downgrade = plain(UPGRADE, DOWNGRADE)
