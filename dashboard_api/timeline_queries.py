"""Read services for the pages: resident timelines (``time_bucket``), status now, device
health, today's figures and one alert with how it was handled. Scoped like ``queries``."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from psycopg import sql

from dashboard_api.queries import SitePage, _rows, get_resident, page_rows, scope
from devices.accounts import Principal
from devices.registry import Conn

# The resident's own devices over a range, and the unassigned devices of their room.
# Looked up first so the hypertable queries below filter on literal key arrays (index scans).
KEYS_SQL = (
    "SELECT ARRAY(SELECT a.device_key FROM device_assignments a WHERE a.resident_id = %(rid)s "
    "AND a.during && tstzrange(%(start)s, %(end)s)) AS mine, "
    "ARRAY(SELECT a.device_key FROM device_assignments a JOIN devices d USING (device_key) "
    "WHERE a.resident_id = %(rid)s AND a.during && tstzrange(%(start)s, %(end)s) "
    "AND d.kind = 'bed_mat') AS beds, "
    "ARRAY(SELECT d.device_key FROM devices d JOIN residents r ON r.room_id = d.room_id "
    "WHERE r.resident_id = %(rid)s AND NOT EXISTS (SELECT 1 FROM device_assignments a "
    "WHERE a.device_key = d.device_key AND upper_inf(a.during))) AS room"
)

# Readings a body cannot produce (a stored heart rate of -1e308 overflowed the average and
# made the timeline 500 for every role) are left out of what the pages show; ingest refuses
# them on arrival, this guards rows stored before that or by another writer.
PLAUSIBLE = "value BETWEEN 0 AND CASE metric WHEN 'hr' THEN 300 WHEN 'rr' THEN 120 END"

TIMELINE_SQL = (
    "WITH b AS (SELECT g AS bstart, g + %(bucket)s AS bend FROM generate_series("
    "time_bucket(%(bucket)s, %(start)s::timestamptz), %(end)s::timestamptz - interval '1 us', "
    "%(bucket)s) g), "
    "motion AS (SELECT time_bucket(%(bucket)s, time) AS bstart, count(*) AS n FROM events "
    "WHERE device_key = ANY(%(mine)s::int[] || %(room)s::int[]) "
    "AND name = 'motion' AND time >= %(start)s AND time < %(end)s GROUP BY 1), "
    "vitals AS (SELECT time_bucket(%(bucket)s, time) AS bstart, "
    "avg(value) FILTER (WHERE metric = 'hr') AS hr_avg, "
    "min(value) FILTER (WHERE metric = 'hr') AS hr_min, "
    "max(value) FILTER (WHERE metric = 'hr') AS hr_max, "
    "avg(value) FILTER (WHERE metric = 'rr') AS rr_avg FROM telemetry "
    "WHERE device_key = ANY(%(mine)s::int[]) AND metric IN ('hr', 'rr') "
    f"AND {PLAUSIBLE} AND time >= %(start)s AND time < %(end)s GROUP BY 1), "
    "pres_raw AS ((SELECT time, value_bool FROM events WHERE device_key = ANY(%(beds)s::int[]) "
    "AND name = 'presence' AND time < %(start)s ORDER BY time DESC LIMIT 1) UNION ALL "
    "(SELECT time, value_bool FROM events WHERE device_key = ANY(%(beds)s::int[]) "
    "AND name = 'presence' AND time >= %(start)s AND time < %(end)s)), "
    "inbed AS MATERIALIZED (SELECT time AS s, COALESCE(next_t, LEAST(%(end)s, %(now)s)) AS e "
    "FROM (SELECT time, value_bool, lead(time) OVER (ORDER BY time) AS next_t FROM pres_raw) p "
    "WHERE value_bool) "
    "SELECT b.bstart AS start, COALESCE(m.n, 0) AS motion_events, "
    "COALESCE((SELECT sum(extract(epoch FROM LEAST(i.e, b.bend) - GREATEST(i.s, b.bstart))) "
    "FROM inbed i WHERE i.s < b.bend AND i.e > b.bstart), 0) / 60.0 AS in_bed_minutes, "
    "v.hr_avg, v.hr_min, v.hr_max, v.rr_avg "
    "FROM b LEFT JOIN motion m USING (bstart) LEFT JOIN vitals v USING (bstart) ORDER BY b.bstart"
)


async def _keys(
    conn: Conn, *, resident_id: int, start: datetime, end: datetime | None
) -> dict[str, list[int]]:
    rows = await _rows(conn, sql.SQL(KEYS_SQL), {"rid": resident_id, "start": start, "end": end})
    return rows[0]


async def timeline(
    conn: Conn,
    *,
    principal: Principal,
    resident_id: int,
    start: datetime,
    end: datetime,
    bucket: timedelta,
    now: datetime,
) -> list[dict[str, Any]] | None:
    """Buckets from ``start`` to ``end``; None if the resident is not in the caller's scope."""
    if await get_resident(conn, principal=principal, resident_id=resident_id) is None:
        return None
    keys = await _keys(conn, resident_id=resident_id, start=start, end=end)
    params = {"start": start, "end": end, "bucket": bucket, "now": now, **keys}
    return await _rows(conn, sql.SQL(TIMELINE_SQL), params)


