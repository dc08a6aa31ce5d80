"""The simulated detector clock a conformance run may set (one row, or none for wall time).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from devices.migrations.steps import plain

revision = "0006"
down_revision = "0005"

UPGRADE = """
CREATE TABLE simulated_clock (
    only_row     boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    sim_origin   timestamptz NOT NULL,
    wall_origin  timestamptz NOT NULL,
    speed        double precision NOT NULL CHECK (speed >= 1 AND speed <= 10000),
    set_by       text NOT NULL,
    set_at       timestamptz NOT NULL
);
"""
DOWNGRADE = "DROP TABLE IF EXISTS simulated_clock"


upgrade, downgrade = plain(UPGRADE, DOWNGRADE)
