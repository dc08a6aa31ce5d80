"""The report's figures as JSON, for the bureau's report readers and admins: counts, shares
and times per district and community, never a resident's name."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel

from alerts.care.plan import parse_month
from alerts.care.store import PLAN_TZ
from dashboard_api.deps import ConnDep, CurrentUser, Now
from dashboard_api.report.data import gather
from devices.accounts import Principal
from devices.domain import Role

router = APIRouter(prefix="/api/reports", tags=["reports"])


async def _reader(principal: CurrentUser) -> Principal:
    if principal.role not in (Role.ADMIN, Role.REPORT_READER):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "report readers only")
    return principal


ReaderUser = Annotated[Principal, Depends(_reader)]


class ScopeOut(BaseModel):
    level: str
    name: str
    month: str
    residents_by_site_kind: dict[str, int]
    alerts_by_colour: dict[str, int]
    orders: int
    accept_percentiles_s: dict[str, float | None]
    accepted_within_60s: float | None
    accepted_within_300s: float | None
    false_alarm_rate: float | None
    priority_residents: int
    visited: int
    visit_rate: float | None
    findings_opened: int
    findings_closed: int
    findings_open_at_end: int
    device_uptime: float | None


@router.get("/monthly", response_model=list[ScopeOut])
async def monthly(
    conn: ConnDep,
    user: ReaderUser,
    at: Now,
    month: Annotated[str | None, Query(pattern=r"^20[0-9]{2}-(0[1-9]|1[0-2])$")] = None,
) -> list[ScopeOut]:
    """The month's figures per district and community (default: this month so far)."""
    m = parse_month(month) if month else at.astimezone(ZoneInfo(PLAN_TZ)).date().replace(day=1)
    out = []
    for f in await gather(conn, month=m):
        o = f.orders
        colours: dict[str, int] = {}
        for (colour, _), n in f.alerts_by_colour_kind.items():
            colours[colour] = colours.get(colour, 0) + n
        out.append(
            ScopeOut(
                level=f.scope.level,
                name=f.scope.name,
                month=f.month,
                residents_by_site_kind=dict(f.residents_by_site_kind),
                alerts_by_colour=colours,
                orders=o.orders if o else 0,
                accept_percentiles_s=dict(o.percentiles["accept"]) if o else {},
                accepted_within_60s=o.accepted_within_60s if o else None,
                accepted_within_300s=o.accepted_within_300s if o else None,
                false_alarm_rate=o.false_alarm_rate if o else None,
                priority_residents=f.visits_due,
                visited=f.visits_done,
                visit_rate=f.visit_rate,
                findings_opened=f.findings_opened,
                findings_closed=f.findings_closed,
                findings_open_at_end=f.findings_open_at_end,
                device_uptime=f.uptime,
            )
        )
    return out
