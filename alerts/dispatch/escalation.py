"""The escalation state machine, run from the database (after Grafana OnCall's escalation
task: a snapshot of the chain on the order, one step at a time, a run token so a stale run
cannot act).

:func:`run_due` claims due orders (``step_due_at <= now``, still queued or offered) with
``FOR UPDATE SKIP LOCKED``, performs each one's step and sets the next due time in the same
transaction. The step is recorded in ``order_steps`` under (order, seq): a second run of the
same step fails on that key and is rolled back, and a run that dies before commit leaves the
order exactly as it was, due, for the next run. Notifications (a ``responder_notifications``
row and a ``NOTIFY responders``) are delivered by PostgreSQL only at commit.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from alerts.dispatch.orders import Actor, log_transition
from alerts.dispatch.policy import Action, Candidate, decide, order_policy, pick
from alerts.work_queue import Queue, claimed, each, quarantine, resolve
from devices.db import AsyncPool
from devices.domain import OrderState
from devices.loops import database_loop
from devices.registry import Conn

log = logging.getLogger(__name__)

RESPONDER_CHANNEL = "responders"
RETRY_MAX_S = 300
ESCALATION = Actor("escalation")
ESCALATION_QUEUE = Queue("escalation", key="order_id", what="order")

CLAIM_SQL = """
SELECT o.order_id, o.site_id, o.state, o.policy, o.step_index, o.steps_done, o.run_token,
       s.lat AS site_lat, s.lon AS site_lon, s.community
FROM dispatch_orders o JOIN sites s USING (site_id)
WHERE o.state IN ('queued', 'offered') AND o.step_due_at <= %(now)s
ORDER BY o.step_due_at, o.order_id
LIMIT %(limit)s
FOR UPDATE OF o SKIP LOCKED
"""

CANDIDATES_SQL = """
SELECT r.responder_id, r.level, r.lat, r.lon,
       (SELECT max(f.offered_at) FROM order_offers f
         WHERE f.responder_id = r.responder_id) AS last_offer_at,
       (SELECT count(*) FROM dispatch_orders x WHERE x.accepted_by = r.user_id
         AND x.state IN ('accepted', 'en_route', 'on_site')) AS load,
       (SELECT count(*) FROM order_offers f
         WHERE f.responder_id = r.responder_id AND f.order_id = %(order)s) AS offers_here
FROM responders r
WHERE r.active
  AND (r.level = 3 OR r.site_id = %(site)s OR (r.site_id IS NULL AND r.community = %(community)s))
  AND EXISTS (SELECT 1 FROM shifts h WHERE h.responder_id = r.responder_id
              AND h.during @> %(now)s::timestamptz)
"""


# The first step of the orders opened in the caller's own transaction (``opened_at`` is its
# ``now``): the detector that opened an order offers it before committing, so an SOS is
# offered in the transaction that raised it, with no second claim (issue 18).
CLAIM_OPENED_SQL = CLAIM_SQL.replace(
    "AND o.step_due_at <= %(now)s",
    "AND o.step_due_at <= %(now)s AND o.opened_at = %(now)s AND o.steps_done = 0",
)
assert CLAIM_OPENED_SQL != CLAIM_SQL


class StaleRun(Exception):
    """The order's run token changed under us: another run already took this step."""


@dataclass(frozen=True, slots=True)
class StepDone:
    order_id: int
    seq: int
    action: str
    responder_id: int | None
    notified: tuple[int, ...]


async def _candidates(conn: Conn, row: dict[str, Any], now: datetime) -> list[Candidate]:
    cur = await conn.execute(
        CANDIDATES_SQL,
        {
            "order": row["order_id"],
            "site": row["site_id"],
            "community": row["community"],
            "now": now,
        },
    )
    return [
        Candidate(
            responder_id=int(r["responder_id"]),
            level=int(r["level"]),
            last_offer_at=r["last_offer_at"],
            load=int(r["load"]),
            offers_here=int(r["offers_here"]),
            lat=r["lat"],
            lon=r["lon"],
        )
        for r in await cur.fetchall()
    ]


