"""Texts to residents themselves (migration 0027): today the SMS check-in ("reply 1 if you are
fine, 2 if you need help") that detection writes when a quiet resident has no button or
wristband to answer on (``alerts.detection.phone_check_ins``).

One round leases the due rows (``FOR UPDATE SKIP LOCKED``, committed at once: two workers
never send one text twice while both live, and no transaction waits on a provider) and sends
each through the check-in channel: the installation's SMS provider with its approved
check-in template (carriers send templates only). A text that can
no longer help (its check-in is due: the alert is raised then anyway) is expired, not sent;
a failed send is retried twice (15 s, 30 s), then left ``failed`` with the provider's answer.
Nothing here can delay an alert: the check-in's timer runs in the database whether or not the
text ever leaves.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from alerts.notify.channels import Channel, DeliveryFailed, Outgoing
from devices.db import AsyncPool
from devices.loops import database_loop

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
RETRY_S = 15.0

LEASE_S = 120.0  # longer than a round of sends (5 texts, each at most the HTTP timeout)
EXPIRED = "not sent: its check-in was due before it could go"

# Leased: the claim commits at once with the texts' next attempt moved past the round.
CLAIM_SQL = """
UPDATE resident_messages SET next_attempt_at = %(lease)s
WHERE id IN (SELECT id FROM resident_messages
             WHERE state = 'pending' AND next_attempt_at <= %(now)s
             ORDER BY next_attempt_at, id LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
RETURNING id, phone, body, payload, not_after, attempts
"""


@dataclass(frozen=True, slots=True)
class Settled:
    state: str  # sent | pending (retried later) | failed | expired
    attempts: int
    receipt: str
    retry_at: datetime | None
    sent_at: datetime | None


def outgoing(row: dict[str, Any], *, now: datetime) -> Outgoing:
    payload = row["payload"] if isinstance(row["payload"], dict) else {}
    return Outgoing(
        delivery_id=int(row["id"]),
        address=str(row["phone"]),
        subject="",
        text=str(row["body"]),
        payload=payload,
        secret="",
        timestamp=int(now.timestamp()),
    )


async def _attempt(row: dict[str, Any], channel: Channel, *, now: datetime) -> Settled:
    """Send one claimed text (no connection held while the provider answers)."""
    if row["not_after"] <= now:
        return Settled("expired", int(row["attempts"]), EXPIRED, None, None)
    attempts = int(row["attempts"]) + 1
    try:
        receipt = await channel.send(outgoing(row, now=now))
    except DeliveryFailed as exc:
        receipt = exc.receipt
    except Exception as exc:  # a bug in a channel: recorded on the row and logged
        log.exception("text %s to a resident: the channel failed", row["id"])
        receipt = f"{type(exc).__name__}: {exc}"
    else:
        return Settled("sent", attempts, receipt[:500], None, now)
    log.warning(
        "text %s to a resident not sent (attempt %s): %s",
        row["id"],
        attempts,
        receipt,
        extra={"message_id": row["id"]},
    )
    retry = now + timedelta(seconds=RETRY_S * 2 ** (attempts - 1))
    state = "failed" if attempts >= MAX_ATTEMPTS else "pending"
    return Settled(state, attempts, receipt[:500], retry, None)


async def send_due(
    pool: AsyncPool, *, channel: Channel, now: datetime, limit: int = 5
) -> dict[str, int]:
    """One round: the due texts leased (committed at once, so no transaction or connection
    is held while a provider answers), each sent and settled (sent, retried, failed or
    expired); the counts. A worker that dies mid-round leaves its texts to be sent again
    once the lease runs out (at least once)."""
    async with pool.connection() as conn, conn.transaction():
        cur = await conn.execute(
            CLAIM_SQL, {"now": now, "limit": limit, "lease": now + timedelta(seconds=LEASE_S)}
        )
        rows = [dict(r) for r in await cur.fetchall()]
    counts: dict[str, int] = {}
    for row in rows:
        done = await _attempt(row, channel, now=now)
        async with pool.connection() as conn, conn.transaction():
            await conn.execute(
                "UPDATE resident_messages SET state = %s, attempts = %s, receipt = %s,"
                " next_attempt_at = coalesce(%s, next_attempt_at), sent_at = %s WHERE id = %s",
                (done.state, done.attempts, done.receipt, done.retry_at, done.sent_at, row["id"]),
            )
        outcome = "retry" if done.state == "pending" else done.state
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


async def resident_messages_loop(
    pool: AsyncPool, *, channel: Channel, poll_s: float, stop: asyncio.Event
) -> None:
    async def one_round() -> float:
        await send_due(pool, channel=channel, now=datetime.now(UTC))
        return poll_s

    await database_loop("resident_messages", one_round, stop=stop)
