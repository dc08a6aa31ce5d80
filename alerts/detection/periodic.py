"""Detectors on a timer: vital signs (per resident) and device health (per device).

Each cycle reads what it needs in a few set-based queries, runs the pure detectors with an
explicit ``now``, keeps their state in ``detector_state`` and stores verdicts through the same
``persist`` as the event-driven detectors (idempotent keys: a repeated cycle raises nothing new).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from psycopg.types.json import Jsonb

from alerts.detection.detectors.base import Verdict
from alerts.detection.detectors.devicehealth import DeviceHealth, DeviceHealthDetector
from alerts.detection.detectors.vitals import VitalsDetector, VitalsState, VitalsWindow
from alerts.detection.persist import log_raised, persist
from alerts.dispatch.policy import EscalationPolicy
from devices.careplan import plans_from
from devices.db import AsyncPool
from devices.registry import Conn
from devices.simclock import Instant, Work

log = logging.getLogger(__name__)

VITALS = ("hr", "spo2", "rr")
VITALS_LOOKBACK = timedelta(minutes=10)

# Readings of each resident's own (assigned) devices over the lookback, one row per metric.
VITALS_SQL = """
SELECT r.resident_id, r.full_name, r.site_id, r.care_profile, r.care_plan, t.metric,
       array_agg(t.time ORDER BY t.time) AS times, array_agg(t.value ORDER BY t.time) AS vals
FROM telemetry t
JOIN device_assignments a ON a.device_key = t.device_key AND a.during @> t.time
JOIN residents r ON r.resident_id = a.resident_id AND r.discharged_at IS NULL
WHERE t.metric = ANY(%(metrics)s) AND t.time > %(since)s AND t.time <= %(now)s
GROUP BY r.resident_id, t.metric
"""

HEALTH_SQL = """
SELECT d.device_key, d.device_id, d.kind AS device_kind, d.site_id, s.kind AS site_kind,
       st.online, st.battery, st.last_seen_at, rm.name AS room_name,
       (SELECT a.resident_id FROM device_assignments a
        WHERE a.device_key = d.device_key AND a.during @> %(now)s) AS resident_id
FROM devices d
JOIN sites s ON s.site_id = d.site_id
LEFT JOIN device_status st ON st.device_key = d.device_key
LEFT JOIN rooms rm ON rm.room_id = d.room_id
WHERE d.retired_at IS NULL
"""


@dataclass(frozen=True, slots=True)
class PeriodicCycle:
    evaluated: int
    raised: int


async def _raise(
    conn: Conn, verdicts: list[Verdict], *, now: datetime, policy: EscalationPolicy
) -> int:
    raised = 0
    for verdict in verdicts:
        if await persist(conn, verdict, now=now, policy=policy):
            raised += 1
            log_raised(verdict)
    return raised


async def vitals_cycle(
    conn: Conn,
    detector: VitalsDetector,
    *,
    now: datetime,
    policy: EscalationPolicy,
    wall: datetime | None = None,
) -> PeriodicCycle:
    cur = await conn.execute(
        VITALS_SQL, {"metrics": list(VITALS), "since": now - VITALS_LOOKBACK, "now": now}
    )
    rows = await cur.fetchall()
    cur = await conn.execute(
        "SELECT subject, state FROM detector_state WHERE detector = %s", (detector.name,)
    )
    states = {r["subject"]: VitalsState.from_json(r["state"]) for r in await cur.fetchall()}
    verdicts: list[Verdict] = []
    for row in rows:
        plan = plans_from([{"profile": row["care_profile"], "plan": row["care_plan"]}])[0]
        window = VitalsWindow(
            resident_id=int(row["resident_id"]),
            resident_name=str(row["full_name"]),
            site_id=str(row["site_id"]),
            metric=str(row["metric"]),
            readings=list(zip(row["times"], row["vals"], strict=True)),
            plan=plan,
        )
        subject = f"{window.resident_id}:{window.metric}"
        before = states.get(subject, VitalsState())
        after, verdict = detector.evaluate(window, before, now=now)
        if after != before:
            await conn.execute(
                "INSERT INTO detector_state (detector, subject, state, updated_at) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (detector, subject) DO UPDATE "
                "SET state = EXCLUDED.state, updated_at = EXCLUDED.updated_at",
                (detector.name, subject, Jsonb(after.to_json()), now),
            )
        if verdict is not None:
            verdicts.append(verdict)
    raised = await _raise(conn, verdicts, now=wall or now, policy=policy)
    return PeriodicCycle(len(rows), raised)


async def health_cycle(
    conn: Conn,
    detector: DeviceHealthDetector,
    *,
    now: datetime,
    policy: EscalationPolicy,
    wall: datetime | None = None,
) -> PeriodicCycle:
    cur = await conn.execute(HEALTH_SQL, {"now": now})
    rows = await cur.fetchall()
    verdicts: list[Verdict] = []
    for row in rows:
        verdicts.extend(detector.evaluate(DeviceHealth(**row), now=now))
    raised = await _raise(conn, verdicts, now=wall or now, policy=policy)
    return PeriodicCycle(len(rows), raised)


async def run_periodic(
    pool: AsyncPool,
    *,
    vitals: VitalsDetector,
    health: DeviceHealthDetector,
    policy: EscalationPolicy,
    now: datetime,
    wall: datetime | None = None,
) -> PeriodicCycle:
    """Readings and silences are judged at ``now`` (event time: ``last_seen_at`` and the
    vitals are the devices' own times); alerts are raised at ``wall`` (the same time unless a
    conformance run set a simulated clock)."""
    # One transaction at a time per detector family; an advisory lock keeps two workers from
    # evaluating the same family at once (their verdicts would fold, but state would race).
    async with pool.connection() as conn, conn.transaction():
        cur = await conn.execute("SELECT pg_try_advisory_xact_lock(hashtext('alerts-periodic'))")
        row = await cur.fetchone()
        if row is None or not next(iter(row.values())):
            return PeriodicCycle(0, 0)
        a = await vitals_cycle(conn, vitals, now=now, policy=policy, wall=wall)
        b = await health_cycle(conn, health, now=now, policy=policy, wall=wall)
    return PeriodicCycle(a.evaluated + b.evaluated, a.raised + b.raised)


def periodic_round(
    pool: AsyncPool,
    *,
    vitals: VitalsDetector,
    health: DeviceHealthDetector,
    policy: EscalationPolicy,
) -> Work:
    """The vitals and device-health detectors' round, for ``clocked_loop``."""

    async def one_round(at: Instant) -> None:
        await run_periodic(
            pool, vitals=vitals, health=health, policy=policy, now=at.detect, wall=at.wall
        )

    return one_round