async def _notify(
    conn: Conn, *, order_id: int, responder_id: int, kind: str, now: datetime
) -> None:
    # the row and its NOTIFY ({"id", "order_id", "responder_id", "kind"}) in one round trip
    await conn.execute(
        "WITH n AS (INSERT INTO responder_notifications (order_id, responder_id, kind,"
        " created_at) VALUES (%(order)s, %(responder)s, %(kind)s, %(now)s) RETURNING id)"
        " SELECT pg_notify(%(channel)s, json_build_object('id', n.id, 'order_id', %(order)s::bigint,"
        " 'responder_id', %(responder)s::bigint, 'kind', %(kind)s::text)::text) FROM n",
        {
            "order": order_id,
            "responder": responder_id,
            "kind": kind,
            "now": now,
            "channel": RESPONDER_CHANNEL,
        },
    )


async def perform(conn: Conn, row: dict[str, Any], *, now: datetime) -> StepDone | None:
    """Perform the order's due step (the caller holds its row lock)."""
    order_id = int(row["order_id"])
    policy = order_policy(row["policy"])
    decision = decide(policy.steps, step_index=int(row["step_index"]), now=now)
    token, new_token = row["run_token"], uuid.uuid4()
    if decision is None:  # chain exhausted: the order waits for a person, no more timers
        await _advance(conn, order_id, token, {"step_due_at": None})
        return None
    step, seq = decision.step, int(row["steps_done"]) + 1
    holders: list[int] = []
    if step.action is Action.RENOTIFY:
        cur = await conn.execute(
            "SELECT DISTINCT responder_id FROM order_offers WHERE order_id = %s ORDER BY 1",
            (order_id,),
        )
        holders = [int(r["responder_id"]) for r in await cur.fetchall()]
    chosen: Candidate | None = None
    if not holders:
        site = (row["site_lat"], row["site_lon"]) if row["site_lat"] is not None else None
        chosen = pick(
            await _candidates(conn, row, now), rule=policy.assignment, level=step.level, site=site
        )
    note = f"step {decision.index}: {step.action.value}"
    if chosen is not None:
        note += f" to responder {chosen.responder_id} (level {chosen.level})"
    elif not holders:
        note += f": nobody on duty at level {step.level} or above"
    await conn.execute(
        "INSERT INTO order_steps (order_id, seq, step_index, at, action, responder_id, run_token,"
        " note) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (
            order_id,
            seq,
            decision.index,
            now,
            step.action.value,
            chosen.responder_id if chosen else None,
            new_token,
            note,
        ),
    )
    updates: dict[str, object] = {
        "step_index": decision.next_index,
        "steps_done": seq,
        "step_due_at": decision.next_due,
        "run_token": new_token,
    }
    if chosen is not None:
        await conn.execute(
            "WITH offer AS (INSERT INTO order_offers (order_id, responder_id, offered_at, seq)"
            " VALUES (%(order)s, %(responder)s, %(now)s, %(seq)s))"
            " UPDATE dispatch_orders SET offered_at = coalesce(offered_at, %(now)s)"
            " WHERE order_id = %(order)s",
            {"order": order_id, "responder": chosen.responder_id, "now": now, "seq": seq},
        )
        updates |= {"state": OrderState.OFFERED.value, "offered_to": chosen.responder_id}
        await log_transition(
            conn,
            order_id=order_id,
            at=now,
            from_state=OrderState(row["state"]),
            to_state=OrderState.OFFERED,
            actor=ESCALATION,
            note=note,
        )
        kind = "offer" if chosen.level == 1 else "escalation"
        await _notify(conn, order_id=order_id, responder_id=chosen.responder_id, kind=kind, now=now)
    for holder in holders:
        await _notify(conn, order_id=order_id, responder_id=holder, kind="renotify", now=now)
    await _advance(conn, order_id, token, updates)
    responder = chosen.responder_id if chosen else None
    return StepDone(order_id, seq, step.action.value, responder, tuple(holders))


async def _advance(conn: Conn, order_id: int, token: object, updates: dict[str, object]) -> None:
    sets = ", ".join(f"{k} = %({k})s" for k in updates)
    cur = await conn.execute(
        f"UPDATE dispatch_orders SET {sets} WHERE order_id = %(order_id)s "
        "AND run_token IS NOT DISTINCT FROM %(token)s",
        {**updates, "order_id": order_id, "token": token},
    )
    if cur.rowcount != 1:
        raise StaleRun(f"order {order_id}: run token changed")


