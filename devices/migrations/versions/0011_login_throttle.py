"""Sign-in failures per account, per client address and per pair, shared by every API process.

Revision ID: 0011
Revises: 0012
Create Date: 2026-12-02
"""

from devices.migrations.steps import indexed_table

revision = "0011"
down_revision = "0012"

upgrade, downgrade = indexed_table(
    "login_failures",
    {
        "key": "text PRIMARY KEY",
        "failures": "integer NOT NULL",
        "last_failed_at": "timestamptz NOT NULL",
    },
    index="login_failures_age",
    on="last_failed_at",
)
