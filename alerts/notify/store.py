"""The outbox in the database: enqueue (idempotent), claim due rows, record attempts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb

from alerts.notify import messages
from alerts.notify.policy import Prefs, QuietHours, Source, release_at, wants
from alerts.notify.summary import due_day, gather, render_summary, summary_window
from devices.domain import Colour
from devices.registry import Conn

PREFS_COLUMNS = (
    "p.colours, p.kinds, p.order_updates, p.daily_summary, p.channels, p.quiet_start, "
    "p.quiet_end, p.timezone, p.language"
)
RECIPIENTS = (
    "JOIN family_links f ON f.resident_id = {res} "
    "JOIN users u ON u.user_id = f.user_id AND u.disabled_at IS NULL "
    "JOIN notification_prefs p ON p.user_id = f.user_id "
    "JOIN residents r ON r.resident_id = {res} "
)
ALERTS_SQL = (
    "SELECT a.alert_id, a.kind, a.colour, a.occurred_at, a.details, a.site_id, a.resident_id, "
    "r.full_name, o.order_id, o.state AS order_state, f.user_id, "
    + PREFS_COLUMNS
    + " FROM alerts a "
    + RECIPIENTS.format(res="a.resident_id")
    + "LEFT JOIN dispatch_orders o ON o.alert_id = a.alert_id "
    "WHERE a.raised_at > %(since)s AND NOT EXISTS (SELECT 1 FROM notification_outbox n "
    "WHERE n.idem_key = 'alert:' || a.alert_id || ':' || f.user_id) "
    "ORDER BY a.alert_id LIMIT %(limit)s"
)
ORDERS_SQL = (
    "SELECT t.id AS transition_id, t.at, t.to_state, o.order_id, o.alert_id, o.category, "
    "o.colour, o.outcome, o.note, o.resident_id, r.full_name, f.user_id, "
    + PREFS_COLUMNS
    + " FROM order_transitions t JOIN dispatch_orders o USING (order_id) "
    + RECIPIENTS.format(res="o.resident_id")
    + "WHERE t.at > %(since)s AND t.from_state IS NOT NULL AND t.to_state <> 'offered' "
    "AND NOT EXISTS (SELECT 1 FROM notification_outbox n "
    "WHERE n.idem_key = 'order:' || t.id || ':' || f.user_id) ORDER BY t.id LIMIT %(limit)s"
)
SUMMARY_SQL = (
    "SELECT * FROM (SELECT f.user_id, f.resident_id, r.full_name, "
    + PREFS_COLUMNS
    + ", (%(now)s AT TIME ZONE COALESCE(p.timezone, %(tz)s)) AS local_now"
    " FROM family_links f JOIN users u ON u.user_id = f.user_id AND u.disabled_at IS NULL "
    "JOIN notification_prefs p ON p.user_id = f.user_id "
    "JOIN residents r ON r.resident_id = f.resident_id "
    "WHERE p.daily_summary AND r.discharged_at IS NULL) x "
    # due today and not yet queued (the same key the Python side builds)
    "WHERE extract(hour FROM local_now) >= %(hour)s AND NOT EXISTS (SELECT 1 FROM "
    "notification_outbox n WHERE n.idem_key = 'summary:' || x.resident_id || ':' || "
    "to_char(local_now, 'YYYY-MM-DD') || ':' || x.user_id) "
    "ORDER BY user_id, resident_id LIMIT %(limit)s"
)


@dataclass(frozen=True, slots=True)
class NotifyConfig:
    lookback: timedelta
    batch: int
    max_attempts: int
    backoff_initial_s: float
    backoff_max_s: float
    lease: timedelta
    timezone: str
    summary_hour: int
    voice_after: timedelta = timedelta(seconds=120)  # unread red text -> voice call
    robot_sites: frozenset[str] = frozenset()  # sites whose WeChat Work group hears alerts
    robot_colours: frozenset[Colour] = frozenset({Colour.RED, Colour.YELLOW})
    robot_language: str = "zh"


def prefs_from_row(row: Mapping[str, Any], default_tz: str) -> Prefs:
    quiet = None
    if row["quiet_start"] is not None and row["quiet_end"] is not None:
        quiet = QuietHours(row["quiet_start"], row["quiet_end"])
    return Prefs(
        colours=frozenset(Colour(c) for c in row["colours"]),
        kinds=None if row["kinds"] is None else frozenset(row["kinds"]),
        order_updates=bool(row["order_updates"]),
        daily_summary=bool(row["daily_summary"]),
        quiet=quiet,
        timezone=row["timezone"] or default_tz,
        language=row["language"],
    )


@dataclass(frozen=True, slots=True)
class _Draft:
    """One message for the recipient of a row: what is particular to its source."""

    idem_key: str
    source: Source
    colour: Colour
    kind: str
    message: messages.Message
    payload: dict[str, Any]  # beside the resident, kind, colour and local time every one has
    happened_at: datetime


# What a source makes of one row for its recipient (with their prefs), or None for nothing.
Drafter = Callable[[Conn, Mapping[str, Any], Prefs, datetime], Awaitable[_Draft | None]]


async def _enqueue(
    conn: Conn, rows: list[dict[str, Any]], draft: Drafter, *, now: datetime, config: NotifyConfig
) -> int:
    """Queue the draft of each row for its recipient; the number queued (a key already
    queued is not queued again)."""
    added = 0
    for row in rows:
        prefs = prefs_from_row(row, config.timezone)
        drafted = await draft(conn, row, prefs, now)
        if drafted is not None:
            added += await _insert(conn, row, drafted, prefs=prefs, now=now)
    return added


async def _insert(
    conn: Conn, row: Mapping[str, Any], draft: _Draft, *, prefs: Prefs, now: datetime
) -> int:
    """Queue one message for the recipient of ``row``."""
    colour, kind, message = draft.colour, draft.kind, draft.message
    reason = wants(prefs, source=draft.source, colour=colour, kind=kind)
    if reason is None and not row["channels"]:
        reason = "no channel configured"
    at = release_at(now, colour=colour, quiet=prefs.quiet, tz=prefs.timezone)
    payload = {
        "resident_id": row["resident_id"],
        "resident_name": row["full_name"],
        "kind": kind,
        "colour": colour.value,
        "local_time": messages.local_time(draft.happened_at, prefs.timezone),
        **draft.payload,
        "type": draft.source.value,
        "subject": message.subject,
        "text": message.text,
    }
    cur = await conn.execute(
        "INSERT INTO notification_outbox (idem_key, user_id, resident_id, source, alert_id, "
        "order_id, colour, subject, body, payload, created_at, not_before, next_attempt_at, "
        "state, reason) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (idem_key) DO NOTHING",
        (
            draft.idem_key,
            row["user_id"],
            row["resident_id"],
            draft.source.value,
            payload.get("alert_id"),
            payload.get("order_id"),
            colour.value,
            message.subject,
            message.text,
            Jsonb(payload),
            now,
            at,
            at,
            "pending" if reason is None else "skipped",
            reason or "",
        ),
    )
    return cur.rowcount


async def _alert_draft(conn: Conn, row: Mapping[str, Any], prefs: Prefs, now: datetime) -> _Draft:
    colour = Colour(row["colour"])
    return _Draft(
        idem_key=f"alert:{row['alert_id']}:{row['user_id']}",
        source=Source.ALERT,
        colour=colour,
        kind=row["kind"],
        message=messages.alert_message(
            resident=row["full_name"],
            kind=row["kind"],
            colour=colour,
            details=row["details"] or {},
            site_id=row["site_id"],
            occurred_at=row["occurred_at"],
            order_state=row["order_state"],
            tz=prefs.timezone,
            lang=prefs.language,
            now=now,
        ),
        payload={
            "alert_id": row["alert_id"],
            "order_id": row["order_id"],
            "occurred_at": row["occurred_at"].isoformat(),
            "order_state": row["order_state"],
        },
        happened_at=row["occurred_at"],
    )


async def enqueue_alerts(conn: Conn, *, now: datetime, config: NotifyConfig) -> int:
    cur = await conn.execute(ALERTS_SQL, {"since": now - config.lookback, "limit": config.batch})
    return await _enqueue(conn, await cur.fetchall(), _alert_draft, now=now, config=config)


async def _order_draft(conn: Conn, row: Mapping[str, Any], prefs: Prefs, now: datetime) -> _Draft:
    return _Draft(
        idem_key=f"order:{row['transition_id']}:{row['user_id']}",
        source=Source.ORDER,
        colour=Colour(row["colour"]),
        kind=row["category"],
        message=messages.order_message(
            resident=row["full_name"],
            kind=row["category"],
            to_state=row["to_state"],
            at=row["at"],
            outcome=row["outcome"],
            note=row["note"] if row["to_state"] == "resolved" else "",
            tz=prefs.timezone,
            lang=prefs.language,
            now=now,
        ),
        payload={
            "alert_id": row["alert_id"],
            "order_id": row["order_id"],
            "order_state": row["to_state"],
            "outcome": row["outcome"],
            "at": row["at"].isoformat(),
        },
        happened_at=row["at"],
    )


async def enqueue_order_changes(conn: Conn, *, now: datetime, config: NotifyConfig) -> int:
    cur = await conn.execute(ORDERS_SQL, {"since": now - config.lookback, "limit": config.batch})
    return await _enqueue(conn, await cur.fetchall(), _order_draft, now=now, config=config)


async def enqueue_summaries(conn: Conn, *, now: datetime, config: NotifyConfig) -> int:
    cur = await conn.execute(
        SUMMARY_SQL,
        {"now": now, "tz": config.timezone, "hour": config.summary_hour, "limit": config.batch},
    )

    async def draft(
        conn: Conn, row: Mapping[str, Any], prefs: Prefs, now: datetime
    ) -> _Draft | None:
        day = due_day(now, hour=config.summary_hour, tz=prefs.timezone)
        if day is None:
            return None
        start, end = summary_window(day, hour=config.summary_hour, tz=prefs.timezone)
        facts = await gather(conn, resident_id=row["resident_id"], start=start, end=end)
        return _Draft(
            idem_key=f"summary:{row['resident_id']}:{day.isoformat()}:{row['user_id']}",
            source=Source.SUMMARY,
            colour=Colour.GREEN,
            kind="daily_summary",
            message=render_summary(
                facts, resident=row["full_name"], day=day, start=start, end=end, lang=prefs.language
            ),
            payload={
                "day": day.isoformat(),
                "alerts": len(facts.alerts),
                "motion": facts.motion_today,
            },
            happened_at=end,
        )

    return await _enqueue(conn, await cur.fetchall(), draft, now=now, config=config)
