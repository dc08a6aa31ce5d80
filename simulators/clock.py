"""The simulated clock: real time, or compressed (a simulated day in minutes).

Simulated time runs ``speed`` times faster than the wall clock, from a start chosen so that it
never gets ahead of the wall clock (the backend refuses timestamps from the future): a run of
``duration`` simulated seconds starts ``duration * (1 - 1/speed)`` seconds in the past, moved
further back to the last ``start_local`` time of day if the scenario asks for one.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Final

UTC_OFFSET_H: Final = 8.0  # the demo sites' local time (China)


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


@dataclass(frozen=True, slots=True)
class SimClock:
    start: float  # simulated epoch seconds at wall time ``wall0``
    wall0: float
    speed: float = 1.0

    @classmethod
    def begin(
        cls, *, duration: float, speed: float = 1.0, start_local: str | None = None
    ) -> SimClock:
        wall = time.time()
        start = sim_start(wall_now=wall, duration=duration, speed=speed, start_local=start_local)
        return cls(start=start, wall0=wall, speed=speed)

    def sim_of(self, wall: float) -> float:
        return self.start + (wall - self.wall0) * self.speed

    def wall_of(self, sim: float) -> float:
        return self.wall0 + (sim - self.start) / self.speed

    def now(self) -> float:
        return self.sim_of(time.time())

    async def sleep_until(self, sim: float) -> None:
        delay = self.wall_of(sim) - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
