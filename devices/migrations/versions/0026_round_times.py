"""Safety rounds recorded with the time they were walked (issue 15): ``done_at`` is when the
round was walked (given by the inspector, at most 35 days back), ``recorded_at`` when the API
stored it (``inspector_id`` is who entered it); likewise a finding's ``closed_at`` may be
given, and ``close_recorded_at`` is when the closure was entered. Findings keep the parameters of their
catalogue message (``safety.finding.<kind>``), so the API renders a device finding in the
reader's language instead of storing one bilingual string.

Revision ID: 0026
Revises: 0022
Create Date: 2026-12-03
"""

from devices.migrations.steps import plain

revision = "0026"
down_revision = "0022"

UPGRADE = """
ALTER TABLE safety_rounds ADD COLUMN recorded_at timestamptz;
UPDATE safety_rounds SET recorded_at = done_at;
ALTER TABLE safety_rounds ALTER COLUMN recorded_at SET NOT NULL;
ALTER TABLE safety_rounds ADD CONSTRAINT safety_rounds_walked_before_recorded
    CHECK (done_at <= recorded_at);

-- a finding closed with a past time: when the closure was entered (closed_by is who)
ALTER TABLE safety_findings ADD COLUMN close_recorded_at timestamptz;
UPDATE safety_findings SET close_recorded_at = closed_at;

-- device findings: {"device": ..., "battery": ...}; round findings: {}
ALTER TABLE safety_findings ADD COLUMN params jsonb NOT NULL DEFAULT '{}';
"""

DOWNGRADE = """
ALTER TABLE safety_findings DROP COLUMN params, DROP COLUMN close_recorded_at;
ALTER TABLE safety_rounds DROP CONSTRAINT safety_rounds_walked_before_recorded;
ALTER TABLE safety_rounds DROP COLUMN recorded_at;
"""


upgrade, downgrade = plain(UPGRADE, DOWNGRADE)
