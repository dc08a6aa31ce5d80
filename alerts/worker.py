"""The alerts worker: claims new stream events, runs the detectors, stores alerts and opens
dispatch orders, all in one transaction per claimed batch (a crash loses nothing: the claim
is rolled back and the events are claimed again; a verdict's idem key makes a retry harmless).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg.types.json import Jsonb

from alerts.acc_stream import WindowDetector, acc_verdicts
from alerts.detectors.base import EventDetector, StreamEvent, Verdict
from alerts.dispatch import DispatchPolicy, open_order
from devices.backoff import Backoff
from devices.db import AsyncPool
from devices.registry import Conn

log = logging.getLogger(__name__)

OUTBOX_CHANNEL = "stream_outbox"

CLAIM_SQL = """
WITH claimed AS (
    DELETE FROM stream_outbox WHERE id IN (
        SELECT id FROM stream_outbox ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
    RETURNING *)
SELECT c.id, c.kind, c.name, c.time, c.device_key, c.value_bool, c.value_num, c.value_text,
       d.device_id, d.kind AS device_kind, d.site_id, d.room_id, rm.name AS room_name,
       r.resident_id, r.full_name AS resident_name
FROM claimed c
JOIN devices d ON d.device_key = c.device_key
LEFT JOIN rooms rm ON rm.room_id = d.room_id
LEFT JOIN LATERAL (
    -- the resident the device served at that moment; a room device with a single resident
    -- (or a home-care bed with one person) is attributed to that person
    SELECT resident_id FROM device_assignments a
    WHERE a.device_key = c.device_key AND a.during @> c.time
    UNION ALL
    SELECT min(x.resident_id) FROM residents x
    WHERE x.discharged_at IS NULL AND (x.room_id = d.room_id OR (d.room_id IS NULL AND
          x.site_id = d.site_id AND (SELECT kind FROM sites WHERE site_id = d.site_id)
          = 'home_care_bed'))
    HAVING count(*) = 1
    LIMIT 1) who ON true
LEFT JOIN residents r ON r.resident_id = who.resident_id
ORDER BY c.id
"""


@dataclass(frozen=True, slots=True)
class Cycle:
    claimed: int
    alerts: int


def to_event(row: Mapping[str, object]) -> StreamEvent:
    return StreamEvent(**{k: row[k] for k in StreamEvent.__slots__})  # type: ignore[arg-type]


def evaluate(
    events: list[StreamEvent], routes: Mapping[str, tuple[EventDetector, ...]], now: datetime
) -> list[Verdict]:
    verdicts: list[Verdict] = []
    for event in events:
        for detector in routes.get(event.name, ()):
            verdict = detector.evaluate(event, now=now)
            if verdict is not None:
                verdicts.append(verdict)
    return verdicts


async def persist(conn: Conn, verdict: Verdict, *, now: datetime, policy: DispatchPolicy) -> bool:
    """Store the alert and open its order; False if it repeats one already stored.

    A repeat is the same input (idem key) or the same situation (fold key) within the
    verdict's fold window. The advisory lock on the fold key makes two workers racing on one
    situation take turns, so they still open one order.
    """
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (verdict.fold_key,))
    window = timedelta(seconds=verdict.fold_s)
    cur = await conn.execute(
        "SELECT 1 FROM alerts WHERE idem_key = %s OR (fold_key = %s AND occurred_at BETWEEN %s "
        "AND %s) LIMIT 1",
        (
            verdict.idem_key,
            verdict.fold_key,
            verdict.occurred_at - window,
            verdict.occurred_at + window,
        ),
    )
    if await cur.fetchone() is not None:
        return False
    cur = await conn.execute(
        "INSERT INTO alerts (idem_key, fold_key, site_id, resident_id, device_key, kind, colour,"
        " detector, occurred_at, raised_at, explanation, details) VALUES (%s, %s, %s, %s, %s, %s,"
        " %s, %s, %s, %s, %s, %s) RETURNING alert_id",
        (
            verdict.idem_key,
            verdict.fold_key,
            verdict.site_id,
            verdict.resident_id,
            verdict.device_key,
            verdict.kind,
            verdict.colour.value,
            verdict.detector,
            verdict.occurred_at,
            now,
            verdict.explanation,
            Jsonb(dict(verdict.details)),
        ),
    )
    row = await cur.fetchone()
    assert row is not None
    await open_order(
        conn,
        alert_id=int(row["alert_id"]),
        site_id=verdict.site_id,
        resident_id=verdict.resident_id,
        colour=verdict.colour,
        category=verdict.kind,
        event_at=verdict.occurred_at,
        now=now,
        policy=policy,
    )
    return True


async def run_cycle(
    pool: AsyncPool,
    *,
    routes: Mapping[str, tuple[EventDetector, ...]],
    policy: DispatchPolicy,
    limit: int,
    now: datetime,
    window_detectors: tuple[WindowDetector, ...] = (),
) -> Cycle:
    async with pool.connection() as conn, conn.transaction():
        cur = await conn.execute(CLAIM_SQL, {"limit": limit})
        events = [to_event(r) for r in await cur.fetchall()]
        acc = [e for e in events if e.kind == "acc"]
        verdicts = evaluate([e for e in events if e.kind != "acc"], routes, now)
        verdicts += await acc_verdicts(conn, acc, window_detectors, now)
        raised = 0
        for verdict in verdicts:
            if await persist(conn, verdict, now=now, policy=policy):
                raised += 1
                log.info("alert %s (%s): %s", verdict.kind, verdict.colour, verdict.explanation)
    return Cycle(len(events), raised)


async def listen(database_url: str, wake: asyncio.Event, stop: asyncio.Event) -> None:
    """Wake the detector loop on every NOTIFY from ingest; reconnect with backoff."""
    backoff = Backoff()
    while not stop.is_set():
        try:
            async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as c:
                await c.execute(f"LISTEN {OUTBOX_CHANNEL}")
                backoff.reset()
                wake.set()
                while not stop.is_set():
                    async for _ in c.notifies(timeout=1.0):
                        wake.set()
        except psycopg.OperationalError as exc:
            delay = backoff.next_delay()
            log.warning("LISTEN connection lost (%s); retrying in %.1f s", exc, delay)
            await asyncio.sleep(delay)


async def detect_loop(
    pool: AsyncPool,
    *,
    routes: Mapping[str, tuple[EventDetector, ...]],
    policy: DispatchPolicy,
    limit: int,
    poll_s: float,
    wake: asyncio.Event,
    stop: asyncio.Event,
    window_detectors: tuple[WindowDetector, ...] = (),
) -> None:
    backoff = Backoff()
    while not stop.is_set():
        try:
            cycle = await run_cycle(
                pool,
                routes=routes,
                policy=policy,
                limit=limit,
                now=datetime.now(UTC),
                window_detectors=window_detectors,
            )
            backoff.reset()
        except psycopg.OperationalError as exc:
            delay = backoff.next_delay()
            log.warning("database unavailable (%s); retrying in %.1f s", exc, delay)
            await asyncio.sleep(delay)
            continue
        if cycle.claimed >= limit:
            continue  # more waiting
        wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=poll_s)
