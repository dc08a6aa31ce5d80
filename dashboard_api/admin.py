"""Administration that is not for care work: retiring a device, and the simulated detector
clock of a conformance run.

``POST /api/admin/devices/{device_id}/retire`` retires a device in the registry (its password
hash is dropped, its assignment ends, ingest refuses what it still sends) and, when this
process has ``ELDERCARE_BROKER_ADMIN_PASSWORD``, removes its account from the running broker,
which disconnects it; the answer says whether that happened.

``PUT /api/admin/sim-clock`` makes the time-driven detectors (inactivity, deferred checks,
vital signs, device silence) evaluate at a simulated time that runs ``speed`` times faster from
``sim_origin`` (see :mod:`devices.simclock`); ``DELETE`` goes back to the wall clock. Only on a
backend started with ``ELDERCARE_SIM_CLOCK_ALLOWED=1``: anywhere else every call is refused
with 409, and the alerts worker ignores the table.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, status
from pydantic import BaseModel, Field

from dashboard_api.deps import AdminUser, ConnDep, Now, SettingsDep
from dashboard_api.errors import ApiError
from devices import simclock
from devices.broker_admin import remove_devices
from devices.domain import SimClock
from devices.registry import AlreadyRetired, Conn, UnknownDevice, retire_device
from devices.settings import Settings

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/admin", tags=["admin"])


class RetiredOut(BaseModel):
    device_id: str
    site_id: str
    retired_at: datetime
    removed_from_broker: bool
    broker_note: str = Field(default="", description="why the broker still knows it, if so")


async def retire(
    conn: Conn, *, settings: Settings, device_id: str, username: str, now: datetime
) -> RetiredOut:
    try:
        done = await retire_device(conn, device_id=device_id, at=now)
    except UnknownDevice as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"设备不存在 / {exc}") from exc
    except AlreadyRetired as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, f"设备已停用 / {exc}") from exc
    await conn.commit()
    log.info(
        "device %s retired by %s",
        device_id,
        username,
        extra={"device_id": device_id, "by": username},
    )
    problem = await asyncio.to_thread(
        remove_devices,
        settings.mqtt_host,
        settings.mqtt_port,
        settings.broker_admin_password.get_secret_value(),
        [device_id],
        tls_ca=settings.mqtt_tls_ca_file,
    )
    if problem:
        log.warning("retired device %s still on the broker: %s", device_id, problem)
    return RetiredOut(
        device_id=device_id,
        site_id=done.site_id,
        retired_at=done.retired_at,
        removed_from_broker=problem is None,
        broker_note=problem or "",
    )


DeviceId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


@router.post("/devices/{device_id}/retire", response_model=RetiredOut)
async def post_retire(
    device_id: DeviceId, conn: ConnDep, user: AdminUser, settings: SettingsDep, at: Now
) -> RetiredOut:
    """Retire a device (administrators only): it can no longer sign in or be dispatched to."""
    return await retire(
        conn, settings=settings, device_id=device_id, username=user.username, now=at
    )


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


def _out(clock: SimClock | None, *, now: datetime) -> SimClockOut:
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
        clock = simclock.accepted(SimClock(body.sim_origin, body.wall_origin or now, body.speed))
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
