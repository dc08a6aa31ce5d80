"""Inactivity check-ins ("press if you are fine", issue 17 item 3): a detector_checks row of
detector 'check_in', with the resident, the device asked and the alert raised if unanswered
(the columns fall checks added in 0020).

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-03
"""

from devices.migrations.steps import plain

revision = "0024"
down_revision = "0023"

UPGRADE = """
-- The check loop looks at every open check-in each second (an answer, any sign of life).
CREATE INDEX detector_checks_check_in_open ON detector_checks (due_at)
    WHERE done_at IS NULL AND detector = 'check_in';
-- The per-resident budget (about one check-in every two days) counts a resident's recent ones.
CREATE INDEX detector_checks_check_in_resident ON detector_checks (resident_id, created_at)
    WHERE detector = 'check_in';
"""

DOWNGRADE = """
DROP INDEX IF EXISTS detector_checks_check_in_resident;
DROP INDEX IF EXISTS detector_checks_check_in_open;
"""


upgrade, downgrade = plain(UPGRADE, DOWNGRADE)
