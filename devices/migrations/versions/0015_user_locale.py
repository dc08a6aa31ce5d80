"""Each user's own language (issue 14): NULL follows the site's (ELDERCARE_SITE_LOCALE).

Revision ID: 0015
Revises: 0018
Create Date: 2026-12-03
"""

from devices.migrations.steps import plain

revision = "0015"
down_revision = "0018"

UPGRADE = "ALTER TABLE users ADD COLUMN locale text CHECK (locale IN ('zh-CN', 'en'))"
DOWNGRADE = "ALTER TABLE users DROP COLUMN locale"


upgrade, downgrade = plain(UPGRADE, DOWNGRADE)
