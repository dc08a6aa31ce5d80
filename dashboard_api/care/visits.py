"""Visit services, keyword-only, scoped: an admin sees every priority resident, staff those
of their sites, a visitor (community worker or volunteer) only the residents assigned to them.
Out-of-scope residents look missing."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from psycopg import sql

from alerts.care.plan import Flag, Rate, visit_rate
from alerts.care.store import month_visits
from alerts.dispatch.orders import Actor
from alerts.dispatch.policy import EscalationPolicy
from alerts.dispatch.service_orders import create_service_order
from devices.accounts import Principal
from devices.domain import Colour, Role, ServiceCategory
from devices.i18n import LOCALES, t
from devices.registry import Conn


def care_scope(principal: Principal) -> tuple[sql.Composable, dict[str, Any]]:
    """Rows with ``r`` (residents) and ``va`` (visit_assignments) in the query."""
    if principal.role is Role.ADMIN:
        return sql.SQL("TRUE"), {}
    if principal.role is Role.STAFF:
        return sql.SQL("r.site_id = ANY(%(care_sites)s)"), {"care_sites": list(principal.site_ids)}
    if principal.role is Role.VISITOR:
        return sql.SQL("va.visitor_id = %(care_visitor)s"), {"care_visitor": principal.user_id}
    return sql.SQL("FALSE"), {}


async def resident_in_scope(
    conn: Conn, *, principal: Principal, resident_id: int, flagged: bool = True
) -> dict[str, Any] | None:
    where, params = care_scope(principal)
    q = sql.SQL(
        "SELECT r.resident_id, r.site_id, r.full_name FROM residents r "
        "LEFT JOIN visit_assignments va ON va.resident_id = r.resident_id "
        "WHERE {} AND r.resident_id = %(rid)s AND r.discharged_at IS NULL"
    ).format(where)
    if flagged:
        q += sql.SQL(
            " AND EXISTS (SELECT 1 FROM care_flags cf WHERE cf.resident_id = r.resident_id)"
        )
    cur = await conn.execute(q, {**params, "rid": resident_id})
    return await cur.fetchone()


async def set_flags(
    conn: Conn, *, resident_id: int, flags: list[Flag], visits_per_month: int, now: datetime
) -> None:
    await conn.execute(
        "INSERT INTO care_flags (resident_id, flags, visits_per_month, flagged_at, updated_at) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (resident_id) DO UPDATE SET "
        "flags = EXCLUDED.flags, visits_per_month = EXCLUDED.visits_per_month, "
        "updated_at = EXCLUDED.updated_at",
        (resident_id, sorted({f.value for f in flags}), visits_per_month, now, now),
    )


async def assign_visitor(
    conn: Conn, *, resident_id: int, visitor_user_id: int, now: datetime
) -> bool:
    """False if that user is not a registered visitor."""
    cur = await conn.execute(
        "INSERT INTO visit_assignments (resident_id, visitor_id, assigned_at) "
        "SELECT %s, user_id, %s FROM care_visitors WHERE user_id = %s "
        "ON CONFLICT (resident_id) DO UPDATE SET visitor_id = EXCLUDED.visitor_id, "
        "assigned_at = EXCLUDED.assigned_at",
        (resident_id, now, visitor_user_id),
    )
    return cur.rowcount == 1


VISIT_COLUMNS = (
    "visit_id, resident_id, visitor_id, visited_at, eating_ok, mobility_ok, mood_ok, "
    "home_safety_ok, devices_ok, notes, follow_up, follow_up_category, order_id"
)


async def record_visit(
    conn: Conn,
    *,
    principal: Principal,
    resident: dict[str, Any],
    visited_at: datetime,
    checklist: dict[str, bool],
    notes: str,
    follow_up: bool,
    follow_up_category: ServiceCategory | None,
    now: datetime,
    policy: EscalationPolicy,
) -> dict[str, Any]:
    """Store a visit; a follow-up with a category opens a green service order in the 96345
    queue, through the same path as a hotline operator's order."""
    order_id = None
    if follow_up and follow_up_category is not None:
        order_id = await create_service_order(
            conn,
            site_id=resident["site_id"],
            resident_id=resident["resident_id"],
            category=follow_up_category,
            note=" / ".join(
                t("visits.follow_up_note", lang, notes=notes[:500]) for lang in LOCALES
            ),
            actor=Actor(principal.username, principal.user_id),
            now=now,
            policy=policy,
            colour=Colour.GREEN,
        )
    cur = await conn.execute(
        "INSERT INTO visits (resident_id, visitor_id, visited_at, recorded_at, eating_ok, "
        "mobility_ok, mood_ok, home_safety_ok, devices_ok, notes, follow_up, "
        "follow_up_category, order_id) VALUES (%(resident_id)s, %(visitor)s, %(at)s, %(now)s, "
        "%(eating_ok)s, %(mobility_ok)s, %(mood_ok)s, %(home_safety_ok)s, %(devices_ok)s, "
        "%(notes)s, %(follow_up)s, %(category)s, %(order)s) RETURNING " + VISIT_COLUMNS,
        {
            **checklist,
            "resident_id": resident["resident_id"],
            "visitor": principal.user_id,
            "at": visited_at,
            "now": now,
            "notes": notes,
            "follow_up": follow_up,
            "category": follow_up_category.value if follow_up_category else None,
            "order": order_id,
        },
    )
    row = await cur.fetchone()
    assert row is not None
    return dict(row)


async def list_visits(conn: Conn, *, resident_id: int, limit: int) -> list[dict[str, Any]]:
    cur = await conn.execute(
        "SELECT " + VISIT_COLUMNS + " FROM visits WHERE resident_id = %s "
        "ORDER BY visited_at DESC LIMIT %s",
        (resident_id, limit),
    )
    return list(await cur.fetchall())


async def rates(
    conn: Conn, *, principal: Principal, month: date, community: str | None
) -> list[tuple[Rate, dict[int, str]]]:
    """The month's visit rate per community, with the names of the people not yet visited."""
    where, params = care_scope(principal)
    rows = await month_visits(conn, where=where, params=params, month=month, community=community)
    by: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by.setdefault(r["community"], []).append(r)
    label = month.strftime("%Y-%m")
    out = []
    for name, group in sorted(by.items()):
        rate = visit_rate(
            name,
            label,
            ((int(g["resident_id"]), int(g["visits_per_month"]), int(g["made"])) for g in group),
        )
        out.append((rate, {int(g["resident_id"]): g["full_name"] for g in group}))
    return out
