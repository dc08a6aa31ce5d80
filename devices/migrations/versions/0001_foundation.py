"""Foundation schema: registry, telemetry hypertables, dead letters, stream outbox, alerts,
dispatch orders, users.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from devices.migrations.steps import plain

revision = "0001"
down_revision = None

ID_CHECK = "~ '^[A-Za-z0-9_-]{1,64}$'"

UPGRADE = f"""
CREATE EXTENSION IF NOT EXISTS timescaledb;
CREATE EXTENSION IF NOT EXISTS btree_gist;

-- Registry -------------------------------------------------------------------------------
CREATE TABLE sites (
    site_id     text PRIMARY KEY CHECK (site_id {ID_CHECK}),
    name        text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('nursing_home', 'home_care_bed')),
    community   text NOT NULL DEFAULT '',
    address     text NOT NULL DEFAULT '',
    timezone    text NOT NULL DEFAULT 'Asia/Shanghai',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE rooms (
    room_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site_id  text NOT NULL REFERENCES sites ON DELETE CASCADE,
    name     text NOT NULL,
    kind     text NOT NULL,
    UNIQUE (site_id, name)
);

CREATE TABLE residents (
    resident_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site_id        text NOT NULL REFERENCES sites,
    room_id        bigint REFERENCES rooms,
    full_name      text NOT NULL,
    birth_year     integer CHECK (birth_year BETWEEN 1900 AND 2100),
    care_profile   text NOT NULL DEFAULT 'independent'
                   CHECK (care_profile IN ('independent', 'frail', 'dementia', 'bed_bound')),
    care_plan      jsonb NOT NULL DEFAULT '{{}}',
    admitted_at    timestamptz NOT NULL DEFAULT now(),
    discharged_at  timestamptz
);
CREATE INDEX residents_site ON residents (site_id);

CREATE TABLE devices (
    device_key          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id           text NOT NULL UNIQUE CHECK (device_id {ID_CHECK}),
    site_id             text NOT NULL REFERENCES sites,
    room_id             bigint REFERENCES rooms,
    kind                text NOT NULL,
    vendor              text NOT NULL DEFAULT '',
    model               text NOT NULL DEFAULT '',
    -- Mosquitto PBKDF2-SHA512 hash of the device's MQTT password; the secret itself is never kept.
    mqtt_password_hash  text,
    registered_at       timestamptz NOT NULL DEFAULT now(),
    retired_at          timestamptz
);
CREATE INDEX devices_site ON devices (site_id);

-- Which device serves whom, with its history: one resident per device at any time.
CREATE TABLE device_assignments (
    device_key   integer NOT NULL REFERENCES devices,
    resident_id  bigint NOT NULL REFERENCES residents,
    during       tstzrange NOT NULL,
    EXCLUDE USING gist (device_key WITH =, during WITH &&)
);
CREATE INDEX device_assignments_resident ON device_assignments (resident_id);

CREATE TABLE device_status (
    device_key    integer PRIMARY KEY REFERENCES devices,
    online        boolean NOT NULL,
    battery       real,
    fw            text,
    reported_at   timestamptz NOT NULL,
    last_seen_at  timestamptz
);

-- Telemetry and events (hypertables) ------------------------------------------------------
CREATE TABLE telemetry (
    time         timestamptz NOT NULL,
    device_key   integer NOT NULL,
    metric       text COLLATE "C" NOT NULL,
    value        double precision NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now()
);
SELECT create_hypertable('telemetry', 'time', chunk_time_interval => interval '1 day');
-- Idempotent key (a redelivered reading is stored once) and "latest per device and metric".
CREATE UNIQUE INDEX telemetry_key ON telemetry (device_key, metric, time DESC);

CREATE TABLE events (
    time         timestamptz NOT NULL,
    device_key   integer NOT NULL,
    name         text COLLATE "C" NOT NULL,
    value_bool   boolean,
    value_num    double precision,
    value_text   text,
    received_at  timestamptz NOT NULL DEFAULT now()
);
SELECT create_hypertable('events', 'time', chunk_time_interval => interval '7 days');
CREATE UNIQUE INDEX events_key ON events (device_key, name, time DESC);
CREATE INDEX events_device_time ON events (device_key, time DESC);

-- Raw accelerometer windows, one row per window (not per sample).
CREATE TABLE acc_windows (
    time         timestamptz NOT NULL,
    device_key   integer NOT NULL,
    t_offset     real[] NOT NULL,
    acc_x        real[] NOT NULL,
    acc_y        real[] NOT NULL,
    acc_z        real[] NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now()
);
SELECT create_hypertable('acc_windows', 'time', chunk_time_interval => interval '1 day');
CREATE UNIQUE INDEX acc_windows_key ON acc_windows (device_key, time DESC);

