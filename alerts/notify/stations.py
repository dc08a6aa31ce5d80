"""Care-station groups: new alerts go to a site's WeChat Work group robot through the same
outbox (a row with ``site_id`` instead of ``user_id``), so they are retried, leased and
recorded with receipts like a family's notifications."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

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
    added = 0
    for row in await _site_rows(conn, SITE_ALERTS_SQL, now=now, config=config):
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
        added += await _enqueue(
            conn,
            idem=f"alert:{row['alert_id']}:site:{row['site_id']}",
            source=Source.ALERT,
            row=row,
            colour=colour,
            message=message,
            payload=payload,
            now=now,
        )
    return added


async def _site_rows(
    conn: Conn, sql: str, *, now: datetime, config: NotifyConfig
) -> list[dict[str, Any]]:
    """``sql``'s rows for the sites with a group robot, of the colours they hear (none when
    no site has one)."""
    if not config.robot_sites:
        return []
    cur = await conn.execute(
        sql,
        {
            "since": now - config.lookback,
            "sites": sorted(config.robot_sites),
            "colours": sorted(c.value for c in config.robot_colours),
            "limit": config.batch,
        },
    )
    return list(await cur.fetchall())


async def _enqueue(
    conn: Conn,
    *,
    idem: str,
    source: Source,
    row: Mapping[str, Any],
    colour: Colour,
    message: messages.Message,
    payload: Mapping[str, object],
    now: datetime,
) -> int:
    """One outbox row for a site's group robot, sent at once; 0 if ``idem`` was enqueued."""
    cur = await conn.execute(
        "INSERT INTO notification_outbox (idem_key, site_id, resident_id, source, alert_id, "
        "order_id, colour, subject, body, payload, created_at, not_before, next_attempt_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (idem_key) DO NOTHING",
        (
            idem,
            row["site_id"],
            row["resident_id"],
            source.value,
            row["alert_id"],
            row["order_id"],
            colour.value,
            message.subject,
            message.text,
            Jsonb(dict(payload)),
            now,
            now,
            now,
        ),
    )
    return cur.rowcount


# A resident's text that came after their unanswered check-in raised the alert
# (``details.late_replies``, noted by the check loop while the order is open): the site's
# group hears it once per text, while the order is open, for the colours it hears alerts of.
SITE_LATE_SQL = (
    "SELECT a.alert_id, a.kind, a.colour, a.resident_id, a.site_id, s.timezone, r.full_name, "
    "o.order_id, x.reply ->> 'text' AS text, (x.reply ->> 'at')::timestamptz AS at, "
    "x.reply ->> 'reply_id' AS reply_id FROM alerts a "
    "JOIN sites s ON s.site_id = a.site_id "
    "LEFT JOIN residents r ON r.resident_id = a.resident_id "
    "JOIN dispatch_orders o ON o.alert_id = a.alert_id "
    "AND o.state NOT IN ('resolved', 'cancelled') "
    "CROSS JOIN LATERAL jsonb_array_elements(a.details -> 'late_replies') x(reply) "
    "WHERE a.raised_at > %(since)s AND a.site_id = ANY(%(sites)s) "
    "AND a.colour = ANY(%(colours)s) AND jsonb_typeof(a.details -> 'late_replies') = 'array' "
    "AND NOT EXISTS (SELECT 1 FROM notification_outbox n WHERE n.idem_key = "
    "'late:' || a.alert_id || ':' || (x.reply ->> 'reply_id') || ':site:' || a.site_id) "
    "ORDER BY a.alert_id, at LIMIT %(limit)s"
)


async def enqueue_site_late_replies(conn: Conn, *, now: datetime, config: NotifyConfig) -> int:
    """Each late text on an open order's alert, to the site's group robot once
    (``late:{alert}:{reply}:site:{site}``): "Texted back at 10:17, after the alert: '1'. Call
    to confirm before standing anyone down". The resident is not in the group: the carers
    are, and they decide."""
    added = 0
    for row in await _site_rows(conn, SITE_LATE_SQL, now=now, config=config):
        tz = row["timezone"] or config.timezone
        message = messages.late_reply_message(
            resident=row["full_name"] or "",
            kind=row["kind"],
            text=str(row["text"] or ""),
            at=row["at"],
            tz=tz,
            lang=config.robot_language,
            now=now,
        )
        payload = {
            "type": Source.ORDER.value,
            "subject": message.subject,
            "text": message.text,
            "alert_id": row["alert_id"],
            "order_id": row["order_id"],
            "resident_id": row["resident_id"],
            "site_id": row["site_id"],
            "late_reply_at": row["at"].isoformat(),
        }
        added += await _enqueue(
            conn,
            idem=f"late:{row['alert_id']}:{row['reply_id']}:site:{row['site_id']}",
            source=Source.ORDER,
            row=row,
            colour=Colour(row["colour"]),
            message=message,
            payload=payload,
            now=now,
        )
    return added
