"""Learning from carers (issue 13 item 5): an order resolved as a false alarm keeps the
accelerometer window of each model-judged alert it handled as a labelled example of that
resident and device, for ``python -m alerts.evaluate.training.train --with-carer-examples``.

A plain table (not a hypertable): the retention that drops ``acc_windows`` chunks never
touches it.

Revision ID: 0025
Revises: 0021
Create Date: 2026-12-03
"""

from devices.migrations.steps import plain

revision = "0025"
down_revision = "0021"

UPGRADE = """
CREATE TABLE fall_examples (
    example_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id          bigint NOT NULL UNIQUE REFERENCES alerts,  -- one example per alert
    order_id          bigint NOT NULL REFERENCES dispatch_orders,
    label             text NOT NULL CHECK (label IN ('false_alarm')),
    site_id           text NOT NULL REFERENCES sites,
    resident_id       bigint REFERENCES residents,
    device_key        integer NOT NULL REFERENCES devices,
    placement         text NOT NULL,        -- the device's, as the alert recorded it
    model_placement   text NOT NULL,        -- the model that judged it (neck -> chest, ...)
    model_id          text NOT NULL,        -- <placement>-v<version>-<sha256 prefix>
    impact_at         timestamptz NOT NULL, -- the alert's occurred_at; t is relative to it
    t                 double precision[] NOT NULL,
    acc_x             real[] NOT NULL,
    acc_y             real[] NOT NULL,
    acc_z             real[] NOT NULL,
    labelled_by       text NOT NULL,
    labelled_by_user  bigint REFERENCES users ON DELETE SET NULL,
    labelled_at       timestamptz NOT NULL,
    CHECK (cardinality(t) = cardinality(acc_x) AND cardinality(t) = cardinality(acc_y)
           AND cardinality(t) = cardinality(acc_z))
);
CREATE INDEX fall_examples_model ON fall_examples (model_placement, example_id);
"""

DOWNGRADE = """
DROP TABLE IF EXISTS fall_examples;
"""


upgrade, downgrade = plain(UPGRADE, DOWNGRADE)
