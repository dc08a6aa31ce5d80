"""The night watch where no bed mat tells sleep: a resident seen up outside the bedroom in the
sleep window is watched from that moment with this home's own normal for such spells, when
it learns one within the cap; otherwise the spell is counted from the window's end, as before.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alerts.detection.detectors.inactivity import InactivityDetector
from alerts.detection.routine import (
    NIGHT,
    Activity,
    Routine,
    SiteDefaults,
    Window,
    deadline,
    fit_routine,
)
from alerts.detection.snapshots import build_snapshot
from alerts.evaluate.replay import RESIDENT, Replayer
from devices.i18n.explain import explain

DAY0 = datetime(2026, 3, 2, tzinfo=UTC)  # RESIDENT's site is UTC; sleep window 22-06
H = 3600.0
M = 60.0
CAPS = SiteDefaults().caps()


def pir(t: float, room: str) -> Activity:
    return Activity(t, room, "pir", "motion")


def nights(*, up_for_s: float, back_seen: bool, days: int = 14) -> list[Activity]:
    """Days of a home with PIRs only: up at 07:00, about by day, to bed at 22:30; at 02:00
    the resident gets up for the kitchen and is quiet there for ``up_for_s``, then back in
    the bedroom (seen: a bedroom PIR; unseen: nothing until the morning)."""
    out: list[Activity] = []
    for d in range(days):
        day = (DAY0 + timedelta(days=d)).timestamp()
        out += [pir(day + 7 * H + k * 20 * M, "living") for k in range(46)]  # 07:00-22:00
        out.append(pir(day + 22.5 * H, "bedroom"))
        up = day + 26 * H  # 02:00 the next morning
        out += [pir(up, "kitchen"), pir(up + up_for_s, "kitchen")]
        if back_seen:
            out.append(pir(up + up_for_s + 60, "bedroom"))
    return out


def learned(events: list[Activity]) -> Routine:
    return fit_routine([events], tz=UTC)


def night_deadline(  # type: ignore[no-untyped-def]
    routine: Routine, last: float, room: str, *, has_bed: bool = False, bed_exits: bool = False
):
    return deadline(
        routine,
        state="active",
        last_sign=last,
        bathroom_since=None,
        tz=UTC,
        window=Window(),
        caps=CAPS,
        has_bed=has_bed,
        has_seat=False,
        last_room=room,
        bed_exit_watched=bed_exits,
    )


AT_2 = (DAY0 + timedelta(days=20, hours=2)).timestamp()
SIX = (DAY0 + timedelta(days=20, hours=6)).timestamp()


def test_a_home_that_sees_the_return_to_bed_watches_the_night_from_the_last_sign() -> None:
    routine = learned(nights(up_for_s=15 * M, back_seen=True))
    normal = routine.normal(NIGHT, 2)
    assert normal == 30 * M  # the floor: every night spell there was shorter
    d = night_deadline(routine, AT_2, "kitchen")
    assert d is not None
    assert d.state == NIGHT
    assert (d.counted_from, d.at) == (AT_2, AT_2 + 30 * M + 20 * M)  # normal + margin
    assert d.ask_s is None  # asked at the threshold, never earlier at night
    # before: counted from the window's end, then the seated cap (no seat sensor): 10:00
    before = night_deadline(learned([]), AT_2, "kitchen")
    assert before is not None
    assert (before.state, before.at) == ("active", SIX + 4 * H)


def test_a_home_whose_nights_end_unseen_keeps_counting_from_the_window_end() -> None:
    """Back to bed unseen: a night spell outside the bedroom runs to the morning (5 h), more
    than the cap, so a night watch would alarm every night; the spell counts from 06:00."""
    routine = learned(nights(up_for_s=10 * M, back_seen=False))
    normal = routine.normal(NIGHT, 2)
    assert normal is not None
    assert routine.allowance(normal) > CAPS["seated"]
    d = night_deadline(routine, AT_2, "kitchen")
    assert d is not None
    assert d.state == "active"
    assert d.counted_from == SIX


def test_a_bed_mat_home_is_watched_at_night_unless_the_plan_watches_bed_exits() -> None:
    """Back to bed is the bed mat pressed again: an independent resident's plan does not
    watch bed exits, so a night up in the kitchen is this detector's; a frail resident's is
    the ``bed_exit`` detector's, with its own return time."""
    history: list[Activity] = []
    for a in nights(up_for_s=15 * M, back_seen=False):
        history.append(a)
        local = datetime.fromtimestamp(a.t, UTC)
        if a.room_kind == "bedroom":
            history.append(Activity(a.t + 60, "bedroom", "bed_mat", "presence", True))
        elif a.room_kind == "kitchen" and local.hour == 2 and local.minute == 0:
            history.insert(-1, Activity(a.t - 60, "bedroom", "bed_mat", "presence", False))
        elif a.room_kind == "kitchen":  # back in bed after the kitchen
            history.append(Activity(a.t + 60, "bedroom", "bed_mat", "presence", True))
    routine = learned(history)
    assert routine.normal(NIGHT, 2) == 30 * M
    independent = night_deadline(routine, AT_2, "kitchen", has_bed=True)
    frail = night_deadline(routine, AT_2, "kitchen", has_bed=True, bed_exits=True)
    assert independent is not None
    assert frail is not None
    assert (independent.state, independent.at) == (NIGHT, AT_2 + 50 * M)
    assert (frail.state, frail.counted_from) == ("active", SIX)


