"""The resting-place routine, the state rules and the inactivity detector, with explicit time."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from alerts.detection.check_in import TICK_S
from alerts.detection.detectors.inactivity import InactivityDetector, human
from alerts.detection.routine import (
    Activity,
    FitParams,
    Routine,
    SiteDefaults,
    current_state,
    default_routine,
    fit_routine,
    gaps,
    is_sign_of_life,
)
from alerts.detection.snapshots import build_snapshot
from alerts.evaluate.datasets.external import FormatError, load_external
from alerts.evaluate.datasets.kasteren import Home, Label, classify
from alerts.evaluate.external import evaluate_home, poisson_interval
from alerts.evaluate.inactivity import home_rng
from alerts.evaluate.replay import RESIDENT, Replayer
from devices.domain import Colour

DAY0 = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday; the routine's timezone is UTC here
H = 3600.0
FIXTURE = Path(__file__).parent / "fixtures" / "inactivity-home"


def motion(t: float, room: str = "living") -> Activity:
    return Activity(t, room, "pir", "motion")


def seat(t: float, on: bool) -> Activity:
    return Activity(t, "living", "seat_mat", "presence", on)


def days_of_motion(
    days: int, every_min: float = 20, first_h: int = 7, last_h: int = 22
) -> list[Activity]:
    """Daytime motion every ``every_min`` minutes; nights without a sign of life."""
    out = []
    for d in range(days):
        base = DAY0.timestamp() + d * 86400
        t = base + first_h * H
        while t < base + last_h * H:
            out.append(motion(t))
            t += every_min * 60
    return out


def snapshot(events: list[Activity], routine: Routine, now: datetime, **resident: object):  # type: ignore[no-untyped-def]
    """A snapshot whose care plan asks nothing first (check-ins: tests/test_check_in_unit.py),
    so the detector's verdict comes at the threshold."""
    plan = resident.pop("care_plan", {})
    assert isinstance(plan, dict)
    return build_snapshot(
        resident={**RESIDENT, "care_plan": {"check_in_s": 0, **plan}, **resident},
        activities=events,
        routine=routine,
        now=now,
    )


def alert_delay(events: list[Activity], routine: Routine, **resident: object) -> float:
    """Seconds from the last sign of life to the alert if nothing moves again (the deadline;
    the tick loop raises it from one tick before, at its last pass not after it)."""
    detector = InactivityDetector()
    snap = snapshot(events, routine, datetime.fromtimestamp(events[-1].t + 1, UTC), **resident)
    d = detector.deadline(snap)
    assert d is not None
    at = datetime.fromtimestamp(d.at - TICK_S, UTC)
    assert (
        detector.evaluate(
            snapshot(events, routine, at - timedelta(seconds=1)), now=at - timedelta(seconds=1)
        )
        is None
    )
    assert detector.evaluate(snapshot(events, routine, at, **resident), now=at) is not None
    assert snap.last_activity_at is not None
    return float(d.at - snap.last_activity_at.timestamp())


def test_learned_normal_is_by_onset_hour_and_never_above_the_cap() -> None:
    history = days_of_motion(10, every_min=20)
    # A daily 14:00-15:30 quiet spell (the last motion 13:40, the next 15:40: 2 h).
    history = [a for a in history if not (14 * H <= a.t % 86400 < 15.5 * H)]
    routine = fit_routine([history])
    assert routine.learned
    assert routine.normal("active", 10) == 30 * 60  # 20 min spells, raised to the floor
    assert routine.normal("active", 13) == 2 * H
    # threshold: learned + max(20 min, 10 %), but never above the 4 h cap (no seat sensor)
    assert routine.threshold("active", 10, 4 * H) == 50 * 60
    assert routine.threshold("active", 13, 4 * H) == 2 * H + 20 * 60
    assert routine.threshold("active", 13, 2 * H) == 2 * H


def test_the_threshold_does_not_climb_with_the_clock() -> None:
    """Home A in issue 17: last seen 16:34, alerted 9 h 26 min later under the old rule."""
    routine = fit_routine([days_of_motion(10)])
    last = (DAY0 + timedelta(days=10, hours=16, minutes=34)).timestamp()
    delay = alert_delay([motion(last - 600), motion(last)], routine)
    assert delay == 50 * 60  # the 16 h normal plus margin, whatever hour the alert falls in


