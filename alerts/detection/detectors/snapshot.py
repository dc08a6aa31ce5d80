"""Typed input of the periodic (tick) detectors: one snapshot per resident.

A tick detector gets a :class:`ResidentSnapshot` and the current time and returns a
:class:`~alerts.detection.detectors.base.Verdict` or None; like event detectors it never touches the
database, MQTT or the clock. Add fields here (additively) when a new detector needs them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from alerts.detection.detectors.base import Verdict
from alerts.detection.routine import Routine


@dataclass(frozen=True, slots=True)
class DeviceSnapshot:
    """One device serving the resident (assigned to them or in their room)."""

    device_key: int
    device_id: str
    kind: str
    room_kind: str | None
    personal: bool  # assigned to this resident (not only in the room)
    last_event_at: datetime | None
    online: bool | None = None
    battery: float | None = None
    last_seen_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ResidentSnapshot:
    """What is known about one resident at ``taken_at``; detectors read only this."""

    resident_id: int
    resident_name: str
    site_id: str
    site_kind: str
    timezone: str
    room_id: int | None
    room_name: str | None
    care_profile: str
    care_plan: Mapping[str, object]
    routine: Routine
    taken_at: datetime
    # Last sign of life (motion, presence change, door, button) and where it was.
    last_activity_at: datetime | None = None
    last_activity_name: str | None = None
    last_activity_device_kind: str | None = None
    last_activity_room_kind: str | None = None
    # Bed mat: None when the resident has no bed mat; the time it last changed.
    in_bed: bool | None = None
    bed_changed_at: datetime | None = None
    # Left through an exit door and no sign of life since.
    away: bool = False
    away_since: datetime | None = None
    # In the bathroom (every sign of life since this time came from the bathroom).
    in_bathroom_since: datetime | None = None
    # Where the resident rests now: active, seated, bathroom, bed or away (alerts.detection.routine).
    rest_state: str = "active"
    seated_since: datetime | None = None
    has_bed_mat: bool = False  # a bed mat among the resident's events: sleep can be told
    has_seat_sensor: bool = False  # a seat mat or radar: sitting can be told
    devices: tuple[DeviceSnapshot, ...] = field(default_factory=tuple)

    @property
    def who(self) -> str:
        where = f" ({self.room_name})" if self.room_name else ""
        return f"{self.resident_name}{where}"


class TickDetector(Protocol):
    @property
    def name(self) -> str: ...

    def evaluate(self, snapshot: ResidentSnapshot, *, now: datetime) -> Verdict | None: ...


@dataclass(frozen=True, slots=True)
class TickSpec:
    detector: TickDetector
    care_profiles: frozenset[str] | None = None  # None: every resident

    def applies(self, snapshot: ResidentSnapshot) -> bool:
        disabled = snapshot.care_plan.get("disabled_detectors")
        if isinstance(disabled, list) and self.detector.name in disabled:
            return False
        return self.care_profiles is None or snapshot.care_profile in self.care_profiles
