"""The 96345 centre's operators (issue 14 item 4): a role of their own, and a phone number
per resident so an operator finds the caller by name or phone.

Revision ID: 0022
Revises: 0024
Create Date: 2026-12-03
"""

from alembic import op

revision = "0022"
down_revision = "0024"
branch_labels = None
depends_on = None

UPGRADE = """
-- operator: sees every site's orders, enters service orders, looks residents up by name or
-- phone (id, name, site, address, phone only), reads the time-to-help figures
ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check CHECK (role IN
    ('admin', 'staff', 'family', 'responder', 'visitor', 'safety_officer', 'report_reader',
     'operator'));

-- the number a resident calls the hotline from (as written; searched by its digits)
ALTER TABLE residents ADD COLUMN phone text NOT NULL DEFAULT ''
    CHECK (length(phone) <= 32 AND phone !~ '[[:cntrl:]]');
"""

DOWNGRADE = """
ALTER TABLE residents DROP COLUMN phone;
DELETE FROM users WHERE role = 'operator';
ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check CHECK (role IN
    ('admin', 'staff', 'family', 'responder', 'visitor', 'safety_officer', 'report_reader'));
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