def test_no_night_watch_from_the_bedroom_nor_by_day() -> None:
    routine = learned(nights(up_for_s=15 * M, back_seen=True))
    in_bedroom = night_deadline(routine, AT_2, "bedroom")
    bed_mat = night_deadline(routine, AT_2, "bedroom", has_bed=True)
    by_day = night_deadline(routine, AT_2 + 8 * H, "kitchen")
    assert in_bedroom is not None
    assert bed_mat is not None
    assert by_day is not None
    assert {in_bedroom.state, bed_mat.state, by_day.state} == {"active"}
    assert in_bedroom.counted_from == bed_mat.counted_from == SIX


def test_too_little_history_watches_the_night_as_before() -> None:
    routine = learned(nights(up_for_s=15 * M, back_seen=True, days=3))  # site defaults
    d = night_deadline(routine, AT_2, "kitchen")
    assert d is not None
    assert (d.state, d.counted_from) == ("active", SIX)


def test_the_live_detector_alerts_and_says_the_resident_was_up_in_the_night() -> None:
    routine = learned(nights(up_for_s=15 * M, back_seen=True))
    history = nights(up_for_s=15 * M, back_seen=True, days=21)
    events = [a for a in history if a.t <= AT_2] + [pir(AT_2, "kitchen")]
    now = datetime.fromtimestamp(AT_2 + 51 * M, UTC)
    snap = build_snapshot(
        resident={**RESIDENT, "care_plan": {}},
        activities=events,
        routine=routine,
        now=now,
    )
    verdict = InactivityDetector().evaluate(snap, now=now)
    assert verdict is not None
    assert verdict.details["state"] == NIGHT
    assert "up in the night" in verdict.explanation
    texts = {
        locale: explain(
            "inactivity",
            verdict.details,
            resident="王奶奶",
            site_id="s",
            occurred_at=now,
            locale=locale,
            tz="Asia/Shanghai",
            now=now,
        )
        for locale in ("zh-CN", "en")
    }
    assert "夜间起床后" in texts["zh-CN"]
    assert "up in the night" in texts["en"]


def test_the_replay_keeps_simultaneous_events_in_the_order_they_came() -> None:
    """Two signs of life in the same second: the later in the log is the last (the replay's
    order no longer follows a set's, which changed from run to run)."""
    t = AT_2
    for rooms in (("kitchen", "bedroom"), ("bedroom", "kitchen")):
        events = [pir(t - 3600, "living"), pir(t, rooms[0]), pir(t, rooms[1])]
        snap = Replayer(events, learned([]), InactivityDetector(), start=t - 7200).snapshot(t + 60)
        assert snap.last_activity_room_kind == rooms[1]
