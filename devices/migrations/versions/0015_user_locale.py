"""Each user's own language (issue 14): NULL follows the site's (ELDERCARE_SITE_LOCALE).

Revision ID: 0015
Revises: 0018
Create Date: 2026-12-03
"""

from alembic import op

revision = "0015"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE users ADD COLUMN locale text CHECK (locale IN ('zh-CN', 'en'))")


def downgrade() -> None:
    op.execute("ALTER TABLE users DROP COLUMN locale")
