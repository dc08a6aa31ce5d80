"""The watchdog's database side: read a snapshot, and reconcile the open technical alerts
with the conditions found (raise new ones, refresh the ones still true, clear the rest).

Two watchers reconcile in turn (a transaction-level advisory lock), and an open key is
unique, so each condition is one technical alert however many processes watch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from alerts.watchdog.conditions import Beat, Condition, Flood, Quarantined, QueueAges, Snapshot
from devices.registry import Conn

TECHNICAL_CHANNEL = "technical_alerts"
_LOCK = "eldercare:watchdog:reconcile"

QUEUES_SQL = """
SELECT
  (SELECT extract(epoch FROM %(now)s - min(created_at)) FROM stream_outbox) AS stream_outbox_s,
  (SELECT extract(epoch FROM %(now)s - min(step_due_at)) FROM dispatch_orders
    WHERE state IN ('queued', 'offered') AND step_due_at <= %(now)s) AS escalation_overdue_s,
  (SELECT extract(epoch FROM %(now)s - min(next_attempt_at)) FROM notification_outbox
    WHERE state = 'pending' AND next_attempt_at <= %(now)s) AS notify_overdue_s,
  (SELECT extract(epoch FROM %(now)s - min(next_attempt_at)) FROM resident_messages
    WHERE state = 'pending' AND next_attempt_at <= %(now)s) AS texts_overdue_s
"""


def _f(v: object) -> float | None:
    return None if v is None else float(v)  # type: ignore[arg-type]


async def read_snapshot(conn: Conn, *, now: datetime, flood_window_s: float) -> Snapshot:
    cur = await conn.execute(
        "SELECT worker_id, process, hostname, started_at, beat_at, stopped_at, loops "
        "FROM worker_heartbeats WHERE beat_at > %s - interval '1 day'",
        (now,),
    )
    beats = [Beat(**r) for r in await cur.fetchall()]
    cur = await conn.execute(QUEUES_SQL, {"now": now})
    q = await cur.fetchone()
    assert q is not None
    queues = QueueAges(
        stream_outbox_s=_f(q["stream_outbox_s"]),
        escalation_overdue_s=_f(q["escalation_overdue_s"]),
        notify_overdue_s=_f(q["notify_overdue_s"]),
        texts_overdue_s=_f(q["texts_overdue_s"]),
    )
    cur = await conn.execute(
        "SELECT d.device_id, d.site_id, s.dropped_messages AS dropped, s.dropped_at "
        "FROM device_status s JOIN devices d USING (device_key) "
        "WHERE s.dropped_at > %s - make_interval(secs => %s)",
        (now, flood_window_s),
    )
    floods = [Flood(**r) for r in await cur.fetchall()]
    cur = await conn.execute(
        "SELECT queue, count(*) AS count, max(last_error_at) AS latest_at FROM quarantine "
        "WHERE resolved_at IS NULL GROUP BY queue ORDER BY queue"
    )
    quarantined = [Quarantined(**r) for r in await cur.fetchall()]
    return Snapshot(beats=beats, queues=queues, floods=floods, quarantined=quarantined)


@dataclass(frozen=True, slots=True)
class Reconciled:
    raised: tuple[str, ...]
    cleared: tuple[str, ...]


def _stored(c: Condition) -> dict[str, Any]:
    """The details with the catalogue key, so a page can say it in its reader's language."""
    return {**c.details, "message": c.message}


async def reconcile(
    conn: Conn, found: Sequence[Condition], *, now: datetime, watcher: str
) -> Reconciled:
    """Call inside a transaction."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (_LOCK,))
    cur = await conn.execute("SELECT id, key FROM technical_alerts WHERE cleared_at IS NULL")
    open_keys = {r["key"]: int(r["id"]) for r in await cur.fetchall()}
    raised: list[str] = []
    for c in found:
        if c.key in open_keys:
            await conn.execute(
                "UPDATE technical_alerts SET last_seen_at = %s, subject = %s, details = %s, "
                "colour = CASE WHEN colour = 'red' THEN 'red' ELSE %s END WHERE id = %s",
                (now, c.subject, Jsonb(_stored(c)), c.colour, open_keys[c.key]),
            )
            continue
        await conn.execute(
            "INSERT INTO technical_alerts (key, kind, colour, subject, details, raised_at, "
            "raised_by, last_seen_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (c.key, c.kind, c.colour, c.subject, Jsonb(_stored(c)), now, watcher, now),
        )
        raised.append(c.key)
    keys = {c.key for c in found}
    cleared = sorted(k for k in open_keys if k not in keys)
    if cleared:
        await conn.execute(
            "UPDATE technical_alerts SET cleared_at = %s WHERE cleared_at IS NULL "
            "AND key = ANY(%s)",
            (now, cleared),
        )
    if raised or cleared:
        await conn.execute("SELECT pg_notify(%s, %s)", (TECHNICAL_CHANNEL, str(len(raised))))
    return Reconciled(tuple(raised), tuple(cleared))
