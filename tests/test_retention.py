"""A changed retention applies at the next start (issue 16 item 3), against the real
TimescaleDB: ``devices migrate`` drops what the new retention no longer keeps (Apache
edition), or replaces the registered policy (community edition, which ``if_not_exists``
used to keep at its first value for ever)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from devices import migrate
from tests.services import ROOT, Services, fresh_database, query

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC)


@pytest.fixture
def empty_url(services: Services) -> Iterator[str]:
    with fresh_database(services, template=None) as url:
        yield url


def _migrate(url: str, retention_days: int) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELDERCARE_")}
    env |= {
        "ELDERCARE_DATABASE_URL": url,
        "ELDERCARE_TELEMETRY_RETENTION_DAYS": str(retention_days),
    }
    done = subprocess.run(
        [sys.executable, "-m", "devices", "migrate"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _ages(url: str) -> list[int]:
    rows = query(url, "SELECT time FROM telemetry ORDER BY time")
    return [round((NOW - r["time"]) / timedelta(days=1)) for r in rows]


def _features(url: str) -> migrate.TimescaleFeatures:
    with psycopg.connect(url) as conn:
        return migrate.detect_features(conn)


def test_a_shorter_retention_applies_at_the_next_migrate(empty_url: str) -> None:
    out = _migrate(empty_url, 400)
    features = _features(empty_url)
    if features.policies:
        pytest.skip("community edition: covered by the policy test below")
    assert "retention 400 days (drop_chunks); 0 chunks dropped now" in out
    with psycopg.connect(empty_url) as conn:
        for days in (200, 100, 5):
            conn.execute(
                "INSERT INTO telemetry (time, device_key, metric, value) VALUES (%s, 1, 'hr', 70)",
                (NOW - timedelta(days=days),),
            )
    assert _ages(empty_url) == [200, 100, 5]
    _migrate(empty_url, 400)  # unchanged: nothing goes
    assert _ages(empty_url) == [200, 100, 5]
    out = _migrate(empty_url, 150)
    assert "retention 150 days (drop_chunks); 1 chunks dropped now" in out
    assert _ages(empty_url) == [100, 5]
    _migrate(empty_url, 30)
    assert _ages(empty_url) == [5]


def test_the_registered_policy_follows_the_setting(empty_url: str) -> None:
    migrate.upgrade(empty_url)
    with psycopg.connect(empty_url) as conn:
        features = migrate.detect_features(conn)
        # the policies' view exists in both editions; Apache has no retention jobs
        assert migrate.retention_policies(conn) == {}
        if not features.policies:
            pytest.skip(
                "this TimescaleDB is the Apache edition (no policies): the drop_chunks test "
                "above covers it; run against the timescale/timescaledb image for this one"
            )
        for days in (400, 400, 90):
            migrate.apply_policies(conn, features, retention_days=days)
            assert migrate.retention_policies(conn) == dict.fromkeys(
                migrate.HYPERTABLES, timedelta(days=days)
            )