-- Refused messages, kept with their reason and raw bytes; one row per distinct message.
CREATE TABLE dead_letters (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    digest         bytea NOT NULL UNIQUE,
    topic          text NOT NULL,
    payload        bytea NOT NULL,
    reason         text NOT NULL,
    detail         text NOT NULL,
    first_seen_at  timestamptz NOT NULL DEFAULT now(),
    last_seen_at   timestamptz NOT NULL DEFAULT now(),
    times_seen     integer NOT NULL DEFAULT 1
);
CREATE INDEX dead_letters_seen ON dead_letters (last_seen_at DESC);

-- New events for the detectors: written by ingest in the same transaction as the event,
-- claimed and deleted by the alerts worker (FOR UPDATE SKIP LOCKED).
CREATE TABLE stream_outbox (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind        text NOT NULL,
    device_key  integer NOT NULL,
    time        timestamptz NOT NULL,
    name        text NOT NULL,
    value_bool  boolean,
    value_num   double precision,
    value_text  text,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- People and access ------------------------------------------------------------------------
CREATE TABLE users (
    user_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username       text NOT NULL UNIQUE,
    password_hash  text NOT NULL,
    role           text NOT NULL CHECK (role IN ('admin', 'staff', 'family')),
    display_name   text NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL DEFAULT now(),
    disabled_at    timestamptz
);
CREATE TABLE user_sites (
    user_id  bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    site_id  text NOT NULL REFERENCES sites ON DELETE CASCADE,
    PRIMARY KEY (user_id, site_id)
);
CREATE TABLE family_links (
    user_id      bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    resident_id  bigint NOT NULL REFERENCES residents ON DELETE CASCADE,
    relation     text NOT NULL DEFAULT '',
    PRIMARY KEY (user_id, resident_id)
);
CREATE TABLE api_tokens (
    token_hash  bytea PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);

-- Alerts and the dispatch queue -----------------------------------------------------------
CREATE TABLE alerts (
    alert_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    idem_key     text NOT NULL UNIQUE,
    fold_key     text NOT NULL,
    site_id      text NOT NULL REFERENCES sites,
    resident_id  bigint REFERENCES residents,
    device_key   integer REFERENCES devices,
    kind         text NOT NULL,
    colour       text NOT NULL CHECK (colour IN ('red', 'yellow', 'green')),
    detector     text NOT NULL,
    occurred_at  timestamptz NOT NULL,
    raised_at    timestamptz NOT NULL DEFAULT now(),
    explanation  text NOT NULL,
    details      jsonb NOT NULL DEFAULT '{{}}'
);
CREATE INDEX alerts_site_raised ON alerts (site_id, raised_at DESC);
CREATE INDEX alerts_fold ON alerts (fold_key, occurred_at DESC);
CREATE INDEX alerts_resident_raised ON alerts (resident_id, raised_at DESC);

CREATE TABLE dispatch_orders (
    order_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id         bigint UNIQUE REFERENCES alerts,
    site_id          text NOT NULL REFERENCES sites,
    resident_id      bigint REFERENCES residents,
    colour           text NOT NULL CHECK (colour IN ('red', 'yellow', 'green')),
    category         text NOT NULL,
    state            text NOT NULL DEFAULT 'queued' CHECK (state IN
                     ('queued', 'offered', 'accepted', 'en_route', 'on_site', 'resolved', 'cancelled')),
    event_at         timestamptz,
    opened_at        timestamptz NOT NULL,
    accept_deadline  timestamptz NOT NULL,
    policy           jsonb NOT NULL,
    accepted_at      timestamptz,
    accepted_by      bigint REFERENCES users,
    resolved_at      timestamptz,
    outcome          text CHECK (outcome IN ('emergency_handled', 'false_alarm', 'handled_by_phone')),
    note             text NOT NULL DEFAULT ''
);
CREATE INDEX dispatch_orders_open ON dispatch_orders (site_id, accept_deadline)
    WHERE state IN ('queued', 'offered');

CREATE TABLE order_transitions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id    bigint NOT NULL REFERENCES dispatch_orders,
    at          timestamptz NOT NULL,
    from_state  text,
    to_state    text NOT NULL,
    actor       text NOT NULL,
    user_id     bigint REFERENCES users,
    note        text NOT NULL DEFAULT ''
);
CREATE INDEX order_transitions_order ON order_transitions (order_id, at);
"""

DOWNGRADE = """
DROP TABLE IF EXISTS telemetry;
DROP TABLE IF EXISTS events;
DROP TABLE IF EXISTS acc_windows;
DROP TABLE IF EXISTS order_transitions, dispatch_orders, alerts, api_tokens, family_links,
    user_sites, users, stream_outbox, dead_letters, device_status, device_assignments, devices,
    residents, rooms, sites CASCADE;
"""


upgrade, downgrade = plain(UPGRADE, DOWNGRADE)
