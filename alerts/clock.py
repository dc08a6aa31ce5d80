"""What time the time-driven detectors evaluate at: the wall clock, or the simulated clock a
conformance run set (see :mod:`devices.simclock`; obeyed only when the worker was started with
``ELDERCARE_SIM_CLOCK_ALLOWED=1``, so a stray row cannot blind a production backend)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from devices import simclock
from devices.db import AsyncPool

log = logging.getLogger(__name__)

# A loop paced for the wall clock runs at least this often under a fast simulated clock.
MIN_SIM_INTERVAL_S = 2.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Instant:
    detect: datetime  # detectors judge silence, windows and due checks at this time
    wall: datetime  # alerts are raised, orders opened and deadlines set at this one
    speed: float = 1.0

    def interval(self, wall_interval_s: float) -> float:
        """A loop's pause: ``wall_interval_s`` of simulated time, within reason (speed >= 1)."""
        return max(min(MIN_SIM_INTERVAL_S, wall_interval_s), wall_interval_s / self.speed)


class DetectorClock:
    def __init__(self, *, allowed: bool, wall: Callable[[], datetime] = _utcnow) -> None:
        self._allowed = allowed
        self._wall = wall
        self._last: simclock.SimClock | None = None

    async def now(self, pool: AsyncPool) -> Instant:
        wall = self._wall()
        if not self._allowed:
            return Instant(wall, wall)
        async with pool.connection() as conn:
            sim = await simclock.load(conn)
        if sim != self._last:
            if sim is None:
                log.warning("detector clock: back to the wall clock")
            else:
                log.warning(
                    "detector clock: simulated, %gx, now %s (wall %s)",
                    sim.speed,
                    sim.at(wall).isoformat(timespec="seconds"),
                    wall.isoformat(timespec="seconds"),
                )
            self._last = sim
        if sim is None:
            return Instant(wall, wall)
        return Instant(sim.at(wall), wall, sim.speed)
