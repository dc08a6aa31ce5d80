"""Sign-in failures per account, per client address and per pair, shared by every API process.

Revision ID: 0011
Revises: 0012
Create Date: 2026-12-02
"""

from devices.migrations.steps import plain

revision = "0011"
down_revision = "0012"

UPGRADE = """
CREATE TABLE login_failures (
    key             text PRIMARY KEY,
    failures        integer NOT NULL,
    last_failed_at  timestamptz NOT NULL
);
CREATE INDEX login_failures_age ON login_failures (last_failed_at);
"""
DOWNGRADE = "DROP TABLE login_failures"


upgrade, downgrade = plain(UPGRADE, DOWNGRADE)
