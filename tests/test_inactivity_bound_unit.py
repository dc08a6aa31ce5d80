"""The bound a carer can be promised (issue 17, session 8), with explicit time: an alert is
raised at the tick loop's last pass not after its deadline; a home that cannot see sitting
asks at the active cap, not near the seated one; an early question keeps the rest of the
budget for the threshold's; the evaluation's unanswered check-in alerts when the check loop
sees its due time."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.detection import check_in as C
from alerts.detection.detectors.inactivity import InactivityDetector
from alerts.detection.routine import Activity, Deadline, default_routine
from alerts.detection.snapshots import build_snapshot
from alerts.evaluate.external import CheckIns
from alerts.evaluate.replay import RESIDENT
from devices.settings import Settings

DAY0 = datetime(2026, 3, 2, tzinfo=UTC)
H = 3600.0
T = (DAY0 + timedelta(hours=10)).timestamp()
W = 600.0  # the plan's default window


def motion(t: float, room: str = "living") -> Activity:
    return Activity(t, room, "pir", "motion")


def seat(t: float, on: bool) -> Activity:
    return Activity(t, "living", "seat_mat", "presence", on)


def snap(events: list[Activity], now: float, **plan: object):  # type: ignore[no-untyped-def]
    return build_snapshot(
        resident={**RESIDENT, "care_plan": plan},
        activities=events,
        routine=default_routine(),
        now=datetime.fromtimestamp(now, UTC),
    )


@settings(max_examples=300, deadline=None)
@given(st.floats(0, 59.999), st.floats(0, 6 * H), st.floats(C.TICK_S, 6 * H))
def test_the_tick_loop_raises_at_its_last_pass_not_after_the_deadline(
    phase: float, start: float, threshold: float
) -> None:
    d = Deadline("active", T + start, T + start + threshold, threshold, 6 * H)
    frm = C.raise_from(d)
    first = phase + math.ceil((frm - phase) / C.TICK_S) * C.TICK_S  # a tick every 60 s
    assert first >= frm
    assert first <= d.at + 1e-6  # never after the deadline (was: up to one tick after)
    assert first > d.at - C.TICK_S - 1e-6  # and at most one tick early


def test_the_detector_speaks_one_tick_before_the_cap_when_nobody_is_asked() -> None:
    detector = InactivityDetector()
    events = [motion(T)]
    assert detector.evaluate(snap(events, T + 4 * H - 61, check_in_s=0),
                             now=DAY0 + timedelta(hours=14, seconds=-61)) is None  # fmt: skip
    at = DAY0 + timedelta(hours=14, seconds=-60)
    verdict = detector.evaluate(snap(events, at.timestamp(), check_in_s=0), now=at)
    assert verdict is not None
    assert verdict.occurred_at == at  # not in the future
    assert verdict.details["alert_at"] == datetime.fromtimestamp(T + 4 * H, UTC).isoformat()


def test_a_home_that_cannot_see_sitting_asks_at_the_active_cap() -> None:
    detector = InactivityDetector()
    no_seat = detector.deadline(snap([motion(T)], T + 60))
    assert no_seat is not None
    assert (no_seat.at, no_seat.ask_s, no_seat.ask_point) == (T + 4 * H, 2 * H, T + 2 * H)
    assert C.ask_at(no_seat, W) == T + 2 * H
    assert C.tick_from(no_seat, W) == T + 2 * H - C.TICK_S
    assert C.ask_at(no_seat, 0) == T + 4 * H  # nobody can be asked: the 4-h threshold
    now = T + 2 * H - 30
    due = C.due_at(no_seat, now=now, window_s=W, asked_recently=0, can_answer=True)
    assert due == now + W  # unanswered: alerted 2 h 10 min after the last sign, not 4 h
    # a care plan with a shorter active cap asks earlier still
    plan = {"inactivity": {"active_max_min": 90}}
    short = detector.deadline(snap([motion(T)], T + 60, **plan))
    assert short is not None
    assert short.ask_point == T + 1.5 * H
    # a home with a seat sensor: active is 2 h itself, seated asks near its own 4-h cap
    up = [seat(T - 600, True), seat(T - 300, False), motion(T)]
    active = detector.deadline(snap(up, T + 60))
    seated = detector.deadline(snap([motion(T - 60), seat(T, True)], T + 60))
    assert active is not None
    assert seated is not None
    assert (active.at, active.ask_point) == (T + 2 * H, T + 2 * H)
    assert seated.ask_s is None
    assert C.ask_at(seated, W) == T + 4 * H - W


def test_a_resident_seen_last_in_the_bedroom_at_night_is_not_woken_at_8() -> None:
    """No bed mat, no seat sensor: a spell begun in the sleep window (22-06) is counted from
    06:00; seen last in the bedroom, the resident is most likely asleep, so the question
    comes at the threshold (one window before the 4-h cap on site defaults), not at 08:00.
    Seen last anywhere else (a fall on the way to the toilet), it is still asked at 08:00."""
    detector = InactivityDetector()
    night = (DAY0 + timedelta(hours=1)).timestamp()  # 01:00 UTC; RESIDENT's site is UTC
    six = (DAY0 + timedelta(hours=6)).timestamp()
    asleep = detector.deadline(snap([motion(night, "bedroom")], six + 60))
    hall = detector.deadline(snap([motion(night, "corridor")], six + 60))
    assert asleep is not None
    assert hall is not None
    assert (asleep.counted_from, asleep.at) == (hall.counted_from, hall.at) == (six, six + 4 * H)
    assert asleep.ask_s is None
    assert C.ask_at(asleep, W) == six + 4 * H - W  # the cap is still the promise
    assert (hall.ask_s, C.ask_at(hall, W)) == (2 * H, six + 2 * H)
    # by day the bedroom is a room like any other: asked at the active cap
    day = detector.deadline(snap([motion(T, "bedroom")], T + 60))
    assert day is not None
    assert day.ask_point == T + 2 * H


def test_an_early_question_keeps_the_rest_of_the_budget_for_the_threshold() -> None:
    d = InactivityDetector().deadline(snap([motion(T)], T + 60))
    assert d is not None
    early, late = T + 2 * H - 60, C.late_ask_at(d, W) - C.TICK_S
    assert late == T + 4 * H - W - C.TICK_S
    assert C.is_early(d, now=early, window_s=W)
    assert not C.is_early(d, now=late, window_s=W)
    spent = C.EARLY_BUDGET
    assert C.due_at(d, now=early, window_s=W, asked_recently=spent, can_answer=True) is None
    # the question then waits for the threshold's (one window before the cap, at the tick
    # before it), due a window later: within the cap, as before session 8
    assert C.due_at(d, now=late, window_s=W, asked_recently=spent, can_answer=True) == late + W
    assert late + W <= T + 4 * H
    assert C.due_at(d, now=late, window_s=W, asked_recently=C.BUDGET, can_answer=True) is None
    assert C.EARLY_BUDGET < C.BUDGET


@settings(max_examples=300, deadline=None)
@given(
    st.floats(0, 6 * H),
    st.floats(60, 6 * H),
    st.one_of(st.none(), st.floats(0, 6 * H)),
    st.floats(0, 1800),
    st.floats(0, 7 * H),
    st.integers(0, 3),
)
def test_an_unanswered_question_never_alerts_past_the_cap_nor_before_the_ask_point(
    threshold: float, cap: float, ask_s: float | None, window: float, late: float, asked: int
) -> None:
    threshold = min(threshold, cap)
    d = Deadline("active", T, T + threshold, threshold, cap, ask_s=ask_s)
    assert T <= d.ask_point <= d.at
    ask = C.ask_at(d, window)
    assert T <= C.tick_from(d, window) <= ask <= d.at
    now = C.tick_from(d, window) + late
    due = C.due_at(d, now=now, window_s=window, asked_recently=asked, can_answer=True)
    if due is not None:
        assert due <= T + cap
        assert due >= d.ask_point
        assert due - now >= C.MIN_ANSWER_S
        assert asked < (C.EARLY_BUDGET if C.is_early(d, now=now, window_s=window) else C.BUDGET)


def test_the_evaluation_alerts_an_unanswered_spell_when_the_check_loop_sees_it_due() -> None:
    detector = InactivityDetector()
    s = snap([motion(T)], T + 3 * H, check_in_s=int(W))
    first = C.tick_from(detector.deadline(s), W)  # type: ignore[arg-type]
    fresh = CheckIns(detector, W)
    assert fresh.unanswered(s, first) == (first + W, True)  # asked early, due 10 min later
    # one question in the budget window already: the early one waits for the threshold's
    used = CheckIns(detector, W, asked=[T - H])
    alarm, asked = used.unanswered(s, first)
    assert asked
    assert alarm == T + 4 * H - C.TICK_S  # asked one tick before cap - window, due a window on
    # budget spent, or a plan that asks nothing: the last tick not after the 4-h threshold
    spent = CheckIns(detector, W, asked=[T - H, T - 2 * H])
    assert spent.unanswered(s, first) == (T + 4 * H - C.TICK_S, False)
    silent = CheckIns(detector, 0.0)
    s0 = snap([motion(T)], T + 3 * H, check_in_s=0)
    assert silent.unanswered(s0, C.tick_from(detector.deadline(s0), 0)) == (  # type: ignore[arg-type]
        T + 4 * H - C.TICK_S,
        False,
    )


@pytest.mark.parametrize("bad", [0, 61, 600])
def test_a_tick_longer_than_the_bound_assumes_is_refused_at_start(bad: float) -> None:
    assert Settings(tick_interval_s=30).tick_interval_s == 30
    with pytest.raises(pydantic.ValidationError):
        Settings(tick_interval_s=bad)
