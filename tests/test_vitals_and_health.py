"""Vital signs with hysteresis and device health: pure units, then one cycle on the real stack."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from alerts.detection.detectors.devicehealth import DeviceHealth, DeviceHealthDetector
from alerts.detection.detectors.vitals import VitalsDetector, VitalsState, VitalsWindow
from alerts.detection.periodic import run_periodic
from alerts.dispatch.policy import policy_from_settings
from devices.careplan import care_plan_for
from devices.db import open_pool
from devices.domain import CareProfile, Colour
from devices.settings import Settings
from tests.services import Services, query, running, seed, wait_until, worker_env
from tests.test_ingest_integration import _pub, wait_for_ingest

T0 = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
PLAN = care_plan_for(CareProfile.FRAIL, {"hr": {"low": 50, "high": 110}, "vitals_sustained_s": 120})


def window(values: list[float], *, metric: str = "hr", step_s: int = 10) -> VitalsWindow:
    readings = [(T0 + timedelta(seconds=i * step_s), v) for i, v in enumerate(values)]
    return VitalsWindow(5, "Zhao Min", "home-17", metric, readings, PLAN)


def run(values: list[float], state: VitalsState | None = None) -> tuple[VitalsState, object]:
    w = window(values)
    return VitalsDetector().evaluate(w, state or VitalsState(), now=w.readings[-1][0])


def test_a_short_spike_is_not_an_alert_but_a_sustained_one_is_once() -> None:
    state, verdict = run([70, 70, 140, 70])
    assert verdict is None
    state, verdict = run([70] * 3 + [130] * 13)  # 120 s above the range
    assert verdict is not None
    assert "heart rate 130/min for 2 min" in verdict.explanation  # type: ignore[attr-defined]
    assert verdict.colour is Colour.YELLOW  # type: ignore[attr-defined]
    again, repeat = run([70] * 3 + [130] * 20, state)
    assert repeat is None
    assert again.alerted


def test_hysteresis_rearms_only_clearly_inside_the_range() -> None:
    alerted = VitalsState(out_since=T0, alerted=True)
    near_limit, _ = run([108, 109, 108], alerted)  # inside, but within the 5 % margin
    assert near_limit == alerted
    cleared, _ = run([80, 82, 81], alerted)
    assert cleared == VitalsState()


def test_no_vital_signs_is_red() -> None:
    _, verdict = run([0.0] * 14)
    assert verdict is not None
    assert verdict.colour is Colour.RED  # type: ignore[attr-defined]
    assert verdict.kind == "no_vital_signs"  # type: ignore[attr-defined]


@given(st.lists(st.floats(min_value=0, max_value=250), min_size=1, max_size=60))
def test_vitals_never_alert_twice_for_one_excursion(values: list[float]) -> None:
    state, first = run(values)
    _, second = run(values, state)
    assert first is None or second is None
    assert VitalsState.from_json(state.to_json()) == state


def test_device_health_low_battery_and_stale() -> None:
    det = DeviceHealthDetector(low_battery=15)
    base = DeviceHealth(1, "wb-1", "wristband", "home-1", "home_care_bed", True, 80.0, T0)
    assert det.evaluate(base, now=T0 + timedelta(minutes=5)) == []
    low = det.evaluate(
        DeviceHealth(1, "wb-1", "wristband", "home-1", "home_care_bed", True, 9.0, T0), now=T0
    )
    assert [(v.kind, v.colour) for v in low] == [("low_battery", Colour.YELLOW)]
    stale = det.evaluate(base, now=T0 + timedelta(minutes=40))
    assert [v.kind for v in stale] == ["device_stale"]
    door = DeviceHealth(2, "door-1", "door", "sunrise", "nursing_home", True, 90.0, T0)
    assert det.evaluate(door, now=T0 + timedelta(hours=20)) == []
    assert [v.colour for v in det.evaluate(door, now=T0 + timedelta(hours=27))] == [Colour.GREEN]


def test_periodic_cycle_raises_vitals_and_battery_alerts_once(
    services: Services, database_url: str
) -> None:
    pop = seed(services, database_url)
    # readings from just after the wristband was assigned (at seeding), a little ahead of the
    # wall clock but within the accepted device clock skew; the cycles then run at chosen times
    t0 = datetime.now(UTC) + timedelta(seconds=2)
    pack = [{"bn": "wb-0042:", "bt": t0.timestamp(), "n": "hr", "v": 70.0}]
    pack += [{"n": "hr", "v": 150.0 + i % 3, "t": 30 + 10 * i} for i in range(15)]
    with running("ingest", worker_env(services, database_url)):
        wait_for_ingest(services, database_url, pop)
        _pub(services, pop, "wb-0042", "telemetry", pack)
        _pub(
            services,
            pop,
            "btn-0043",
            "status",
            {"online": True, "battery": 7, "ts": t0.timestamp()},
            retain=True,
        )
        wait_until(
            lambda: (
                len(query(database_url, "SELECT 1 FROM telemetry WHERE metric = 'hr'")) == 16
                and bool(query(database_url, "SELECT 1 FROM device_status WHERE battery = 7"))
            ),
            what="readings stored",
        )

    async def cycles() -> None:
        pool = await open_pool(database_url, name="test", max_size=2)
        try:
            for minutes in (3, 4):
                await run_periodic(
                    pool,
                    vitals=VitalsDetector(),
                    health=DeviceHealthDetector(),
                    policy=policy_from_settings(Settings()),
                    now=t0 + timedelta(minutes=minutes),
                )
        finally:
            await pool.close()

    asyncio.run(cycles())
    alerts = query(database_url, "SELECT kind, colour, site_id FROM alerts ORDER BY kind")
    assert alerts == [
        {"kind": "low_battery", "colour": "yellow", "site_id": "home-18"},
        {"kind": "vitals_hr", "colour": "red", "site_id": "home-17"},
    ]
    state = query(database_url, "SELECT subject, state FROM detector_state")
    assert len(state) == 1
    assert state[0]["state"]["alerted"] is True