def test_too_little_history_uses_the_caps() -> None:
    routine = fit_routine([days_of_motion(2)])
    assert not routine.learned
    assert routine.threshold("active", 12) == 2 * H
    assert routine.threshold("seated", 12) == 4 * H
    assert routine.threshold("bathroom", 12) == 45 * 60
    assert routine.caps_s == SiteDefaults().caps()


def test_routine_round_trips_through_json_and_an_old_one_is_the_defaults() -> None:
    routine = fit_routine([days_of_motion(7)])
    assert Routine.from_json(routine.to_json()) == routine
    old = {"usual_max_s": [7200.0] * 24, "bathroom_max_s": 2400.0, "margin_s": 1200.0}
    assert Routine.from_json(old) == default_routine()


def test_seated_is_its_own_state_with_the_seated_cap() -> None:
    t = (DAY0 + timedelta(hours=13)).timestamp()
    routine = default_routine()
    sitting = [motion(t - 60), seat(t, True)]
    assert current_state(sitting).state == "seated"
    assert alert_delay(sitting, routine) == 4 * H
    stood_up = [*sitting, seat(t + H, False)]
    assert current_state(stood_up).state == "active"
    assert alert_delay(stood_up, routine) == 2 * H  # a seat sensor in the home: 2 h active
    # motion in another room ends "seated"; in the same room it does not
    assert current_state([*sitting, motion(t + 60)]).state == "seated"
    assert current_state([*sitting, motion(t + 60, "kitchen")]).state == "active"


def test_without_a_seat_sensor_active_takes_the_seated_cap() -> None:
    t = (DAY0 + timedelta(hours=13)).timestamp()
    assert alert_delay([motion(t)], default_routine()) == 4 * H


def test_bathroom_counts_from_entering_with_its_cap_and_the_care_plan() -> None:
    t = (DAY0 + timedelta(hours=10)).timestamp()
    events = [seat(t - 7200, False), motion(t, "bathroom"), motion(t + 600, "bathroom")]
    assert current_state(events).state == "bathroom"
    assert alert_delay(events, default_routine()) == 45 * 60 - 600
    plan = {"inactivity": {"bathroom_max_min": 30}}
    assert alert_delay(events, default_routine(), care_plan=plan) == 30 * 60 - 600
    verdict = InactivityDetector().evaluate(
        snapshot(events, default_routine(), DAY0 + timedelta(hours=11)),
        now=DAY0 + timedelta(hours=11),
    )
    assert verdict is not None
    assert verdict.colour is Colour.YELLOW
    assert verdict.details["state"] == "bathroom"
    assert verdict.details["cap_s"] == 45 * 60
    assert (
        verdict.details["last_sign_of_life_at"] == datetime.fromtimestamp(t + 600, UTC).isoformat()
    )
    assert "in the bathroom" in verdict.explanation


def test_flush_and_appliance_ends_are_not_signs_of_life_wristband_movement_is() -> None:
    assert is_sign_of_life(Activity(0, "bathroom", "flush", "flush", True))
    assert not is_sign_of_life(Activity(0, "bathroom", "flush", "flush", False))
    assert not is_sign_of_life(Activity(0, "kitchen", "appliance", "appliance", False))
    assert is_sign_of_life(Activity(0, None, "wristband", "activity", 3.0))
    assert not is_sign_of_life(Activity(0, None, "wristband", "activity", 0.0))
    assert not is_sign_of_life(Activity(0, None, "wristband", "steps", 0.0))
    # issue 17: a flush ending 18 s after lying down does not cancel "in bed"
    t = (DAY0 + timedelta(hours=23)).timestamp()
    night = [
        Activity(t, "bathroom", "flush", "flush", True),
        Activity(t + 60, "bedroom", "bed_mat", "presence", True),
        Activity(t + 78, "bathroom", "flush", "flush", False),
    ]
    assert current_state(night).state == "bed"


