"""The health of the alarm path itself, for the people who keep it running.

- ``GET /api/technical-alerts``: what the dead-man's switch raised (a worker gone, a queue
  lagging, a device flooding, items quarantined), for the wall; staff see those of their
  sites and the system-wide ones.
- ``GET /api/admin/quarantine`` and ``POST /api/admin/quarantine/{id}/resolve``: the items a
  loop could not process, with their error (administrators).
- ``/readyz``: the database answers and the API's watchdog runs; ``/metrics``: Prometheus
  text, for a scraper holding ``ELDERCARE_METRICS_TOKEN`` (404 while no token is set).
"""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Header, HTTPException, Request, status
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from alerts.watchdog.conditions import render
from dashboard_api.deps import AdminUser, ConnDep, Now, PoolDep, SettingsDep, StaffUser
from dashboard_api.i18n import LocaleDep
from devices.domain import Role
from devices.probe import readiness, record_pool_stats
from devices.supervise import Supervisor

router = APIRouter(tags=["operations"])


class TechnicalAlertOut(BaseModel):
    id: int
    key: str
    kind: str
    colour: str
    subject: str  # zh-CN / en, as the channels sent it
    text: str  # in the reader's language
    details: dict[str, Any]
    raised_at: datetime
    last_seen_at: datetime
    cleared_at: datetime | None
    notified_at: datetime | None


class QuarantinedOut(BaseModel):
    id: int
    queue: str
    item_key: str
    payload: dict[str, Any]
    error: str
    process: str
    attempts: int
    quarantined_at: datetime
    last_error_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None


class ResolveIn(BaseModel):
    note: str = ""


@router.get("/api/technical-alerts", response_model=list[TechnicalAlertOut])
async def technical_alerts(
    conn: ConnDep, user: StaffUser, at: Now, locale: LocaleDep, include_cleared: bool = False
) -> list[TechnicalAlertOut]:
    """Open technical alerts (and, with ``include_cleared``, those of the last day)."""
    sites = None if user.role is Role.ADMIN else sorted(user.site_ids)
    cur = await conn.execute(
        "SELECT id, key, kind, colour, subject, details, raised_at, last_seen_at, cleared_at, "
        "notified_at FROM technical_alerts "
        "WHERE (cleared_at IS NULL OR (%(cleared)s AND cleared_at > %(now)s - interval '1 day'))"
        " AND (%(sites)s::text[] IS NULL OR details->>'site_id' IS NULL"
        "      OR details->>'site_id' = ANY(%(sites)s))"
        " ORDER BY cleared_at IS NOT NULL, colour = 'yellow', raised_at",
        {"cleared": include_cleared, "now": at, "sites": sites},
    )
    return [
        TechnicalAlertOut(
            **r, text=render(r["details"].get("message"), r["details"], locale) or r["subject"]
        )
        for r in await cur.fetchall()
    ]


@router.get("/api/admin/quarantine", response_model=list[QuarantinedOut])
async def quarantine(
    conn: ConnDep, user: AdminUser, include_resolved: bool = False
) -> list[QuarantinedOut]:
    """Items a worker could not process, newest first."""
    cur = await conn.execute(
        "SELECT * FROM quarantine WHERE %s OR resolved_at IS NULL "
        "ORDER BY last_error_at DESC LIMIT 500",
        (include_resolved,),
    )
    return [QuarantinedOut(**r) for r in await cur.fetchall()]


@router.post("/api/admin/quarantine/{item_id}/resolve", response_model=QuarantinedOut)
async def resolve(
    item_id: int, body: ResolveIn, conn: ConnDep, user: AdminUser, at: Now
) -> QuarantinedOut:
    """Mark a quarantined item dealt with (the technical alert clears with the last one)."""
    by = f"{user.username}: {body.note}"[:200].replace("\x00", "")
    cur = await conn.execute(
        "UPDATE quarantine SET resolved_at = %s, resolved_by = %s "
        "WHERE id = %s AND resolved_at IS NULL RETURNING *",
        (at, by, item_id),
    )
    row = await cur.fetchone()
    await conn.commit()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no open quarantined item with this id")
    return QuarantinedOut(**row)


@router.get("/readyz", include_in_schema=False)
async def readyz(request: Request, pool: PoolDep) -> JSONResponse:
    supervisor: Supervisor | None = getattr(request.app.state, "supervisor", None)
    ready, body = await readiness(pool, supervisor)
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics(
    settings: SettingsDep, pool: PoolDep, authorization: str | None = Header(default=None)
) -> Response:
    token = settings.metrics_token.get_secret_value()
    if not token:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "metrics are not enabled")
    if authorization is None or not hmac.compare_digest(authorization, f"Bearer {token}"):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "metrics token required")
    record_pool_stats(pool)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
