"""Check-ins by SMS (issue 17 item 3): a resident with no button or wristband, whose care plan
says they may be asked on their phone, gets "reply 1 if you are fine" as a text message.

``resident_messages`` are messages to the resident themself (not to a user: the notification
outbox is for family and staff), sent by the notify loop; ``check_in_replies`` are what came
back from a phone through the SMS provider's reply callback, matched by number to the open
check-in. A check-in asked by SMS has no device (``detector_checks.device_key`` NULL); its
phone is in its ``event``.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-03
"""

from alembic import op

from devices.migrations.steps import grant

revision = "0027"
down_revision = "0026"

UPGRADE = """
CREATE TABLE resident_messages (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    check_id        bigint REFERENCES detector_checks (check_id) ON DELETE CASCADE,
    resident_id     bigint NOT NULL REFERENCES residents ON DELETE CASCADE,
    phone           text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('check_in')),
    body            text NOT NULL,
    payload         jsonb NOT NULL,            -- the provider template's variables
    created_at      timestamptz NOT NULL,
    not_after       timestamptz NOT NULL,      -- no use sending it later (the check-in's due)
    next_attempt_at timestamptz NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'sent', 'failed', 'expired')),
    receipt         text NOT NULL DEFAULT '',
    sent_at         timestamptz
);
CREATE INDEX resident_messages_due ON resident_messages (next_attempt_at)
    WHERE state = 'pending';

CREATE TABLE check_in_replies (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider    text NOT NULL,
    provider_id text NOT NULL,                  -- the provider's own id: its retry is one reply
    phone       text NOT NULL,
    body        text NOT NULL,
    sent_at     timestamptz,                    -- when the phone sent it, as the provider says
    received_at timestamptz NOT NULL,
    check_id    bigint REFERENCES detector_checks (check_id) ON DELETE SET NULL,
    UNIQUE (provider, provider_id)
);
CREATE INDEX check_in_replies_check ON check_in_replies (check_id) WHERE check_id IS NOT NULL;
-- the API matches a reply to the open check-in asked on that number
CREATE INDEX detector_checks_check_in_phone ON detector_checks ((event ->> 'phone'))
    WHERE done_at IS NULL AND detector = 'check_in';
"""

DOWNGRADE = """
DROP INDEX IF EXISTS detector_checks_check_in_phone;
DROP TABLE IF EXISTS check_in_replies, resident_messages;
"""

# What each process's database role may do on the new tables (tests/test_db_roles.py).
GRANTS: dict[str, dict[str, str]] = {
    "eldercare_alerts": {
        "resident_messages": "SELECT, INSERT, UPDATE",
        "check_in_replies": "SELECT",
    },
    "eldercare_api": {
        "check_in_replies": "SELECT, INSERT",
        "detector_checks": "SELECT",
    },
}


def upgrade() -> None:
    op.execute(UPGRADE)
    grant(GRANTS)


def downgrade() -> None:
    op.execute(DOWNGRADE)