def test_in_bed_at_night_counts_from_the_end_of_the_sleep_window() -> None:
    t = (DAY0 + timedelta(hours=23)).timestamp()
    bed = [motion(t - 60, "bedroom"), Activity(t, "bedroom", "bed_mat", "presence", True)]
    # window 22-06 h (care plan default): from 06:00 next day plus the 4 h bed cap
    assert alert_delay(bed, default_routine()) == 7 * H + 4 * H
    # a quiet evening at home in a home with a bed mat is not moved into the morning
    e = t - 3 * H  # 20:00
    evening = [motion(e - 60, "bedroom"), Activity(e, "bedroom", "bed_mat", "presence", True)]
    evening += [Activity(e + 60, "bedroom", "bed_mat", "presence", False), motion(e + 120)]
    assert alert_delay(evening, default_routine()) == 4 * H  # no seat sensor: the seated cap
    # up at night and quiet: counted from the end of the window (the bed-exit watch's night)
    up = [*bed, Activity(t + 60, "bedroom", "bed_mat", "presence", False), motion(t + 120)]
    assert alert_delay(up, default_routine()) == 7 * H - 120 + 4 * H


def test_detector_is_silent_when_away_or_never_seen_and_alerts_once_per_spell() -> None:
    routine = default_routine()
    t = (DAY0 + timedelta(hours=10)).timestamp()
    now = DAY0 + timedelta(hours=18)
    detector = InactivityDetector()
    door = [motion(t), Activity(t + 30, "entrance", "door", "door", exit=True)]
    marked = [*door, Activity(t + 60, None, "label", "away", True)]
    radar_empty = [*door, Activity(t + 90, "living", "radar", "presence", False)]
    for events in (marked, radar_empty, []):
        assert detector.evaluate(snapshot(events, routine, now), now=now) is None
    # the exit door alone is no evidence of leaving: a collapse just after it is alerted
    # within the day cap (4 h without a seat sensor), counted from the door
    door_only = detector.evaluate(snapshot(door, routine, now), now=now)
    assert door_only is not None
    assert door_only.details["state"] == "door"
    assert door_only.occurred_at == datetime.fromtimestamp(t + 30 + 4 * H, UTC)
    first = detector.evaluate(snapshot([motion(t)], routine, now), now=now)
    later = now + timedelta(minutes=30)
    again = detector.evaluate(snapshot([motion(t)], routine, later), now=later)
    assert first is not None
    assert again is not None
    assert first.idem_key == again.idem_key
    assert "No sign of life for 8 h" in first.explanation


def test_replayer_debounces_by_idem_key() -> None:
    routine = fit_routine([days_of_motion(10)])
    events = days_of_motion(11)
    start = DAY0.timestamp() + 10 * 86400 + 12 * H
    silenced = [a for a in events if not start <= a.t < start + 4 * H]
    alarms = Replayer(silenced, routine, InactivityDetector(), start=start - 86400).run(
        start, start + 4 * H, 60
    )
    assert len(alarms) == 1
    last_seen = start - 20 * 60  # the last motion before the silence
    # 30 min normal + 20 min margin, raised at the last tick not after it
    assert 49 * 60 <= alarms[0].at - last_seen <= 50 * 60


@pytest.mark.parametrize("k", [0, 1, 4, 20, 67])
def test_poisson_interval_is_the_exact_garwood_interval(k: int) -> None:
    lo, hi = poisson_interval(k, 10.0)
    want_lo = 0.0 if k == 0 else stats.chi2.ppf(0.025, 2 * k) / 2 / 10
    want_hi = stats.chi2.ppf(0.975, 2 * k + 2) / 2 / 10
    assert math.isclose(lo, want_lo, rel_tol=1e-6, abs_tol=1e-9)
    assert math.isclose(hi, want_hi, rel_tol=1e-6)


def test_each_home_draws_from_its_own_generator() -> None:
    # seeded from the seed and the home's name: the same whatever other homes are listed
    a = home_rng(20261203, "house-E").uniform(size=4)
    assert np.array_equal(a, home_rng(20261203, "house-E").uniform(size=4))
    assert not np.array_equal(a, home_rng(20261203, "house-D").uniform(size=4))
    assert not np.array_equal(a, home_rng(20261204, "house-E").uniform(size=4))


def test_the_example_home_loads_in_the_documented_format() -> None:
    home = load_external(FIXTURE)
    assert home.timezone == "Europe/London"
    assert len(home.events) == 16
    assert {a.device_kind for a in home.events} >= {"seat_mat", "flush", "wristband"}
    assert sum(a.exit for a in home.events) == 4
    assert [lab.name for lab in home.labels] == ["away", "sleeping", "other"]
    assert not home.at_home_awake(home.labels[0].start, home.labels[0].start + 60)
    state = current_state([a for a in home.events if a.t <= home.events[8].t])
    assert state.state == "seated"


