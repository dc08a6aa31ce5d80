"""Request dependencies as ``Annotated`` aliases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Query, Request, status
from fastapi.security import OAuth2PasswordBearer

from dashboard_api.errors import ApiError
from dashboard_api.queries import SitePage
from devices.accounts import Principal, principal_for_token
from devices.db import AsyncPool
from devices.domain import Role
from devices.registry import Conn
from devices.settings import Settings

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/auth/token", auto_error=False)


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _pool(request: Request) -> AsyncPool:
    pool: AsyncPool = request.app.state.pool
    return pool


async def _conn(pool: Annotated[AsyncPool, Depends(_pool)]) -> AsyncIterator[Conn]:
    async with pool.connection() as conn:
        yield conn


def now() -> datetime:
    return datetime.now(UTC)


SettingsDep = Annotated[Settings, Depends(_settings)]
ConnDep = Annotated[Conn, Depends(_conn)]
PoolDep = Annotated[AsyncPool, Depends(_pool)]  # for long responses that must not hold a conn
Now = Annotated[datetime, Depends(now)]
TokenDep = Annotated[str | None, Depends(oauth2)]

# The query parameters of the list routes.
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
SiteFilter = Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


def _site_page(site_id: SiteFilter = None, limit: Limit = 100, offset: Offset = 0) -> SitePage:
    return SitePage(site_id, limit, offset)


SitePageDep = Annotated[SitePage, Depends(_site_page)]


async def _principal(conn: ConnDep, token: TokenDep, at: Now) -> Principal:
    principal = None if token is None else await principal_for_token(conn, token=token, now=at)
    if principal is None:
        raise ApiError(
            status.HTTP_401_UNAUTHORIZED,
            "error.not_signed_in",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return principal


CurrentUser = Annotated[Principal, Depends(_principal)]


async def _staff(principal: CurrentUser) -> Principal:
    if principal.role not in (Role.ADMIN, Role.STAFF):
        raise ApiError(status.HTTP_403_FORBIDDEN, "error.staff_only")
    return principal


StaffUser = Annotated[Principal, Depends(_staff)]


async def _order_user(principal: CurrentUser) -> Principal:
    if principal.role not in (Role.ADMIN, Role.STAFF, Role.RESPONDER):
        raise ApiError(status.HTTP_403_FORBIDDEN, "error.order_users_only")
    return principal


OrderUser = Annotated[Principal, Depends(_order_user)]


async def _order_reader(principal: CurrentUser) -> Principal:
    """Who may read orders: those who move them, and the 96345 centre's operators."""
    if principal.role not in (Role.ADMIN, Role.STAFF, Role.RESPONDER, Role.OPERATOR):
        raise ApiError(status.HTTP_403_FORBIDDEN, "error.order_users_only")
    return principal


OrderReader = Annotated[Principal, Depends(_order_reader)]


async def _hotline(principal: CurrentUser) -> Principal:
    """Who enters service orders and reads the time-to-help figures: staff, admins, operators."""
    if principal.role not in (Role.ADMIN, Role.STAFF, Role.OPERATOR):
        raise ApiError(status.HTTP_403_FORBIDDEN, "error.hotline_only")
    return principal


HotlineUser = Annotated[Principal, Depends(_hotline)]


async def _operator(principal: CurrentUser) -> Principal:
    """The centre console: operators and admins."""
    if principal.role not in (Role.ADMIN, Role.OPERATOR):
        raise ApiError(status.HTTP_403_FORBIDDEN, "error.operator_only")
    return principal


OperatorUser = Annotated[Principal, Depends(_operator)]


async def _admin(principal: CurrentUser) -> Principal:
    if principal.role is not Role.ADMIN:
        raise ApiError(status.HTTP_403_FORBIDDEN, "error.admin_only")
    return principal


AdminUser = Annotated[Principal, Depends(_admin)]
