"""A stream event as JSON, for checks that wait in the database (and back, validated)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from alerts.detection.detectors.base import StreamEvent, Verdict
from devices.careplan import CarePlan
from devices.domain import Colour


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


def verdict_to_json(verdict: Verdict) -> dict[str, Any]:
    out: dict[str, Any] = {k: getattr(verdict, k) for k in Verdict.__slots__}
    out["occurred_at"] = verdict.occurred_at.isoformat()
    out["colour"] = verdict.colour.value
    out["details"] = dict(verdict.details)
    return out


def verdict_from_json(raw: dict[str, Any]) -> Verdict:
    fields = {k: raw[k] for k in Verdict.__slots__ if k in raw}
    fields["occurred_at"] = datetime.fromisoformat(str(raw["occurred_at"]))
    fields["colour"] = Colour(raw["colour"])
    fields["details"] = dict(raw.get("details") or {})
    return Verdict(**fields)
