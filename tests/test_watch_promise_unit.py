"""What the watch promises a resident (alerts.detection.detectors.promise): the detector's own
deadline and check-in rules, now and by hour of the day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alerts.detection.detectors.promise import promise
from alerts.detection.detectors.snapshot import DeviceSnapshot
from alerts.detection.routine import Activity, default_routine, fit_routine
from alerts.detection.snapshots import build_snapshot
from alerts.evaluate.replay import RESIDENT
from tests.test_inactivity_night_unit import nights

DAY0 = datetime(2026, 3, 2, tzinfo=UTC)  # RESIDENT's site is UTC, a home-care bed
H = 3600.0
WRISTBAND = DeviceSnapshot(1, "wb-1", "wristband", None, True, None)


def _at(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def test_a_home_that_cannot_see_sitting_promises_the_seated_cap_and_asks_at_two_hours() -> None:
    last = (DAY0 + timedelta(hours=10)).timestamp()
    now = _at(last + 600)
    snap = build_snapshot(
        resident={**RESIDENT, "care_plan": {}},
        activities=[Activity(last, "living", "pir", "motion")],
        routine=default_routine(),
        now=now,
        devices=(WRISTBAND,),
    )
    p = promise(snap, can_text=False)
    assert p.asks_on == "wb-1"
    assert p.check_in_s == 600
    assert p.current is not None
    assert p.current.state == "active"
    # the seated cap (no seat sensor), the question from the active cap
    assert (p.current.alert_by, p.current.ask_from) == (_at(last + 4 * H), _at(last + 2 * H))
    assert [pl.place for pl in p.places] == ["active"]  # no seat, bathroom or bed sensor
    hours = {h.hour: h for h in p.places[0].hours}
    assert (hours[10].alert_after_s, hours[10].from_window_end) == (4 * H, False)
    # 02:00, in the sleep window: counted from 06:00, then the morning's cap
    assert (hours[2].alert_after_s, hours[2].from_window_end) == (8 * H, True)
    assert not p.routine_learned


def test_nobody_to_ask_promises_the_threshold_and_a_learned_night_is_shown_as_night() -> None:
    history = nights(up_for_s=15 * 60, back_seen=True)
    routine = fit_routine([history], tz=UTC)
    now = _at(history[-1].t + 60)
    snap = build_snapshot(
        resident={**RESIDENT, "care_plan": {}},
        activities=history,
        routine=routine,
        now=now,
    )
    p = promise(snap, can_text=False)
    assert p.asks_on is None
    assert p.check_in_s == 0
    assert p.current is not None
    assert p.current.ask_from is None
    hours = {h.hour: h for h in p.places[0].hours}
    # up at 02:00 outside the bedroom: this home's night normal (the floor, 30 min) + 20 min
    assert (hours[2].state, hours[2].alert_after_s, hours[2].learned) == ("night", 50 * 60, True)
    assert not hours[2].from_window_end
    assert p.routine_learned


def test_an_sms_check_in_is_promised_only_to_a_resident_with_a_number() -> None:
    last = (DAY0 + timedelta(hours=10)).timestamp()
    snap = build_snapshot(
        resident={**RESIDENT, "care_plan": {"check_in_by_phone": True}},
        activities=[Activity(last, "living", "pir", "motion")],
        routine=default_routine(),
        now=_at(last + 60),
    )
    texted, silent = promise(snap, can_text=True), promise(snap, can_text=False)
    assert (texted.asks_on, texted.check_in_s) == ("sms", 600)
    assert texted.current is not None
    assert texted.current.ask_from == _at(last + 2 * H)
    assert (silent.asks_on, silent.check_in_s) == (None, 0)
    assert silent.current is not None
    assert silent.current.ask_from is None
