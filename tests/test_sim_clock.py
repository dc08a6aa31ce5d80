"""The simulated detector clock: pure arithmetic, the admin API that sets it (only on a backend
that allows it), and the alerts worker obeying it only when allowed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from dashboard_api.app import create_app
from devices.db import open_pool
from devices.domain import SimClock
from devices.settings import Settings
from devices.simclock import DetectorClock, Instant, SimClockError, accepted
from tests.services import Services, query, seed
from tests.test_api import _login

WALL = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


def test_simulated_time_runs_speed_times_faster_and_never_passes_the_wall_clock() -> None:
    clock = SimClock(WALL - timedelta(hours=10), WALL, 20.0)
    assert clock.at(WALL) == WALL - timedelta(hours=10)
    assert clock.at(WALL + timedelta(minutes=3)) == WALL - timedelta(hours=9)
    # 10 h behind at 20x: caught up after 10/19 h of wall time, then it is the wall clock
    later = WALL + timedelta(hours=1)
    assert clock.at(later) == later


@pytest.mark.parametrize(
    ("sim", "wall", "speed", "why"),
    [
        (WALL, WALL, 0.5, "speed"),
        (WALL, WALL, 20_000.0, "speed"),
        (WALL + timedelta(seconds=1), WALL, 1.0, "ahead"),
        (WALL - timedelta(days=8), WALL, 1.0, "back"),
        (WALL.replace(tzinfo=None), WALL, 1.0, "zone"),
    ],
)
def test_a_clock_that_makes_no_sense_is_refused(
    sim: datetime, wall: datetime, speed: float, why: str
) -> None:
    with pytest.raises(SimClockError, match=why):
        accepted(SimClock(sim, wall, speed))


def test_loops_pace_by_simulated_time_within_reason() -> None:
    assert Instant(WALL, WALL).interval(60.0) == 60.0
    assert Instant(WALL, WALL, speed=20.0).interval(60.0) == 3.0
    assert Instant(WALL, WALL, speed=120.0).interval(60.0) == 2.0  # not faster than every 2 s
    assert Instant(WALL, WALL, speed=120.0).interval(1.0) == 1.0  # never slower than asked


def _detector_now(url: str, *, allowed: bool, wall: datetime) -> Instant:
    async def go() -> Instant:
        pool = await open_pool(url, name="test-clock", max_size=1)
        try:
            return await DetectorClock(allowed=allowed, wall=lambda: wall).now(pool)
        finally:
            await pool.close()

    return asyncio.run(go())


@pytest.mark.integration
def test_an_admin_sets_the_clock_and_only_an_allowing_worker_obeys_it(
    services: Services, database_url: str
) -> None:
    pop = seed(services, database_url)
    now = datetime.now(UTC)
    origin = now - timedelta(hours=6)
    body = {"sim_origin": origin.isoformat(), "wall_origin": now.isoformat(), "speed": 20}
    with TestClient(create_app(Settings(database_url=database_url))) as closed:
        r = closed.put("/api/admin/sim-clock", json=body, headers=_login(closed, pop, "admin"))
        assert r.status_code == 409, r.text
        assert "ELDERCARE_SIM_CLOCK_ALLOWED" in r.json()["detail"]
    settings = Settings(database_url=database_url, sim_clock_allowed=True)
    with TestClient(create_app(settings)) as client:
        admin, staff = _login(client, pop, "admin"), _login(client, pop, "staff-homes")
        assert client.put("/api/admin/sim-clock", json=body, headers=staff).status_code == 403
        bad = {**body, "sim_origin": (now + timedelta(hours=1)).isoformat()}
        r = client.put("/api/admin/sim-clock", json=bad, headers=admin)
        assert r.status_code == 422
        assert "ahead of the wall clock" in r.text
        r = client.put("/api/admin/sim-clock", json=body, headers=admin)
        assert r.status_code == 200, r.text
        assert r.json()["simulated"] is True
        assert r.json()["speed"] == 20
        got = client.get("/api/admin/sim-clock", headers=admin).json()
        assert datetime.fromisoformat(got["detector_now"]) < now - timedelta(hours=5)
        stored = query(database_url, "SELECT set_by FROM simulated_clock")
        assert stored == [{"set_by": "admin"}]

        wall = now + timedelta(minutes=6)  # 2 simulated hours later
        obeyed = _detector_now(database_url, allowed=True, wall=wall)
        assert obeyed == Instant(origin + timedelta(hours=2), wall, 20.0)
        ignored = _detector_now(database_url, allowed=False, wall=wall)
        assert ignored == Instant(wall, wall)

        r = client.delete("/api/admin/sim-clock", headers=admin)
        assert r.status_code == 200
        assert r.json()["simulated"] is False
    assert query(database_url, "SELECT 1 FROM simulated_clock") == []
    assert _detector_now(database_url, allowed=True, wall=now) == Instant(now, now)
