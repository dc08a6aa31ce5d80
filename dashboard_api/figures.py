"""Time-to-help figures for staff (their sites), admins and the 96345 centre's operators (every
site)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError

from alerts.dispatch.timetohelp import GroupBy, order_times, summarise
from dashboard_api.deps import ConnDep, HotlineUser, Now, SiteFilter
from dashboard_api.queries import centre_scope
from dashboard_api.schemas import FiguresOut
from dashboard_api.timeline import EARLIEST, LATEST

router = APIRouter(prefix="/api/figures", tags=["figures"])


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t


@router.get("/time-to-help", response_model=list[FiguresOut])
async def time_to_help(
    conn: ConnDep,
    user: HotlineUser,
    at: Now,
    by: GroupBy = GroupBy.SITE,
    since: datetime | None = None,
    until: datetime | None = None,
    site_id: SiteFilter = None,
) -> list[FiguresOut]:
    """Per site, provider or community: stage percentiles (seconds), the share accepted
    within 60 s and 5 min, the false-alarm rate, the most frequent case types and the
    provider score (definitions: docs/dispatch.md). Default period: the last 30 days."""
    until = _utc(until) if until else at  # a time without a zone is taken as UTC
    if not EARLIEST <= until <= LATEST or (since is not None and not _utc(since) >= EARLIEST):
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("query", "until"),
                    "msg": "need 2000 <= since < until <= 2200",
                }
            ]
        )
    since = _utc(since) if since else until - timedelta(days=30)
    if since >= until:
        # shaped like FastAPI's own validation errors: one documented schema for 422
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("query", "since"),
                    "msg": "since must be before until",
                }
            ]
        )
    where, params = centre_scope(user, site_col="o.site_id")
    rows = await order_times(
        conn, where=where, params=params, since=since, until=until, site_id=site_id
    )
    return [FiguresOut(**asdict(f)) for f in summarise(rows, by=by)]
