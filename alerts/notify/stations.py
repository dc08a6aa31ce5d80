"""Care-station groups: new alerts go to a site's WeChat Work group robot through the same
outbox (a row with ``site_id`` instead of ``user_id``), so they are retried, leased and
recorded with receipts like a family's notifications."""

from __future__ import annotations

from datetime import datetime

from psycopg.types.json import Jsonb

from alerts.notify import messages
from alerts.notify.policy import Source
from alerts.notify.store import NotifyConfig
from devices.domain import Colour
from devices.registry import Conn

SITE_ALERTS_SQL = (
    "SELECT a.alert_id, a.kind, a.colour, a.occurred_at, a.explanation, a.details, a.resident_id, "
    "a.site_id, s.timezone, r.full_name, o.order_id, o.state AS order_state FROM alerts a "
    "JOIN sites s ON s.site_id = a.site_id "
    "LEFT JOIN residents r ON r.resident_id = a.resident_id "
    "LEFT JOIN dispatch_orders o ON o.alert_id = a.alert_id "
    "WHERE a.raised_at > %(since)s AND a.site_id = ANY(%(sites)s) AND a.colour = ANY(%(colours)s) "
    "AND NOT EXISTS (SELECT 1 FROM notification_outbox n "
    "WHERE n.idem_key = 'alert:' || a.alert_id || ':site:' || a.site_id) "
    "ORDER BY a.alert_id LIMIT %(limit)s"
)


async def enqueue_site_alerts(conn: Conn, *, now: datetime, config: NotifyConfig) -> int:
    """New alerts of the chosen colours for the care stations with a WeChat Work robot: one
    outbox row per alert and site (``alert:{id}:site:{site}``), sent at once, retried and
    recorded like a family's."""
    if not config.robot_sites:
        return 0
    cur = await conn.execute(
        SITE_ALERTS_SQL,
        {
            "since": now - config.lookback,
            "sites": sorted(config.robot_sites),
            "colours": sorted(c.value for c in config.robot_colours),
            "limit": config.batch,
        },
    )
    added = 0
    for row in await cur.fetchall():
        colour = Colour(row["colour"])
        tz = row["timezone"] or config.timezone
        resident = row["full_name"] or ""
        message = messages.alert_message(
            resident=resident,
            kind=row["kind"],
            colour=colour,
            details=row["details"] or {},
            site_id=row["site_id"],
            occurred_at=row["occurred_at"],
            order_state=row["order_state"],
            tz=tz,
            lang=config.robot_language,
            now=now,
        )
        payload = {
            "type": Source.ALERT.value,
            "subject": message.subject,
            "text": message.text,
            "alert_id": row["alert_id"],
            "order_id": row["order_id"],
            "resident_id": row["resident_id"],
            "resident_name": resident,
            "site_id": row["site_id"],
            "kind": row["kind"],
            "colour": colour.value,
            "occurred_at": row["occurred_at"].isoformat(),
            "local_time": messages.local_time(row["occurred_at"], tz),
        }
        cur2 = await conn.execute(
            "INSERT INTO notification_outbox (idem_key, site_id, resident_id, source, alert_id, "
            "order_id, colour, subject, body, payload, created_at, not_before, next_attempt_at) "
            "VALUES (%s, %s, %s, 'alert', %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (idem_key) DO NOTHING",
            (
                f"alert:{row['alert_id']}:site:{row['site_id']}",
                row["site_id"],
                row["resident_id"],
                row["alert_id"],
                row["order_id"],
                colour.value,
                message.subject,
                message.text,
                Jsonb(payload),
                now,
                now,
                now,
            ),
        )
        added += cur2.rowcount
    return added
