"""Visit routes (探访关爱): the plan ordered by what the sensors know, the overdue list, the
monthly visit rate, recording a visit from a phone, flags and assignments for staff."""

from __future__ import annotations

from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status

from alerts.care.messages import reason_text
from alerts.care.plan import DueState, due_state, parse_month
from alerts.care.store import PLAN_TZ, plan_entries
from alerts.dispatch.orders import OrderError
from alerts.dispatch.policy import policy_from_settings
from dashboard_api.care import visits
from dashboard_api.care.schemas import (
    AssignIn,
    FlagsIn,
    NotVisitedOut,
    PlanEntryOut,
    RateOut,
    VisitIn,
    VisitOut,
)
from dashboard_api.deps import ConnDep, CurrentUser, Limit, Now, SettingsDep, StaffUser
from dashboard_api.i18n import LocaleDep
from dashboard_api.schemas import Problem
from devices.accounts import Principal
from devices.domain import Role
from devices.i18n import Locale

router = APIRouter(prefix="/api/care", tags=["care"])
ResidentId = Annotated[int, Path(ge=1, le=2**62)]
Community = Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Month = Annotated[str | None, Query(pattern=r"^20[0-9]{2}-(0[1-9]|1[0-2])$")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem}}


async def _care_user(principal: CurrentUser) -> Principal:
    if principal.role not in (Role.ADMIN, Role.STAFF, Role.VISITOR):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "care staff and visitors only")
    return principal


CareUser = Annotated[Principal, Depends(_care_user)]


async def _plan(
    conn: ConnDep, user: Principal, at: Any, community: str | None, locale: Locale
) -> list[PlanEntryOut]:
    where, params = visits.care_scope(user)
    entries = await plan_entries(conn, where=where, params=params, now=at, community=community)
    return [
        PlanEntryOut(
            **e.as_json(),
            state=due_state(e.due, now=at).value,
            reasons_text=[reason_text(r, locale) for r in e.priority.reasons],
        )
        for e in entries
    ]


@router.get("/plan", response_model=list[PlanEntryOut])
async def plan(
    conn: ConnDep, user: CareUser, at: Now, locale: LocaleDep, community: Community = None
) -> list[PlanEntryOut]:
    """Priority residents, most urgent first: recent alerts, falling activity, long silences,
    failing devices and lateness raise a resident's score (a visitor sees only their own).
    Each reason is a catalogue message (``reason_messages``), rendered in the reader's
    language in ``reasons_text``."""
    return await _plan(conn, user, at, community, locale)


@router.get("/overdue", response_model=list[PlanEntryOut])
async def overdue(
    conn: ConnDep, user: CareUser, at: Now, locale: LocaleDep, community: Community = None
) -> list[PlanEntryOut]:
    plan = await _plan(conn, user, at, community, locale)
    return [e for e in plan if e.state == DueState.OVERDUE]


@router.get("/visit-rate", response_model=list[RateOut])
async def visit_rate(
    conn: ConnDep, user: CareUser, at: Now, month: Month = None, community: Community = None
) -> list[RateOut]:
    """Per community: priority residents with their month's visits done / all of them."""
    m = parse_month(month) if month else at.astimezone(ZoneInfo(PLAN_TZ)).date().replace(day=1)
    out = []
    for rate, names in await visits.rates(conn, principal=user, month=m, community=community):
        out.append(
            RateOut(
                community=rate.community,
                month=rate.month,
                priority_residents=rate.priority_residents,
                visited=rate.visited,
                rate=rate.rate,
                not_visited=[
                    NotVisitedOut(resident_id=r, full_name=names[r]) for r in rate.not_visited
                ],
            )
        )
    return out


async def _resident(
    conn: ConnDep, user: Principal, resident_id: int, *, flagged: bool = True
) -> dict[str, Any]:
    row = await visits.resident_in_scope(
        conn, principal=user, resident_id=resident_id, flagged=flagged
    )
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such priority resident")
    return row


@router.put("/residents/{resident_id}/flags", status_code=204, responses=NOT_FOUND)
async def put_flags(
    conn: ConnDep, user: StaffUser, at: Now, resident_id: ResidentId, body: FlagsIn
) -> None:
    await _resident(conn, user, resident_id, flagged=False)
    await visits.set_flags(
        conn,
        resident_id=resident_id,
        flags=body.flags,
        visits_per_month=body.visits_per_month,
        now=at,
    )
    await conn.commit()


@router.put(
    "/residents/{resident_id}/visitor",
    status_code=204,
    responses={404: {"model": Problem}, 409: {"model": Problem}},
)
async def put_visitor(
    conn: ConnDep, user: StaffUser, at: Now, resident_id: ResidentId, body: AssignIn
) -> None:
    await _resident(conn, user, resident_id)
    if not await visits.assign_visitor(
        conn, resident_id=resident_id, visitor_user_id=body.visitor_user_id, now=at
    ):
        await conn.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "that user is not a registered visitor")
    await conn.commit()


@router.post(
    "/residents/{resident_id}/visits",
    response_model=VisitOut,
    status_code=201,
    responses={404: {"model": Problem}, 409: {"model": Problem}},
)
async def post_visit(
    conn: ConnDep,
    user: CareUser,
    settings: SettingsDep,
    at: Now,
    resident_id: ResidentId,
    body: VisitIn,
) -> VisitOut:
    resident = await _resident(conn, user, resident_id)
    visited_at = body.visited_at or at
    if visited_at.tzinfo is None or visited_at > at:
        raise HTTPException(
            status.HTTP_409_CONFLICT, "a visit time needs a zone and must not be in the future"
        )
    try:
        row = await visits.record_visit(
            conn,
            principal=user,
            resident=resident,
            visited_at=visited_at,
            checklist={
                k: getattr(body, k)
                for k in ("eating_ok", "mobility_ok", "mood_ok", "home_safety_ok", "devices_ok")
            },
            notes=body.notes,
            follow_up=body.follow_up,
            follow_up_category=body.follow_up_category,
            now=at,
            policy=policy_from_settings(settings),
        )
    except OrderError as exc:
        await conn.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    await conn.commit()
    return VisitOut(**row)


@router.get("/residents/{resident_id}/visits", response_model=list[VisitOut], responses=NOT_FOUND)
async def get_visits(
    conn: ConnDep,
    user: CareUser,
    resident_id: ResidentId,
    limit: Limit = 50,
) -> list[VisitOut]:
    await _resident(conn, user, resident_id)
    return [
        VisitOut(**r) for r in await visits.list_visits(conn, resident_id=resident_id, limit=limit)
    ]
