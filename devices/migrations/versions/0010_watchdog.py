"""The dead-man's switch and the quarantine: each worker's heartbeat and loop health, the
items a loop could not process (kept with their error, visible to admins), and technical
alerts (a worker gone, a queue lagging, a device flooding) raised by any watcher.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from devices.migrations.steps import plain

revision = "0010"
down_revision = "0009"

UPGRADE = """
CREATE TABLE worker_heartbeats (
    worker_id   text PRIMARY KEY,
    process     text NOT NULL,
    hostname    text NOT NULL,
    pid         integer NOT NULL,
    started_at  timestamptz NOT NULL,
    beat_at     timestamptz NOT NULL,
    stopped_at  timestamptz,
    loops       jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX worker_heartbeats_process ON worker_heartbeats (process, beat_at DESC);

CREATE TABLE quarantine (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue           text NOT NULL,
    item_key        text NOT NULL,
    payload         jsonb NOT NULL,
    error           text NOT NULL,
    process         text NOT NULL,
    attempts        integer NOT NULL DEFAULT 1,
    quarantined_at  timestamptz NOT NULL,
    last_error_at   timestamptz NOT NULL,
    resolved_at     timestamptz,
    resolved_by     text
);
CREATE UNIQUE INDEX quarantine_open_item ON quarantine (queue, item_key)
    WHERE resolved_at IS NULL;

CREATE TABLE technical_alerts (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key           text NOT NULL,
    kind          text NOT NULL,
    colour        text NOT NULL CHECK (colour IN ('red', 'yellow')),
    subject       text NOT NULL,
    details       jsonb NOT NULL DEFAULT '{}'::jsonb,
    raised_at     timestamptz NOT NULL,
    raised_by     text NOT NULL,
    last_seen_at  timestamptz NOT NULL,
    cleared_at    timestamptz,
    notified_at   timestamptz,
    notify_receipt text,
    notify_attempts integer NOT NULL DEFAULT 0,
    clear_notified_at timestamptz
);
CREATE UNIQUE INDEX technical_alerts_open_key ON technical_alerts (key)
    WHERE cleared_at IS NULL;
"""
DOWNGRADE = "DROP TABLE technical_alerts, quarantine, worker_heartbeats"


upgrade, downgrade = plain(UPGRADE, DOWNGRADE)
