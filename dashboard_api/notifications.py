"""Family notification settings and delivery history (thin routes over alerts.notify.service).

A family member reads and sets their own preferences and sees their own deliveries; staff
and admins may look (not change) for family members of residents in their sites.
"""

from __future__ import annotations

import re
from datetime import datetime, time
from typing import Annotated, Any, Literal
from zoneinfo import available_timezones

from fastapi import APIRouter, Path, Query, status
from pydantic import (
    BaseModel,
    Field,
    HttpUrl,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from alerts.notify import service
from alerts.notify.egress import Refused, resolve_public
from alerts.notify.policy import FAMILY_CHANNELS, ChannelKind, Source
from dashboard_api.deps import ConnDep, CurrentUser, Limit, Now, Offset, SettingsDep
from dashboard_api.errors import ApiError
from dashboard_api.schemas import Problem
from devices.accounts import Principal
from devices.domain import Colour, Role
from devices.registry import Conn

router = APIRouter(prefix="/api/notifications", tags=["notifications"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem}}
EMAIL = re.compile(r"^[\x21-\x3f\x41-\x7e]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+$")
PHONE = re.compile(r"^\+?[0-9]{6,20}$")
OPENID = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
URL = TypeAdapter(HttpUrl)
UserId = Annotated[int, Path(ge=1, le=2**62)]


class ChannelIn(BaseModel):
    kind: ChannelKind
    address: str = Field(min_length=3, max_length=500)

    @model_validator(mode="after")
    def _address_fits_kind(self) -> ChannelIn:
        if not (self.address.isascii() and self.address.isprintable()):
            raise ValueError("addresses are printable ASCII (use punycode for IDN hosts)")
        if self.kind is ChannelKind.WEBHOOK:
            try:
                URL.validate_python(self.address)
            except ValidationError as exc:
                raise ValueError("a webhook address is an http(s) URL") from exc
        elif self.kind is ChannelKind.EMAIL and not EMAIL.match(self.address):
            raise ValueError("not an e-mail address")
        elif self.kind in (ChannelKind.SMS, ChannelKind.VOICE) and not PHONE.match(self.address):
            raise ValueError("a phone number is digits with an optional leading +")
        elif self.kind is ChannelKind.WECHAT and not OPENID.match(self.address):
            raise ValueError("a WeChat openid (from the Official Account) is 20-64 letters/digits")
        elif self.kind not in FAMILY_CHANNELS:
            raise ValueError("a care station's group robot is set by an administrator")
        return self


class PrefsIn(BaseModel):
    colours: list[Colour] = Field(default=[Colour.RED, Colour.YELLOW], max_length=3)
    kinds: list[Annotated[str, Field(pattern=r"^[a-z0-9_]{1,32}$")]] | None = Field(
        default=None, max_length=32, description="alert kinds to hear about; null: all"
    )
    order_updates: bool = True
    daily_summary: bool = True
    channels: list[ChannelIn] = Field(
        default=[], max_length=5, description="tried in order; the next one after failures"
    )
    quiet_start: time | None = Field(default=None, description="local time; red ignores it")
    quiet_end: time | None = None
    timezone: str | None = Field(default=None, max_length=64)
    language: Literal["en", "zh"] = "zh"  # Chinese first (issue 14); the form sets it

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str | None) -> str | None:
        if v is not None and v not in available_timezones():
            raise ValueError("unknown IANA time zone")
        return v

    @field_validator("quiet_start", "quiet_end")
    @classmethod
    def _naive(cls, v: time | None) -> time | None:
        if v is not None and v.tzinfo is not None:
            raise ValueError("give a local time without an offset; set timezone instead")
        return v

    @model_validator(mode="after")
    def _both_or_neither(self) -> PrefsIn:
        if (self.quiet_start is None) != (self.quiet_end is None):
            raise ValueError("quiet_start and quiet_end go together")
        return self


class ChannelOut(BaseModel):
    kind: ChannelKind
    address: str


class PrefsOut(BaseModel):
    user_id: int
    configured: bool
    colours: list[Colour]
    kinds: list[str] | None
    order_updates: bool
    daily_summary: bool
    channels: list[ChannelOut]
    quiet_start: time | None
    quiet_end: time | None
    timezone: str | None
    language: str
    webhook_secret: str | None = Field(description="HMAC key; shown to the member only")
    updated_at: datetime | None
    channel_kinds: list[str] = Field(
        default_factory=lambda: [k.value for k in ChannelKind],
        description="the channels this server can send by (for the family page's form)",
    )


class AttemptOut(BaseModel):
    at: datetime
    channel: str
    address: str
    ok: bool
    receipt: str
    duration_ms: int


