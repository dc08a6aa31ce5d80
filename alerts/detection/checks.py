"""Deferred checks: detector timers kept in the database.

A detector that must not decide on one reading returns a :class:`Deferral`; the worker stores
it in ``detector_checks``. This loop claims due checks with ``FOR UPDATE SKIP LOCKED`` (two
workers never take one check; a crash before commit leaves it due), gathers what the
resident's other sensors reported since, asks the detector again, and stores the alert or the
reason it was dismissed, in the same transaction.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from alerts.detection.check_ins import run_check_ins
from alerts.detection.check_queue import CHECKS, decide_checks
from alerts.detection.detectors.base import (
    CheckContext,
    ContextEvent,
    Dismissed,
    Rechecker,
    StreamEvent,
    Verdict,
)
from alerts.detection.events_json import event_from_json
from alerts.detection.fall import check as fall_check
from alerts.detection.fall_checks import CLAIM_OPEN, paged_already, pending_from, still_at
from alerts.detection.persist import fallback_verdict, log_raised, persist, raise_fallback
from alerts.detection.sms_replies import run_replies
from alerts.dispatch.policy import EscalationPolicy
from alerts.work_queue import quarantine
from devices.db import AsyncPool
from devices.loops import database_loop
from devices.registry import Conn
from devices.simclock import DetectorClock

log = logging.getLogger(__name__)

LOOKBACK = timedelta(minutes=2)

CLAIM_DUE = """
SELECT check_id, detector, event FROM detector_checks
WHERE done_at IS NULL AND due_at <= %(now)s AND detector NOT IN ('fall_check', 'check_in')
ORDER BY due_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED
"""

# The devices whose events tell about the same person: the checked device, the resident's
# assigned devices, the devices of the resident's room, and in a home-care bed the whole home.
# With no resident known, the checked device and its room.
DEVICES_OF = """
SELECT coalesce(array_agg(DISTINCT k), '{}') AS keys FROM (
    SELECT %(device_key)s::integer AS k
    UNION ALL
    SELECT a.device_key FROM device_assignments a
    WHERE a.resident_id = %(rid)s AND a.during && tstzrange(%(since)s, %(until)s)
    UNION ALL
    SELECT d.device_key FROM devices d JOIN residents r ON r.room_id = d.room_id
    WHERE r.resident_id = %(rid)s
    UNION ALL
    SELECT d.device_key FROM devices d JOIN residents r ON r.site_id = d.site_id
    JOIN sites s ON s.site_id = d.site_id
    WHERE r.resident_id = %(rid)s AND s.kind = 'home_care_bed'
    UNION ALL
    SELECT d.device_key FROM devices d
    WHERE %(rid)s::bigint IS NULL AND d.room_id = %(room_id)s) x
"""

CONTEXT_SQL = """
SELECT e.time, e.name, e.device_key, d.kind AS device_kind, rm.kind AS room_kind,
       e.value_bool, e.value_num, e.value_text
