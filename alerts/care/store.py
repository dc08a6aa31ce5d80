"""Reading the visit plan from the database: priority residents, their visits this month,
their visitor, and what the sensors know about them (alerts, activity, silence, devices)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from psycopg import sql

from alerts.care.plan import Priority, SensorFacts, month_bounds, next_due, priority
from devices.domain import DEFAULT_TIMEZONE
from devices.registry import Conn

PLAN_TZ = DEFAULT_TIMEZONE  # the visit month is a local calendar month

# {where} scopes the residents (r.*, s.*, va.visitor_id); the sensor facts are per resident.
PLAN_SQL = sql.SQL("""
WITH pr AS (
    SELECT r.resident_id, r.full_name, r.site_id, r.room_id, s.community, s.district,
           cf.flags, cf.visits_per_month, cf.flagged_at, va.visitor_id, u.username AS visitor
    FROM care_flags cf
    JOIN residents r ON r.resident_id = cf.resident_id AND r.discharged_at IS NULL
    JOIN sites s ON s.site_id = r.site_id
    LEFT JOIN visit_assignments va ON va.resident_id = r.resident_id
    LEFT JOIN users u ON u.user_id = va.visitor_id
    WHERE {where} AND (%(community)s::text IS NULL OR s.community = %(community)s)
), devs AS (
    SELECT pr.resident_id, d.device_key FROM pr JOIN devices d ON d.retired_at IS NULL AND (
        d.room_id = pr.room_id OR EXISTS (SELECT 1 FROM device_assignments a
            WHERE a.device_key = d.device_key AND a.resident_id = pr.resident_id
            AND a.during @> %(now)s::timestamptz))
)
SELECT pr.*,
    (SELECT max(v.visited_at) FROM visits v WHERE v.resident_id = pr.resident_id
        AND v.visited_at <= %(now)s) AS last_visit,
    (SELECT count(*) FROM visits v WHERE v.resident_id = pr.resident_id
        AND v.visited_at >= %(m_start)s AND v.visited_at < %(m_end)s) AS visits_this_month,
    {facts}
