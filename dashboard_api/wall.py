"""The alert wall a nurse works from (issue 14 item 3): one card per situation, unhandled red
first and oldest first, each with its deadline, where, whom it is offered to and a phone.

Orders still open for the same resident (or site) and the same kind are one situation: one
card with the count of alerts and every order id, so repeated presses do not fill the wall.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from psycopg import sql
from pydantic import BaseModel

from dashboard_api.deps import ConnDep, Now, SettingsDep, StaffUser
from dashboard_api.i18n import LocaleDep, explained
from dashboard_api.queries import scope
from dashboard_api.schemas import LateReply
from devices.domain import Colour, OrderState

router = APIRouter(prefix="/api")
OPEN = ("queued", "offered")
ACTIVE = ("accepted", "en_route", "on_site")

WALL_SQL = """
SELECT o.order_id, o.state, o.colour, o.opened_at, o.accept_deadline, o.offered_at,
       o.accepted_at, o.resolved_at, o.outcome, o.site_id, o.resident_id,
       COALESCE(i.alert_count, 1) AS alert_count, a.kind, a.details, a.occurred_at,
       r.full_name AS resident_name, rm.name AS room_name, s.address, s.name AS site_name,
       COALESCE(h.name, p.name) AS offered_to, COALESCE(h.phone, p.phone) AS phone
FROM dispatch_orders o
JOIN sites s ON s.site_id = o.site_id
LEFT JOIN incidents i ON i.incident_id = o.incident_id
LEFT JOIN LATERAL (SELECT * FROM alerts x WHERE x.incident_id = o.incident_id
                   OR x.alert_id = o.alert_id ORDER BY x.raised_at DESC LIMIT 1) a ON true
LEFT JOIN residents r ON r.resident_id = o.resident_id
LEFT JOIN rooms rm ON rm.room_id = r.room_id
LEFT JOIN responders p ON p.responder_id = o.offered_to
LEFT JOIN responders h ON h.user_id = o.accepted_by AND o.state IN ('accepted', 'en_route', 'on_site')
WHERE {} AND o.kind = 'alert'
  AND (o.state NOT IN ('resolved', 'cancelled') OR (%(done)s AND o.opened_at > %(since)s))
ORDER BY o.opened_at LIMIT 500
"""


class WallCard(BaseModel):
    order_ids: list[int]  # the open orders of this situation, oldest first
    state: OrderState
    colour: Colour
    kind: str
    count: int  # alerts of this situation
    opened_at: datetime  # of the oldest order: durations count from here
    last_at: datetime
    accept_deadline: datetime
    overdue: bool
    resident_id: int | None
    resident_name: str | None
    site_id: str
    site_name: str
    room_name: str | None
    address: str
    offered_to: str | None
    offered_at: datetime | None
    phone: str | None
    explanation: str
    # the resident's texts after an unanswered check-in had raised this alert: call first
    late_replies: list[LateReply] = []


def _rank(card: dict[str, Any]) -> tuple[int, int, datetime]:
    group = 0 if card["state"] in OPEN else 1 if card["state"] in ACTIVE else 2
    return (group, ["red", "yellow", "green"].index(card["colour"]), card["opened_at"])


def fold(rows: list[dict[str, Any]], *, now: datetime) -> list[dict[str, Any]]:
    """One card per situation (oldest rows first in), ordered for the nurse."""
    cards: dict[tuple[object, ...], dict[str, Any]] = {}
    for row in rows:
        handled = row["state"] not in OPEN and row["state"] not in ACTIVE
        who = row["resident_id"] if row["resident_id"] is not None else row["site_id"]
        key = ("done", row["order_id"]) if handled else (who, row["kind"], row["state"] in OPEN)
        card = cards.get(key)
        if card is None:
            cards[key] = {
                **row,
                "order_ids": [row["order_id"]],
                "count": int(row["alert_count"]),
                "last_at": row["occurred_at"] or row["opened_at"],
                "overdue": row["state"] in OPEN and row["accept_deadline"] < now,
            }
            continue
        card["order_ids"].append(row["order_id"])
        card["count"] += int(row["alert_count"])
        card["last_at"] = max(card["last_at"], row["occurred_at"] or row["opened_at"])
        card["details"], card["occurred_at"] = row["details"], row["occurred_at"]
        if row["colour"] == "red":
            card["colour"] = "red"
    return sorted(cards.values(), key=_rank)


@router.get("/wall", response_model=list[WallCard])
async def wall(
    conn: ConnDep,
    user: StaffUser,
    settings: SettingsDep,
    locale: LocaleDep,
    at: Now,
    show_done: bool = False,
    done_hours: Annotated[int, Query(ge=1, le=168)] = 12,
) -> list[WallCard]:
    """The open situations of the caller's sites, unhandled red first and oldest first."""
    where, params = scope(user, site_col="o.site_id", resident_col="o.resident_id")
    cur = await conn.execute(
        sql.SQL(WALL_SQL).format(where),
        {**params, "done": show_done, "since": at - timedelta(hours=done_hours)},
    )
    rows = [dict(r) for r in await cur.fetchall()]
    for r in rows:
        r["kind"] = r["kind"] or "other"
        r["details"] = r["details"] or {}
        r["occurred_at"] = r["occurred_at"] or r["opened_at"]
    cards = []
    for c in fold(rows, now=at):
        late = (c.get("details") or {}).get("late_replies", [])
        c = explained(c, locale=locale, tz=settings.site_timezone, now=at)
        cards.append(WallCard(**c, late_replies=late))
    return cards
