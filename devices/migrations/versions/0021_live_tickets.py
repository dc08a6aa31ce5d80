"""Live-stream tickets in the database, so any API process redeems a ticket another issued
(two API processes serve the same users). Only hashes are kept: the ticket's and the
bearer token's.

Revision ID: 0021
Revises: 0015
Create Date: 2026-12-03
"""

from devices.migrations.steps import plain

revision = "0021"
down_revision = "0015"

UPGRADE = """
CREATE TABLE live_tickets (
    ticket_hash  bytea PRIMARY KEY,
    token_hash   bytea NOT NULL,
    expires_at   timestamptz NOT NULL
);
CREATE INDEX live_tickets_expiry ON live_tickets (expires_at);
"""
DOWNGRADE = "DROP TABLE live_tickets"


upgrade, downgrade = plain(UPGRADE, DOWNGRADE)