def test_a_home_outside_the_format_is_refused_with_file_and_line(tmp_path: Path) -> None:
    for name in ("devices.csv", "labels.csv", "home.json"):
        (tmp_path / name).write_bytes((FIXTURE / name).read_bytes())
    (tmp_path / "events.csv").write_text(
        "time,device,name,value\n2026-03-02T07:00:00Z,nope,motion,true\n"
    )
    with pytest.raises(FormatError, match=r"events\.csv:2"):
        load_external(tmp_path)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(min_value=0, max_value=5 * 86400), min_size=2, max_size=60),
    st.sampled_from(["living", "bathroom", "kitchen", None]),
)
def test_gaps_cover_the_history_and_routine_is_sane(times: list[float], room: str | None) -> None:
    events = [motion(DAY0.timestamp() + t, room) for t in times]  # type: ignore[arg-type]
    found = gaps(events)
    span = max(times) - min(times)
    assert abs(sum(g.end - g.start for g in found) - span) < 1e-3
    routine = fit_routine([events], params=FitParams(min_days=0.0, min_samples=1))
    for state in ("active", "seated", "bathroom", "bed"):
        for h in range(24):
            assert 0 < routine.threshold(state, h) <= SiteDefaults().caps()[state]


@given(st.text(max_size=40))
def test_sensor_classification_never_fails(name: str) -> None:
    sensor = classify(name)
    assert sensor.device_kind in {"bed_mat", "seat_mat", "flush", "door", "pir", "contact"}
    assert not sensor.exit or sensor.room_kind == "entrance"


def test_human_durations() -> None:
    assert human(3 * H + 600) == "3 h 10 min"
    assert human(55 * 60) == "55 min"
    assert human(2 * H) == "2 h"


def test_coming_home_after_an_absence_is_home_and_a_silence_then_is_inactivity() -> None:
    routine = default_routine()
    t = (DAY0 + timedelta(hours=10)).timestamp()

    def door(at: float) -> Activity:
        return Activity(at, "entrance", "door", "door", exit=True)

    out = Activity(t + 35, None, "label", "away", True)  # "going out": evidence of leaving
    left = [motion(t), door(t + 30), out, door(t + 40)]  # open and close on the way out
    home = [*left, door(t + 2 * H), door(t + 2 * H + 20)]  # back two hours later
    assert current_state(left).away_since == t + 40
    assert current_state(home).away_since is None
    now = DAY0 + timedelta(hours=18)
    detector = InactivityDetector()
    assert detector.evaluate(snapshot(left, routine, now), now=now) is None
    verdict = detector.evaluate(snapshot(home, routine, now), now=now)
    assert verdict is not None
    assert verdict.details["spell_start"] == datetime.fromtimestamp(t + 2 * H + 20, UTC).isoformat()
    dithering = [motion(t), door(t + 30), door(t + 300), door(t + 310)]
    assert current_state(dithering).away_since == t + 310
    again = [*home, motion(t + 3 * H), door(t + 3 * H + 30)]
    assert current_state(again).away_since == t + 3 * H + 30


