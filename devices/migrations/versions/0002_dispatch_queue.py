"""The 96345 dispatch queue: incidents, responders and shifts, per-site escalation policies,
the escalation state machine on orders, responder notifications and device commands.

Revision ID: 0002
Revises: 0008
Create Date: 2026-11-23
"""

from devices.migrations.steps import plain

revision = "0002"
down_revision = "0008"

UPGRADE = """
-- Where a site is, for the "nearest" assignment rule.
ALTER TABLE sites ADD COLUMN lat double precision, ADD COLUMN lon double precision;

-- A responder logs in with the 'responder' role (home-care providers); nursing-home staff
-- keep the 'staff' role and get a responders row as well.
ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check
    CHECK (role IN ('admin', 'staff', 'family', 'responder'));

-- Incidents: alerts of one resident and cause within a window are one incident ------------
CREATE TABLE incidents (
    incident_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_key  text NOT NULL UNIQUE,   -- fold key @ first occurrence: idempotent
    fold_key      text NOT NULL,
    site_id       text NOT NULL REFERENCES sites,
    resident_id   bigint REFERENCES residents,
    cause         text NOT NULL,
    colour        text NOT NULL CHECK (colour IN ('red', 'yellow', 'green')),
    first_at      timestamptz NOT NULL,
    last_at       timestamptz NOT NULL,
    alert_count   integer NOT NULL DEFAULT 1
);
CREATE INDEX incidents_fold ON incidents (fold_key, last_at DESC);
ALTER TABLE alerts ADD COLUMN incident_id bigint REFERENCES incidents;
CREATE INDEX alerts_incident ON alerts (incident_id);

-- Responders, their coverage and shifts ----------------------------------------------------
CREATE TABLE responders (
    responder_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       bigint UNIQUE REFERENCES users ON DELETE SET NULL,
    name          text NOT NULL,
    -- staff: nursing-home carer; provider: home-care service provider; supervisor; centre
    kind          text NOT NULL CHECK (kind IN ('staff', 'provider', 'supervisor', 'centre')),
    -- 1 front line, 2 supervisor, 3 centre
    level         smallint NOT NULL CHECK (level BETWEEN 1 AND 3),
    site_id       text REFERENCES sites,      -- covers one site (nursing-home staff)...
    community     text,                       -- ...or every site of a community (providers)
    lat           double precision,
    lon           double precision,
    phone         text NOT NULL DEFAULT '',
    active        boolean NOT NULL DEFAULT true,
    CHECK (level = 3 OR site_id IS NOT NULL OR community IS NOT NULL)
);
CREATE TABLE shifts (
    responder_id  bigint NOT NULL REFERENCES responders ON DELETE CASCADE,
    during        tstzrange NOT NULL,
    EXCLUDE USING gist (responder_id WITH =, during WITH &&)
);

-- Per-site escalation policy (JSON, docs/dispatch.md); copied onto each order at open.
CREATE TABLE escalation_policies (
    site_id     text PRIMARY KEY REFERENCES sites ON DELETE CASCADE,
    policy      jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- The order as a state machine ---------------------------------------------------------------
ALTER TABLE dispatch_orders
    ADD COLUMN incident_id  bigint UNIQUE REFERENCES incidents,
    ADD COLUMN kind         text NOT NULL DEFAULT 'alert' CHECK (kind IN ('alert', 'service')),
    ADD COLUMN created_by   bigint REFERENCES users,
    ADD COLUMN step_index   integer NOT NULL DEFAULT 0,
    ADD COLUMN steps_done   integer NOT NULL DEFAULT 0,
    ADD COLUMN step_due_at  timestamptz,
    ADD COLUMN run_token    uuid,
    ADD COLUMN offered_to   bigint REFERENCES responders,
    ADD COLUMN offered_at   timestamptz,
    ADD COLUMN en_route_at  timestamptz,
    ADD COLUMN on_site_at   timestamptz,
    ADD COLUMN cancelled_at timestamptz;
CREATE INDEX dispatch_orders_due ON dispatch_orders (step_due_at)
    WHERE state IN ('queued', 'offered') AND step_due_at IS NOT NULL;
CREATE INDEX dispatch_orders_accepted_by ON dispatch_orders (accepted_by)
    WHERE state IN ('accepted', 'en_route', 'on_site');

-- Every escalation step performed, once: (order, seq) is the proof against doubles.
CREATE TABLE order_steps (
    order_id      bigint NOT NULL REFERENCES dispatch_orders,
    seq           integer NOT NULL,
    step_index    integer NOT NULL,
    at            timestamptz NOT NULL,
    action        text NOT NULL,
    responder_id  bigint REFERENCES responders,
    run_token     uuid NOT NULL,
    note          text NOT NULL DEFAULT '',
    PRIMARY KEY (order_id, seq)
);
CREATE TABLE order_offers (
    order_id      bigint NOT NULL REFERENCES dispatch_orders,
    responder_id  bigint NOT NULL REFERENCES responders,
    offered_at    timestamptz NOT NULL,
    seq           integer NOT NULL,
    PRIMARY KEY (order_id, seq)
);
CREATE INDEX order_offers_responder ON order_offers (responder_id, offered_at DESC);

-- Outbox of notifications to responders (also sent as NOTIFY on 'responders' at commit).
CREATE TABLE responder_notifications (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id      bigint NOT NULL REFERENCES dispatch_orders,
    responder_id  bigint NOT NULL REFERENCES responders,
    kind          text NOT NULL CHECK (kind IN ('offer', 'escalation', 'renotify')),
    created_at    timestamptz NOT NULL,
    read_at       timestamptz
);
CREATE INDEX responder_notifications_to ON responder_notifications (responder_id, id DESC);

-- Outbox of commands to devices, published over MQTT after commit.
CREATE TABLE device_commands (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_key  integer NOT NULL REFERENCES devices,
    topic       text NOT NULL,
    payload     bytea NOT NULL,
    order_id    bigint REFERENCES dispatch_orders,
    created_at  timestamptz NOT NULL,
    sent_at     timestamptz,
    attempts    integer NOT NULL DEFAULT 0
);
CREATE INDEX device_commands_unsent ON device_commands (id) WHERE sent_at IS NULL;
"""

DOWNGRADE = """
DROP TABLE IF EXISTS device_commands, responder_notifications, order_offers, order_steps;
ALTER TABLE dispatch_orders
    DROP COLUMN incident_id, DROP COLUMN kind, DROP COLUMN created_by, DROP COLUMN step_index,
    DROP COLUMN steps_done, DROP COLUMN step_due_at, DROP COLUMN run_token,
    DROP COLUMN offered_to, DROP COLUMN offered_at, DROP COLUMN en_route_at,
    DROP COLUMN on_site_at, DROP COLUMN cancelled_at;
DROP TABLE IF EXISTS escalation_policies, shifts;
DROP TABLE IF EXISTS responders;
ALTER TABLE alerts DROP COLUMN incident_id;
DROP TABLE IF EXISTS incidents;
DELETE FROM users WHERE role = 'responder';
ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check CHECK (role IN ('admin', 'staff', 'family'));
ALTER TABLE sites DROP COLUMN lat, DROP COLUMN lon;
"""


upgrade, downgrade = plain(UPGRADE, DOWNGRADE)
