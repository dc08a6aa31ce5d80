"""Deferred detector checks (timers in the database) and detector state for hysteresis.

Revision ID: 0008
Revises: 0001
Create Date: 2026-11-23
"""

from devices.migrations.steps import plain

revision = "0008"
down_revision = "0001"

UPGRADE = """
-- A detector asked to look again at an event later (a low-confidence fall, a device that went
-- offline, a bed exit at night). Due checks are claimed with FOR UPDATE SKIP LOCKED, so two
-- workers never run one twice, and a crash before commit leaves it due.
CREATE TABLE detector_checks (
    check_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    idem_key    text NOT NULL UNIQUE,
    detector    text NOT NULL,
    due_at      timestamptz NOT NULL,
    event       jsonb NOT NULL,
    created_at  timestamptz NOT NULL,
    done_at     timestamptz,
    outcome     text
);
CREATE INDEX detector_checks_due ON detector_checks (due_at) WHERE done_at IS NULL;

-- What a stateful detector remembers between evaluations (e.g. a vital sign out of range
-- since when, so an alert opens once and clears only with a margin: hysteresis).
CREATE TABLE detector_state (
    detector    text NOT NULL,
    subject     text NOT NULL,
    state       jsonb NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (detector, subject)
);
"""

DOWNGRADE = """
DROP TABLE IF EXISTS detector_state;
DROP TABLE IF EXISTS detector_checks;
"""


upgrade, downgrade = plain(UPGRADE, DOWNGRADE)