FROM pr ORDER BY pr.resident_id
""")


# What the sensors know, per resident (the costly part: reminders do without it).
FACTS_SQL = sql.SQL("""(SELECT count(*) FILTER (WHERE a.colour = 'red') FROM alerts a
        WHERE a.resident_id = pr.resident_id AND a.raised_at > %(since14)s) AS red_alerts,
    (SELECT count(*) FILTER (WHERE a.colour = 'yellow') FROM alerts a
        WHERE a.resident_id = pr.resident_id AND a.raised_at > %(since14)s) AS yellow_alerts,
    (SELECT count(*) FILTER (WHERE a.colour = 'green') FROM alerts a
        WHERE a.resident_id = pr.resident_id AND a.raised_at > %(since14)s) AS green_alerts,
    (SELECT count(*) FROM events e JOIN devs USING (device_key)
        WHERE devs.resident_id = pr.resident_id AND e.time > %(since7)s
        AND e.time <= %(now)s) AS activity_week,
    (SELECT count(*) / 3.0 FROM events e JOIN devs USING (device_key)
        WHERE devs.resident_id = pr.resident_id AND e.time > %(since28)s
        AND e.time <= %(since7)s) AS activity_baseline,
    (SELECT max(e.time) FROM events e JOIN devs USING (device_key)
        WHERE devs.resident_id = pr.resident_id AND e.time > %(since28)s
        AND e.time <= %(now)s) AS last_activity,
    (SELECT count(*) FROM devs JOIN device_status st USING (device_key)
        WHERE devs.resident_id = pr.resident_id AND (NOT st.online OR st.battery < 20
        OR st.last_seen_at < %(now)s::timestamptz - interval '26 hours')) AS failing_devices""")
NO_FACTS_SQL = sql.SQL(
    "0 AS red_alerts, 0 AS yellow_alerts, 0 AS green_alerts, 0 AS activity_week, "
    "NULL::numeric AS activity_baseline, NULL::timestamptz AS last_activity, 0 AS failing_devices"
)


@dataclass(frozen=True, slots=True)
class PlanListing:
    """What the visit plan lists of a priority resident (the API's plan entries carry these
    fields as they are, ``dashboard_api.care.schemas.PlanEntryOut``)."""

    resident_id: int
    full_name: str
    site_id: str
    community: str
    district: str
    flags: list[str]
    visits_per_month: int
    visits_this_month: int
    last_visit: datetime | None
    due: datetime
    visitor_id: int | None
    visitor: str | None


@dataclass(frozen=True, slots=True)
class PlanEntry(PlanListing):
    facts: SensorFacts
    priority: Priority

    def as_json(self) -> dict[str, Any]:
        return {
            **{f.name: getattr(self, f.name) for f in fields(PlanListing)},
            "score": self.priority.score,
            "reasons": list(self.priority.keys),
            "reason_messages": [r.as_json() for r in self.priority.reasons],
        }


async def plan_entries(
    conn: Conn,
    *,
    where: sql.Composable,
    params: dict[str, Any],
    now: datetime,
    community: str | None = None,
    month: date | None = None,
    sensors: bool = True,
) -> list[PlanEntry]:
    """The plan, most urgent first (score, then the earliest due, then resident id);
    ``sensors=False`` leaves out what the sensors know (only the due dates are needed)."""
    m_start, m_end = month_bounds(
        month or now.astimezone(ZoneInfo(PLAN_TZ)).date().replace(day=1), PLAN_TZ
    )
    cur = await conn.execute(
        PLAN_SQL.format(where=where, facts=FACTS_SQL if sensors else NO_FACTS_SQL),
        {
            **params,
            "community": community,
            "now": now,
            "m_start": m_start,
            "m_end": m_end,
            "since7": now - timedelta(days=7),
            "since14": now - timedelta(days=14),
            "since28": now - timedelta(days=28),
        },
    )
    out = []
    for r in await cur.fetchall():
        facts = SensorFacts(
            red_alerts=int(r["red_alerts"]),
            yellow_alerts=int(r["yellow_alerts"]),
            green_alerts=int(r["green_alerts"]),
            activity_week=int(r["activity_week"]),
            activity_baseline=float(r["activity_baseline"]) if r["activity_baseline"] else None,
            last_activity=r["last_activity"],
            failing_devices=int(r["failing_devices"]),
        )
        due = next_due(
            visits_per_month=int(r["visits_per_month"]),
            last_visit=r["last_visit"],
            flagged_at=r["flagged_at"],
            visits_this_month=int(r["visits_this_month"]),
            month_end=m_end,
        )
        out.append(
            PlanEntry(
                resident_id=int(r["resident_id"]),
                full_name=r["full_name"],
                site_id=r["site_id"],
                community=r["community"],
                district=r["district"],
                flags=list(r["flags"]),
                visits_per_month=int(r["visits_per_month"]),
                visits_this_month=int(r["visits_this_month"]),
                last_visit=r["last_visit"],
                due=due,
                visitor_id=r["visitor_id"],
                visitor=r["visitor"],
                facts=facts,
                priority=priority(facts, due=due, now=now),
            )
        )
    out.sort(key=lambda e: (-e.priority.score, e.due, e.resident_id))
    return out


MONTH_VISITS_SQL = sql.SQL("""
SELECT s.community, r.resident_id, r.full_name, cf.visits_per_month,
    (SELECT count(*) FROM visits v WHERE v.resident_id = r.resident_id
        AND v.visited_at >= %(m_start)s AND v.visited_at < %(m_end)s) AS made
FROM care_flags cf
JOIN residents r ON r.resident_id = cf.resident_id
JOIN sites s ON s.site_id = r.site_id
LEFT JOIN visit_assignments va ON va.resident_id = r.resident_id
WHERE {where} AND cf.flagged_at < %(m_end)s AND r.admitted_at < %(m_end)s
    AND (r.discharged_at IS NULL OR r.discharged_at >= %(m_start)s)
    AND (%(community)s::text IS NULL OR s.community = %(community)s)
ORDER BY s.community, r.resident_id
""")


async def month_visits(
    conn: Conn,
    *,
    where: sql.Composable,
    params: dict[str, Any],
    month: date,
    community: str | None = None,
) -> list[dict[str, Any]]:
    """One row per priority resident of the month: (community, resident, required, made)."""
    m_start, m_end = month_bounds(month, PLAN_TZ)
    cur = await conn.execute(
        MONTH_VISITS_SQL.format(where=where),
        {**params, "m_start": m_start, "m_end": m_end, "community": community},
    )
    return list(await cur.fetchall())
