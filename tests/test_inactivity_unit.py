"""The routine model, the state rules and the inactivity detector, with explicit time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.datasets.kasteren import classify
from alerts.detectors.inactivity import InactivityDetector, human
from alerts.evaluate.replay import RESIDENT, Replayer
from alerts.routine import (
    Activity,
    FitParams,
    Routine,
    SiteDefaults,
    current_state,
    default_routine,
    fit_routine,
    gaps,
)
from alerts.snapshots import build_snapshot
from devices.domain import Colour

DAY0 = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday; the routine's timezone is UTC here
H = 3600.0


def motion(t: float, room: str = "living") -> Activity:
    return Activity(t, room, "pir", "motion")


def days_of_motion(days: int, every_min: float = 20, first_h: int = 7, last_h: int = 22) -> list:
    """Daytime motion every ``every_min`` minutes; nights without a sign of life."""
    out = []
    for d in range(days):
        base = DAY0.timestamp() + d * 86400
        t = base + first_h * H
        while t < base + last_h * H:
            out.append(motion(t))
            t += every_min * 60
    return out


def snapshot(events: list[Activity], routine: Routine, now: datetime):  # type: ignore[no-untyped-def]
    return build_snapshot(resident=RESIDENT, activities=events, routine=routine, now=now)


def test_routine_learns_the_daily_maximum_per_hour_with_floor() -> None:
    history = days_of_motion(10, every_min=20)
    # One long afternoon nap on the couch every day: 14:00-15:30 without a sign of life.
    history = [a for a in history if not (14 * H <= a.t % 86400 < 15.5 * H)]
    routine = fit_routine([history], params=FitParams(floor_s=30 * 60))
    assert routine.learned
    assert routine.usual_max(10) == 30 * 60  # 20 min spells, raised to the floor
    assert routine.usual_max(15) == 2 * H  # the nap: last seen 13:40, next 15:40
    assert routine.usual_max(3) > 6 * H  # nights are long quiet spells
    assert routine.allowance(routine.usual_max(10)) == 30 * 60 + 20 * 60


def test_too_little_history_falls_back_to_site_defaults() -> None:
    defaults = SiteDefaults(day_max_s=2 * H, night_max_s=9 * H)
    routine = fit_routine([days_of_motion(2)], defaults=defaults)
    assert not routine.learned
    assert routine.usual_max_s == default_routine(defaults).usual_max_s
    assert routine.usual_max(12) == 2 * H
    assert routine.usual_max(23) == 9 * H


def test_routine_round_trips_through_json() -> None:
    routine = fit_routine([days_of_motion(7)])
    assert Routine.from_json(routine.to_json()) == routine


def test_state_rules_bed_exit_and_bathroom() -> None:
    t = DAY0.timestamp() + 12 * H
    in_bed = [motion(t), Activity(t + 60, "bedroom", "bed_mat", "presence", True)]
    assert current_state(in_bed).in_bed is True
    out = [*in_bed, Activity(t + 120, "entrance", "door", "door", exit=True)]
    state = current_state(out)
    assert state.in_bed is False
    assert state.away_since == t + 120
    back = [*out, motion(t + 1000)]  # came back in: no longer away
    assert current_state(back).away_since is None
    bath = [*back, motion(t + 2000, "bathroom"), motion(t + 2100, "bathroom")]
    assert current_state(bath).bathroom_since == t + 2000
    assert [g.state for g in gaps([*out, motion(t + 5000)])][-1] == "away"


def test_detector_alerts_once_per_spell_with_a_readable_explanation() -> None:
    routine = fit_routine([days_of_motion(10)])
    last = DAY0 + timedelta(days=10, hours=10)
    events = [motion(last.timestamp())]
    detector = InactivityDetector()
    assert (
        detector.evaluate(
            snapshot(events, routine, last + timedelta(minutes=49)),
            now=last + timedelta(minutes=49),
        )
        is None
    )
    now = last + timedelta(hours=3, minutes=10)
    verdict = detector.evaluate(snapshot(events, routine, now), now=now)
    assert verdict is not None
    assert verdict.colour is Colour.YELLOW
    assert verdict.kind == "inactivity"
    assert "No movement for 3 h 10 min, last seen in the living" in verdict.explanation
    assert "usual maximum at this hour 30 min" in verdict.explanation
    later = now + timedelta(minutes=30)
    again = detector.evaluate(snapshot(events, routine, later), now=later)
    assert again is not None
    assert again.idem_key == verdict.idem_key


def test_detector_is_silent_when_away_in_bed_or_never_seen() -> None:
    routine = default_routine()
    t = (DAY0 + timedelta(hours=10)).timestamp()
    now = DAY0 + timedelta(hours=18)
    detector = InactivityDetector()
    away = [motion(t), Activity(t + 30, "entrance", "door", "door", exit=True)]
    bed = [motion(t), Activity(t + 30, "bedroom", "bed_mat", "presence", True)]
    for events in (away, bed, []):
        assert detector.evaluate(snapshot(events, routine, now), now=now) is None
    assert detector.evaluate(snapshot([motion(t)], routine, now), now=now) is not None


def test_bathroom_too_long_uses_its_own_threshold_and_the_care_plan() -> None:
    routine = default_routine(SiteDefaults(bathroom_max_s=20 * 60, margin_s=10 * 60))
    t = (DAY0 + timedelta(hours=10)).timestamp()
    events = [motion(t - 60), motion(t, "bathroom")]
    now = DAY0 + timedelta(hours=10, minutes=55)
    verdict = InactivityDetector().evaluate(snapshot(events, routine, now), now=now)
    assert verdict is not None
    assert "In the bathroom for 55 min (usual at most 20 min)" in verdict.explanation
    strict = build_snapshot(
        resident={**RESIDENT, "care_plan": {"inactivity": {"max_quiet_min": 15}}},
        activities=[motion(t)],
        routine=routine,
        now=DAY0 + timedelta(hours=10, minutes=26),
    )
    assert InactivityDetector().evaluate(strict, now=strict.taken_at) is not None


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
    assert 50 * 60 < alarms[0].at - last_seen <= 51 * 60  # 30 min usual + 20 min margin


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
    assert len(routine.usual_max_s) == 24
    assert all(u >= FitParams().floor_s or not routine.learned for u in routine.usual_max_s)
    assert routine.bathroom_max_s >= 0


@given(st.text(max_size=40))
def test_sensor_classification_never_fails(name: str) -> None:
    sensor = classify(name)
    assert sensor.device_kind in {"bed_mat", "door", "pir", "contact"}
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

    left = [motion(t), door(t + 30), door(t + 40)]  # open and close on the way out
    home = [*left, door(t + 2 * H), door(t + 2 * H + 20)]  # back two hours later
    assert current_state(left).away_since == t + 40
    assert current_state(home).away_since is None
    now = DAY0 + timedelta(hours=18)
    detector = InactivityDetector()
    assert detector.evaluate(snapshot(left, routine, now), now=now) is None
    verdict = detector.evaluate(snapshot(home, routine, now), now=now)
    assert verdict is not None
    assert verdict.details["spell_start"] == datetime.fromtimestamp(t + 2 * H + 20, UTC).isoformat()
    # a door opened again within minutes is the same departure, not a return
    dithering = [motion(t), door(t + 30), door(t + 300), door(t + 310)]
    assert current_state(dithering).away_since == t + 310
    # and after coming home, leaving again is a departure
    again = [*home, motion(t + 3 * H), door(t + 3 * H + 30)]
    assert current_state(again).away_since == t + 3 * H + 30
