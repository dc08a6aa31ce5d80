"""Administration that is not for care work: the simulated detector clock of a conformance run.

``PUT /api/admin/sim-clock`` makes the time-driven detectors (inactivity, deferred checks,
vital signs, device silence) evaluate at a simulated time that runs ``speed`` times faster from
``sim_origin`` (see :mod:`devices.simclock`); ``DELETE`` goes back to the wall clock. Only on a
backend started with ``ELDERCARE_SIM_CLOCK_ALLOWED=1``: anywhere else every call is refused
with 409, and the alerts worker ignores the table.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, Field

from dashboard_api.deps import AdminUser, ConnDep, Now, SettingsDep
from dashboard_api.errors import ApiError
from devices import simclock
from devices.registry import Conn

router = APIRouter(prefix="/api/admin", tags=["admin"])


class SimClockIn(BaseModel):
    sim_origin: datetime = Field(description="simulated time at wall_origin (with a zone)")
    wall_origin: datetime | None = Field(default=None, description="default: now")
    speed: float = Field(default=1.0, ge=1.0, le=simclock.MAX_SPEED)


class SimClockOut(BaseModel):
    simulated: bool
    wall_now: datetime
    detector_now: datetime
    sim_origin: datetime | None = None
    wall_origin: datetime | None = None
    speed: float = 1.0


def _allowed(settings: SettingsDep) -> None:
    if not settings.sim_clock_allowed:
        raise ApiError(status.HTTP_409_CONFLICT, "error.sim_clock")


Allowed = Annotated[None, Depends(_allowed)]  # after the user: anonymous callers get 401


def _out(clock: simclock.SimClock | None, *, now: datetime) -> SimClockOut:
    if clock is None:
        return SimClockOut(simulated=False, wall_now=now, detector_now=now)
    return SimClockOut(
        simulated=True,
        wall_now=now,
        detector_now=clock.at(now),
        sim_origin=clock.sim_origin,
        wall_origin=clock.wall_origin,
        speed=clock.speed,
    )


async def set_sim_clock(
    conn: Conn, *, body: SimClockIn, username: str, now: datetime
) -> SimClockOut:
    try:
        clock = simclock.SimClock(body.sim_origin, body.wall_origin or now, body.speed)
    except simclock.SimClockError as exc:
        raise HTTPException(422, str(exc)) from exc
    await simclock.store(conn, clock, set_by=username, now=now)
    await conn.commit()
    return _out(clock, now=now)


@router.get("/sim-clock", response_model=SimClockOut)
async def get_sim_clock(conn: ConnDep, user: AdminUser, _: Allowed, at: Now) -> SimClockOut:
    """The clock the time-driven detectors evaluate at."""
    return _out(await simclock.load(conn), now=at)


@router.put("/sim-clock", response_model=SimClockOut)
async def put_sim_clock(
    body: SimClockIn, conn: ConnDep, user: AdminUser, _: Allowed, at: Now
) -> SimClockOut:
    """Set the simulated detector clock (conformance runs only)."""
    return await set_sim_clock(conn, body=body, username=user.username, now=at)


@router.delete("/sim-clock", response_model=SimClockOut)
async def delete_sim_clock(conn: ConnDep, user: AdminUser, _: Allowed, at: Now) -> SimClockOut:
    """Back to the wall clock."""
    await simclock.clear(conn)
    await conn.commit()
    return _out(None, now=at)
