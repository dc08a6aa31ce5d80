"""While a life-safety lane process beats, the main alerts workers leave it each young sos,
fall and smoke row (a main worker judging a batch of acc windows offered an SOS up to 2.6 s
late under load); a lane that stopped beating, or one that holds a row too long, leaves the
row to them at once. Against the real database; the row's age is set by the test."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import psycopg

from alerts.detection.detectors.registry import build_registry, route
from alerts.detection.worker import LaneHold, run_cycle
from alerts.dispatch.policy import policy_from_settings
from devices.db import open_pool
from devices.settings import Settings
from tests.services import Services, query, seed

POLICY = policy_from_settings(Settings())
HOLD = LaneHold(hold_s=1.0, stale_s=15.0)


def _rows(url: str, *, age_s: float) -> None:
    """An SOS and a door event in the outbox, stored ``age_s`` seconds ago."""
    with psycopg.connect(url) as conn:
        for name, device_id in (("sos", "btn-0042"), ("door", "door-r101")):
            conn.execute(
                "INSERT INTO stream_outbox (kind, device_key, time, name, value_bool, created_at)"
                " SELECT 'event', device_key, now(), %s, true,"
                " now() - make_interval(secs => %s) FROM devices WHERE device_id = %s",
                (name, age_s, device_id),
            )


def _lane_beats(url: str, *, beat_age_s: float, stopped: bool = False) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO worker_heartbeats (worker_id, process, hostname, pid, started_at,"
            " beat_at, stopped_at) VALUES ('lane-1', 'alerts-lane', 'h', 1, now(),"
            " now() - make_interval(secs => %s), CASE WHEN %s THEN now() END)"
            " ON CONFLICT (worker_id) DO UPDATE SET beat_at = EXCLUDED.beat_at,"
            " stopped_at = EXCLUDED.stopped_at",
            (beat_age_s, stopped),
        )


def _cycle(url: str, *, lane_hold: LaneHold | None, life_safety_only: bool = False) -> int:
    specs = build_registry(fall_min_confidence=0.2, fall_confirm_confidence=0.7)

    async def go() -> int:
        pool = await open_pool(url, name="t", max_size=2)
        try:
            done = await run_cycle(
                pool,
                routes=route(specs),
                policy=POLICY,
                limit=50,
                now=datetime.now(UTC),
                life_safety_only=life_safety_only,
                lane_hold=lane_hold,
            )
            return done.claimed
        finally:
            await pool.close()

    return asyncio.run(go())


def _left(url: str) -> list[object]:
    return [r["name"] for r in query(url, "SELECT name FROM stream_outbox ORDER BY id")]


def test_a_main_worker_leaves_a_young_sos_to_a_live_lane(
    services: Services, database_url: str
) -> None:
    seed(services, database_url)
    _lane_beats(database_url, beat_age_s=2)
    _rows(database_url, age_s=0.2)
    # both of the main worker's loops take the door event, neither the SOS
    assert _cycle(database_url, lane_hold=HOLD, life_safety_only=True) == 0
    assert _cycle(database_url, lane_hold=HOLD) == 1
    assert _left(database_url) == ["sos"]
    # the lane itself holds nothing back
    assert _cycle(database_url, lane_hold=None, life_safety_only=True) == 1
    assert _left(database_url) == []
    assert len(query(database_url, "SELECT 1 FROM dispatch_orders")) == 1


def test_a_row_the_lane_did_not_take_in_time_is_taken_by_the_main_worker(
    services: Services, database_url: str
) -> None:
    seed(services, database_url)
    _lane_beats(database_url, beat_age_s=2)
    _rows(database_url, age_s=1.5)
    assert _cycle(database_url, lane_hold=HOLD, life_safety_only=True) == 1
    assert _left(database_url) == ["door"]


def test_a_lane_that_stopped_beating_or_stopped_holds_nothing(
    services: Services, database_url: str
) -> None:
    seed(services, database_url)
    _lane_beats(database_url, beat_age_s=20)  # killed: its last beat is stale
    _rows(database_url, age_s=0.1)
    assert _cycle(database_url, lane_hold=HOLD) == 2
    _lane_beats(database_url, beat_age_s=1, stopped=True)  # stopped on purpose
    _rows(database_url, age_s=0.1)
    assert _cycle(database_url, lane_hold=HOLD) == 2
    assert _left(database_url) == []
    # both presses judged (the second joins the first's incident)
    assert len(query(database_url, "SELECT 1 FROM alerts WHERE kind = 'sos'")) == 2
