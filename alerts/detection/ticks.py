"""Periodic detectors: judged on what has NOT happened (silence, a bed left and not
returned to, a device gone quiet), so they run on a clock, not on incoming events.

Every ``tick_interval_s`` the loop builds one :class:`ResidentSnapshot` per current resident
from the database (a few set-based queries, see :mod:`alerts.detection.snapshots`), runs each
registered :class:`TickDetector` on it with the current time, and stores verdicts through
:func:`alerts.detection.persist.persist` (idem key + fold key: the same ongoing situation is one alert).
Detectors stay pure: snapshot and ``now`` in, verdict out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from alerts.detection.check_ins import ask_first
from alerts.detection.detectors.base import Verdict
from alerts.detection.detectors.snapshot import (
    DeviceSnapshot,
    ResidentSnapshot,
    TickDetector,
    TickSpec,
)
from alerts.detection.persist import log_raised, persist
from alerts.detection.routine import SiteDefaults
from alerts.detection.routine_store import refresh_routines
from alerts.detection.snapshots import load_snapshots
from alerts.dispatch.policy import EscalationPolicy
from devices.db import AsyncPool
from devices.simclock import Instant, Work

__all__ = [
    "DeviceSnapshot",
    "ResidentSnapshot",
    "TickDetector",
    "TickResult",
    "TickSpec",
    "evaluate_snapshots",
    "run_tick",
    "tick_round",
]

log = logging.getLogger(__name__)


def evaluate_pairs(
    snapshots: list[ResidentSnapshot], specs: tuple[TickSpec, ...], now: datetime
) -> list[tuple[ResidentSnapshot, Verdict]]:
    out: list[tuple[ResidentSnapshot, Verdict]] = []
    for snapshot in snapshots:
        for spec in specs:
            if spec.applies(snapshot):
                verdict = spec.detector.evaluate(snapshot, now=now)
                if verdict is not None:
                    out.append((snapshot, verdict))
    return out


def evaluate_snapshots(
    snapshots: list[ResidentSnapshot], specs: tuple[TickSpec, ...], now: datetime
) -> list[Verdict]:
    return [v for _, v in evaluate_pairs(snapshots, specs, now)]


@dataclass(frozen=True, slots=True)
class TickResult:
    residents: int
    alerts: int


async def run_tick(
    pool: AsyncPool,
    *,
    specs: tuple[TickSpec, ...],
    policy: EscalationPolicy,
    defaults: SiteDefaults,
    now: datetime,
    wall: datetime | None = None,
) -> TickResult:
    """Detectors judge at ``now``; alerts are raised (and orders opened) at ``wall``, the
    same time unless a conformance run set a simulated clock. An inactivity alert whose
    resident can be asked first opens a check-in instead (``alerts.detection.check_ins``)."""
    async with pool.connection() as conn, conn.transaction():
        snapshots = await load_snapshots(conn, now=now, defaults=defaults)
        raised = 0
        for snapshot, verdict in evaluate_pairs(snapshots, specs, now):
            if await ask_first(conn, verdict, snapshot, now=now, wall=wall or now):
                continue  # "press if you are fine" asked (or waiting): no alert yet
            if await persist(conn, verdict, now=wall or now, policy=policy):
                raised += 1
                log_raised(verdict)
    return TickResult(len(snapshots), raised)


def tick_round(
    pool: AsyncPool,
    *,
    specs: tuple[TickSpec, ...],
    policy: EscalationPolicy,
    defaults: SiteDefaults,
    refit_interval_s: float,
    history_days: int,
) -> Work:
    """The tick detectors' round, for ``clocked_loop``: refresh due routines, build
    snapshots, run the tick detectors."""

    async def one_round(at: Instant) -> None:
        await refresh_routines(
            pool,
            now=at.detect,
            defaults=defaults,
            max_age_s=refit_interval_s,
            history_days=history_days,
        )
        await run_tick(
            pool, specs=specs, policy=policy, defaults=defaults, now=at.detect, wall=at.wall
        )

    return one_round
