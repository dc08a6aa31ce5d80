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
    """With the community licence, hand retention and compression to TimescaleDB's scheduler.

    Run at every start (``devices migrate`` and ingest): a retention that changed since the
    policy was registered replaces it (``add_retention_policy(if_not_exists)`` alone kept the
    first value for ever)."""
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
        if set_retention_policy(conn, table, retention_days=retention_days):
            log.info("retention of %s set to %d days", table, retention_days)
    conn.commit()


def retention_policies(conn: psycopg.Connection[tuple[object, ...]]) -> dict[str, timedelta]:
    """The retention each hypertable's TimescaleDB policy applies (none under Apache)."""
    rows = conn.execute(
        "SELECT hypertable_name, (config->>'drop_after')::interval "
        "FROM timescaledb_information.jobs WHERE proc_name = 'policy_retention' "
        "AND hypertable_schema = current_schema()"
    ).fetchall()
    return {str(name): after for name, after in rows if isinstance(after, timedelta)}


def set_retention_policy(
    conn: psycopg.Connection[tuple[object, ...]], table: str, *, retention_days: int
) -> bool:
    """Make ``table``'s retention policy drop after ``retention_days``; True if it changed."""
    current = retention_policies(conn).get(table)
    if current == timedelta(days=retention_days):
        return False
    if current is not None:
        conn.execute("SELECT remove_retention_policy(%s)", (table,))
    conn.execute("SELECT add_retention_policy(%s, %s::interval)", (table, f"{retention_days} days"))
    return True


def apply_retention(
    conn: psycopg.Connection[tuple[object, ...]],
    features: TimescaleFeatures,
    *,
    retention_days: int,
    now: datetime,
) -> int:
    """Apply the configured retention now (``devices migrate``): the policies of the community
    edition, or one ``drop_chunks`` pass under Apache (ingest repeats it every
    ``retention_check_interval_s``). Returns the chunks dropped."""
    apply_policies(conn, features, retention_days=retention_days)
    if features.policies:
        return 0
    horizon = now - timedelta(days=retention_days)
    dropped = 0
    with conn.transaction():
        for table in HYPERTABLES:
            rows = conn.execute(
                "SELECT drop_chunks(%s, older_than => %s)", (table, horizon)
            ).fetchall()
            dropped += len(rows)
    return dropped


async def drop_old_chunks(conn: Conn, *, now: datetime, retention_days: int) -> int:
    """Retention for the Apache edition: drop chunks wholly older than the horizon."""
    horizon = now - timedelta(days=retention_days)
    dropped = 0
    for table in HYPERTABLES:
        cur = await conn.execute("SELECT drop_chunks(%s, older_than => %s)", (table, horizon))
        dropped += len(await cur.fetchall())
    return dropped
