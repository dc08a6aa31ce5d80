"""The 96345 centre's operators (issue 14 item 4): a role of their own, and a phone number
per resident so an operator finds the caller by name or phone.

Revision ID: 0022
Revises: 0024
Create Date: 2026-12-03
"""

from devices.migrations.steps import plain

revision = "0022"
down_revision = "0024"

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


upgrade, downgrade = plain(UPGRADE, DOWNGRADE)
