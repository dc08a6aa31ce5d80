"""The alerts worker: claims new stream events, runs the detectors, stores alerts and opens
dispatch orders, all in one transaction per claimed batch (a crash loses nothing: the claim
is rolled back and the events are claimed again; a verdict's idem key makes a retry harmless).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from alerts.detection.acc_stream import acc_verdicts
from alerts.detection.detectors.base import Deferral, EventDetector, StreamEvent, Verdict
from alerts.detection.fall.assembly import WindowDetector
from alerts.detection.persist import defer, fallback_verdict, log_raised, raise_fallback, store
from alerts.dispatch.policy import EscalationPolicy
from alerts.work_queue import Queue, claimed, each, quarantine
from devices.careplan import plans_from
from devices.db import AsyncPool
from devices.domain import LIFE_SAFETY, Colour
from devices.loops import Outage, database_loop
from devices.registry import Conn

log = logging.getLogger(__name__)

# the dispatch queue's first step for the orders a cycle opened (conn, the cycle's now)
Offer = Callable[[Conn, datetime], Awaitable[None]]

OUTBOX_CHANNEL = "stream_outbox"
OUTBOX = Queue("stream_outbox", key="id", what="outbox row", field="outbox_id")

# A life-safety row left, for its first %(hold_s)s seconds, to the life-safety lane process
# (python -m alerts lane) while one beats: a main worker judging a batch of acc windows would
# offer the SOS late. A lane that stopped beating (or none) holds nothing; one that hangs
# holds each row only that long, and the main workers take it then.
HELD_FOR_LANE = """(kind = 'event' AND name IN ('sos', 'fall', 'smoke')
    AND created_at > now() - make_interval(secs => %(hold_s)s)
    AND EXISTS (SELECT 1 FROM worker_heartbeats h WHERE h.process = 'alerts-lane'
                AND h.stopped_at IS NULL
                AND h.beat_at > now() - make_interval(secs => %(stale_s)s)))"""

# Life-safety events (sos, fall, smoke) have first claim: a backlog of telemetry-driven rows
# (acc windows, motion) never makes an SOS wait (partial index stream_outbox_life_safety).
CLAIM_SQL = f"""
WITH safety AS (
    SELECT id FROM stream_outbox WHERE kind = 'event' AND name IN ('sos', 'fall', 'smoke')
    AND NOT {HELD_FOR_LANE}
    ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED),
rest AS (SELECT id FROM stream_outbox WHERE NOT {HELD_FOR_LANE}
         ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED),
claimed AS (
    DELETE FROM stream_outbox WHERE id IN (
        SELECT id FROM (SELECT id, 0 AS p FROM safety UNION ALL SELECT id, 1 FROM rest) x
        ORDER BY p, id LIMIT %(limit)s)
    RETURNING *)  -- claim: all
SELECT c.id, c.kind, c.name, c.time, c.device_key, c.value_bool, c.value_num, c.value_text,
       d.device_id, d.kind AS device_kind, d.placement, d.site_id, d.room_id, rm.name AS room_name,
       rm.kind AS room_kind, s.kind AS site_kind, s.timezone,
       r.resident_id, r.full_name AS resident_name, plans.plans
FROM claimed c
JOIN devices d ON d.device_key = c.device_key
JOIN sites s ON s.site_id = d.site_id
LEFT JOIN rooms rm ON rm.room_id = d.room_id
LEFT JOIN LATERAL (
    -- the resident the device served at that moment; a room device with a single resident
    -- (or a home-care bed with one person) is attributed to that person
    SELECT resident_id FROM device_assignments a
    WHERE a.device_key = c.device_key AND a.during @> c.time
    UNION ALL
    SELECT min(x.resident_id) FROM residents x
    WHERE x.discharged_at IS NULL AND (x.room_id = d.room_id OR (d.room_id IS NULL AND
          x.site_id = d.site_id AND s.kind = 'home_care_bed'))
    HAVING count(*) = 1
    LIMIT 1) who ON true
LEFT JOIN residents r ON r.resident_id = who.resident_id
LEFT JOIN LATERAL (
    -- the care plans of everyone the device may concern: its resident, else its room's
    -- residents, else (a home-care bed) the home's
    SELECT coalesce(jsonb_agg(jsonb_build_object('profile', x.care_profile,
                                                 'plan', x.care_plan)), '[]'::jsonb) AS plans
    FROM residents x
    WHERE x.discharged_at IS NULL AND (
        x.resident_id = who.resident_id
        OR (who.resident_id IS NULL AND d.room_id IS NOT NULL AND x.room_id = d.room_id)
        OR (who.resident_id IS NULL AND d.room_id IS NULL AND x.site_id = d.site_id
            AND s.kind = 'home_care_bed'))) plans ON true
