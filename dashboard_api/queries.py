"""Read services, each scoped to what the caller may see.

Scope: an admin sees everything; staff see their sites; a family member sees only the
residents linked to them. Out-of-scope rows look exactly like missing rows (404), so ids
cannot be probed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import sql

from devices.accounts import Principal
from devices.domain import Colour, OrderKind, OrderState, Role
from devices.registry import Conn

Query = sql.SQL | sql.Composed


def scope(
    principal: Principal, *, site_col: str, resident_col: str | None
) -> tuple[Query, dict[str, Any]]:
    if principal.role is Role.ADMIN:
        return sql.SQL("TRUE"), {}
    if principal.role is Role.STAFF:
        return sql.SQL("{} = ANY(%(scope_sites)s)").format(sql.SQL(site_col)), {
            "scope_sites": list(principal.site_ids)
        }
    if resident_col is None:
        return sql.SQL("FALSE"), {}
    return sql.SQL("{} = ANY(%(scope_residents)s)").format(sql.SQL(resident_col)), {
        "scope_residents": list(principal.resident_ids)
    }


async def _rows(conn: Conn, query: Query, params: dict[str, Any]) -> list[dict[str, Any]]:
    cur = await conn.execute(query, params)
    return list(await cur.fetchall())


async def list_sites(conn: Conn, *, principal: Principal) -> list[dict[str, Any]]:
    where: Query
    if principal.role is Role.FAMILY:
        where, params = (
            sql.SQL("site_id IN (SELECT site_id FROM residents WHERE resident_id = ANY(%(r)s))"),
            {"r": list(principal.resident_ids)},
        )
    else:
        where, params = scope(principal, site_col="site_id", resident_col=None)
    q = sql.SQL(
        "SELECT site_id, name, kind, community FROM sites WHERE {} ORDER BY site_id"
    ).format(where)
    return await _rows(conn, q, params)


RESIDENT_SELECT = (
    "SELECT r.resident_id, r.site_id, r.full_name, rm.name AS room_name, r.care_profile, "
    "r.birth_year FROM residents r LEFT JOIN rooms rm USING (room_id) WHERE {} "
)


@dataclass(frozen=True, slots=True)
class SitePage:
    """A page of a list that may be narrowed to one site (``?site_id=&limit=&offset=``)."""

    site_id: str | None
    limit: int
    offset: int

    def params(self) -> dict[str, Any]:
        """For ``%(site)s::text IS NULL OR ... = %(site)s`` and ``LIMIT %(limit)s OFFSET
        %(offset)s``."""
        return {"site": self.site_id, "limit": self.limit, "offset": self.offset}


async def page_rows(
    conn: Conn,
    query: str,
    visible: tuple[Query, dict[str, Any]],
    page: SitePage,
    *,
    site_col: str,
    params: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """One page of a list the caller may see, narrowed to the page's site: the ``{}`` in
    ``query`` becomes the caller's scope (``visible``: scope() or order_scope()) ``AND
    (%(site)s::text IS NULL OR <site_col> = %(site)s)``, and ``LIMIT %(limit)s OFFSET
    %(offset)s`` ends it (after its ORDER BY); ``params`` fill the query's own placeholders."""
    where, scope_params = visible
    narrowed = sql.SQL("{} AND (%(site)s::text IS NULL OR {} = %(site)s)").format(
        where, sql.SQL(site_col)
    )
    q = sql.SQL(query).format(narrowed) + sql.SQL(" LIMIT %(limit)s OFFSET %(offset)s")
    return await _rows(conn, q, {**scope_params, **page.params(), **(params or {})})


async def list_residents(
    conn: Conn, *, principal: Principal, page: SitePage
) -> list[dict[str, Any]]:
    return await page_rows(
        conn,
        RESIDENT_SELECT + "AND r.discharged_at IS NULL ORDER BY r.resident_id",
        scope(principal, site_col="r.site_id", resident_col="r.resident_id"),
        page,
        site_col="r.site_id",
    )


async def get_resident(
    conn: Conn, *, principal: Principal, resident_id: int
) -> dict[str, Any] | None:
    where, params = scope(principal, site_col="r.site_id", resident_col="r.resident_id")
    rows = await _rows(
        conn,
        sql.SQL(RESIDENT_SELECT + "AND r.resident_id = %(id)s").format(where),
        {**params, "id": resident_id},
    )
    return rows[0] if rows else None


async def list_devices(conn: Conn, *, principal: Principal, page: SitePage) -> list[dict[str, Any]]:
    q = (
        "SELECT d.device_id, d.site_id, d.kind, rm.name AS room_name, a.resident_id, s.online, "
        "s.battery, s.last_seen_at, d.retired_at IS NOT NULL AS retired FROM devices d "
        "LEFT JOIN rooms rm USING (room_id) LEFT JOIN device_status s USING (device_key) "
        "LEFT JOIN device_assignments a ON a.device_key = d.device_key AND upper_inf(a.during) "
        "WHERE {} ORDER BY d.device_id"
    )
    return await page_rows(
        conn,
        q,
        scope(principal, site_col="d.site_id", resident_col="a.resident_id"),
        page,
        site_col="d.site_id",
    )


