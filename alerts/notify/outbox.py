"""Delivery bookkeeping: lease due outbox rows, record attempts, move rows on."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from psycopg import sql

from alerts.notify.store import NotifyConfig
from devices.registry import Conn

CLAIM_SQL = """
WITH due AS (
    SELECT id FROM notification_outbox
    WHERE state = 'pending' AND next_attempt_at <= %(now)s
    ORDER BY next_attempt_at, id LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
UPDATE notification_outbox n SET next_attempt_at = %(lease)s
FROM due WHERE n.id = due.id
RETURNING n.id, n.user_id, n.site_id, n.colour, n.subject, n.body, n.payload,
    n.channel_index, n.channel_attempts, n.attempts, n.created_at, n.delivered_at,
    n.delivered_via, n.read_at,
    (SELECT state FROM dispatch_orders o WHERE o.order_id = n.order_id) AS order_state,
    (SELECT channels FROM notification_prefs p WHERE p.user_id = n.user_id) AS channels,
    (SELECT webhook_secret FROM notification_prefs p WHERE p.user_id = n.user_id) AS secret
"""


async def claim_due(conn: Conn, *, now: datetime, config: NotifyConfig) -> list[dict[str, Any]]:
    """Lease due rows (SKIP LOCKED: workers never take the same row); a worker that dies
    mid-send leaves the row to be retried when the lease runs out."""
    cur = await conn.execute(
        CLAIM_SQL, {"now": now, "limit": config.batch, "lease": now + config.lease}
    )
    # UPDATE ... RETURNING does not keep the CTE's order: deliver oldest first (a family
    # hears "accepted" before "resolved")
    return sorted(await cur.fetchall(), key=lambda r: int(r["id"]))


async def record_attempt(
    conn: Conn,
    *,
    outbox_id: int,
    now: datetime,
    channel: str,
    address: str,
    ok: bool,
    receipt: str,
    duration_ms: int,
) -> None:
    await conn.execute(
        "INSERT INTO notification_attempts (outbox_id, at, channel, address, ok, receipt, "
        "duration_ms) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (outbox_id, now, channel, address, ok, receipt, duration_ms),
    )


async def update_row(conn: Conn, *, outbox_id: int, fields: Mapping[str, object]) -> None:
    sets = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder(k)) for k in fields
    )
    await conn.execute(
        sql.SQL("UPDATE notification_outbox SET {} WHERE id = %(outbox_id)s").format(sets),
        {**fields, "outbox_id": outbox_id},
    )
