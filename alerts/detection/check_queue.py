"""The detector checks' queue (``detector_checks``: deferred checks, "did you fall?" and
"press if you are fine"): claimed with their rows locked, each decided in its own savepoint,
one that fails quarantined (its alert still raised by the caller's ``quarantine``), the
decided ones marked done, all through :mod:`alerts.work_queue`. A database outage is the
loop's (``devices.loops``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from alerts.dispatch.policy import EscalationPolicy
from alerts.work_queue import Queue, claimed, each
from devices.db import AsyncPool

CHECKS = Queue("detector_checks", key="check_id", what="check")
CHECK_INS = Queue("detector_checks", key="check_id", what="check-in")

Decide = Callable[..., Awaitable[str | None]]  # (conn, row, *, policy, now, wall) -> outcome
Quarantine = Callable[..., Awaitable[str]]  # (conn, row, exc, *, policy, wall) -> outcome


async def decide_checks(
    pool: AsyncPool,
    *,
    claim_sql: str,
    params: Mapping[str, object],
    decide: Decide,
    quarantine: Quarantine,
    policy: EscalationPolicy,
    now: datetime,
    wall: datetime,
) -> tuple[int, int]:
    """(decided, raised): judged at ``now``, raised and marked done at ``wall``; an outcome of
    None leaves the check open (its row lock ends with the transaction)."""
    async with pool.connection() as conn, claimed(conn, claim_sql, params) as rows:

        async def work(row: Mapping[str, Any]) -> str | None:
            return await decide(conn, row, policy=policy, now=now, wall=wall)

        async def failed(row: Mapping[str, Any], exc: Exception) -> str | None:
            return await quarantine(conn, row, exc, policy=policy, wall=wall)

        async def mark_done(row: Mapping[str, Any], outcome: str | None) -> None:
            if outcome is not None:
                await conn.execute(
                    "UPDATE detector_checks SET done_at = %s, outcome = %s WHERE check_id = %s",
                    (wall, outcome, row["check_id"]),
                )

        outcomes = await each(conn, rows, work, failed=failed, then=mark_done)
    decided = [o for o in outcomes if o is not None]
    return len(decided), sum(o.startswith("raised") for o in decided)