async def list_alerts(
    conn: Conn,
    *,
    principal: Principal,
    page: SitePage,
    resident_id: int | None,
    colour: Colour | None,
    since: datetime | None,
) -> list[dict[str, Any]]:
    q = (
        "SELECT a.alert_id, a.site_id, a.resident_id, r.full_name AS resident_name, a.kind, "
        "a.colour, a.occurred_at, a.raised_at, a.details, a.incident_id, o.order_id, "
        "o.state AS order_state "
        "FROM alerts a LEFT JOIN residents r USING (resident_id) "
        # the order of the alert's incident: alerts folded into one incident share its order
        "LEFT JOIN dispatch_orders o ON o.incident_id = a.incident_id "
        "WHERE {} "
        "AND (%(res)s::bigint IS NULL OR a.resident_id = %(res)s) "
        "AND (%(colour)s::text IS NULL OR a.colour = %(colour)s) "
        "AND (%(since)s::timestamptz IS NULL OR a.raised_at >= %(since)s) "
        "ORDER BY a.raised_at DESC, a.alert_id DESC"
    )
    return await page_rows(
        conn,
        q,
        scope(principal, site_col="a.site_id", resident_col="a.resident_id"),
        page,
        site_col="a.site_id",
        params={
            "res": resident_id,
            "colour": colour.value if colour else None,
            "since": since,
        },
    )


def centre_scope(principal: Principal, *, site_col: str) -> tuple[Query, dict[str, Any]]:
    """Orders and figures: a 96345 operator sees every site, as an admin; others as scope()."""
    if principal.role is Role.OPERATOR:
        return sql.SQL("TRUE"), {}
    return scope(principal, site_col=site_col, resident_col=None)


def order_scope(principal: Principal) -> tuple[Query, dict[str, Any]]:
    """Admin and operators: all; staff: their sites; a responder: orders offered to them or
    that they accepted; family: none."""
    if principal.role is Role.RESPONDER:
        return sql.SQL(
            "(accepted_by = %(scope_user)s OR order_id IN (SELECT f.order_id FROM order_offers f "
            "JOIN responders r USING (responder_id) WHERE r.user_id = %(scope_user)s))"
        ), {"scope_user": principal.user_id}
    return centre_scope(principal, site_col="site_id")


# The resident's texts after their check-in raised the order's alert
# (``alerts.detection.sms_replies``), for whoever holds or watches the order: a column of
# ``dispatch_orders`` rows (the order table's alias is the parameter).
LATE_REPLIES = (
    "COALESCE((SELECT x.details->'late_replies' FROM alerts x "
    "WHERE x.alert_id = {}.alert_id), '[]'::jsonb) AS late_replies"
)
ORDER_SELECT = (
    "SELECT order_id, alert_id, incident_id, kind, site_id, resident_id, colour, category, "
    "state, event_at, opened_at, accept_deadline, offered_to, offered_at, step_due_at, "
    "accepted_at, accepted_by, en_route_at, on_site_at, resolved_at, cancelled_at, outcome, "
    f"note, {LATE_REPLIES.format('dispatch_orders')} "
    "FROM dispatch_orders WHERE {} "
)


async def list_orders(
    conn: Conn,
    *,
    principal: Principal,
    page: SitePage,
    open_only: bool,
    state: OrderState | None = None,
    colour: Colour | None = None,
    kind: OrderKind | None = None,
    offered_to_me: bool = False,
) -> list[dict[str, Any]]:
    q = ORDER_SELECT + (
        "AND (NOT %(open)s OR state NOT IN ('resolved', 'cancelled')) "
        "AND (%(state)s::text IS NULL OR state = %(state)s) "
        "AND (%(colour)s::text IS NULL OR colour = %(colour)s) "
        "AND (%(kind)s::text IS NULL OR kind = %(kind)s) "
        "AND (NOT %(mine)s OR offered_to IN "
        "     (SELECT responder_id FROM responders WHERE user_id = %(me)s)) "
        "ORDER BY opened_at DESC, order_id DESC"
    )
    return await page_rows(
        conn,
        q,
        order_scope(principal),
        page,
        site_col="site_id",
        params={
            "open": open_only,
            "state": state.value if state else None,
            "colour": colour.value if colour else None,
            "kind": kind.value if kind else None,
            "mine": offered_to_me,
            "me": principal.user_id,
        },
    )


async def get_order(conn: Conn, *, principal: Principal, order_id: int) -> dict[str, Any] | None:
    where, params = order_scope(principal)
    rows = await _rows(
        conn,
        sql.SQL(ORDER_SELECT + "AND order_id = %(id)s").format(where),
        {**params, "id": order_id},
    )
    return rows[0] if rows else None


async def order_trail(conn: Conn, *, order_id: int) -> list[dict[str, Any]]:
    """The audit trail of an order the caller may see (check with get_order first)."""
    return await _rows(
        conn,
        sql.SQL(
            "SELECT at, from_state, to_state, actor, user_id, note FROM order_transitions "
            "WHERE order_id = %(id)s ORDER BY id"
        ),
        {"id": order_id},
    )


async def site_exists(conn: Conn, *, site_id: str) -> bool:
    cur = await conn.execute("SELECT 1 FROM sites WHERE site_id = %s", (site_id,))
    return await cur.fetchone() is not None
