"""Thin routes over the keyword-only service functions."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request, status

from dashboard_api import queries, throttle
from dashboard_api.deps import (
    ConnDep,
    CurrentUser,
    Now,
    SettingsDep,
    SitePageDep,
    StaffUser,
    TokenDep,
)
from dashboard_api.errors import ApiError
from dashboard_api.i18n import LocaleDep, explained, locale_of
from dashboard_api.schemas import (
    AlertOut,
    DeviceOut,
    MeOut,
    Problem,
    ResidentOut,
    SiteOut,
    TokenOut,
)
from devices.accounts import issue_token, revoke_token
from devices.domain import Colour

router = APIRouter(prefix="/api")
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem}}


@router.post(
    "/auth/token",
    response_model=TokenOut,
    responses={401: {"model": Problem}, 429: {"model": Problem}},
)
async def login(
    request: Request,
    conn: ConnDep,
    settings: SettingsDep,
    at: Now,
    # no control characters (PostgreSQL text cannot hold NUL): a clear 422, never a 500
    username: Annotated[str, Form(max_length=128, pattern=r"^[^\x00-\x1f\x7f]*$")],
    password: Annotated[str, Form(max_length=256, pattern=r"^[^\x00]*$")],
) -> TokenOut:
    # behind a reverse proxy, run uvicorn with --proxy-headers/--forwarded-allow-ips so this is
    # the user's address (docs/deployment.md)
    address = request.client.host if request.client else "unknown"
    if (wait := await throttle.check(conn, username=username, address=address, now=at)) is not None:
        raise ApiError(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "error.throttled",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )
    issued = await issue_token(
        conn, username=username, password=password, now=at, ttl=settings.token_ttl
    )
    if issued is None:
        await throttle.failed(conn, username=username, address=address, now=at)
        await conn.commit()
        raise ApiError(status.HTTP_401_UNAUTHORIZED, "error.wrong_password")
    await throttle.succeeded(conn, username=username, address=address)
    await conn.commit()
    return TokenOut(access_token=issued[0], expires_at=issued[1])


@router.post("/auth/logout", status_code=204)
async def logout(conn: ConnDep, user: CurrentUser, token: TokenDep, at: Now) -> None:
    assert token is not None  # CurrentUser succeeded, so a token was given
    await revoke_token(conn, token=token, now=at)
    await conn.commit()


@router.get("/me", response_model=MeOut)
async def me(user: CurrentUser, settings: SettingsDep) -> MeOut:
    return MeOut(
        locale=locale_of(user, settings),
        timezone=settings.site_timezone,
        user_id=user.user_id,
        username=user.username,
        role=user.role,
        site_ids=sorted(user.site_ids),
        resident_ids=sorted(user.resident_ids),
    )


@router.get("/sites", response_model=list[SiteOut])
async def sites(conn: ConnDep, user: CurrentUser) -> list[SiteOut]:
    return [SiteOut(**r) for r in await queries.list_sites(conn, principal=user)]


@router.get("/residents", response_model=list[ResidentOut])
async def residents(conn: ConnDep, user: CurrentUser, page: SitePageDep) -> list[ResidentOut]:
    rows = await queries.list_residents(conn, principal=user, page=page)
    return [ResidentOut(**r) for r in rows]


@router.get("/residents/{resident_id}", response_model=ResidentOut, responses=NOT_FOUND)
async def resident(
    conn: ConnDep, user: CurrentUser, resident_id: Annotated[int, Path(ge=1, le=2**62)]
) -> ResidentOut:
    row = await queries.get_resident(conn, principal=user, resident_id=resident_id)
    if row is None:
        raise ApiError(status.HTTP_404_NOT_FOUND, "error.no_such_resident")
    return ResidentOut(**row)


@router.get("/devices", response_model=list[DeviceOut])
async def devices(conn: ConnDep, user: StaffUser, page: SitePageDep) -> list[DeviceOut]:
    rows = await queries.list_devices(conn, principal=user, page=page)
    return [DeviceOut(**r) for r in rows]


@router.get("/alerts", response_model=list[AlertOut])
async def alerts(
    conn: ConnDep,
    user: CurrentUser,
    settings: SettingsDep,
    locale: LocaleDep,
    at: Now,
    page: SitePageDep,
    resident_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    colour: Colour | None = None,
    since: datetime | None = None,
) -> list[AlertOut]:
    rows = await queries.list_alerts(
        conn, principal=user, page=page, resident_id=resident_id, colour=colour, since=since
    )
    tz = settings.site_timezone
    return [AlertOut(**explained(r, locale=locale, tz=tz, now=at)) for r in rows]