def test_a_declared_absence_lasts_until_the_exit_door_or_back_whatever_moves_inside() -> None:
    t = (DAY0 + timedelta(hours=10)).timestamp()

    def door(at: float) -> Activity:
        return Activity(at, "entrance", "door", "door", exit=True)

    def mark(at: float, out: bool) -> Activity:
        return Activity(at, None, "label", "away", out)

    left = [motion(t), mark(t + 10, True), door(t + 30)]  # said "going out", then left
    inside = [*left, motion(t + H, "kitchen"), motion(t + H + 60, "bedroom")]  # someone else
    assert current_state(inside).state == "away"
    assert current_state(inside).away_since == t + 30
    states = [g.state for g in gaps([*inside, motion(t + 3 * H)])]
    assert states == ["active", "away", "away", "away"]  # not learned as spells at home
    home = [*inside, door(t + 3 * H)]  # back through the exit door
    assert current_state(home).state == "active"
    assert current_state([*home, motion(t + 4 * H)]).state == "active"
    pressed = [*inside, mark(t + 3 * H, False)]  # "back home" pressed, no door seen
    assert current_state(pressed).state == "active"
    # without the mark, or with only a radar's empty room, movement inside is the resident
    undeclared = [motion(t), door(t + 30), motion(t + H, "kitchen")]
    assert current_state(undeclared).state == "active"
    radar = [motion(t), door(t + 30), Activity(t + 90, "living", "radar", "presence", False)]
    assert current_state([*radar, motion(t + H, "kitchen")]).state == "active"
    # a mark without the exit door is no absence
    assert current_state([motion(t), mark(t + 10, True), motion(t + H)]).state == "active"
    # "going out" pressed just after "back": the next exit door is leaving again, not the
    # door closing behind the person coming in
    again = [*pressed, mark(t + 3 * H + 60, True), door(t + 3 * H + 70)]
    assert current_state(again).state == "away"
    assert current_state([*pressed, door(t + 3 * H + 70)]).state == "active"  # closing behind
    # "back" and "going out" at the same instant (their order unknown): the door closing
    # behind the person coming in is not a departure, in either order
    for marks in ([mark(t + 3 * H, False), mark(t + 3 * H, True)],) * 2:
        tied = [*inside, *marks, door(t + 3 * H), door(t + 3 * H + 20)]
        assert current_state(tied).state == "active"
        marks.reverse()


def test_a_bathroom_door_is_a_passage_and_a_flush_does_not_open_a_stay() -> None:
    t = (DAY0 + timedelta(hours=10)).timestamp()
    door = Activity(t, "bathroom", "door", "door", True)
    flush = Activity(t + 60, "bathroom", "flush", "flush", True)
    assert current_state([motion(t - 60), door]).state == "active"
    assert current_state([motion(t - 60), flush]).state == "active"
    inside = [motion(t - 60), motion(t, "bathroom"), flush]
    assert current_state(inside).state == "bathroom"
    assert current_state(inside).bathroom_since == t
    assert current_state([*inside, Activity(t + 90, "bathroom", "door", "door", False)]).state == (
        "active"
    )


def test_care_plan_caps_override_the_site_and_max_quiet_caps_them_all() -> None:
    from devices.careplan import CarePlan, CarePlanError, care_plan_for
    from devices.domain import CareProfile

    plan = care_plan_for(CareProfile.FRAIL, {"inactivity": {"seated_max_min": 60}})
    site = SiteDefaults().caps()
    assert plan.inactivity.merged_caps_s(site) == {**site, "seated": 3600.0}
    tight = CarePlan.model_validate({"inactivity": {"max_quiet_min": 30}})
    assert tight.inactivity.merged_caps_s(site) == {k: 1800.0 for k in site}
    loose = CarePlan.model_validate({"inactivity": {"max_quiet_min": 600}})
    assert loose.inactivity.merged_caps_s(site) == site  # never raises a cap
    with pytest.raises(CarePlanError):
        care_plan_for(CareProfile.FRAIL, {"inactivity": {"seated_max_min": -5}})
    t = (DAY0 + timedelta(hours=13)).timestamp()
    sitting = [motion(t - 60), seat(t, True)]
    assert (
        alert_delay(sitting, default_routine(), care_plan={"inactivity": {"seated_max_min": 60}})
        == H
    )


def test_the_evaluation_judges_untouched_days_only_up_to_the_recordings_end() -> None:
    # three days of daytime motion; the recording stops at 09:00 on the third (labelled) day
    events = [a for a in days_of_motion(3) if a.t <= DAY0.timestamp() + 2 * 86400 + 9 * H]
    label = Label(DAY0.timestamp() + 2 * 86400 + 8 * H, events[-1].t, "other")
    home = Home("ends-mid-morning", tuple(events), (label,))
    run = evaluate_home(
        home, InactivityDetector(), rng=np.random.default_rng(1), per_day=0, tick_s=300.0
    )
    assert run.days == 1
    assert run.false_alarms == []  # not "no sign of life for 4 h" at 13:00: nothing recorded
    kept = Home("ends-mid-morning", (*events, motion(events[-1].t + 8 * H)), (label,))
    late = evaluate_home(
        kept, InactivityDetector(), rng=np.random.default_rng(1), per_day=0, tick_s=300.0
    )
    assert [f.state for f in late.false_alarms] == ["active"]  # recorded and quiet: judged
