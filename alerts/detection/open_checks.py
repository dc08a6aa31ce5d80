"""The one way open asked-first checks (``detector_checks`` rows of "did you fall?" and "press
if you are fine") are decided: claimed with their rows locked, each decided in its own
savepoint, one that fails quarantined (its alert still raised by the caller's ``quarantine``),
the decided ones marked done. A database outage is the loop's (``devices.loops``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

import psycopg

from alerts.dispatch.policy import EscalationPolicy
from devices.db import AsyncPool
from devices.registry import Conn

Decide = Callable[..., Awaitable[str | None]]  # (conn, row, *, policy, now, wall) -> outcome
Quarantine = Callable[..., Awaitable[str]]  # (conn, row, exc, *, policy, wall) -> outcome


async def decide_open(
    pool: AsyncPool,
    *,
    claim_sql: str,
    decide: Decide,
    quarantine: Quarantine,
    policy: EscalationPolicy,
    limit: int,
    now: datetime,
    wall: datetime,
) -> tuple[int, int]:
    """(decided, raised): judged at ``now``, raised and marked done at ``wall``; an outcome of
    None leaves the check open (its row lock ends with the transaction)."""
    async with pool.connection() as conn, conn.transaction():
        cur = await conn.execute(claim_sql, {"limit": limit})
        rows = await cur.fetchall()
        decided = raised = 0
        for row in rows:
            outcome = await _one(conn, row, decide, quarantine, policy=policy, now=now, wall=wall)
            if outcome is None:
                continue
            decided += 1
            raised += outcome.startswith("raised")
            await conn.execute(
                "UPDATE detector_checks SET done_at = %s, outcome = %s WHERE check_id = %s",
                (wall, outcome, row["check_id"]),
            )
    return decided, raised


async def _one(
    conn: Conn,
    row: Mapping[str, Any],
    decide: Decide,
    quarantine: Quarantine,
    *,
    policy: EscalationPolicy,
    now: datetime,
    wall: datetime,
) -> str | None:
    try:
        async with conn.transaction():
            return await decide(conn, row, policy=policy, now=now, wall=wall)
    except psycopg.OperationalError:
        raise
    except Exception as exc:  # noqa: BLE001 (quarantined and logged; its alert raised)
        return await quarantine(conn, row, exc, policy=policy, wall=wall)