STATUS_SQL = (
    "WITH last_presence AS (SELECT time, value_bool FROM events WHERE device_key = "
    "ANY(%(beds)s::int[]) AND name = 'presence' ORDER BY time DESC LIMIT 1), "
    "devs AS (SELECT s.online, s.battery FROM device_status s WHERE s.device_key = "
    "ANY(%(mine)s::int[] || %(room)s::int[])) "
    "SELECT (SELECT max(time) FROM events WHERE name = 'motion' AND time > %(now)s - "
    "interval '30 days' AND device_key = ANY(%(mine)s::int[] || %(room)s::int[])) AS last_motion_at, "
    "(SELECT value_bool FROM last_presence) AS in_bed, "
    "(SELECT time FROM last_presence WHERE value_bool) AS in_bed_since, "
    "hr.value AS hr, hr.time AS hr_at, rr.value AS rr, rr.time AS rr_at, "
    "cardinality(%(mine)s::int[]) + cardinality(%(room)s::int[]) AS devices, "
    "(SELECT count(*) FROM devs WHERE NOT online) AS devices_offline, "
    "(SELECT count(*) FROM devs WHERE battery < %(low)s) AS devices_low_battery, "
    "(SELECT count(*) FROM dispatch_orders o WHERE o.resident_id = %(rid)s "
    "AND o.state NOT IN ('resolved', 'cancelled')) AS open_alerts "
    "FROM (SELECT 1) one "
    "LEFT JOIN LATERAL (SELECT value, time FROM telemetry WHERE metric = 'hr' AND device_key = "
    f"ANY(%(mine)s::int[]) AND {PLAUSIBLE} ORDER BY time DESC LIMIT 1) hr ON true "
    "LEFT JOIN LATERAL (SELECT value, time FROM telemetry WHERE metric = 'rr' AND device_key = "
    f"ANY(%(mine)s::int[]) AND {PLAUSIBLE} ORDER BY time DESC LIMIT 1) rr ON true"
)

LOW_BATTERY = 20.0


async def resident_status(
    conn: Conn, *, principal: Principal, resident_id: int, now: datetime
) -> dict[str, Any] | None:
    resident = await get_resident(conn, principal=principal, resident_id=resident_id)
    if resident is None:
        return None
    keys = await _keys(conn, resident_id=resident_id, start=now, end=None)
    params = {"rid": resident_id, "now": now, "low": LOW_BATTERY, **keys}
    rows = await _rows(conn, sql.SQL(STATUS_SQL), params)
    return {**resident, **rows[0]}