FROM events e
JOIN devices d ON d.device_key = e.device_key
LEFT JOIN rooms rm ON rm.room_id = d.room_id
WHERE e.device_key = ANY(%(keys)s) AND e.time >= %(since)s AND e.time <= %(until)s
ORDER BY e.time
"""


@dataclass(frozen=True, slots=True)
class CheckCycle:
    checked: int
    raised: int


async def load_context(conn: Conn, event: StreamEvent, *, now: datetime) -> CheckContext:
    since = event.time - LOOKBACK
    params = {
        "device_key": event.device_key,
        "rid": event.resident_id,
        "room_id": event.room_id,
        "since": since,
        "until": now,
    }
    cur = await conn.execute(DEVICES_OF, params)
    row = await cur.fetchone()
    keys = list(row["keys"]) if row is not None else [event.device_key]
    cur = await conn.execute(CONTEXT_SQL, {"keys": keys, "since": since, "until": now})
    events = [ContextEvent(**r) for r in await cur.fetchall()]
    cur = await conn.execute(
        "SELECT online FROM device_status WHERE device_key = %s", (event.device_key,)
    )
    status = await cur.fetchone()
    return CheckContext(events=events, device_online=None if status is None else status["online"])


async def _check_one(
    conn: Conn,
    row: Mapping[str, Any],
    *,
    rechecks: Mapping[str, Rechecker],
    policy: EscalationPolicy,
    now: datetime,
    wall: datetime,
) -> str:
    detector = rechecks.get(row["detector"])
    if detector is None:
        return f"dismissed: detector {row['detector']} is not running"
    event = event_from_json(row["event"])
    context = await load_context(conn, event, now=now)
    result = detector.recheck(event, context, now=now)
    if isinstance(result, Dismissed):
        return f"dismissed: {result.reason}"
    if await persist(conn, result, now=wall, policy=policy):
        log_raised(result)
        return "raised"
    return "folded into an earlier alert"


async def _quarantine_check(
    conn: Conn, row: Mapping[str, Any], exc: Exception, *, policy: EscalationPolicy, wall: datetime
) -> str:
    """Keep the check with its error; a check of a life-safety event (a fall the detector
    doubted) is raised red by the fallback rather than lost."""
    error, _ = await quarantine(conn, CHECKS, row, exc, now=wall)
    event = row["event"] if isinstance(row["event"], dict) else {}
    fallback = fallback_verdict(event, error, now=wall)
    raised = await raise_fallback(
        conn, fallback, policy=policy, now=wall, item=f"check {row['check_id']}"
    )
    if raised is None:
        return f"quarantined: {error}"
    return "raised" if raised else f"quarantined, folded: {error}"


async def run_checks(
    pool: AsyncPool,
    *,
    rechecks: Mapping[str, Rechecker],
    policy: EscalationPolicy,
    limit: int,
    now: datetime,
    wall: datetime | None = None,
) -> CheckCycle:
    """Checks fall due and are judged at ``now``; what they raise is raised at ``wall``
    (the same time unless a conformance run set a simulated clock). Every claimed check is
    decided: dismissed, raised, folded or quarantined."""
    decided, raised = await decide_checks(
        pool,
        claim_sql=CLAIM_DUE,
        params={"now": now, "limit": limit},
        decide=functools.partial(_check_one, rechecks=rechecks),
        quarantine=_quarantine_check,
        policy=policy,
        now=now,
        wall=wall or now,
    )
    return CheckCycle(decided, raised)


async def _decide_fall_check(
    conn: Conn, row: Mapping[str, Any], *, policy: EscalationPolicy, now: datetime, wall: datetime
) -> str | None:
    """The check's outcome once decided (None: it stays open)."""
    check = pending_from(dict(row))
    if await paged_already(conn, check.verdict):
        result: Verdict | Dismissed | None = Dismissed("paged at once by a later window")
    else:
        context = await load_context(conn, event_from_json(row["event"]), now=now)
        still = await still_at(conn, check, now=now)
        result = fall_check.judge(check, context, still_at=still, now=now)
    if result is None:
        return None
    if isinstance(result, Dismissed) and result.reason.startswith("paged"):
        return f"superseded: {result.reason}"
    if isinstance(result, Dismissed):
        log.info("fall check %s: cancelled: %s", check.check_id, result.reason)
        return f"cancelled: {result.reason}"
    if await persist(conn, result, now=wall, policy=policy):
        log_raised(result)
        return f"raised: {result.details.get('check_outcome')}"
    return "folded into an earlier alert"


async def _quarantine_fall_check(
    conn: Conn, row: Mapping[str, Any], exc: Exception, *, policy: EscalationPolicy, wall: datetime
) -> str:
    """A fall check that cannot be judged pages its fall now: asking is only worth it while
    the answer can be read."""
    outcome = await _quarantine_check(conn, row, exc, policy=policy, wall=wall)
    try:
        verdict = pending_from(dict(row)).verdict
    except Exception:
        log.exception("fall check %s: its fall could not be read", row.get("check_id"))
        return outcome
    raised = await raise_fallback(
        conn, verdict, policy=policy, now=wall, item=f"fall check {row.get('check_id')}"
    )
    return f"raised: check failed ({outcome})" if raised else outcome


async def run_fall_checks(
    pool: AsyncPool, *, policy: EscalationPolicy, limit: int, now: datetime, wall: datetime
) -> CheckCycle:
    """Every open "did you fall?" check, due or not: an SOS, lying still or the window run
    out raise its fall at once, the wearer's "I'm OK" cancels it; otherwise it stays open
    (no write: the row lock ends with the transaction). Judged at ``now``, raised at ``wall``."""
    decided, raised = await decide_checks(
        pool,
        claim_sql=CLAIM_OPEN,
        params={"limit": limit},
        decide=_decide_fall_check,
        quarantine=_quarantine_fall_check,
        policy=policy,
        now=now,
        wall=wall,
    )
    return CheckCycle(decided, raised)


async def check_loop(
    pool: AsyncPool,
    *,
    rechecks: Mapping[str, Rechecker],
    policy: EscalationPolicy,
    limit: int,
    poll_s: float,
    clock: DetectorClock,
    stop: asyncio.Event,
) -> None:

    async def one_round() -> float:
        at = await clock.now(pool)
        cycle = await run_checks(
            pool, rechecks=rechecks, policy=policy, limit=limit, now=at.detect, wall=at.wall
        )
        await run_fall_checks(pool, policy=policy, limit=limit, now=at.detect, wall=at.wall)
        await run_check_ins(pool, policy=policy, limit=limit, now=at.detect, wall=at.wall)
        await run_replies(pool, policy=policy, limit=limit, wall=at.wall)
        return 0.0 if cycle.checked >= limit else poll_s

    await database_loop("checks", one_round, stop=stop)
