"""A stream event as JSON, for checks that wait in the database (and back, validated)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from alerts.detectors.base import StreamEvent
from devices.careplan import CarePlan


def event_to_json(event: StreamEvent) -> dict[str, Any]:
    out: dict[str, Any] = {k: getattr(event, k) for k in StreamEvent.__slots__}
    out["time"] = event.time.isoformat()
    out["care_plans"] = [p.model_dump(mode="json") for p in event.care_plans]
    return out


def event_from_json(raw: dict[str, Any]) -> StreamEvent:
    fields = {k: raw[k] for k in StreamEvent.__slots__ if k in raw}
    fields["time"] = datetime.fromisoformat(str(raw["time"]))
    fields["care_plans"] = tuple(CarePlan.model_validate(p) for p in raw.get("care_plans", []))
    return StreamEvent(**fields)
