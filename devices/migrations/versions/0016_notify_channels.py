"""Notification channels for China (issue 14 item 6): outbox rows for a care station's
WeChat Work group (a site instead of a family member), and when a family member read a
notification (a red one is followed by a voice call when it is not read in time).

Revision ID: 0016
Revises: 0020
Create Date: 2026-12-03
"""

from devices.migrations.steps import plain

revision = "0016"
down_revision = "0020"

UPGRADE = """
ALTER TABLE notification_outbox
    ALTER COLUMN user_id DROP NOT NULL,
    ADD COLUMN site_id text REFERENCES sites ON DELETE CASCADE,
    ADD COLUMN read_at timestamptz,
    ADD CONSTRAINT notification_outbox_one_recipient CHECK ((user_id IS NULL) <> (site_id IS NULL));
CREATE INDEX notification_outbox_site ON notification_outbox (site_id, created_at DESC)
    WHERE site_id IS NOT NULL;
"""

DOWNGRADE = """
DELETE FROM notification_outbox WHERE user_id IS NULL;
DROP INDEX IF EXISTS notification_outbox_site;
ALTER TABLE notification_outbox
    DROP CONSTRAINT IF EXISTS notification_outbox_one_recipient,
    DROP COLUMN IF EXISTS read_at,
    DROP COLUMN IF EXISTS site_id,
    ALTER COLUMN user_id SET NOT NULL;
"""


upgrade, downgrade = plain(UPGRADE, DOWNGRADE)
