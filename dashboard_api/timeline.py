"""Routes behind the care-station and family pages: timelines, status now, device health,
today's figures and how an alert was handled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cache
from typing import Annotated, Any
from zoneinfo import ZoneInfo, available_timezones

from fastapi import APIRouter, Path, Query, status
from fastapi.exceptions import RequestValidationError

from dashboard_api import timeline_queries as tq
from dashboard_api.deps import ConnDep, CurrentUser, Now, SettingsDep, SitePageDep, StaffUser
from dashboard_api.errors import ApiError
from dashboard_api.i18n import LocaleDep, explained
from dashboard_api.schemas import Problem
from dashboard_api.view_models import (
    AlertDetailOut,
    DeviceHealthOut,
    ResidentStatusOut,
    TimelineOut,
    TimelinePoint,
    TodayOut,
)
from devices.domain import DEFAULT_TIMEZONE, Role

router = APIRouter(prefix="/api")
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem}}
Id = Annotated[int, Path(ge=1, le=2**62)]
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
MAX_RANGE = timedelta(days=400)
MAX_POINTS = 2000


class Bucket(StrEnum):
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"


BUCKETS = {
    Bucket.HOUR: timedelta(hours=1),
    Bucket.DAY: timedelta(days=1),
    Bucket.WEEK: timedelta(days=7),
}


def pick_bucket(span: timedelta) -> timedelta:
    """Hourly up to 8 days, daily up to 62 days, weekly beyond."""
    if span <= timedelta(days=8):
        return BUCKETS[Bucket.HOUR]
    if span <= timedelta(days=62):
        return BUCKETS[Bucket.DAY]
    return BUCKETS[Bucket.WEEK]


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t


def _bad(field: str, detail: str) -> RequestValidationError:
    """A 422 shaped like FastAPI's own validation errors (one documented schema for 422)."""
    return RequestValidationError([{"type": "value_error", "loc": ("query", field), "msg": detail}])


@router.get("/residents/{resident_id}/timeline", response_model=TimelineOut, responses=NOT_FOUND)
async def resident_timeline(
    conn: ConnDep,
    user: CurrentUser,
    at: Now,
    resident_id: Id,
    start: datetime | None = None,
    end: datetime | None = None,
    bucket: Bucket | None = None,
) -> TimelineOut:
    """Activity (motion events), time in bed, heart rate and respiration per bucket.

    Default range: the last 24 hours. The bucket follows the range unless given."""
    stop = _utc(end) if end else at
    if not EARLIEST < stop <= LATEST:  # before the default start is computed from it
        raise _bad("end", "need 2000-01-01 < end <= 2200-01-01")
    begin = _utc(start) if start else stop - timedelta(days=1)
    if not (EARLIEST <= begin < stop <= LATEST):
        raise _bad("start", "need 2000-01-01 <= start < end <= 2200-01-01")
    if stop - begin > MAX_RANGE:
        raise _bad("start", "range longer than 400 days")
    width = BUCKETS[bucket] if bucket else pick_bucket(stop - begin)
    if (stop - begin) / width > MAX_POINTS:
        raise _bad("bucket", f"more than {MAX_POINTS} buckets: choose a wider bucket")
    rows = await tq.timeline(
        conn, principal=user, resident_id=resident_id, start=begin, end=stop, bucket=width, now=at
    )
    if rows is None:
        raise ApiError(status.HTTP_404_NOT_FOUND, "error.no_such_resident")
    return TimelineOut(
        resident_id=resident_id,
        start=begin,
        end=stop,
        bucket_seconds=int(width.total_seconds()),
        points=[TimelinePoint(**r) for r in rows],
    )


@router.get(
    "/residents/{resident_id}/status", response_model=ResidentStatusOut, responses=NOT_FOUND
)
async def resident_status(
    conn: ConnDep, user: CurrentUser, at: Now, resident_id: Id
) -> ResidentStatusOut:
    """The resident now: last motion, in bed, latest vitals, devices, open alerts."""
    row = await tq.resident_status(conn, principal=user, resident_id=resident_id, now=at)
    if row is None:
        raise ApiError(status.HTTP_404_NOT_FOUND, "error.no_such_resident")
    return ResidentStatusOut(**row)


@router.get("/device-health", response_model=list[DeviceHealthOut])
async def device_health(
    conn: ConnDep,
    user: StaffUser,
    at: Now,
    page: SitePageDep,
    problems_only: bool = False,
    stale_after_s: Annotated[int, Query(ge=10, le=30 * 86400)] = 900,
) -> list[DeviceHealthOut]:
    """Devices with problems first: offline, not heard from (stale), battery under 20 %."""
    rows = await tq.device_health(
        conn,
        principal=user,
        page=page,
        problems_only=problems_only,
        stale_after=timedelta(seconds=stale_after_s),
        now=at,
    )
    return [DeviceHealthOut(**r) for r in rows]


@router.get("/stats/today", response_model=TodayOut)
async def stats_today(
    conn: ConnDep,
    user: StaffUser,
    at: Now,
    tz: Annotated[str, Query(max_length=64)] = DEFAULT_TIMEZONE,
) -> TodayOut:
    """Today's orders (since local midnight in ``tz``) and the median time from event to
    acceptance."""
    if tz not in _zones():
        raise _bad("tz", f"unknown time zone {tz!r}")
    zone = ZoneInfo(tz)
    local = at.astimezone(zone)
    day_start = local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)
    return TodayOut(**await tq.today(conn, principal=user, day_start=day_start, now=at))


@router.get("/alerts/{alert_id}", response_model=AlertDetailOut, responses=NOT_FOUND)
async def alert_detail(
    conn: ConnDep,
    user: CurrentUser,
    alert_id: Id,
    settings: SettingsDep,
    locale: LocaleDep,
    at: Now,
) -> AlertDetailOut:
    """One alert and how it was handled (every order step, who, when, outcome)."""
    row = await tq.alert_detail(conn, principal=user, alert_id=alert_id)
    if row is None:
        raise ApiError(status.HTTP_404_NOT_FOUND, "error.no_such_alert")
    if user.role is Role.FAMILY:  # families are told roles, never staff usernames
        row = {**row, "steps": [{**s, "by": s["role"] or "system"} for s in row["steps"]]}
    return AlertDetailOut(**explained(row, locale=locale, tz=settings.site_timezone, now=at))
