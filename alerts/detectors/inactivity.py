"""Inactivity against the resident's own routine: a quiet spell longer than usual at this
hour (with margin), or a bathroom stay longer than usual. Silent while the resident is away
(left through an exit door) or in bed (the night detectors watch the bed), and for residents
without any sign of life on record (a device-stale detector's job).

One alert per spell: the idem key is the resident and the start of the spell, so every tick
during the same silence repeats the same key and is stored once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from alerts.detectors.base import Verdict
from alerts.detectors.snapshot import ResidentSnapshot
from devices.domain import Colour


def human(seconds: float) -> str:
    """A duration as a carer reads it: "3 h 10 min", "55 min"."""
    minutes = int(seconds // 60)
    h, m = divmod(minutes, 60)
    if h and m:
        return f"{h} h {m} min"
    return f"{h} h" if h else f"{m} min"


def _minutes(plan: object, key: str) -> float | None:
    if not isinstance(plan, dict):
        return None
    value = plan.get(key)
    return float(value) * 60 if isinstance(value, int | float) and value > 0 else None


@dataclass(frozen=True, slots=True)
class InactivityDetector:
    """Care-plan keys (optional, under ``care_plan["inactivity"]``): ``max_quiet_min`` caps
    the usual maximum, ``bathroom_max_min`` replaces the learned bathroom maximum."""

    name: str = "inactivity"
    fold_s: int = 60

    def evaluate(self, snapshot: ResidentSnapshot, *, now: datetime) -> Verdict | None:
        s = snapshot
        if s.last_activity_at is None or s.away or s.in_bed:
            return None
        plan = s.care_plan.get("inactivity", {})
        quiet = (now - s.last_activity_at).total_seconds()
        tz = ZoneInfo(s.timezone)
        if s.in_bathroom_since is not None:
            stay = (now - s.in_bathroom_since).total_seconds()
            usual = _minutes(plan, "bathroom_max_min") or s.routine.bathroom_max(
                s.in_bathroom_since.astimezone(tz).hour
            )
            if stay > s.routine.allowance(usual):
                text = f"In the bathroom for {human(stay)} (usual at most {human(usual)})"
                return self._verdict(s, s.in_bathroom_since, stay, usual, "bathroom", text)
        hour = now.astimezone(tz).hour
        usual = s.routine.usual_max(hour, s.last_activity_room_kind)
        cap = _minutes(plan, "max_quiet_min")
        if cap is not None:
            usual = min(usual, cap)
        if quiet <= s.routine.allowance(usual):
            return None
        where = (
            f", last seen in the {s.last_activity_room_kind}" if s.last_activity_room_kind else ""
        )
        source = "" if s.routine.learned else " (site default; too little history)"
        text = (
            f"No movement for {human(quiet)}{where}; usual maximum at this hour "
            f"{human(usual)}{source}"
        )
        start = s.in_bathroom_since or s.last_activity_at
        return self._verdict(s, start, quiet, usual, "quiet", text)

    def deadline(self, s: ResidentSnapshot) -> tuple[str, datetime] | None:
        """The state at ``s.taken_at`` and when the current spell would pass its threshold at
        the hour it is now (used by the evaluation; the live rule re-reads the hour)."""
        if s.last_activity_at is None or s.away or s.in_bed:
            return None
        tz = ZoneInfo(s.timezone)
        usual = s.routine.usual_max(s.taken_at.astimezone(tz).hour, s.last_activity_room_kind)
        quiet = s.last_activity_at + timedelta(seconds=s.routine.allowance(usual))
        if s.in_bathroom_since is not None:
            stay = s.routine.bathroom_max(s.in_bathroom_since.astimezone(tz).hour)
            at = s.in_bathroom_since + timedelta(seconds=s.routine.allowance(stay))
            return ("bathroom", min(at, quiet))
        return ("active", quiet)

    def _verdict(
        self,
        s: ResidentSnapshot,
        spell_start: datetime,
        elapsed: float,
        usual: float,
        state: str,
        text: str,
    ) -> Verdict:
        return Verdict(
            detector=self.name,
            kind="inactivity",
            colour=Colour.YELLOW,
            occurred_at=spell_start + timedelta(seconds=s.routine.allowance(usual)),
            site_id=s.site_id,
            resident_id=s.resident_id,
            idem_key=f"inactivity:{s.resident_id}:{spell_start.timestamp():.0f}",
            fold_key=f"inactivity:{s.resident_id}",
            fold_s=self.fold_s,
            explanation=f"{s.who}: {text}",
            details={
                "state": state,
                "spell_start": spell_start.isoformat(),
                "elapsed_s": round(elapsed),
                "usual_max_s": round(usual),
                "threshold_s": round(s.routine.allowance(usual)),
                "room_kind": s.last_activity_room_kind,
                "routine_learned": s.routine.learned,
            },
        )
