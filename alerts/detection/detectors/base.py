"""The detector contract.

A detector gets one :class:`StreamEvent` (already resolved to its site, room and resident)
and the current time, and returns a :class:`Verdict` or None. It never touches the
database, MQTT or the clock; the worker does all I/O around it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from datetime import time as clock_time
from typing import Protocol, runtime_checkable
from zoneinfo import ZoneInfo

from devices.careplan import CarePlan
from devices.domain import DEFAULT_TIMEZONE, Colour


@dataclass(frozen=True, slots=True)
class StreamEvent:
    kind: str  # "event" (a device event) or "status" (online changed)
    name: str  # e.g. "sos", "fall", "smoke", "online"
    time: datetime  # when it happened, by the device's clock
    device_key: int
    device_id: str
    device_kind: str
    site_id: str
    value_bool: bool | None = None
    value_num: float | None = None
    value_text: str | None = None
    room_id: int | None = None
    room_name: str | None = None
    resident_id: int | None = None
    resident_name: str | None = None
    room_kind: str | None = None
    site_kind: str = "nursing_home"
    timezone: str = DEFAULT_TIMEZONE
    placement: str = "unknown"  # where a wearable sits on the body (devices.domain.Placement)
    # The care plans of everyone this device may concern: the resident it serves, or everyone
    # in its room (a shared room), or everyone in the home (a home-care bed).
    care_plans: tuple[CarePlan, ...] = ()

    def local_time(self) -> clock_time:
        return self.time.astimezone(ZoneInfo(self.timezone)).time()


@dataclass(frozen=True, slots=True)
class Verdict:
    detector: str
    kind: str  # what happened: "sos", "fall", "smoke", ...
    colour: Colour
    occurred_at: datetime
    site_id: str
    idem_key: str  # the same input always gives the same key: a redelivered event is one alert
    fold_key: str  # alerts with this key within ``fold_s`` of each other are one situation
    fold_s: int
    explanation: str  # a sentence a carer can read
    resident_id: int | None = None
    device_key: int | None = None
    details: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Deferral:
    """Look again at ``event`` at ``due_at`` with what the resident's sensors said since.

    Used where one reading alone must not page staff (a low-confidence fall, a device that
    dropped offline, a bed exit that may end with a return). The check lives in the database,
    so a restart neither loses nor repeats it; ``key`` makes a redelivered event one check.
    """

    detector: str
    key: str
    due_at: datetime
    event: StreamEvent


@dataclass(frozen=True, slots=True)
class Dismissed:
    """A deferred check that ended without an alert, and why (kept for the audit)."""

    reason: str


@dataclass(frozen=True, slots=True)
class ContextEvent:
    """Something another sensor of the same resident (or room, or home) reported."""

    time: datetime
    name: str
    device_key: int
    device_kind: str
    room_kind: str | None = None
    value_bool: bool | None = None
    value_num: float | None = None
    value_text: str | None = None


@dataclass(frozen=True, slots=True)
class CheckContext:
    events: Sequence[ContextEvent]  # from shortly before the event until now, oldest first
    device_online: bool | None = None  # the checked device's status now, if known


Outcome = Verdict | Deferral | None


class EventDetector(Protocol):
    @property
    def name(self) -> str: ...

    def evaluate(self, event: StreamEvent, *, now: datetime) -> Outcome: ...


@runtime_checkable
class Rechecker(Protocol):
    """A detector whose deferrals are looked at again when due."""

    @property
    def name(self) -> str: ...

    def recheck(
        self, event: StreamEvent, context: CheckContext, *, now: datetime
    ) -> Verdict | Dismissed: ...


def who(event: StreamEvent) -> str:
    where = f" in {event.room_name}" if event.room_name else ""
    if event.resident_name:
        return f"{event.resident_name}{where}"
    return f"site {event.site_id}{where}"


def where(event: StreamEvent) -> dict[str, object]:
    """What an explanation needs to name the device and the place (devices/i18n/explain.py)."""
    return {
        "device_id": event.device_id,
        "device_kind": event.device_kind,
        "room_name": event.room_name,
    }


def verdict_about(
    event: StreamEvent,
    *,
    detector: str,
    kind: str,
    colour: Colour,
    fold_s: int,
    explanation: str,
    details: Mapping[str, object],
    key: str | None = None,
    fold_on: object | None = None,
    of_resident: bool = True,
) -> Verdict:
    """A verdict about one event, at its time, site and device. Its idem key
    ``key:device:time`` makes the same input one alert; its fold key ``key:fold_on`` (by default
    the resident, else the device as ``d<key>``) makes one situation one incident. ``key``
    defaults to the kind; ``of_resident=False`` for a site-wide alert (smoke)."""
    key = key or kind
    if fold_on is None:
        fold_on = event.resident_id if event.resident_id is not None else f"d{event.device_key}"
    return Verdict(
        detector=detector,
        kind=kind,
        colour=colour,
        occurred_at=event.time,
        site_id=event.site_id,
        resident_id=event.resident_id if of_resident else None,
        device_key=event.device_key,
        idem_key=f"{key}:{event.device_key}:{event.time.timestamp()}",
        fold_key=f"{key}:{fold_on}",
        fold_s=fold_s,
        explanation=explanation,
        details=details,
    )
