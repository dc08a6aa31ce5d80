"""Fall checks ("did you fall?"): a deferred check that also knows its resident, device and the
alert it raises unless the wearer cancels it (issue 13 item 4).

Revision ID: 0020
Revises: 0013
Create Date: 2026-12-03
"""

from devices.migrations.steps import plain

revision = "0020"
down_revision = "0013"

UPGRADE = """
-- A fall check is a detector_checks row (detector 'fall_check'): due_at is when an unanswered
-- check pages; verdict is the alert it raises (JSON of alerts.detection.detectors.base.Verdict);
-- resident_id and device_key count checks per resident-day and find the device's open check.
ALTER TABLE detector_checks
    ADD COLUMN resident_id bigint,
    ADD COLUMN device_key integer,
    ADD COLUMN verdict jsonb;
-- The check loop looks at every open fall check each second (an answer, an SOS, lying still).
CREATE INDEX detector_checks_fall_open ON detector_checks (due_at)
    WHERE done_at IS NULL AND detector = 'fall_check';
CREATE INDEX detector_checks_fall_resident ON detector_checks (resident_id, created_at)
    WHERE detector = 'fall_check';
"""

DOWNGRADE = """
DROP INDEX IF EXISTS detector_checks_fall_resident;
DROP INDEX IF EXISTS detector_checks_fall_open;
ALTER TABLE detector_checks DROP COLUMN IF EXISTS verdict, DROP COLUMN IF EXISTS device_key,
    DROP COLUMN IF EXISTS resident_id;
"""


upgrade, downgrade = plain(UPGRADE, DOWNGRADE)
