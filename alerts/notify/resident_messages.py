"""Texts to residents themselves (migration 0027): today the SMS check-in ("reply 1 if you are
fine, 2 if you need help") that detection writes when a quiet resident has no button or
wristband to answer on (``alerts.detection.phone_check_ins``).

One round claims the due rows (``FOR UPDATE SKIP LOCKED``: two workers never send one text
twice while both live) and sends each through the check-in channel: the installation's SMS
provider with its approved check-in template (carriers send templates only). A text that can
no longer help (its check-in is due: the alert is raised then anyway) is expired, not sent;
a failed send is retried twice (15 s, 30 s), then left ``failed`` with the provider's answer.
Nothing here can delay an alert: the check-in's timer runs in the database whether or not the
text ever leaves.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from alerts.notify.channels import Channel, DeliveryFailed, Outgoing
from devices.db import AsyncPool
from devices.loops import database_loop
from devices.registry import Conn

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
RETRY_S = 15.0

CLAIM_SQL = """
SELECT id, phone, body, payload, not_after, attempts
FROM resident_messages
WHERE state = 'pending' AND next_attempt_at <= %(now)s
ORDER BY next_attempt_at, id
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED
"""


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


async def _settle(conn: Conn, row: dict[str, Any], channel: Channel, *, now: datetime) -> str:
    if row["not_after"] <= now:
        await conn.execute(
            "UPDATE resident_messages SET state = 'expired', receipt = %s WHERE id = %s",
            ("not sent: its check-in was due before it could go", row["id"]),
        )
        return "expired"
    attempts = int(row["attempts"]) + 1
    try:
        receipt = await channel.send(outgoing(row, now=now))
    except DeliveryFailed as exc:
        receipt, sent = exc.receipt, False
    except Exception as exc:  # a bug in a channel: recorded on the row and logged
        log.exception("text %s to a resident: the channel failed", row["id"])
        receipt, sent = f"{type(exc).__name__}: {exc}"[:500], False
    else:
        sent = True
    if sent:
        await conn.execute(
            "UPDATE resident_messages SET state = 'sent', attempts = %s, receipt = %s,"
            " sent_at = %s WHERE id = %s",
            (attempts, receipt[:500], now, row["id"]),
        )
        return "sent"
    done = attempts >= MAX_ATTEMPTS
    await conn.execute(
        "UPDATE resident_messages SET state = %s, attempts = %s, receipt = %s,"
        " next_attempt_at = %s WHERE id = %s",
        (
            "failed" if done else "pending",
            attempts,
            receipt[:500],
            now + timedelta(seconds=RETRY_S * 2 ** (attempts - 1)),
            row["id"],
        ),
    )
    log.warning(
        "text %s to a resident not sent (attempt %s): %s",
        row["id"],
        attempts,
        receipt,
        extra={"message_id": row["id"]},
    )
    return "failed" if done else "retry"


async def send_due(
    pool: AsyncPool, *, channel: Channel, now: datetime, limit: int = 20
) -> dict[str, int]:
    """One round: every due text settled (sent, retried, failed or expired); the counts."""
    counts: dict[str, int] = {}
    async with pool.connection() as conn, conn.transaction():
        cur = await conn.execute(CLAIM_SQL, {"now": now, "limit": limit})
        for row in await cur.fetchall():
            outcome = await _settle(conn, dict(row), channel, now=now)
            counts[outcome] = counts.get(outcome, 0) + 1
    return counts


async def resident_messages_loop(
    pool: AsyncPool, *, channel: Channel, poll_s: float, stop: asyncio.Event
) -> None:
    async def one_round() -> float:
        await send_due(pool, channel=channel, now=datetime.now(UTC))
        return poll_s

    await database_loop("resident_messages", one_round, stop=stop)