async def device_health(
    conn: Conn,
    *,
    principal: Principal,
    page: SitePage,
    problems_only: bool,
    stale_after: timedelta,
    now: datetime,
) -> list[dict[str, Any]]:
    q = (
        "SELECT * FROM (SELECT d.device_id, d.site_id, d.kind, rm.name AS room_name, "
        "a.resident_id, r.full_name AS resident_name, s.online, s.battery, s.last_seen_at, "
        "COALESCE(s.last_seen_at, s.reported_at) IS NULL "
        "OR COALESCE(s.last_seen_at, s.reported_at) < %(stale)s AS stale, "
        "COALESCE(s.battery < %(low)s, false) AS low_battery FROM devices d "
        "LEFT JOIN rooms rm USING (room_id) LEFT JOIN device_status s USING (device_key) "
        "LEFT JOIN device_assignments a ON a.device_key = d.device_key AND upper_inf(a.during) "
        "LEFT JOIN residents r ON r.resident_id = a.resident_id "
        "WHERE {} AND d.retired_at IS NULL"
        ") x WHERE (NOT %(problems)s OR stale OR low_battery OR online IS NOT TRUE) "
        "ORDER BY (online IS NOT TRUE OR stale OR low_battery) DESC, device_id"
    )
    rows = await page_rows(
        conn,
        q,
        scope(principal, site_col="d.site_id", resident_col="a.resident_id"),
        page,
        site_col="d.site_id",
        params={
            "stale": now - stale_after,
            "low": LOW_BATTERY,
            "problems": problems_only,
        },
    )
    for r in rows:
        r["problem"] = bool(r["stale"] or r["low_battery"] or r["online"] is not True)
    return rows


async def today(conn: Conn, *, principal: Principal, day_start: datetime, now: datetime) -> Any:
    where, params = scope(principal, site_col="site_id", resident_col=None)
    q = sql.SQL(
        "SELECT count(*) FILTER (WHERE opened_at >= %(day)s) AS opened, "
        "count(*) FILTER (WHERE opened_at >= %(day)s AND colour = 'red') AS opened_red, "
        "count(*) FILTER (WHERE accepted_at >= %(day)s) AS accepted, "
        "count(*) FILTER (WHERE resolved_at >= %(day)s) AS resolved, "
        "count(*) FILTER (WHERE state NOT IN ('resolved', 'cancelled')) AS open_now, "
        "count(*) FILTER (WHERE state IN ('queued', 'offered') AND accept_deadline < %(now)s) "
        "AS overdue_now, "
        "percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM accepted_at - "
        "opened_at)) FILTER (WHERE opened_at >= %(day)s "
        "AND accepted_at IS NOT NULL) AS median_accept_s, "
        "max(extract(epoch FROM accepted_at - opened_at)) "
        "FILTER (WHERE opened_at >= %(day)s) AS max_accept_s "
        "FROM dispatch_orders WHERE {} AND (opened_at >= %(day)s "
        "OR state NOT IN ('resolved', 'cancelled'))"
    ).format(where)
    rows = await _rows(conn, q, {**params, "day": day_start, "now": now})
    return {"day_start": day_start, **rows[0]}


async def alert_detail(conn: Conn, *, principal: Principal, alert_id: int) -> Any:
    where, params = scope(principal, site_col="a.site_id", resident_col="a.resident_id")
    q = sql.SQL(
        "SELECT a.alert_id, a.site_id, a.resident_id, r.full_name AS resident_name, a.kind, "
        "a.colour, a.occurred_at, a.raised_at, a.details, o.order_id, o.state AS order_state,"
        " o.opened_at, o.accepted_at, o.resolved_at, o.outcome, o.note, "
        # from when the order opened (issue 14): not from a device's stale event time
        "extract(epoch FROM o.accepted_at - o.opened_at)::float8 AS seconds_to_accept, "
        "extract(epoch FROM o.on_site_at - o.accepted_at)::float8 AS seconds_to_arrive "
        "FROM alerts a LEFT JOIN residents r USING (resident_id) "
        "LEFT JOIN dispatch_orders o ON o.alert_id = a.alert_id "
        "WHERE {} AND a.alert_id = %(id)s"
    ).format(where)
    rows = await _rows(conn, q, {**params, "id": alert_id})
    if not rows:
        return None
    steps: list[dict[str, Any]] = []
    if rows[0]["order_id"] is not None:
        steps = await _rows(
            conn,
            sql.SQL(
                "SELECT t.at, t.to_state AS state, t.actor AS by, "
                "CASE WHEN t.user_id IS NULL THEN 'system' ELSE u.role END AS role "
                "FROM order_transitions t LEFT JOIN users u ON u.user_id = t.user_id "
                "WHERE t.order_id = %(o)s ORDER BY t.at, t.id"
            ),
            {"o": rows[0]["order_id"]},
        )
    return {**rows[0], "steps": steps}
