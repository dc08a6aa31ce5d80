"""Inactivity: a quiet spell longer than this resident's normal for where they rest.

The state at the last sign of life (``active`` at home, ``seated`` in a chair or on the couch,
in the ``bathroom``, in ``bed``; silent while ``away``) picks the threshold: the learned normal
length for that state at the hour the spell began (:mod:`alerts.detection.routine`), plus margin, never
above the state's cap (care plan ``inactivity`` section, else the site defaults). So the time
from the last sign of life to the alert is known when the spell begins, and does not climb
with the clock. Silent for residents without any sign of life on record (a device-stale
detector's job).

One alert per spell: the idem key is the resident and the start of the spell, so every tick
during the same silence repeats the same key and is stored once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from alerts.detection import check_in
from alerts.detection.detectors.base import Verdict
from alerts.detection.detectors.snapshot import ResidentSnapshot
from alerts.detection.routine import Deadline, Window, deadline
from devices.careplan import CarePlan, CarePlanError, care_plan_for
from devices.domain import CareProfile, Colour

WHERE = {
    "active": "at home, not resting in a bed or a seat the sensors see",
    "seated": "seated (chair or couch)",
    "bathroom": "in the bathroom",
    "bed": "in bed",
    "door": "quiet since the exit door, not known to have left",
    "night": "up in the night, quiet outside the bedroom since",
}


def human(seconds: float) -> str:
    """A duration as a carer reads it: "3 h 10 min", "55 min"."""
    minutes = int(seconds // 60)
    h, m = divmod(minutes, 60)
    if h and m:
        return f"{h} h {m} min"
    return f"{h} h" if h else f"{m} min"


def care_plan_of(s: ResidentSnapshot) -> CarePlan:
    """The resident's care plan in force (the profile's defaults if the stored plan is invalid)."""
    try:
        profile = CareProfile(s.care_profile)
    except ValueError:
        profile = CareProfile.INDEPENDENT
    try:
        return care_plan_for(profile, dict(s.care_plan))
    except CarePlanError:
        return care_plan_for(profile, None)


def sleep_window(plan: CarePlan) -> Window:
    """The care plan's sleep window in local hours."""
    start, end = plan.night_start, plan.night_end
    return Window(start.hour + start.minute / 60, end.hour + end.minute / 60)


@dataclass(frozen=True, slots=True)
class InactivityDetector:
    name: str = "inactivity"
    fold_s: int = 60

    def deadline(self, s: ResidentSnapshot) -> Deadline | None:
        """When the current spell becomes an alert (None: away or never seen)."""
        if s.last_activity_at is None:
            return None
        return self.deadline_of(
            s,
            state=s.rest_state,
            last_sign=s.last_activity_at.timestamp(),
            bathroom_since=s.in_bathroom_since.timestamp() if s.in_bathroom_since else None,
            last_room=s.last_activity_room_kind,
        )

    def deadline_of(
        self,
        s: ResidentSnapshot,
        *,
        state: str,
        last_sign: float,
        bathroom_since: float | None,
        last_room: str | None,
    ) -> Deadline | None:
        """When a spell of this resident (their routine, plan and home's sensors) begun in
        ``state`` at ``last_sign`` would become an alert: the current one, or one asked
        about (:mod:`alerts.detection.detectors.promise`)."""
        plan = care_plan_of(s)
        return deadline(
            s.routine,
            state=state,
            last_sign=last_sign,
            bathroom_since=bathroom_since,
            tz=ZoneInfo(s.timezone),
            window=sleep_window(plan),
            caps=plan.inactivity.merged_caps_s(s.routine.caps_s),
            has_bed=s.has_bed_mat,
            has_seat=s.has_seat_sensor,
            last_room=last_room,
            bed_exit_watched=plan.bed_exit_watch,
        )

    def evaluate(self, snapshot: ResidentSnapshot, *, now: datetime) -> Verdict | None:
        """The alert of the current spell from the tick before the resident may be asked first
        (``check_in.tick_from``: the threshold, or the active cap in a home that cannot see
        sitting; ``alert_at`` in the details: when it is raised if nobody asks, at the last
        tick not after it)."""
        s = snapshot
        d = self.deadline(s)
        if d is None or s.last_activity_at is None:
            return None
        if now.timestamp() < check_in.tick_from(d, care_plan_of(s).check_in_s):
            return None
        quiet = (now - s.last_activity_at).total_seconds()
        source = "learned" if d.learned else "cap; too little history for this state and hour"
        text = (
            f"No sign of life for {human(quiet)}, {WHERE.get(d.state, d.state)}"
            + (f", last in the {s.last_activity_room_kind}" if s.last_activity_room_kind else "")
            + f"; threshold {human(d.threshold_s)} ({source}), cap {human(d.cap_s)}"
        )
        start = s.in_bathroom_since if d.state == "bathroom" and s.in_bathroom_since else None
        spell_start = start or s.last_activity_at
        return Verdict(
            detector=self.name,
            kind="inactivity",
            colour=Colour.YELLOW,
            occurred_at=min(now, datetime.fromtimestamp(d.at, s.last_activity_at.tzinfo)),
            site_id=s.site_id,
            resident_id=s.resident_id,
            idem_key=f"inactivity:{s.resident_id}:{spell_start.timestamp():.0f}",
            fold_key=f"inactivity:{s.resident_id}",
            fold_s=self.fold_s,
            explanation=f"{s.who}: {text}",
            details={
                "state": d.state,
                "last_sign_of_life_at": s.last_activity_at.isoformat(),
                "spell_start": spell_start.isoformat(),
                "counted_from": (
                    s.last_activity_at
                    + timedelta(seconds=d.counted_from - s.last_activity_at.timestamp())
                ).isoformat(),
                "elapsed_s": round(quiet),
                "threshold_s": round(d.threshold_s),
                "cap_s": round(d.cap_s),
                "room_kind": s.last_activity_room_kind,
                "routine_learned": d.learned,
                "alert_at": datetime.fromtimestamp(d.at, s.last_activity_at.tzinfo).isoformat(),
            },
        )
