"""Replies that no check-in read: a text from a resident's phone with no check-in open on that
number ("救命" sent on its own), or one that came after its check-in was decided. The check
loop reads each once (``alerts.detection.sms_replies``): a reply asking for help is a red
alert at once; any other is recorded with what became of it. ``handled_at`` is when a reply
was read, by its check-in's decision or by that pass.

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-04
"""

from alembic import op

from devices.migrations.steps import grant

revision = "0029"
down_revision = "0028"

UPGRADE = """
ALTER TABLE check_in_replies
    ADD COLUMN handled_at timestamptz,
    ADD COLUMN outcome    text NOT NULL DEFAULT '';
-- replies stored before this were read by their check-in, or by nobody: the latter are read
-- now, once (a help request among them is raised late rather than never)
UPDATE check_in_replies r SET handled_at = c.done_at, outcome = 'read by its check-in'
FROM detector_checks c
WHERE c.check_id = r.check_id AND c.done_at IS NOT NULL AND c.done_at >= r.received_at;
CREATE INDEX check_in_replies_unread ON check_in_replies (id) WHERE handled_at IS NULL;
"""

DOWNGRADE = """
DROP INDEX IF EXISTS check_in_replies_unread;
ALTER TABLE check_in_replies DROP COLUMN IF EXISTS outcome, DROP COLUMN IF EXISTS handled_at;
"""

# What each process's database role may do on the tables (tests/test_db_roles.py).
GRANTS: dict[str, dict[str, str]] = {"eldercare_alerts": {"check_in_replies": "SELECT, UPDATE"}}


def upgrade() -> None:
    op.execute(UPGRADE)
    grant(GRANTS)


def downgrade() -> None:
    op.execute(DOWNGRADE)
