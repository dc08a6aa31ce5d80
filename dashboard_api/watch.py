"""``GET /api/residents/{id}/watch``: what the inactivity watch promises a resident now.

If they stop moving now: when the carers are alerted at the latest, and when the resident is
asked first; and the same for a spell begun at each hour of the day in each place they rest
(at home, seated, in the bathroom, in bed). Computed by the detector's own rules
(:mod:`alerts.detection.detectors.promise`) on the snapshot the tick loop would take, so the
page shows the bound the watch keeps. Staff of the resident's site and the resident's own
family (the same scope as the resident's status).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, status
from pydantic import BaseModel, ConfigDict

from alerts.detection.detectors.promise import promise
from alerts.detection.snapshots import load_snapshots, site_defaults
from dashboard_api.deps import ConnDep, CurrentUser, Now, SettingsDep
from dashboard_api.errors import ApiError
from dashboard_api.queries import get_resident
from dashboard_api.schemas import Problem
from devices.phones import mainland_digits

router = APIRouter(prefix="/api")
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem}}
Id = Annotated[int, Path(ge=1, le=2**62)]


class _Read(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class WatchHourOut(_Read):
    hour: int
    alert_after_s: float
    state: str
    learned: bool
    from_window_end: bool


class WatchPlaceOut(_Read):
    place: str
    cap_s: float
    hours: list[WatchHourOut]


class WatchSpellOut(_Read):
    state: str
    last_sign_at: datetime
    counted_from: datetime
    alert_by: datetime
    ask_from: datetime | None
    threshold_s: float
    cap_s: float
    learned: bool


class WatchOut(_Read):
    resident_id: int
    taken_at: datetime
    timezone: str
    sleep_window: tuple[float, float]
    routine_learned: bool
    history_days: float
    has_bed_mat: bool
    has_seat_sensor: bool
    bed_exit_watch: bool
    check_in_s: int
    asks_on: str | None
    away: bool
    current: WatchSpellOut | None
    places: list[WatchPlaceOut]


@router.get("/residents/{resident_id}/watch", response_model=WatchOut, responses=NOT_FOUND)
async def resident_watch(
    conn: ConnDep, user: CurrentUser, at: Now, settings: SettingsDep, resident_id: Id
) -> WatchOut:
    """What the inactivity watch promises this resident now and by hour of the day."""
    if await get_resident(conn, principal=user, resident_id=resident_id) is None:
        raise ApiError(status.HTTP_404_NOT_FOUND, "error.no_such_resident")
    snaps = await load_snapshots(
        conn, now=at, defaults=site_defaults(settings), resident_id=resident_id
    )
    if not snaps:  # not admitted yet, or discharged
        raise ApiError(status.HTTP_404_NOT_FOUND, "error.no_such_resident")
    cur = await conn.execute("SELECT phone FROM residents WHERE resident_id = %s", (resident_id,))
    row = await cur.fetchone()
    can_text = row is not None and mainland_digits(str(row["phone"])) is not None
    return WatchOut.model_validate(promise(snaps[0], can_text=can_text))