ORDER BY c.id
"""

# The life-safety lane's claim: sos, fall and smoke only, so an SOS never waits for a batch of
# telemetry-driven rows (acc windows, motion) that the main loop is judging at that moment.
CLAIM_LIFE_SAFETY_SQL = CLAIM_SQL.replace(
    f"""rest AS (SELECT id FROM stream_outbox WHERE NOT {HELD_FOR_LANE}
         ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED),
claimed AS (
    DELETE FROM stream_outbox WHERE id IN (
        SELECT id FROM (SELECT id, 0 AS p FROM safety UNION ALL SELECT id, 1 FROM rest) x
        ORDER BY p, id LIMIT %(limit)s)
    RETURNING *)  -- claim: all""",
    """claimed AS (DELETE FROM stream_outbox WHERE id IN (SELECT id FROM safety) RETURNING *)""",
)
assert CLAIM_LIFE_SAFETY_SQL != CLAIM_SQL


@dataclass(frozen=True, slots=True)
class LaneHold:
    """How long a main worker leaves a life-safety row to the lane process, and how old the
    lane's last heartbeat may be for it to count as alive."""

    hold_s: float
    stale_s: float

    def params(self) -> dict[str, float]:
        return {"hold_s": self.hold_s, "stale_s": self.stale_s}


NO_HOLD = LaneHold(0.0, 0.0)  # the lane process's own claims, and a worker with no lane


def claim_params(limit: int, lane_hold: LaneHold | None = None) -> dict[str, float]:
    """The parameters of :data:`CLAIM_SQL` and :data:`CLAIM_LIFE_SAFETY_SQL`."""
    return {"limit": limit, **(lane_hold or NO_HOLD).params()}


@dataclass(frozen=True, slots=True)
class Cycle:
    claimed: int
    alerts: int


def to_event(row: Mapping[str, object]) -> StreamEvent:
    fields = {k: row[k] for k in StreamEvent.__slots__ if k != "care_plans" and k in row}
    return StreamEvent(**fields, care_plans=plans_from(row.get("plans")))  # type: ignore[arg-type]


LATE_AFTER = timedelta(minutes=10)


