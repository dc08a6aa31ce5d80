"""Supervised long-running loops: one loop that raises is logged, counted and restarted with
a growing delay while the others keep running; a process never ends because one loop did.

Each loop's health (running, restarts, last error) is kept here, written into the process's
heartbeat row (:mod:`devices.heartbeat`) and served on ``/readyz`` and ``/metrics``, so the
centre sees a loop in trouble before anyone notices a missing alarm.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from prometheus_client import Counter, Gauge

from devices.backoff import Backoff

log = logging.getLogger(__name__)

RESTARTS = Counter("loop_restarts", "Times a supervised loop failed and was restarted", ["loop"])
RUNNING = Gauge(
    "loop_running", "1 while a supervised loop runs, 0 while it waits to restart", ["loop"]
)

# a loop that ran this long before failing starts again from the shortest delay
HEALTHY_AFTER_S = 60.0


@dataclass(slots=True)
class LoopHealth:
    name: str
    running: bool = False
    restarts: int = 0
    last_error: str | None = None
    last_error_at: float | None = None  # time.time() of the last failure
    started_at: float | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "running": self.running,
            "restarts": self.restarts,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
        }


@dataclass(slots=True)
class Supervisor:
    """Runs loops and keeps their health. ``sleep`` and ``clock`` are injectable so tests
    drive the restart delays without waiting for them."""

    stop: asyncio.Event
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 30.0
    clock: Callable[[], float] = time.monotonic
    loops: dict[str, LoopHealth] = field(default_factory=dict)

    def ready(self) -> bool:
        return all(h.running for h in self.loops.values())

    async def run(self, name: str, factory: Callable[[], Awaitable[None]]) -> None:
        """Run ``factory()`` until the stop event is set, restarting it after any failure.
        A loop that returns while the process is not stopping is a failure too."""
        health = self.loops.setdefault(name, LoopHealth(name))
        backoff = Backoff(initial_s=self.backoff_initial_s, maximum_s=self.backoff_max_s)
        while not self.stop.is_set():
            health.running, health.started_at = True, self.clock()
            RUNNING.labels(name).set(1)
            try:
                await factory()
                if self.stop.is_set():
                    break
                error = "the loop returned while the process was not stopping"
                log.error("loop %s ended unexpectedly; restarting", name, extra={"loop": name})
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the point: one loop's failure must not end the others
                error = f"{type(exc).__name__}: {exc}"[:500]
                log.exception("loop %s failed; restarting", name, extra={"loop": name})
            finally:
                health.running = False
                RUNNING.labels(name).set(0)
            health.restarts += 1
            health.last_error, health.last_error_at = error, time.time()
            RESTARTS.labels(name).inc()
            if self.clock() - (health.started_at or 0.0) >= HEALTHY_AFTER_S:
                backoff.reset()
            delay = backoff.next_delay()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=delay)
