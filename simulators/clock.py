"""A run's clock (``devices.domain.SimClock``, the one the backend is told): real time, or
compressed (a simulated day in minutes).

Simulated time runs ``speed`` times faster than the wall clock, from a start chosen so that it
never gets ahead of the wall clock (the backend refuses timestamps from the future): a run of
``duration`` simulated seconds starts ``duration * (1 - 1/speed)`` seconds in the past, moved
further back to the last ``start_local`` time of day if the scenario asks for one.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Final

from devices.domain import SimClock

# The demo sites' local time (China, devices.domain.DEFAULT_TIMEZONE: UTC+8, no summer time):
# the simulated residents' daily rhythms and a scenario's start time of day follow it.
UTC_OFFSET_H: Final = 8.0


def sim_start(*, wall_now: float, duration: float, speed: float, start_local: str | None) -> float:
    latest = wall_now - duration * (1.0 - 1.0 / speed)
    if start_local is None:
        return latest
    hh, mm = (int(x) for x in start_local.split(":"))
    local_latest = latest + UTC_OFFSET_H * 3600
    day = local_latest - local_latest % 86400
    candidate = day + hh * 3600 + mm * 60
    if candidate > local_latest:
        candidate -= 86400
    return candidate - UTC_OFFSET_H * 3600


def begin(*, duration: float, speed: float = 1.0, start_local: str | None = None) -> SimClock:
    """The clock of a run of ``duration`` simulated seconds starting now (see above)."""
    wall = time.time()
    start = sim_start(wall_now=wall, duration=duration, speed=speed, start_local=start_local)
    return epoch_clock(start, wall, speed)


def epoch_clock(start: float, wall0: float, speed: float = 1.0) -> SimClock:
    """The clock at which simulated epoch second ``start`` is wall epoch second ``wall0``."""
    return SimClock(datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(wall0, UTC), speed)


def now(clock: SimClock) -> float:
    """Simulated epoch seconds now."""
    return clock.sim_of(time.time())


async def sleep_until(clock: SimClock, sim: float) -> None:
    delay = clock.wall_of(sim) - time.time()
    if delay > 0:
        await asyncio.sleep(delay)
