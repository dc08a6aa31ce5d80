"""The tick loop against the real database: a week of motion history is learned, a long
silence raises exactly one yellow inactivity alert with its dispatch order, a second tick
adds nothing, and a resident who went out (door, "going out" pressed, then silence) is left
alone."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from alerts.detection.detectors.registry import build_tick_registry
from alerts.detection.routine import Routine
from alerts.detection.routine_store import refresh_routines
from alerts.detection.snapshots import site_defaults
from alerts.detection.ticks import TickResult, run_tick
from alerts.dispatch.policy import policy_from_settings
from devices.db import open_pool
from devices.settings import Settings
from tests.services import Services, query, seed

TZ = ZoneInfo("Asia/Shanghai")  # the demo sites' timezone
# After the seed's admission and assignment times (the seed runs on the wall clock); every
# time below is explicit from here.
DAY0 = datetime.combine(datetime.now(TZ).date() + timedelta(days=2), datetime.min.time(), TZ)

HISTORY_SQL = """
INSERT INTO events (time, device_key, name, value_bool, value_text)
SELECT t, d.device_key, 'motion', true, NULL
FROM devices d, generate_series(%(start)s::timestamptz, %(end)s::timestamptz, '20 min') t
WHERE d.device_id = %(pir)s
  AND extract(hour FROM t AT TIME ZONE 'Asia/Shanghai') BETWEEN 7 AND 21
UNION ALL
SELECT t + interval '22 hours', d.device_key, 'presence', true, NULL
FROM devices d, generate_series(%(start)s::timestamptz, %(end)s::timestamptz - interval '1 day',
                                '1 day') t WHERE d.device_id = %(bed)s
UNION ALL
SELECT t + interval '31 hours', d.device_key, 'presence', false, NULL
FROM devices d, generate_series(%(start)s::timestamptz, %(end)s::timestamptz - interval '1 day',
                                '1 day') t WHERE d.device_id = %(bed)s
