"""Migrations from an empty database, and back."""

from __future__ import annotations

import uuid

import psycopg
from alembic.script import ScriptDirectory

from devices import migrate
from tests.services import Services, query


def test_upgrade_from_empty_downgrade_and_upgrade_again(services: Services) -> None:
    name = f"m_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(services.pg.url("postgres"), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = services.pg.url(name)
    try:
        migrate.upgrade(url)
        hypertables = {
            r["hypertable_name"]
            for r in query(url, "SELECT hypertable_name FROM timescaledb_information.hypertables")
        }
        assert hypertables == {"telemetry", "events", "acc_windows"}
        # one linear history: a second head (two migrations on one parent) fails here
        head = ScriptDirectory.from_config(migrate.alembic_config(url)).get_current_head()
        assert head is not None
        assert query(url, "SELECT version_num FROM alembic_version") == [{"version_num": head}]
        with psycopg.connect(url) as conn:
            features = migrate.detect_features(conn)
        assert features.license in {"apache", "timescale"}
        migrate.downgrade(url, "base")
        assert not query(url, "SELECT 1 FROM pg_tables WHERE tablename = 'telemetry'")
        migrate.upgrade(url)
        assert query(
            url,
            "SELECT count(*) AS n FROM pg_tables WHERE tablename IN "
            "('sites', 'devices', 'dispatch_orders', 'notification_outbox')",
        ) == [{"n": 4}]
    finally:
        with psycopg.connect(services.pg.url("postgres"), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")
