"""Ask before alarming, over the real broker and database: a quiet spell past the learned
normal asks "press if you are fine" on the resident's wristband (a ``check_in`` command on
its ``cmd`` topic, published by the command outbox); the wristband's answer, through ingest,
records the check-in and no alert is raised; a resident who does not answer is alerted when
the window ends. Tick and check loop run in the test with an explicit ``now``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import aiomqtt
import pytest

from alerts.detection import check_in as C
from alerts.detection.check_ins import run_check_ins
from alerts.detection.detectors.registry import build_tick_registry
from alerts.detection.routine_store import refresh_routines
from alerts.detection.snapshots import site_defaults
from alerts.detection.ticks import TickResult, run_tick
from alerts.dispatch.commands import publish_pending
from alerts.dispatch.policy import policy_from_settings
from devices.db import open_pool
from devices.settings import Settings
from devtools.seed import DemoPopulation
from simulators import devices as packs
from tests.services import Services, device, query, running, seed, wait_until, worker_env
from tests.test_dispatch_worker import Inbox
from tests.test_ingest_integration import wait_for_ingest

SETTINGS = Settings()
POLICY = policy_from_settings(SETTINGS)

HISTORY_SQL = """
INSERT INTO events (time, device_key, name, value_bool)
SELECT t, d.device_key, 'motion', true
FROM devices d, generate_series(%(start)s::timestamptz, %(end)s::timestamptz, '20 min') t
WHERE d.device_id = ANY(%(pirs)s) RETURNING 1
"""

MOTION_SQL = """
INSERT INTO events (time, device_key, name, value_bool)
SELECT %(t)s, device_key, 'motion', true FROM devices WHERE device_id = %(pir)s RETURNING 1
"""


def _midday_zone(now: datetime) -> str:
    """A fixed-offset zone in which ``now`` is around noon (outside any sleep window)."""
    offset = (12 - now.hour + 12) % 24 - 12  # -12..11 hours east of UTC
    return "Etc/GMT" + (f"{-offset:+d}" if offset else "")


async def _tick(url: str, now: datetime) -> TickResult:
    pool = await open_pool(url, name="test-ticks", max_size=2)
    try:
        defaults = site_defaults(Settings(database_url=url))
        await refresh_routines(
            pool, now=now, defaults=defaults, max_age_s=86400, history_days=28, batch=50
        )
        return await run_tick(
            pool, specs=build_tick_registry(), policy=POLICY, defaults=defaults, now=now
        )
    finally:
        await pool.close()


async def _checks(url: str, now: datetime) -> tuple[int, int]:
    pool = await open_pool(url, name="test-checks", max_size=2)
    try:
        return await run_check_ins(pool, policy=POLICY, limit=100, now=now, wall=now)
    finally:
        await pool.close()


async def _publish_commands(s: Services, url: str) -> int:
    pool = await open_pool(url, name="test-cmd", max_size=1)
    try:
        async with (
            aiomqtt.Client(
                "127.0.0.1",
                s.broker.port,
                username="backend",
                password=s.backend_password,
                identifier=None,
            ) as client,
            pool.connection() as conn,
        ):
            return await publish_pending(conn, client, now=datetime.now(UTC))
    finally:
        await pool.close()


@pytest.fixture
def world(services: Services, database_url: str) -> Iterator[DemoPopulation]:
    pop = seed(services, database_url)
    with running("ingest", worker_env(services, database_url)):
        wait_for_ingest(services, database_url, pop)
        yield pop


def checks(url: str) -> dict[str, dict[str, object]]:
    rows = query(
        url,
        "SELECT c.*, r.site_id FROM detector_checks c JOIN residents r USING (resident_id) "
        "WHERE c.detector = 'check_in'",
    )
    return {str(r["site_id"]): r for r in rows}


def test_a_check_in_answered_on_the_wristband_raises_nothing_an_unanswered_one_alerts(
    services: Services, database_url: str, world: DemoPopulation
) -> None:
    url = database_url
    now = datetime.now(UTC).replace(microsecond=0)
    query(url, "UPDATE sites SET timezone = %s RETURNING 1", (_midday_zone(now),))
    silent_from = now - timedelta(minutes=60)  # learned 20-min spells: threshold 50 min
    query(url, HISTORY_SQL, {"start": now - timedelta(days=7), "end": silent_from,
                             "pirs": ["pir-0042", "pir-0043"]})  # fmt: skip
    band = device(world, "wb-0042")  # home-17: answers; wb-0043 (home-18) is never read
    inbox = Inbox(services, band.device_id, band.password,
                  f"eldercare/v1/{band.site_id}/{band.device_id}/cmd")  # fmt: skip
    try:
        first = asyncio.run(_tick(url, now))
        assert first.alerts == 0  # both asked first
        asked = checks(url)
        assert set(asked) == {"home-17", "home-18"}
        mine = asked["home-17"]
        assert mine["due_at"] == now + timedelta(seconds=600)
        assert mine["done_at"] is None
        assert asyncio.run(_publish_commands(services, url)) == 2  # one per asked device
        wait_until(lambda: bool(inbox.messages), what="check_in on the wristband")
        [cmd] = inbox.messages
        assert cmd == {
            "type": "check_in",
            "check_id": str(mine["check_id"]),
            "window_s": 600,
            "quiet_since_ts": round(silent_from.timestamp(), 3),
            "until_ts": round(now.timestamp() + 600, 3),
        }
        # the resident presses "I'm fine" (the simulated wristband's answer, over MQTT)
        answer = packs.check_answer(cmd, device_id=band.device_id, now=time.time(),
                                    can_answer=True)  # fmt: skip
        assert answer is not None
        topic = f"eldercare/v1/{band.site_id}/{band.device_id}/event"
        inbox.client.publish(topic, packs.encode(answer), qos=1).wait_for_publish(5)
        wait_until(
            lambda: bool(query(url, "SELECT 1 FROM events WHERE name = 'check_in_ok'")),
            what="the answer stored",
        )
    finally:
        inbox.close()
    soon = datetime.now(UTC) + timedelta(seconds=1)
    assert asyncio.run(_checks(url, soon)) == (1, 0)  # home-17 answered; home-18 waits
    done = checks(url)
    assert str(done["home-17"]["outcome"]).startswith("answered: answered at")
    assert done["home-18"]["done_at"] is None
    # the answer started the spell again: the next tick asks nothing and raises nothing
    again = asyncio.run(_tick(url, now + timedelta(minutes=5)))
    assert again.alerts == 0
    assert len(checks(url)) == 2
    assert query(url, "SELECT 1 FROM alerts") == []
    # home-18 never answers: the alert is raised when the window ends, not before
    assert asyncio.run(_checks(url, now + timedelta(seconds=599))) == (0, 0)
    due = now + timedelta(seconds=600)
    assert asyncio.run(_checks(url, due)) == (1, 1)
    [alert] = query(url, "SELECT * FROM alerts")
    resident = query(url, "SELECT resident_id FROM residents WHERE site_id = 'home-18'")[0]
    assert alert["resident_id"] == resident["resident_id"]
    assert (alert["kind"], alert["colour"]) == ("inactivity", "yellow")
    assert alert["occurred_at"] == due
    assert alert["details"]["check_in"]["outcome"] == "no_answer"
    assert "no answer within 10 min" in alert["explanation"]
    assert checks(url)["home-18"]["outcome"] == "raised: no answer"
    assert len(query(url, "SELECT 1 FROM dispatch_orders")) == 1
    # the same spell on the next tick is the alert already raised: nothing new
    later = asyncio.run(_tick(url, due + timedelta(minutes=1)))
    assert later.alerts == 0
    assert len(query(url, "SELECT 1 FROM alerts")) == 1
    # home-17 quiet again past the normal: asked again (C.BUDGET questions per C.BUDGET_S)
    assert C.BUDGET == 2
    second = asyncio.run(_tick(url, now + timedelta(minutes=60)))
    assert second.alerts == 0
    assert len(query(url, "SELECT 1 FROM detector_checks WHERE detector = 'check_in'")) == 3
    # it moves (any sign of life answers the question), then is quiet past the normal once
    # more: the budget is spent, alerted at once
    moved = now + timedelta(minutes=61)
    query(url, MOTION_SQL, {"t": moved, "pir": "pir-0042"})
    assert asyncio.run(_checks(url, moved + timedelta(seconds=30))) == (1, 0)
    budget = asyncio.run(_tick(url, moved + timedelta(minutes=60)))
    assert budget.alerts == 1
    assert len(query(url, "SELECT 1 FROM detector_checks WHERE detector = 'check_in'")) == 3
    kinds = query(url, "SELECT r.site_id FROM alerts a JOIN residents r USING (resident_id)")
    assert sorted(str(k["site_id"]) for k in kinds) == ["home-17", "home-18"]


def test_a_check_in_that_cannot_be_judged_is_quarantined_and_its_resident_alerted(
    services: Services, database_url: str
) -> None:
    url = database_url
    seed(services, url)
    now = datetime.now(UTC).replace(microsecond=0)
    [r] = query(url, "SELECT resident_id FROM residents WHERE site_id = 'home-18'")
    query(
        url,
        "INSERT INTO detector_checks (idem_key, detector, due_at, event, created_at, "
        "resident_id, device_key, verdict) SELECT 'check_in:broken', 'check_in', %s, '{}', %s, "
        "%s, device_key, '{\"not\": \"a verdict\"}' FROM devices WHERE device_id = 'wb-0043' "
        "RETURNING 1",
        (now + timedelta(minutes=10), now, r["resident_id"]),
    )
    assert asyncio.run(_checks(url, now)) == (1, 1)
    [q] = query(url, "SELECT * FROM quarantine")
    assert q["queue"] == "detector_checks"
    assert "KeyError" in q["error"]
    [alert] = query(url, "SELECT * FROM alerts")
    assert (alert["kind"], alert["resident_id"]) == ("inactivity", r["resident_id"])
    assert alert["details"]["fallback"] is True
    [check] = query(url, "SELECT * FROM detector_checks WHERE detector = 'check_in'")
    assert str(check["outcome"]).startswith("raised: check-in failed")
    assert asyncio.run(_checks(url, now + timedelta(minutes=20))) == (0, 0)  # decided once
