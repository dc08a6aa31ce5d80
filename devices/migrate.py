"""Versioned schema migrations (Alembic, plain SQL) and TimescaleDB feature detection."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql

from devices.db import sqlalchemy_url
from devices.registry import Conn

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)

HYPERTABLES = ("telemetry", "events", "acc_windows")
# Each long-running process's own database role (migration 0023), by process.
PROCESS_ROLES = {"ingest": "eldercare_ingest", "alerts": "eldercare_alerts", "api": "eldercare_api"}


def alembic_config(database_url: str) -> Config:
    # alembic (and SQLAlchemy behind it) is imported by the migration commands alone: it is
    # seconds of start-up for ingest, which imports this module for its policies only.
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", "devices:migrations")
    cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(database_url).replace("%", "%%"))
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    from alembic import command

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
    """Retention for the Apache edition: drop chunks wholly older than the horizon (as the
    tables' owner, through the security-definer function of migration 0023: ingest's own
    role may not drop chunks itself)."""
    horizon = now - timedelta(days=retention_days)
    cur = await conn.execute("SELECT eldercare_drop_old_chunks(%s) AS n", (horizon,))
    row = await cur.fetchone()
    return int(row["n"]) if row else 0


def owns_hypertables(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    """Whether this connection's role owns the hypertables (may set their policies)."""
    row = conn.execute(
        "SELECT bool_and(pg_has_role(current_user, relowner, 'USAGE')) FROM pg_class "
        "WHERE relname = ANY(%s) AND relnamespace = current_schema()::regnamespace",
        (list(HYPERTABLES),),
    ).fetchone()
    return bool(row and row[0])


def scram_verifier(password: str, *, salt: bytes | None = None, iterations: int = 4096) -> str:
    """PostgreSQL's SCRAM-SHA-256 verifier of ``password`` (RFC 5802/7677), so that the
    plaintext never reaches the server (nor its statement log)."""
    salt = salt if salt is not None else os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    b64 = base64.b64encode
    return (
        f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}"
        f"${b64(stored_key).decode()}:{b64(server_key).decode()}"
    )


def set_role_passwords(
    conn: psycopg.Connection[tuple[object, ...]], passwords: dict[str, str]
) -> None:
    """Let the process roles sign in with these passwords (role -> password)."""
    for role, password in passwords.items():
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        if exists is None:
            raise RuntimeError(
                f"database role {role} does not exist (migration 0023 could not create it: "
                "docs/deployment.md)"
            )
        conn.execute(
            sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(scram_verifier(password))
            )
        )
    conn.commit()
