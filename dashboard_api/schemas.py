"""Typed request and response models (the OpenAPI document is generated from these)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field

from devices.domain import (
    DEFAULT_TIMEZONE,
    CareProfile,
    Colour,
    OrderKind,
    OrderState,
    Outcome,
    Role,
    ServiceCategory,
    SiteKind,
)


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_at: datetime


class MeOut(BaseModel):
    user_id: int
    username: str
    role: Role
    site_ids: list[str]
    resident_ids: list[int]
    locale: str = "zh-CN"  # the language the user sees (their own, else the site's)
    timezone: str = DEFAULT_TIMEZONE  # the site's: every time on the pages is shown in it


class SiteOut(BaseModel):
    site_id: str
    name: str
    kind: SiteKind
    community: str


class ResidentOut(BaseModel):
    resident_id: int
    site_id: str
    full_name: str
    room_name: str | None
    care_profile: CareProfile
    birth_year: int | None


class DeviceOut(BaseModel):
    device_id: str
    site_id: str
    kind: str
    room_name: str | None
    resident_id: int | None
    online: bool | None
    battery: float | None
    last_seen_at: datetime | None
    retired: bool


class AlertOut(BaseModel):
    alert_id: int
    site_id: str
    resident_id: int | None
    resident_name: str | None
    kind: str
    colour: Colour
    occurred_at: datetime
    raised_at: datetime
    explanation: str
    incident_id: int | None = None  # alerts of one situation share an incident and its order
    order_id: int | None
    order_state: OrderState | None


class LateReply(BaseModel):
    """A text from the resident after their check-in had raised the order's alert."""

    at: datetime
    text: str
    reading: str  # "fine" or "other" (a text asking for help raises a red alert of its own)


class OrderOut(BaseModel):
    order_id: int
    alert_id: int | None
    incident_id: int | None
    kind: OrderKind
    site_id: str
    resident_id: int | None
    colour: Colour
    category: str
    state: OrderState
    event_at: datetime | None
    opened_at: datetime
    accept_deadline: datetime
    offered_to: int | None
    offered_at: datetime | None
    step_due_at: datetime | None
    accepted_at: datetime | None
    accepted_by: int | None
    en_route_at: datetime | None
    on_site_at: datetime | None
    resolved_at: datetime | None
    cancelled_at: datetime | None
    outcome: Outcome | None
    note: str
    late_replies: list[LateReply] = []


class TransitionOut(BaseModel):
    at: datetime
    from_state: OrderState | None
    to_state: OrderState
    actor: str
    user_id: int | None
    note: str


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _no_control(v: str) -> str:
    if _CONTROL.search(v):
        raise ValueError("control characters are not allowed (line breaks and tabs are)")
    return v


def _no_control_line(v: str) -> str:
    if _CONTROL_LINE.search(v):
        raise ValueError("control characters are not allowed")
    return v


# Free text a person types (notes, reasons): line breaks and tabs, no other control characters
# (PostgreSQL cannot store NUL, and the others only hide text from whoever reads it).
FreeText = Annotated[str, AfterValidator(_no_control)]
# One line (an address, a name): no control characters at all.
LineText = Annotated[str, AfterValidator(_no_control_line)]


class ServiceOrderIn(BaseModel):
    site_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    resident_id: int | None = Field(default=None, ge=1, le=2**62)
    category: ServiceCategory
    colour: Colour = Colour.GREEN
    note: FreeText = Field(default="", max_length=2000)


class CancelIn(BaseModel):
    reason: FreeText = Field(min_length=1, max_length=2000)


class ResolveIn(BaseModel):
    outcome: Outcome
    note: FreeText = Field(default="", max_length=2000)


class Problem(BaseModel):
    detail: str


class FiguresOut(BaseModel):
    group: str
    orders: int
    accepted: int
    resolved: int
    percentiles: dict[str, dict[str, float | None]]
    accepted_within_60s: float | None
    accepted_within_300s: float | None
    false_alarm_rate: float | None
    top_cases: list[tuple[str, int]]
    score: float | None