def flag_late(verdict: Verdict, event: StreamEvent, *, now: datetime) -> Verdict:
    """A life-safety event that happened long before it arrived (a device's backlog, a clock
    years wrong: an SOS stamped 2005) is shown, never dropped, but not dispatched as a fresh
    emergency: yellow, marked late with its own date, for a person to judge."""
    age = now - event.time
    if verdict.kind not in LIFE_SAFETY or age <= LATE_AFTER:
        return verdict
    when = f"{event.time:%Y-%m-%d %H:%M} UTC"
    return replace(
        verdict,
        colour=Colour.YELLOW if verdict.colour is Colour.RED else verdict.colour,
        explanation=f"LATE: reported {int(age.total_seconds() // 60)} min after it happened "
        f"({when}); check on the resident before sending anyone. {verdict.explanation}",
        details={
            **verdict.details,
            "late": True,
            "event_at": event.time.isoformat(),
            "late_min": int(age.total_seconds() // 60),
        },
    )


def evaluate(
    events: list[StreamEvent], routes: Mapping[str, tuple[EventDetector, ...]], now: datetime
) -> list[Verdict | Deferral]:
    outcomes: list[Verdict | Deferral] = []
    for event in events:
        for detector in routes.get(event.name, ()):
            outcome = detector.evaluate(event, now=now)
            if isinstance(outcome, Verdict):
                outcome = flag_late(outcome, event, now=now)
            if outcome is not None:
                outcomes.append(outcome)
    return outcomes


async def _judge(
    conn: Conn,
    rows: Sequence[Mapping[str, Any]],
    *,
    routes: Mapping[str, tuple[EventDetector, ...]],
    window_detectors: tuple[WindowDetector, ...],
    policy: EscalationPolicy,
    now: datetime,
) -> int:
    events = [to_event(r) for r in rows]
    acc = [e for e in events if e.kind == "acc"]
    raised = 0
    outcomes = evaluate([e for e in events if e.kind != "acc"], routes, now)
    outcomes += await acc_verdicts(conn, acc, window_detectors, now)
    for outcome in outcomes:
        if isinstance(outcome, Deferral):
            await defer(conn, outcome, now=now)
        elif await store(conn, outcome, now=now, policy=policy):
            raised += 1
            log_raised(outcome)
    return raised


async def _quarantine_row(
    conn: Conn, row: Mapping[str, Any], exc: Exception, *, policy: EscalationPolicy, now: datetime
) -> int:
    payload = {k: v for k, v in row.items() if k != "plans"}
    error, _ = await quarantine(conn, OUTBOX, row, exc, now=now, payload=payload)
    fallback = fallback_verdict(row, error, now=now)
    raised = await raise_fallback(
        conn, fallback, policy=policy, now=now, item=f"outbox row {row.get('id')}"
    )
    return 1 if raised else 0


async def run_cycle(
    pool: AsyncPool,
    *,
    routes: Mapping[str, tuple[EventDetector, ...]],
    policy: EscalationPolicy,
    limit: int,
    now: datetime,
    window_detectors: tuple[WindowDetector, ...] = (),
    life_safety_only: bool = False,
    offer: Offer | None = None,
    lane_hold: LaneHold | None = None,
) -> Cycle:
    """Claim a batch and judge it in one transaction. If judging the batch fails for any
    reason but the database's availability, each row is judged alone (in its own savepoint)
    and the one that fails is quarantined with its error, a life-safety row raised by the
    fallback; the rest of the batch is judged as usual. No row can stop the loop.

    ``offer`` (the dispatch queue's first step, given by the process that wires the rooms)
    then offers the orders this cycle opened, in the same transaction: an SOS is committed
    as alert, order and offer at once. If it fails, the orders stay due for the escalation
    loop.

    ``lane_hold`` (the main workers') leaves young life-safety rows to a live life-safety
    lane process (:data:`HELD_FOR_LANE`)."""
    judge = functools.partial(
        _judge, routes=routes, window_detectors=window_detectors, policy=policy, now=now
    )
    claim = CLAIM_LIFE_SAFETY_SQL if life_safety_only else CLAIM_SQL
    async with (
        pool.connection() as conn,
        claimed(conn, claim, claim_params(limit, lane_hold)) as rows,
    ):
        try:
            async with conn.transaction():
                raised = await judge(conn, rows)
        except psycopg.OperationalError:
            raise
        except Exception as batch_exc:  # noqa: BLE001 (judged again row by row)
            log.warning("batch of %s failed (%s); judging row by row", len(rows), batch_exc)

            async def alone(row: Mapping[str, Any]) -> int:
                return await judge(conn, [row])

            async def failed(row: Mapping[str, Any], exc: Exception) -> int:
                return await _quarantine_row(conn, row, exc, policy=policy, now=now)

            raised = sum(await each(conn, rows, alone, failed=failed))
        if raised and offer is not None:
            await _offer(conn, offer, now=now)
    return Cycle(len(rows), raised)


async def _offer(conn: Conn, offer: Offer, *, now: datetime) -> None:
    try:
        async with conn.transaction():
            await offer(conn, now)
    except psycopg.OperationalError:
        raise
    except Exception:  # logged; the escalation loop offers them instead
        log.exception("offering the orders just opened failed")


async def listen(
    database_url: str, wakes: Mapping[str, tuple[asyncio.Event, ...]], stop: asyncio.Event
) -> None:
    """Set the events of ``wakes[channel]`` on every NOTIFY on that channel (and once on every
    (re)connect, to catch up); reconnect with backoff. One connection for all channels."""
    outage = Outage("alerts LISTEN")
    while not stop.is_set():
        try:
            async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as c:
                for channel in wakes:
                    await c.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                outage.ok()
                for events in wakes.values():
                    for event in events:
                        event.set()
                while not stop.is_set():
                    async for note in c.notifies(timeout=1.0):
                        for event in wakes[note.channel]:
                            event.set()
        except psycopg.OperationalError as exc:
            delay = outage.failed(exc)
            await asyncio.sleep(delay)


async def detect_loop(
    pool: AsyncPool,
    *,
    routes: Mapping[str, tuple[EventDetector, ...]],
    policy: EscalationPolicy,
    limit: int,
    poll_s: float,
    wake: asyncio.Event,
    stop: asyncio.Event,
    opened: asyncio.Event | None = None,
    window_detectors: tuple[WindowDetector, ...] = (),
    life_safety_only: bool = False,
    offer: Offer | None = None,
    lane_hold: LaneHold | None = None,
) -> None:
    """Run detector cycles; ``opened`` is set when a cycle opened orders (the escalation
    loop in this process looks at once, without waiting for a NOTIFY; with ``offer`` the
    cycle has offered them itself, see :func:`run_cycle`)."""

    async def one_round() -> float:
        cycle = await run_cycle(
            pool,
            routes=routes,
            policy=policy,
            limit=limit,
            now=datetime.now(UTC),
            window_detectors=window_detectors,
            life_safety_only=life_safety_only,
            offer=offer,
            lane_hold=lane_hold,
        )
        if cycle.alerts and opened is not None:
            opened.set()
        return 0.0 if cycle.claimed >= limit else poll_s  # 0: more waiting

    await database_loop(
        "detect_life_safety" if life_safety_only else "detect", one_round, stop=stop, wake=wake
    )
