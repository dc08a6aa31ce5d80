"""Request and response models of the visit and safety-round routes."""

from __future__ import annotations

from datetime import datetime

import pydantic.dataclasses
from pydantic import BaseModel, Field

from alerts.care.plan import Flag
from alerts.care.store import PlanListing
from dashboard_api.schemas import FreeText
from devices.domain import ServiceCategory


class FlagsIn(BaseModel):
    flags: list[Flag] = Field(min_length=1, max_length=4)
    visits_per_month: int = Field(default=1, ge=1, le=8)


class AssignIn(BaseModel):
    visitor_user_id: int = Field(ge=1, le=2**62)


class VisitIn(BaseModel):
    visited_at: datetime | None = None  # default: now
    eating_ok: bool
    mobility_ok: bool
    mood_ok: bool
    home_safety_ok: bool
    devices_ok: bool
    notes: FreeText = Field(default="", max_length=4000)
    follow_up: bool = False
    # a follow-up with a category opens a service order in the 96345 queue
    follow_up_category: ServiceCategory | None = None


class VisitOut(BaseModel):
    visit_id: int
    resident_id: int
    visitor_id: int
    visited_at: datetime
    eating_ok: bool
    mobility_ok: bool
    mood_ok: bool
    home_safety_ok: bool
    devices_ok: bool
    notes: str
    follow_up: bool
    follow_up_category: str | None
    order_id: int | None


class ReasonOut(BaseModel):
    """A plan reason as a catalogue message: ``visits.reason.<key>`` with ``params``."""

    key: str
    params: dict[str, int]


@pydantic.dataclasses.dataclass(frozen=True)
class PlanEntryOut(PlanListing):
    """A plan entry: the plan's listing of the resident, how due the visit is, and why."""

    state: str
    score: float
    reasons: list[str]  # the keys, most important first
    reason_messages: list[ReasonOut]
    reasons_text: list[str]  # rendered in the reader's language


class NotVisitedOut(BaseModel):
    resident_id: int
    full_name: str


class RateOut(BaseModel):
    community: str
    month: str
    priority_residents: int
    visited: int
    rate: float | None
    not_visited: list[NotVisitedOut]
