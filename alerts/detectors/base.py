"""The detector contract.

A detector gets one :class:`StreamEvent` (already resolved to its site, room and resident)
and the current time, and returns a :class:`Verdict` or None. It never touches the
database, MQTT or the clock; the worker does all I/O around it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from devices.domain import Colour


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


class EventDetector(Protocol):
    @property
    def name(self) -> str: ...

    def evaluate(self, event: StreamEvent, *, now: datetime) -> Verdict | None: ...


def who(event: StreamEvent) -> str:
    where = f" in {event.room_name}" if event.room_name else ""
    if event.resident_name:
        return f"{event.resident_name}{where}"
    return f"site {event.site_id}{where}"
