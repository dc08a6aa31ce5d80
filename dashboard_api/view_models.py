"""Response models of the pages' endpoints: timelines, device health, today's figures, live."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from devices.domain import Colour, OrderState, Outcome


class TicketOut(BaseModel):
    ticket: str
    expires_at: datetime


class TimelinePoint(BaseModel):
    start: datetime
    motion_events: int
    in_bed_minutes: float
    hr_avg: float | None
    hr_min: float | None
    hr_max: float | None
    rr_avg: float | None


class TimelineOut(BaseModel):
    resident_id: int
    start: datetime
    end: datetime
    bucket_seconds: int
    points: list[TimelinePoint]


class DeviceHealthOut(BaseModel):
    device_id: str
    site_id: str
    kind: str
    room_name: str | None
    resident_id: int | None
    resident_name: str | None
    online: bool | None
    battery: float | None
    last_seen_at: datetime | None
    stale: bool
    low_battery: bool
    problem: bool


class TodayOut(BaseModel):
    day_start: datetime
    opened: int
    opened_red: int
    accepted: int
    resolved: int
    open_now: int
    median_accept_s: float | None
    max_accept_s: float | None
    overdue_now: int


class ResidentStatusOut(BaseModel):
    resident_id: int
    full_name: str
    site_id: str
    room_name: str | None
    last_motion_at: datetime | None
    in_bed: bool | None
    in_bed_since: datetime | None
    hr: float | None
    hr_at: datetime | None
    rr: float | None
    rr_at: datetime | None
    devices: int
    devices_offline: int
    devices_low_battery: int
    open_alerts: int


class StepOut(BaseModel):
    at: datetime
    state: OrderState
    by: str  # the username for staff; the role alone for a family member
    role: str | None = None  # system, staff, responder, admin...: what families are told


class AlertDetailOut(BaseModel):
    alert_id: int
    site_id: str
    resident_id: int | None
    resident_name: str | None
    kind: str
    colour: Colour
    occurred_at: datetime
    raised_at: datetime
    explanation: str
    order_id: int | None
    order_state: OrderState | None
    accepted_at: datetime | None
    resolved_at: datetime | None
    outcome: Outcome | None
    note: str | None
    opened_at: datetime | None = None
    seconds_to_accept: float | None  # from when the order opened
    seconds_to_arrive: float | None = None  # from acceptance to on site
    steps: list[StepOut]
