"""Live-stream tickets in the database, so any API process redeems a ticket another issued
(two API processes serve the same users). Only hashes are kept: the ticket's and the
bearer token's.

Revision ID: 0021
Revises: 0015
Create Date: 2026-12-03
"""

from devices.migrations.steps import indexed_table

revision = "0021"
down_revision = "0015"

upgrade, downgrade = indexed_table(
    "live_tickets",
    {
        "ticket_hash": "bytea PRIMARY KEY",
        "token_hash": "bytea NOT NULL",
        "expires_at": "timestamptz NOT NULL",
    },
    index="live_tickets_expiry",
    on="expires_at",
)
