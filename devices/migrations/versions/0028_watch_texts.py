"""The watchdog reads the check-in texts' queue (``resident_messages``): every API process
runs a watchdog too, so its role may see how long the oldest pending text has waited (a
technical alert when a check-in text is late; issue 18's dead-man's switch for this queue).

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-03
"""

from alembic import op

from devices.migrations.steps import grant

revision = "0028"
down_revision = "0027"

# What each process's database role may do on the tables (tests/test_db_roles.py).
GRANTS: dict[str, dict[str, str]] = {"eldercare_api": {"resident_messages": "SELECT"}}


def upgrade() -> None:
    grant(GRANTS)


def downgrade() -> None:
    op.execute(
        "DO $$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'eldercare_api') THEN "
        "REVOKE SELECT ON resident_messages FROM eldercare_api; END IF; END $$"
    )
