"""The simulated detector clock: what time the time-driven detectors believe it is.

The clock itself is ``devices.domain.SimClock``, the one a conformance run plays by; here is
what a backend accepts of it (:func:`accepted`), where it keeps it, and when it obeys it.

In production there is none and every detector evaluates at the wall clock. A conformance run
that plays a compressed or back-dated world (``simulators conform``) sets one through the API
(admin only, and only on a backend started with ``ELDERCARE_SIM_CLOCK_ALLOWED=1``); the alerts
worker then evaluates inactivity, deferred checks and vital-sign windows at
``sim_origin + (wall - wall_origin) x speed``, while everything people act on (when an alert
was raised, order deadlines, escalation) stays on the wall clock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from devices.db import AsyncPool
from devices.domain import SimClock
from devices.loops import database_loop
from devices.registry import Conn

MAX_SPEED: Final = 10_000.0
# How far a simulated world may lie from the wall clock (a scenario of a few days).
MAX_OFFSET: Final = timedelta(days=7)


class SimClockError(ValueError):
    """A simulated clock that makes no sense (speed, origin in the future, too far back)."""


def accepted(clock: SimClock) -> SimClock:
    """The clock, if a backend may judge by it; SimClockError if not."""
    if clock.sim_origin.tzinfo is None or clock.wall_origin.tzinfo is None:
        raise SimClockError("origins need a time zone")
    if not 1.0 <= clock.speed <= MAX_SPEED:
        raise SimClockError(f"speed {clock.speed:g} outside 1..{MAX_SPEED:g}")
    if clock.sim_origin > clock.wall_origin:
        raise SimClockError("the simulated origin lies ahead of the wall clock")
    if clock.wall_origin - clock.sim_origin > MAX_OFFSET:
        raise SimClockError(f"the simulated origin lies more than {MAX_OFFSET} back")
    return clock


async def load(conn: Conn) -> SimClock | None:
    cur = await conn.execute("SELECT sim_origin, wall_origin, speed FROM simulated_clock")
    row = await cur.fetchone()
    if row is None:
        return None
    return accepted(SimClock(row["sim_origin"], row["wall_origin"], float(row["speed"])))


async def store(conn: Conn, clock: SimClock, *, set_by: str, now: datetime) -> None:
    await conn.execute(
        "INSERT INTO simulated_clock (sim_origin, wall_origin, speed, set_by, set_at) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (only_row) DO UPDATE SET "
        "sim_origin = EXCLUDED.sim_origin, wall_origin = EXCLUDED.wall_origin, "
        "speed = EXCLUDED.speed, set_by = EXCLUDED.set_by, set_at = EXCLUDED.set_at",
        (clock.sim_origin, clock.wall_origin, clock.speed, set_by, now),
    )


async def clear(conn: Conn) -> bool:
    cur = await conn.execute("DELETE FROM simulated_clock")
    return cur.rowcount > 0


# What time the time-driven detectors evaluate at: the wall clock, or the simulated clock
# (obeyed only when the worker was started with ELDERCARE_SIM_CLOCK_ALLOWED=1, so a stray
# row cannot blind a production backend).
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
        self._last: SimClock | None = None

    async def now(self, pool: AsyncPool) -> Instant:
        wall = self._wall()
        if not self._allowed:
            return Instant(wall, wall)
        async with pool.connection() as conn:
            sim = await load(conn)
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


# One round of a time-driven loop, at the clock's instant.
Work = Callable[[Instant], Awaitable[object]]


async def clocked_loop(
    name: str,
    pool: AsyncPool,
    work: Work,
    *,
    clock: DetectorClock,
    every_s: float,
    stop: asyncio.Event,
) -> None:
    """``work(at)`` at the clock's instant, every ``every_s`` of detector time, as a
    ``database_loop`` (an outage is waited out, ``stop`` ends it)."""

    async def one_round() -> float:
        at = await clock.now(pool)
        await work(at)
        return at.interval(every_s)

    await database_loop(name, one_round, stop=stop)
