"""Deferred checks against the real broker and database, with time driven by the test.

Events go over MQTT through the ingest worker; the test then runs the detector cycle and the
check cycle itself with an explicit ``now``, so twenty minutes pass without any waiting.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from alerts.detection.checks import run_checks
from alerts.detection.detectors.registry import build_registry, rechecks, route
from alerts.detection.worker import run_cycle
from alerts.dispatch.policy import policy_from_settings
from devices.db import open_pool
from devices.settings import Settings
from tests.services import Services, query, running, seed, wait_until, worker_env
from tests.test_ingest_integration import _pub, wait_for_ingest


def last_night(hour: int = 2) -> datetime:
    """The most recent past moment that was ``hour``:00 in Shanghai (the demo's timezone)."""
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    at = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    if at > now:
        at -= timedelta(days=1)
    return at.astimezone(UTC)


async def drive(url: str, *times: datetime) -> None:
    """Run the detector cycle, then the check cycle, at each given moment."""
    specs = build_registry(fall_min_confidence=0.2, fall_confirm_confidence=0.7)
    policy = policy_from_settings(Settings())
    pool = await open_pool(url, name="test", max_size=2)
    try:
        for now in times:
            await run_cycle(pool, routes=route(specs), policy=policy, limit=500, now=now)
            await run_checks(pool, rechecks=rechecks(specs), policy=policy, limit=500, now=now)
    finally:
        await pool.close()


def test_bed_exit_at_night_alerts_only_without_return(
    services: Services, database_url: str
) -> None:
    pop = seed(services, database_url)  # home-17/18 residents are frail: bed exits watched
    t0 = last_night()
    with running("ingest", worker_env(services, database_url)):
        wait_for_ingest(services, database_url, pop)
        for dev in ("bed-0042", "bed-0043"):
            _pub(
                services,
                pop,
                dev,
                "event",
                [{"bn": f"{dev}:", "bt": t0.timestamp(), "n": "presence", "vb": False}],
            )
        back = t0 + timedelta(minutes=7)
        _pub(
            services,
            pop,
            "bed-0043",
            "event",
            [{"bn": "bed-0043:", "bt": back.timestamp(), "n": "presence", "vb": True}],
        )
        wait_until(
            lambda: len(query(database_url, "SELECT 1 FROM events WHERE name = 'presence'")) == 3,
            what="bed events stored",
        )
    asyncio.run(drive(database_url, t0 + timedelta(seconds=1), t0 + timedelta(minutes=19)))
    assert not query(database_url, "SELECT 1 FROM alerts"), "alerted before the return time"
    asyncio.run(drive(database_url, t0 + timedelta(minutes=21), t0 + timedelta(minutes=22)))
    alerts = query(
        database_url,
        "SELECT a.kind, a.colour, r.site_id, a.explanation FROM alerts a "
        "JOIN residents r USING (resident_id)",
    )
    assert [(a["kind"], a["colour"], a["site_id"]) for a in alerts] == [
        ("bed_exit", "yellow", "home-17")
    ]
    assert "has not returned for 21 min" in alerts[0]["explanation"]
    checks = query(database_url, "SELECT outcome FROM detector_checks ORDER BY outcome")
    assert [c["outcome"] for c in checks] == [
        "dismissed: back in bed at " + (t0 + timedelta(minutes=7)).strftime("%H:%M:%S"),
        "raised",
    ]
    assert len(query(database_url, "SELECT 1 FROM dispatch_orders")) == 1


def test_unsure_fall_needs_the_other_sensors(services: Services, database_url: str) -> None:
    pop = seed(services, database_url)
    t0 = datetime.now(UTC) - timedelta(minutes=5)
    with running("ingest", worker_env(services, database_url)):
        wait_for_ingest(services, database_url, pop)
        for dev in ("wb-0042", "wb-0043"):
            _pub(
                services,
                pop,
                dev,
                "event",
                [{"bn": f"{dev}:", "bt": t0.timestamp(), "n": "fall", "vb": True, "v": 0.45}],
            )
        # home-17's resident walks past the motion sensor 20 s later: a false fall
        walked = (t0 + timedelta(seconds=20)).timestamp()
        _pub(
            services,
            pop,
            "pir-0042",
            "event",
            [{"bn": "pir-0042:", "bt": walked, "n": "motion", "vb": True}],
        )
        wait_until(
            lambda: len(query(database_url, "SELECT 1 FROM events")) >= 3, what="events stored"
        )
    asyncio.run(drive(database_url, t0 + timedelta(seconds=2), t0 + timedelta(seconds=31)))
    # one check per unsure report, each decided once
    assert len(query(database_url, "SELECT 1 FROM detector_checks")) == 2
    alerts = query(
        database_url,
        "SELECT a.kind, a.colour, r.site_id FROM alerts a JOIN residents r USING (resident_id)",
    )
    assert alerts == [{"kind": "fall", "colour": "red", "site_id": "home-18"}]
    dismissed = query(database_url, "SELECT outcome FROM detector_checks WHERE outcome <> 'raised'")
    assert len(dismissed) == 1
    assert "pir saw motion" in dismissed[0]["outcome"]
