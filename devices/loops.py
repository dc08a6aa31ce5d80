"""The one shape of a worker's database loop: do a round, pause, again, until stopped.

A round returns how long to pause (0: more work is waiting, go again at once); the pause ends
early when the loop's ``wake`` event (a NOTIFY) or ``stop`` is set; ``wake`` is cleared before
each round, so a wake-up that arrives during a round is never lost. While the database is
unreachable (``psycopg.OperationalError``) the loop retries with full-jitter backoff and says
so once when it happens and once when it is back, not on every retry. Any other error is the
supervisor's (``devices.supervise``): it logs, counts and restarts the loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import psycopg
from psycopg_pool import PoolClosed

from devices.backoff import Backoff

log = logging.getLogger(__name__)

Round = Callable[[], Awaitable[float]]


class Outage:
    """ "Unavailable" once when it starts, "back" once when it ends."""

    def __init__(
        self,
        name: str,
        *,
        what: str = "database",
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.what = what
        self._clock = clock
        self._since: float | None = None
        self.backoff = backoff or Backoff()

    @property
    def down(self) -> bool:
        return self._since is not None

    def failed(self, exc: BaseException) -> float:
        """The pause before the next try; logs only the first failure of an outage."""
        if self._since is None:
            self._since = self._clock()
            log.warning(
                "%s: %s unavailable (%s); retrying with backoff",
                self.name,
                self.what,
                exc,
                extra={"loop": self.name, "state": "unavailable"},
            )
        return self.backoff.next_delay()

    def ok(self) -> None:
        self.backoff.reset()
        if self._since is not None:
            down_s = self._clock() - self._since
            self._since = None
            log.warning(
                "%s: %s back after %.0f s",
                self.name,
                self.what,
                down_s,
                extra={"loop": self.name, "state": "back", "down_s": round(down_s, 1)},
            )


async def pause(seconds: float, *, stop: asyncio.Event, wake: asyncio.Event | None) -> None:
    """Wait ``seconds``, or less if ``stop`` or ``wake`` is set first."""
    if seconds <= 0:
        await asyncio.sleep(0)  # let others run between rounds of a busy loop
        return
    waits = [asyncio.ensure_future(stop.wait())]
    if wake is not None:
        waits.append(asyncio.ensure_future(wake.wait()))
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()


async def database_loop(
    name: str,
    one_round: Round,
    *,
    stop: asyncio.Event,
    wake: asyncio.Event | None = None,
    outage: Outage | None = None,
) -> None:
    """Run ``one_round`` until ``stop`` is set (see the module's docstring)."""
    outage = outage or Outage(name)
    while not stop.is_set():
        if wake is not None:
            wake.clear()
        try:
            seconds = await one_round()
        except PoolClosed:
            raise  # the process is shutting down: not an outage to wait out
        except psycopg.OperationalError as exc:
            seconds = outage.failed(exc)
            wake_on = None  # a NOTIFY does not bring the database back; wait the backoff
        else:
            outage.ok()
            wake_on = wake
        await pause(seconds, stop=stop, wake=wake_on)
