"""Live-stream tickets in the database, so any API process redeems a ticket another issued
(two API processes serve the same users). Only hashes are kept: the ticket's and the
bearer token's.

Revision ID: 0021
Revises: 0015
Create Date: 2026-12-03
"""

from alembic import op

revision = "0021"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE live_tickets (
            ticket_hash  bytea PRIMARY KEY,
            token_hash   bytea NOT NULL,
            expires_at   timestamptz NOT NULL
        );
        CREATE INDEX live_tickets_expiry ON live_tickets (expires_at);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE live_tickets")