class DeliveryOut(BaseModel):
    id: int
    user_id: int | None = Field(description="the family member; null for a care-station group")
    site_id: str | None = Field(description="the site of the resident (or of the station)")
    to_station: bool = Field(description="sent to the care station's group, not a family")
    resident_id: int | None
    source: Source
    alert_id: int | None
    order_id: int | None
    colour: Colour
    subject: str
    body: str
    created_at: datetime
    not_before: datetime
    state: Literal["pending", "delivered", "failed", "skipped"]
    reason: str
    attempts: int
    delivered_at: datetime | None
    delivered_via: str | None
    read_at: datetime | None
    attempt_log: list[AttemptOut]


class ReadOut(BaseModel):
    alert_id: int
    read_at: datetime
    notifications: int = Field(description="how many of the member's notifications it marked")


def _out(user_id: int, row: dict[str, Any] | None, *, own: bool) -> PrefsOut:
    if row is None:
        defaults = PrefsIn()
        return PrefsOut(
            user_id=user_id,
            configured=False,
            webhook_secret=None,
            updated_at=None,
            **defaults.model_dump(exclude={"channels"}),
            channels=[],
        )
    return PrefsOut(
        **{**row, "webhook_secret": row["webhook_secret"] if own else None}, configured=True
    )


async def _visible(conn: Conn, user: Principal, user_id: int) -> None:
    if not await service.may_view(conn, principal=user, user_id=user_id):
        raise ApiError(status.HTTP_404_NOT_FOUND, "error.no_such_member")


@router.get("/preferences", response_model=PrefsOut, responses={403: {"model": Problem}})
async def my_preferences(conn: ConnDep, user: CurrentUser) -> PrefsOut:
    if user.role is not Role.FAMILY:
        raise ApiError(status.HTTP_403_FORBIDDEN, "error.family_only")
    return _out(user.user_id, await service.get_prefs(conn, user_id=user.user_id), own=True)


@router.put("/preferences", response_model=PrefsOut, responses={403: {"model": Problem}})
async def set_my_preferences(
    conn: ConnDep, user: CurrentUser, at: Now, body: PrefsIn, settings: SettingsDep
) -> PrefsOut:
    if user.role is not Role.FAMILY:
        raise ApiError(status.HTTP_403_FORBIDDEN, "error.family_only")
    for c in body.channels:
        if c.kind is ChannelKind.WEBHOOK:
            try:
                await resolve_public(c.address, settings.webhook_allow_hosts)
            except Refused as exc:
                raise ApiError(422, "error.refused_address", reason=str(exc)) from exc
    row = await service.save_prefs(
        conn,
        user_id=user.user_id,
        colours=sorted({c.value for c in body.colours}),
        kinds=None if body.kinds is None else sorted(set(body.kinds)),
        order_updates=body.order_updates,
        daily_summary=body.daily_summary,
        channels=[{"kind": c.kind.value, "address": c.address} for c in body.channels],
        quiet_start=body.quiet_start,
        quiet_end=body.quiet_end,
        timezone=body.timezone,
        language=body.language,
        now=at,
    )
    await conn.commit()
    return _out(user.user_id, row, own=True)


@router.get("/users/{user_id}/preferences", response_model=PrefsOut, responses=NOT_FOUND)
async def member_preferences(conn: ConnDep, user: CurrentUser, user_id: UserId) -> PrefsOut:
    await _visible(conn, user, user_id)
    row = await service.get_prefs(conn, user_id=user_id)
    return _out(user_id, row, own=user.user_id == user_id)


@router.get("/deliveries", response_model=list[DeliveryOut], responses=NOT_FOUND)
async def deliveries(
    conn: ConnDep,
    user: CurrentUser,
    user_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> list[DeliveryOut]:
    if user_id is not None:
        await _visible(conn, user, user_id)
    rows = await service.list_deliveries(
        conn, principal=user, user_id=user_id, limit=limit, offset=offset
    )
    return [DeliveryOut(**r) for r in rows]


@router.post(
    "/alerts/{alert_id}/read",
    response_model=ReadOut,
    responses={**NOT_FOUND, 403: {"model": Problem}},
)
async def mark_read(conn: ConnDep, user: CurrentUser, at: Now, alert_id: UserId) -> ReadOut:
    """The family member has seen what they were told about this alert: a red alert's
    pending voice call is not made."""
    if user.role is not Role.FAMILY:
        raise ApiError(status.HTTP_403_FORBIDDEN, "error.family_only")
    marked = await service.mark_alert_read(conn, user_id=user.user_id, alert_id=alert_id, now=at)
    if marked is None:
        raise ApiError(status.HTTP_404_NOT_FOUND, "error.no_such_alert")
    await conn.commit()
    return ReadOut(alert_id=alert_id, read_at=at, notifications=marked)
