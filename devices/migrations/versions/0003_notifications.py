"""Family notifications: preferences, outbox, delivery attempts with receipts.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from devices.migrations.steps import plain

revision = "0003"
down_revision = "0002"

UPGRADE = """
-- One row per family member who wants to be told. No row (or no channel): nothing is sent.
CREATE TABLE notification_prefs (
    user_id         bigint PRIMARY KEY REFERENCES users ON DELETE CASCADE,
    colours         text[] NOT NULL DEFAULT '{red,yellow}'
                    CHECK (colours <@ ARRAY['red', 'yellow', 'green']),
    kinds           text[],           -- NULL: every kind of alert
    order_updates   boolean NOT NULL DEFAULT true,
    daily_summary   boolean NOT NULL DEFAULT true,
    -- Ordered fallback list: [{"kind": "webhook"|"email"|"sms", "address": "..."}].
    channels        jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(channels) = 'array'),
    webhook_secret  text NOT NULL,    -- HMAC-SHA256 key for this recipient's webhook
    quiet_start     time,             -- local time; red alerts ignore quiet hours
    quiet_end       time,
    timezone        text,             -- NULL: the installation's ELDERCARE_NOTIFY_TIMEZONE
    language        text NOT NULL DEFAULT 'en' CHECK (language IN ('en', 'zh')),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((quiet_start IS NULL) = (quiet_end IS NULL))
);

-- One row per (alert | order change | daily summary) x recipient. The idem key makes a
-- redelivered alert, a second worker or a re-scan enqueue nothing new.
CREATE TABLE notification_outbox (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    idem_key         text NOT NULL UNIQUE,
    user_id          bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    resident_id      bigint REFERENCES residents ON DELETE CASCADE,
    source           text NOT NULL CHECK (source IN ('alert', 'order', 'summary')),
    alert_id         bigint REFERENCES alerts,
    order_id         bigint REFERENCES dispatch_orders,
    colour           text NOT NULL CHECK (colour IN ('red', 'yellow', 'green')),
    subject          text NOT NULL,
    body             text NOT NULL,
    payload          jsonb NOT NULL,
    created_at       timestamptz NOT NULL,
    not_before       timestamptz NOT NULL,  -- end of quiet hours, or created_at
    next_attempt_at  timestamptz NOT NULL,
    channel_index    integer NOT NULL DEFAULT 0,
    channel_attempts integer NOT NULL DEFAULT 0,
    attempts         integer NOT NULL DEFAULT 0,
    state            text NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'delivered', 'failed', 'skipped')),
    reason           text NOT NULL DEFAULT '',
    delivered_at     timestamptz,
    delivered_via    text
);
CREATE INDEX notification_outbox_due ON notification_outbox (next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX notification_outbox_user ON notification_outbox (user_id, created_at DESC);

-- Every attempt, with what the other side answered (HTTP status, SMTP reply, gateway id).
CREATE TABLE notification_attempts (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    outbox_id    bigint NOT NULL REFERENCES notification_outbox ON DELETE CASCADE,
    at           timestamptz NOT NULL,
    channel      text NOT NULL,
    address      text NOT NULL,
    ok           boolean NOT NULL,
    receipt      text NOT NULL,
    duration_ms  integer NOT NULL
);
CREATE INDEX notification_attempts_outbox ON notification_attempts (outbox_id, at);

-- The notify worker scans recent alerts and order changes every cycle.
CREATE INDEX notify_alerts_raised ON alerts (raised_at);
CREATE INDEX notify_order_transitions_at ON order_transitions (at);
"""

DOWNGRADE = """
DROP INDEX IF EXISTS notify_alerts_raised, notify_order_transitions_at;
DROP TABLE IF EXISTS notification_attempts, notification_outbox, notification_prefs;
"""


upgrade, downgrade = plain(UPGRADE, DOWNGRADE)
