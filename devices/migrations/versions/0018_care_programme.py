"""The care programme around the alarms (issue 15): priority residents and their visits,
safety rounds and findings in care homes, the roles that use them, districts for the
monthly report.

Revision ID: 0018
Revises: 0016
Create Date: 2026-12-03
"""

from devices.migrations.steps import plain

revision = "0018"
down_revision = "0016"

UPGRADE = """
-- visitor: a community worker or volunteer (sees only the residents assigned to them);
-- safety_officer: a site's safety officer (its rounds and findings);
-- report_reader: the civil-affairs bureau (figures without personal details).
ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check CHECK (role IN
    ('admin', 'staff', 'family', 'responder', 'visitor', 'safety_officer', 'report_reader'));

ALTER TABLE sites ADD COLUMN district text NOT NULL DEFAULT '';

-- Visits (探访关爱) -------------------------------------------------------------------------
CREATE TABLE care_flags (
    resident_id       bigint PRIMARY KEY REFERENCES residents ON DELETE CASCADE,
    flags             text[] NOT NULL CHECK (cardinality(flags) > 0 AND flags <@
                      ARRAY['living_alone', 'empty_nest', 'disabled', 'other_priority']),
    visits_per_month  integer NOT NULL DEFAULT 1 CHECK (visits_per_month BETWEEN 1 AND 8),
    flagged_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL
);

CREATE TABLE care_visitors (
    user_id    bigint PRIMARY KEY REFERENCES users ON DELETE CASCADE,
    kind       text NOT NULL CHECK (kind IN ('community_worker', 'volunteer')),
    community  text NOT NULL
);

CREATE TABLE visit_assignments (
    resident_id  bigint PRIMARY KEY REFERENCES residents ON DELETE CASCADE,
    visitor_id   bigint NOT NULL REFERENCES care_visitors (user_id) ON DELETE CASCADE,
    assigned_at  timestamptz NOT NULL
);
CREATE INDEX visit_assignments_visitor ON visit_assignments (visitor_id);

CREATE TABLE visits (
    visit_id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    resident_id         bigint NOT NULL REFERENCES residents,
    visitor_id          bigint NOT NULL REFERENCES users,
    visited_at          timestamptz NOT NULL,
    recorded_at         timestamptz NOT NULL,
    eating_ok           boolean NOT NULL,
    mobility_ok         boolean NOT NULL,
    mood_ok             boolean NOT NULL,
    home_safety_ok      boolean NOT NULL,
    devices_ok          boolean NOT NULL,
    notes               text NOT NULL DEFAULT '',
    follow_up           boolean NOT NULL DEFAULT false,
    follow_up_category  text,
    order_id            bigint REFERENCES dispatch_orders
);
CREATE INDEX visits_resident_time ON visits (resident_id, visited_at DESC);

ALTER TABLE notification_outbox DROP CONSTRAINT notification_outbox_source_check;
ALTER TABLE notification_outbox ADD CONSTRAINT notification_outbox_source_check
    CHECK (source IN ('alert', 'order', 'summary', 'visit_reminder'));

-- Safety rounds (机构安全巡检) ----------------------------------------------------------------
CREATE TABLE safety_checklist_items (
    site_id   text NOT NULL REFERENCES sites ON DELETE CASCADE,
    item_key  text NOT NULL CHECK (item_key ~ '^[a-z0-9_]{1,64}$'),
    label     text NOT NULL,
    position  integer NOT NULL DEFAULT 100,
    PRIMARY KEY (site_id, item_key)
);

CREATE TABLE safety_rounds (
    round_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site_id      text NOT NULL REFERENCES sites,
    inspector_id bigint NOT NULL REFERENCES users,
    done_at      timestamptz NOT NULL,
    results      jsonb NOT NULL,
    note         text NOT NULL DEFAULT ''
);
CREATE INDEX safety_rounds_site ON safety_rounds (site_id, done_at DESC);

CREATE TABLE safety_findings (
    finding_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    idem_key     text NOT NULL UNIQUE,
    site_id      text NOT NULL REFERENCES sites,
    source       text NOT NULL CHECK (source IN ('round', 'device')),
    round_id     bigint REFERENCES safety_rounds,
    device_key   integer REFERENCES devices,
    item_key     text NOT NULL,
    kind         text NOT NULL,
    description  text NOT NULL,
    owner        text NOT NULL DEFAULT '',
    deadline     timestamptz NOT NULL,
    opened_at    timestamptz NOT NULL,
    closed_at    timestamptz,
    closed_by    bigint REFERENCES users,
    closure_note text NOT NULL DEFAULT ''
);
CREATE INDEX safety_findings_open ON safety_findings (site_id, deadline) WHERE closed_at IS NULL;
-- one open device finding per device and kind: the periodic job may run any number of times
CREATE UNIQUE INDEX safety_findings_device_open ON safety_findings (device_key, kind)
    WHERE closed_at IS NULL AND source = 'device';

-- Monthly reports written by the scheduler: one row per month, so a restart writes it once.
CREATE TABLE report_runs (
    month       date PRIMARY KEY,
    started_at  timestamptz NOT NULL,
    done_at     timestamptz,
    out_dir     text NOT NULL,
    error       text NOT NULL DEFAULT ''
);
"""

DOWNGRADE = """
DROP TABLE IF EXISTS report_runs, safety_findings, safety_rounds, safety_checklist_items,
    visits, visit_assignments, care_visitors, care_flags;
DELETE FROM notification_outbox WHERE source = 'visit_reminder';
ALTER TABLE notification_outbox DROP CONSTRAINT notification_outbox_source_check;
ALTER TABLE notification_outbox ADD CONSTRAINT notification_outbox_source_check
    CHECK (source IN ('alert', 'order', 'summary'));
ALTER TABLE sites DROP COLUMN district;
DELETE FROM users WHERE role IN ('visitor', 'safety_officer', 'report_reader');
ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check
    CHECK (role IN ('admin', 'staff', 'family', 'responder'));
"""


upgrade, downgrade = plain(UPGRADE, DOWNGRADE)
