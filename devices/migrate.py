"""Versioned schema migrations (Alembic, plain SQL) and TimescaleDB feature detection."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
from alembic import command
from alembic.config import Config

from devices.db import sqlalchemy_url
from devices.registry import Conn

log = logging.getLogger(__name__)

HYPERTABLES = ("telemetry", "events", "acc_windows")


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "devices:migrations")
    cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(database_url).replace("%", "%%"))
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


@dataclass(frozen=True, slots=True)
class TimescaleFeatures:
    """What the installed TimescaleDB licence allows.

    The Apache-2 edition (what Debian ships) has hypertables, ``time_bucket`` and
    ``drop_chunks``; the community (TSL) edition adds compression, continuous aggregates and
    retention policies run by its own job scheduler.
    """

    version: str
    license: str

    @property
    def policies(self) -> bool:
        return self.license == "timescale"


def detect_features(conn: psycopg.Connection[tuple[object, ...]]) -> TimescaleFeatures:
    row = conn.execute(
        "SELECT extversion, current_setting('timescaledb.license', true) "
        "FROM pg_extension WHERE extname = 'timescaledb'"
    ).fetchone()
    if row is None:
        raise RuntimeError("the timescaledb extension is not installed in this database")
    return TimescaleFeatures(version=str(row[0]), license=str(row[1] or "apache"))


def apply_policies(
    conn: psycopg.Connection[tuple[object, ...]],
    features: TimescaleFeatures,
    *,
    retention_days: int,
) -> None:
    """With the community licence, hand retention and compression to TimescaleDB's scheduler."""
    if not features.policies:
        log.info(
            "TimescaleDB %s (%s): retention runs as the application's drop_chunks",
            features.version,
            features.license,
        )
        return
    for table in HYPERTABLES:
        conn.execute(
            f"ALTER TABLE {table} SET (timescaledb.compress, "
            "timescaledb.compress_segmentby = 'device_key')"
        )
        conn.execute(
            "SELECT add_compression_policy(%s, interval '7 days', if_not_exists => true)", (table,)
        )
        conn.execute(
            "SELECT add_retention_policy(%s, %s::interval, if_not_exists => true)",
            (table, f"{retention_days} days"),
        )
    conn.commit()


async def drop_old_chunks(conn: Conn, *, now: datetime, retention_days: int) -> int:
    """Retention for the Apache edition: drop chunks wholly older than the horizon."""
    horizon = now - timedelta(days=retention_days)
    dropped = 0
    for table in HYPERTABLES:
        cur = await conn.execute("SELECT drop_chunks(%s, older_than => %s)", (table, horizon))
        dropped += len(await cur.fetchall())
    return dropped
