"""Keyword-only services for the API: a family member's preferences and delivery history.

Who may look: a family member at their own; staff at family members of residents in their
sites; an admin at every family member. Anything else looks missing (None / empty).
"""

from __future__ import annotations

import secrets
from datetime import datetime, time
from typing import Any

from psycopg.types.json import Jsonb

from devices.accounts import Principal
from devices.domain import Role
from devices.registry import Conn

PREFS_SELECT = (
    "SELECT user_id, colours, kinds, order_updates, daily_summary, channels, webhook_secret, "
    "quiet_start, quiet_end, timezone, language, updated_at FROM notification_prefs "
    "WHERE user_id = %s"
)


async def may_view(conn: Conn, *, principal: Principal, user_id: int) -> bool:
    if principal.role is Role.FAMILY:
        return principal.user_id == user_id
    cur = await conn.execute(
        "SELECT 1 FROM users u WHERE u.user_id = %(u)s AND u.role = 'family' AND (%(admin)s OR "
        "EXISTS (SELECT 1 FROM family_links f JOIN residents r USING (resident_id) "
        "WHERE f.user_id = u.user_id AND r.site_id = ANY(%(sites)s)))",
        {
            "u": user_id,
            "admin": principal.role is Role.ADMIN,
            # only care staff see families by site: a safety officer's site is no such grant
            "sites": list(principal.site_ids) if principal.role is Role.STAFF else [],
        },
    )
    return await cur.fetchone() is not None


async def get_prefs(conn: Conn, *, user_id: int) -> dict[str, Any] | None:
    cur = await conn.execute(PREFS_SELECT, (user_id,))
    return await cur.fetchone()


async def save_prefs(
    conn: Conn,
    *,
    user_id: int,
    colours: list[str],
    kinds: list[str] | None,
    order_updates: bool,
    daily_summary: bool,
    channels: list[dict[str, str]],
    quiet_start: time | None,
    quiet_end: time | None,
    timezone: str | None,
    language: str,
    now: datetime,
) -> dict[str, Any]:
    """Create or replace; the webhook secret is made once and kept across saves."""
    await conn.execute(
        "INSERT INTO notification_prefs (user_id, colours, kinds, order_updates, daily_summary,"
        " channels, webhook_secret, quiet_start, quiet_end, timezone, language, updated_at)"
        " VALUES (%(u)s, %(colours)s, %(kinds)s, %(ou)s, %(ds)s, %(ch)s, %(secret)s, %(qs)s,"
        " %(qe)s, %(tz)s, %(lang)s, %(now)s) ON CONFLICT (user_id) DO UPDATE SET"
        " colours = EXCLUDED.colours, kinds = EXCLUDED.kinds,"
        " order_updates = EXCLUDED.order_updates, daily_summary = EXCLUDED.daily_summary,"
        " channels = EXCLUDED.channels, quiet_start = EXCLUDED.quiet_start,"
        " quiet_end = EXCLUDED.quiet_end, timezone = EXCLUDED.timezone,"
        " language = EXCLUDED.language, updated_at = EXCLUDED.updated_at",
        {
            "u": user_id,
            "colours": colours,
            "kinds": kinds,
            "ou": order_updates,
            "ds": daily_summary,
            "ch": Jsonb(channels),
            "secret": secrets.token_urlsafe(32),
            "qs": quiet_start,
            "qe": quiet_end,
            "tz": timezone,
            "lang": language,
            "now": now,
        },
    )
    saved = await get_prefs(conn, user_id=user_id)
    assert saved is not None
    return saved


async def list_deliveries(
    conn: Conn, *, principal: Principal, user_id: int | None, limit: int, offset: int
) -> list[dict[str, Any]]:
    """Newest first, each with its attempts and their receipts."""
    cur = await conn.execute(
        "SELECT n.id, n.user_id, n.resident_id, n.source, n.alert_id, n.order_id, n.colour,"
        " n.subject, n.body, n.created_at, n.not_before, n.state, n.reason, n.attempts,"
        " n.delivered_at, n.delivered_via, COALESCE(r.site_id, n.site_id) AS site_id,"
        " n.user_id IS NULL AS to_station, n.read_at, COALESCE((SELECT jsonb_agg(jsonb_build_object("
        "  'at', a.at, 'channel', a.channel, 'address', a.address, 'ok', a.ok,"
        "  'receipt', a.receipt, 'duration_ms', a.duration_ms) ORDER BY a.id)"
        "  FROM notification_attempts a WHERE a.outbox_id = n.id), '[]') AS attempt_log"
        " FROM notification_outbox n LEFT JOIN residents r ON r.resident_id = n.resident_id"
        " WHERE (%(u)s::bigint IS NULL OR n.user_id = %(u)s)"
        " AND (%(admin)s OR (%(family)s AND n.user_id = %(me)s)"
        "      OR (NOT %(family)s AND COALESCE(r.site_id, n.site_id) = ANY(%(sites)s)))"
        " ORDER BY n.created_at DESC, n.id DESC LIMIT %(limit)s OFFSET %(offset)s",
        {
            "u": user_id,
            "admin": principal.role is Role.ADMIN,
            "family": principal.role is Role.FAMILY,
            "me": principal.user_id,
            "sites": list(principal.site_ids),
            "limit": limit,
            "offset": offset,
        },
    )
    return list(await cur.fetchall())


async def mark_alert_read(conn: Conn, *, user_id: int, alert_id: int, now: datetime) -> int | None:
    """A family member has seen the notifications about an alert of their relative: mark
    their rows for it read (the first time is kept), so a pending voice call is not made.
    None if the alert is not one of their relative's; else how many rows were marked."""
    cur = await conn.execute(
        "SELECT 1 FROM alerts a JOIN family_links f ON f.resident_id = a.resident_id "
        "WHERE a.alert_id = %s AND f.user_id = %s",
        (alert_id, user_id),
    )
    if await cur.fetchone() is None:
        return None
    cur = await conn.execute(
        "UPDATE notification_outbox SET read_at = COALESCE(read_at, %s) "
        "WHERE user_id = %s AND alert_id = %s",
        (now, user_id, alert_id),
    )
    return cur.rowcount