"""


def _history(url: str, suffix: str, *, last: datetime) -> None:
    """A week of daytime motion every 20 min and nights in bed, ending at ``last``."""
    query(
        url,
        HISTORY_SQL + " RETURNING 1",
        {"start": DAY0, "end": last, "pir": f"pir-{suffix}", "bed": f"bed-{suffix}"},  # type: ignore[arg-type]
    )


def _tick(url: str, now: datetime, wall: datetime | None = None) -> TickResult:
    settings = Settings(database_url=url)

    async def go() -> TickResult:
        pool = await open_pool(url, name="test-ticks", max_size=2)
        try:
            defaults = site_defaults(settings)
            await refresh_routines(
                pool, now=now, defaults=defaults, max_age_s=86400, history_days=28, batch=50
            )
            return await run_tick(
                pool,
                specs=build_tick_registry(),
                policy=policy_from_settings(settings),
                defaults=defaults,
                now=now,
                wall=wall,
            )
        finally:
            await pool.close()

    return asyncio.run(go())


def test_long_silence_gives_one_yellow_alert_and_going_out_gives_none(
    services: Services, database_url: str
) -> None:
    seed(services, database_url)
    # home-17's plan asks nothing first (tests/test_check_in_integration.py asks)
    query(
        database_url,
        "UPDATE residents SET care_plan = care_plan || '{\"check_in_s\": 0}' "
        "WHERE site_id = 'home-17' RETURNING 1",
    )
    silent_from = DAY0 + timedelta(days=7, hours=10)  # 10:00 local, then nothing
    _history(database_url, "0042", last=silent_from)
    _history(database_url, "0043", last=silent_from - timedelta(minutes=5))
    query(
        database_url,
        "INSERT INTO events (time, device_key, name, value_text) SELECT %s, device_key, 'door',"
        " 'open' FROM devices WHERE device_id = 'door-0043' RETURNING 1",
        (silent_from,),
    )
    # the door alone is no evidence of leaving; "going out" pressed on the button is
    query(
        database_url,
        "INSERT INTO events (time, device_key, name, value_bool) SELECT %s, device_key, 'away',"
        " true FROM devices WHERE device_id = 'btn-0043' RETURNING 1",
        (silent_from + timedelta(seconds=20),),
    )
    now = silent_from + timedelta(hours=3, minutes=10)
    # home-19: as silent as home-17, but her wristband reports movement ten minutes ago (an
    # ``activity`` reading above 0 is a sign of life); a reading of 0 after it is not.
    _history(database_url, "0044", last=silent_from)
    query(
        database_url,
        "INSERT INTO telemetry (time, device_key, metric, value) SELECT t, device_key, "
        "'activity', v FROM devices, (VALUES (%s::timestamptz, 20.0), (%s::timestamptz, 0.0)) "
        "AS r(t, v) WHERE device_id = 'wb-0044' RETURNING 1",
        (now - timedelta(minutes=10), now - timedelta(minutes=5)),
    )
    # judged at the (simulated) ``now``; raised and dispatched at a wall clock a day later
    wall = (now + timedelta(days=1)).astimezone(UTC)
    first = _tick(database_url, now.astimezone(UTC), wall)
    assert first.residents == 23
    alerts = query(database_url, "SELECT * FROM alerts")
    assert len(alerts) == 1, alerts
    alert = alerts[0]
    assert alert["kind"] == "inactivity"
    assert alert["colour"] == "yellow"
    resident = query(database_url, "SELECT resident_id FROM residents WHERE site_id = 'home-17'")[0]
    assert alert["resident_id"] == resident["resident_id"]
    assert "No sign of life for 3 h 10 min" in alert["explanation"]
    assert alert["details"]["state"] == "active"
    assert alert["details"]["threshold_s"] == 50 * 60  # learned 20-min spells: 30 min floor + 20
    assert alert["raised_at"] == wall
    assert silent_from < alert["occurred_at"] < now
    assert alert["details"]["routine_learned"] is True
    orders = query(database_url, "SELECT * FROM dispatch_orders")
    assert [(o["alert_id"], o["colour"], o["state"]) for o in orders] == [
        (alert["alert_id"], "yellow", "queued")
    ]
    assert orders[0]["accept_deadline"] == wall + timedelta(seconds=300)
    second = _tick(database_url, (now + timedelta(minutes=5)).astimezone(UTC))
    assert second.alerts == 0
    assert len(query(database_url, "SELECT 1 FROM alerts")) == 1
    assert len(query(database_url, "SELECT 1 FROM dispatch_orders")) == 1
    routines = query(database_url, "SELECT learned FROM resident_routines WHERE learned")
    assert len(routines) == 3  # the three residents with history; the rest fall back


WRIST_HISTORY_SQL = """
INSERT INTO telemetry (time, device_key, metric, value)
SELECT t, d.device_key, 'activity', 12.0
FROM devices d, generate_series(%(start)s::timestamptz, %(end)s::timestamptz, '20 min') t
WHERE d.device_id = %(wb)s
  AND extract(hour FROM t AT TIME ZONE 'Asia/Shanghai') BETWEEN 7 AND 21
UNION ALL  -- a reading of 0 is no movement: never a sign of life, never learnt
SELECT t + interval '10 min', d.device_key, 'activity', 0.0
FROM devices d, generate_series(%(start)s::timestamptz, %(end)s::timestamptz, '20 min') t
WHERE d.device_id = %(wb)s
"""


def test_the_routine_is_learnt_from_the_wristbands_movement_too(
    services: Services, database_url: str
) -> None:
    """home-19's resident has no PIR or door history, only her wristband's per-minute
    movement: the daily refit learns her 20-min spells from it (as the live snapshot reads
    it), not the site defaults."""
    seed(services, database_url)
    last = DAY0 + timedelta(days=7, hours=10)
    query(
        database_url,
        WRIST_HISTORY_SQL + " RETURNING 1",
        {"start": DAY0, "end": last, "wb": "wb-0044"},  # type: ignore[arg-type]
    )
    settings = Settings(database_url=database_url)

    async def go() -> None:
        pool = await open_pool(database_url, name="test-refit", max_size=2)
        try:
            await refresh_routines(
                pool,
                now=(last + timedelta(minutes=1)).astimezone(UTC),
                defaults=site_defaults(settings),
                max_age_s=86400,
                history_days=28,
                batch=50,
            )
        finally:
            await pool.close()

    asyncio.run(go())
    rows = query(
        database_url,
        "SELECT rr.learned, rr.events, rr.routine FROM resident_routines rr "
        "JOIN residents r USING (resident_id) WHERE r.site_id = 'home-19'",
    )
    assert len(rows) == 1
    # 15 readings above 0 a day for 7 days, plus the last morning's; the zeros are not read
    assert rows[0]["learned"] is True
    assert rows[0]["events"] == 7 * 45 + 10
    routine = Routine.from_json(rows[0]["routine"])
    assert routine.normal("active", 10) == 30 * 60  # 20-min spells, under the 30-min floor