async def run_due(
    conn: Conn, *, now: datetime, limit: int = 50, opened_only: bool = False
) -> list[StepDone]:
    """Claim and perform every due step (up to ``limit``) in one transaction; each order in
    a savepoint, so one failing order does not hold back the others. ``opened_only``: only
    the first step of orders opened at ``now`` (see :func:`offer_opened`)."""
    done: list[StepDone] = []

    async def work(row: dict[str, Any]) -> StepDone | None:
        return await perform(conn, dict(row), now=now)

    async def failed(row: dict[str, Any], exc: Exception) -> None:
        if isinstance(exc, (StaleRun, psycopg.errors.UniqueViolation)):
            log.warning(
                "order %s: step skipped (%s)",
                row["order_id"],
                exc,
                extra={"order_id": row["order_id"]},
            )
        else:  # one broken order must not stop the others' escalation
            await _quarantine(conn, dict(row), exc, now=now)

    async def then(row: dict[str, Any], result: StepDone | None) -> None:
        if result is not None:
            done.append(result)
            if not opened_only:  # an order opened in this transaction was never quarantined
                await resolve(conn, ESCALATION_QUEUE, row, now=now)

    claim = CLAIM_OPENED_SQL if opened_only else CLAIM_SQL
    async with claimed(conn, claim, {"now": now, "limit": limit}) as rows:
        await each(conn, rows, work, failed=failed, then=then)
    return done


async def _quarantine(conn: Conn, row: dict[str, Any], exc: Exception, *, now: datetime) -> None:
    """Keep the failing order's step in the quarantine (a technical alert shows it) and try
    it again later, sooner than a person would give up on it: 10 s, 20 s, ... at most 5 min.
    The order stays on the wall, open, for staff to take by hand."""
    _, attempts = await quarantine(conn, ESCALATION_QUEUE, row, exc, now=now)
    retry = now + timedelta(seconds=min(10 * 2 ** (attempts - 1), RETRY_MAX_S))
    await conn.execute(
        "UPDATE dispatch_orders SET step_due_at = %s WHERE order_id = %s",
        (retry, row["order_id"]),
    )


def log_steps(done: list[StepDone]) -> None:
    for step in done:
        log.info(
            "order %s step %s: %s",
            step.order_id,
            step.seq,
            step.action,
            extra={"order_id": step.order_id, "seq": step.seq, "action": step.action},
        )


async def offer_opened(conn: Conn, now: datetime) -> None:
    """Perform, inside the caller's transaction (a savepoint), the first step of every order
    that transaction opened with ``now``: the offer is committed with the alert that caused
    it, and the escalation loop has nothing left to claim for it. If the step cannot be
    performed here, the order stays due and the escalation loop takes it as before."""
    log_steps(await run_due(conn, now=now, opened_only=True))


async def next_due_in(conn: Conn, *, now: datetime) -> float | None:
    cur = await conn.execute(
        "SELECT min(step_due_at) AS due FROM dispatch_orders "
        "WHERE state IN ('queued', 'offered') AND step_due_at IS NOT NULL"
    )
    row = await cur.fetchone()
    if row is None or row["due"] is None:
        return None
    due: datetime = row["due"]
    return max((due - now).total_seconds(), 0.0)


async def escalation_loop(
    pool: AsyncPool, *, wake: asyncio.Event, stop: asyncio.Event, poll_s: float, limit: int = 50
) -> None:
    """Perform due steps; sleep until the next due time, a wake-up, or ``poll_s``."""

    async def one_round() -> float:
        async with pool.connection() as conn:
            done = await run_due(conn, now=datetime.now(UTC), limit=limit)
            log_steps(done)
            wait = await next_due_in(conn, now=datetime.now(UTC))
        if len(done) >= limit:
            return 0.0
        return poll_s if wait is None else min(wait, poll_s)

    await database_loop("escalation", one_round, stop=stop, wake=wake)
