"""Night watch: a resident with dementia at a door at night, and a bed exit without return.

Night hours and what to watch come from each resident's care plan; a device that concerns
several people (a shared room, a home) is watched if any of their plans asks for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from alerts.detection.detectors.base import (
    CheckContext,
    Deferral,
    Dismissed,
    StreamEvent,
    Verdict,
    verdict_about,
    who,
)
from devices.careplan import CarePlan
from devices.domain import Colour


def _watching(event: StreamEvent, wants: str) -> list[CarePlan]:
    local = event.local_time()
    return [p for p in event.care_plans if getattr(p, wants) and p.is_night(local)]


def _up_for_the_day(
    event: StreamEvent, context: CheckContext, *, now: datetime
) -> Dismissed | None:
    """Out of bed shortly before the night ends, and moving about once it has: the day began
    (a collapse after that is the inactivity detector's)."""
    local_now = now.astimezone(ZoneInfo(event.timezone)).time()
    if any(p.is_night(local_now) for p in event.care_plans if p.bed_exit_watch):
        return None
    moving = any(
        seen.time > event.time
        and (seen.name == "door" or (seen.name == "motion" and seen.value_bool is not False))
        for seen in context.events
    )
    if not moving:
        return None
    return Dismissed(f"up for the day: night over at {local_now:%H:%M}, moving about since")


def _source(event: StreamEvent) -> str:
    return str(event.resident_id) if event.resident_id is not None else f"d{event.device_key}"


@dataclass(frozen=True, slots=True)
class WanderingDetector:
    """A door opened at night where a resident's plan watches for wandering.

    An exit door (an entrance, or the front door of a home-care bed) is red: the person may be
    leaving into the night. Any other door (a room in a nursing home) is yellow.
    """

    name: str = "wandering"
    debounce_s: int = 15 * 60

    def evaluate(self, event: StreamEvent, *, now: datetime) -> Verdict | None:
        if event.name != "door" or event.value_text != "open":
            return None
        if not _watching(event, "wandering_watch"):
            return None
        exit_door = event.room_kind == "entrance" or event.site_kind == "home_care_bed"
        what = "exit door" if exit_door else "door"
        local = event.local_time()
        return verdict_about(
            event,
            detector=self.name,
            kind="wandering",
            colour=Colour.RED if exit_door else Colour.YELLOW,
            fold_s=self.debounce_s,
            explanation=f"Night-time {what} opened at {local:%H:%M} ({who(event)}); "
            "the care plan watches for wandering",
            details={
                "device_id": event.device_id,
                "device_kind": event.device_kind,
                "room_name": event.room_name,
                "exit_door": exit_door,
                "opened_at": event.time.isoformat(),
            },
        )


@dataclass(frozen=True, slots=True)
class BedExitDetector:
    """Out of bed at night and not back within the plan's ``bed_exit_return_s``: yellow.

    The exit itself is not an alert (people get up at night); the check comes back when the
    return time has passed, and a return to bed in between ends it quietly.
    """

    name: str = "bed_exit"
    debounce_s: int = 60 * 60

    def evaluate(self, event: StreamEvent, *, now: datetime) -> Deferral | None:
        if event.name != "presence" or event.device_kind != "bed_mat" or event.value_bool:
            return None
        plans = _watching(event, "bed_exit_watch")
        if not plans:
            return None
        wait = min(p.bed_exit_return_s for p in plans)
        return Deferral(
            detector=self.name,
            key=f"bed_exit:{event.device_key}:{event.time.timestamp()}",
            due_at=event.time + timedelta(seconds=wait),
            event=event,
        )

    def recheck(
        self, event: StreamEvent, context: CheckContext, *, now: datetime
    ) -> Verdict | Dismissed:
        for seen in context.events:
            if (
                seen.time > event.time
                and seen.name == "presence"
                and seen.device_key == event.device_key  # a roommate's bed is not a return
                and seen.value_bool
            ):
                return Dismissed(f"back in bed at {seen.time:%H:%M:%S}")
        if up := _up_for_the_day(event, context, now=now):
            return up
        away = now - event.time
        minutes = int(away.total_seconds() // 60)
        return verdict_about(
            event,
            detector=self.name,
            kind="bed_exit",
            colour=Colour.YELLOW,
            fold_s=self.debounce_s,
            explanation=f"{who(event)} got out of bed at {event.local_time():%H:%M} and has not "
            f"returned for {minutes} min",
            details={
                "device_id": event.device_id,
                "device_kind": event.device_kind,
                "room_name": event.room_name,
                "away_s": int(away.total_seconds()),
                "left_at": event.time.isoformat(),
            },
        )
