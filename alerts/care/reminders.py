"""Visit reminders through the notification outbox: a visitor hears about each assigned
resident whose visit is due within ``REMIND_BEFORE`` or overdue, once per due date."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from psycopg import sql
from psycopg.types.json import Jsonb

from alerts.care.plan import DueState, due_state
from alerts.care.store import PLAN_TZ, plan_entries
from devices.i18n import LOCALES, t
from devices.registry import Conn


def reminder_text(*, name: str, site: str, due: datetime, overdue: bool) -> tuple[str, str]:
    """(subject, body), Chinese then English (catalogue ``visits.reminder.*``)."""
    key = "visits.reminder.subject_overdue" if overdue else "visits.reminder.subject_due"
    # ``due`` is the plan's exclusive end (local midnight): the visit is due by the day before,
    # in the plan's zone (its UTC date was right only east of Greenwich)
    day = (due.astimezone(ZoneInfo(PLAN_TZ)) - timedelta(microseconds=1)).date().isoformat()
    subject = " / ".join(t(key, lang, name=name) for lang in LOCALES)
    body = "\n".join(
        t("visits.reminder.body", lang, name=name, site=site, due=day) for lang in LOCALES
    )
    return subject, body


async def enqueue_visit_reminders(conn: Conn, *, now: datetime) -> int:
    """Idempotent: the key is (resident, due date, visitor), so a cycle repeated adds nothing.
    Like a family member, a visitor hears only once they have notification settings (rows
    without a channel are kept as skipped, so the history shows why nothing was sent)."""
    entries = await plan_entries(
        conn, where=sql.SQL("va.visitor_id IS NOT NULL"), params={}, now=now, sensors=False
    )
    added = 0
    for e in entries:
        state = due_state(e.due, now=now)
        if state is DueState.OK or e.visitor_id is None:
            continue
        subject, body = reminder_text(
            name=e.full_name, site=e.site_id, due=e.due, overdue=state is DueState.OVERDUE
        )
        payload = {
            "type": "visit_reminder",
            "resident_id": e.resident_id,
            "resident_name": e.full_name,
            "due": e.due.isoformat(),
            "state": state.value,
            "subject": subject,
            "text": body,
        }
        cur = await conn.execute(
            "INSERT INTO notification_outbox (idem_key, user_id, resident_id, source, colour, "
            "subject, body, payload, created_at, not_before, next_attempt_at, state, reason) "
            "SELECT %(key)s, %(user)s, %(resident)s, 'visit_reminder', %(colour)s, %(subject)s, "
            "%(body)s, %(payload)s, %(now)s, %(now)s, %(now)s, "
            "CASE WHEN jsonb_array_length(coalesce(p.channels, '[]')) > 0 "
            "THEN 'pending' ELSE 'skipped' END, "
            "CASE WHEN jsonb_array_length(coalesce(p.channels, '[]')) > 0 "
            "THEN '' ELSE 'no channel configured' END "
            "FROM users u JOIN notification_prefs p ON p.user_id = u.user_id "
            "WHERE u.user_id = %(user)s AND u.disabled_at IS NULL "
            "ON CONFLICT (idem_key) DO NOTHING",
            {
                "key": f"visit:{e.resident_id}:{e.due.date().isoformat()}:{e.visitor_id}",
                "user": e.visitor_id,
                "resident": e.resident_id,
                "colour": "yellow" if state is DueState.OVERDUE else "green",
                "subject": subject,
                "body": body,
                "payload": Jsonb(payload),
                "now": now,
            },
        )
        added += cur.rowcount
    return added
