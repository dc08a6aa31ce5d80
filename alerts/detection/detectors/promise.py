"""What the inactivity watch promises one resident: if they stop moving now, or at any hour of
the day in each place they rest, when the carers are alerted at the latest.

Pure, and the detector's own rules: each answer is :meth:`InactivityDetector.deadline_of` on
the resident's snapshot (routine, care plan, the home's sensors), with the check-in rules of
:mod:`alerts.detection.check_in` when a question can be put first. So the page a carer or a
relative reads shows the same bound the tick loop will keep (issue 17: "a bound a carer can
promise"), including where it is weak: a home that cannot see sitting waits for the seated
cap, a night counted from the sleep window's end.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from alerts.detection import check_in as C
from alerts.detection.detectors.inactivity import InactivityDetector, care_plan_of, sleep_window
from alerts.detection.detectors.snapshot import ResidentSnapshot
from alerts.detection.routine import BATHROOM, Deadline
from devices.domain import RoomKind

# Where a spell can begin, and the room its last sign of life is in.
PLACES: dict[str, str] = {
    "active": RoomKind.LIVING,
    "seated": RoomKind.LIVING,
    BATHROOM: RoomKind.BATHROOM,
    "bed": RoomKind.BEDROOM,
}


@dataclass(frozen=True, slots=True)
class HourPromise:
    hour: int  # local hour the spell begins (on the hour)
    alert_after_s: float  # from the last sign of life to the alert at the latest
    state: str  # as the detector counts it (``night``: up in the night)
    learned: bool  # the resident's own normal (else the cap)
    from_window_end: bool  # counted from the sleep window's end, not from the last sign


@dataclass(frozen=True, slots=True)
class PlacePromise:
    place: str
    cap_s: float
    hours: tuple[HourPromise, ...]


@dataclass(frozen=True, slots=True)
class CurrentSpell:
    state: str
    last_sign_at: datetime
    counted_from: datetime
    alert_by: datetime  # at the latest, if nothing moves and nobody answers
    ask_from: datetime | None  # the first "press if you are fine" (None: none can be asked)
    threshold_s: float
    cap_s: float
    learned: bool


@dataclass(frozen=True, slots=True)
class Promise:
    resident_id: int
    taken_at: datetime
    timezone: str
    sleep_window: tuple[float, float]  # local hours
    routine_learned: bool
    history_days: float
    has_bed_mat: bool
    has_seat_sensor: bool
    bed_exit_watch: bool  # the night out of bed is the bed-exit watch's
    check_in_s: int  # the plan's answer window (0: nobody is asked first)
    asks_on: str | None  # the device id asked first, "sms", or None
    away: bool
    current: CurrentSpell | None
    places: tuple[PlacePromise, ...]


def _bound(d: Deadline, window_s: float) -> tuple[float, float | None]:
    """(alert at the latest, first question or None) of a spell, epoch s: with a question,
    the alert an unanswered threshold question raises (never past the cap)."""
    if window_s <= 0:
        return d.at, None
    due = C.due_at(
        d, now=C.late_ask_at(d, window_s), window_s=window_s, asked_recently=0, can_answer=True
    )
    return (d.at if due is None else due), C.ask_at(d, window_s)


def promise(
    s: ResidentSnapshot, *, can_text: bool, detector: InactivityDetector | None = None
) -> Promise:
    """``can_text``: the resident has a mobile number on record (an SMS check-in needs one
    when no button or wristband can answer, :mod:`alerts.detection.check_ins`)."""
    detector = detector or InactivityDetector()
    plan = care_plan_of(s)
    device = C.answering_device(s.devices, site_kind=s.site_kind)
    texted = plan.check_in_by_phone and can_text
    asks_on = device.device_id if device else ("sms" if texted else None)
    window_s = float(plan.check_in_s) if asks_on else 0.0
    current: CurrentSpell | None = None
    now_deadline = detector.deadline(s)
    if now_deadline is not None and s.last_activity_at is not None:
        by, ask = _bound(now_deadline, window_s)
        tz = s.last_activity_at.tzinfo
        current = CurrentSpell(
            state=now_deadline.state,
            last_sign_at=s.last_activity_at,
            counted_from=datetime.fromtimestamp(now_deadline.counted_from, tz),
            alert_by=datetime.fromtimestamp(by, tz),
            ask_from=None if ask is None else datetime.fromtimestamp(ask, tz),
            threshold_s=now_deadline.threshold_s,
            cap_s=now_deadline.cap_s,
            learned=now_deadline.learned,
        )
    zone = ZoneInfo(s.timezone)
    midnight = s.taken_at.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    has_bathroom = any(d.room_kind == RoomKind.BATHROOM for d in s.devices)
    shown = {
        "active": True,
        "seated": s.has_seat_sensor,
        BATHROOM: has_bathroom,
        "bed": s.has_bed_mat,
    }
    places: list[PlacePromise] = []
    for place, room in PLACES.items():
        if not shown[place]:
            continue
        hours: list[HourPromise] = []
        cap = 0.0
        for hour in range(24):
            onset = (midnight + timedelta(hours=hour)).timestamp()
            d = detector.deadline_of(
                s,
                state=place,
                last_sign=onset,
                bathroom_since=onset if place == BATHROOM else None,
                last_room=room,
            )
            if d is None:
                continue
            by, _ = _bound(d, window_s)
            cap = max(cap, d.cap_s)
            hours.append(HourPromise(hour, by - onset, d.state, d.learned, d.counted_from > onset))
        places.append(PlacePromise(place, cap, tuple(hours)))
    window = sleep_window(plan)
    return Promise(
        resident_id=s.resident_id,
        taken_at=s.taken_at,
        timezone=s.timezone,
        sleep_window=(window.start_h, window.end_h),
        routine_learned=s.routine.learned,
        history_days=s.routine.days,
        has_bed_mat=s.has_bed_mat,
        has_seat_sensor=s.has_seat_sensor,
        bed_exit_watch=plan.bed_exit_watch and s.has_bed_mat,
        check_in_s=int(window_s),
        asks_on=asks_on,
        away=s.rest_state == "away",
        current=current,
        places=tuple(places),
    )
