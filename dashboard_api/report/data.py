"""The month's figures per district and community, read in a few set-based queries and
aggregated in Python. No personal details: counts, shares and times only."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from psycopg import sql

from alerts.care.plan import month_bounds
from alerts.care.store import PLAN_TZ
from alerts.dispatch.timetohelp import (
    Figures,
    GroupBy,
    OrderTimes,
    order_times,
    summarise,
    summarise_group,
)
from devices.registry import Conn

PROMISE_S = 300  # the 96345 five-minute promise


@dataclass(frozen=True, slots=True)
class Scope:
    level: str  # "district" or "community"
    name: str
    sites: frozenset[str]

    @property
    def slug(self) -> str:
        return f"{self.level}-{self.name or 'none'}"


@dataclass(slots=True)
class ScopeFigures:
    scope: Scope
    month: str
    period: str = ""  # the dates covered, for the plots' titles
    residents_by_site_kind: Counter[str] = field(default_factory=Counter)
    alerts_by_colour_kind: Counter[tuple[str, str]] = field(default_factory=Counter)
    orders: Figures | None = None
    top_requests: dict[str, list[tuple[str, int]]] = field(default_factory=dict)  # community
    providers: list[Figures] = field(default_factory=list)
    visits_due: int = 0  # priority residents
    visits_done: int = 0
    findings_opened: int = 0
    findings_closed: int = 0
    findings_open_at_end: int = 0
    device_days: int = 0
    device_days_reporting: int = 0

    @property
    def visit_rate(self) -> float | None:
        return self.visits_done / self.visits_due if self.visits_due else None

    @property
    def uptime(self) -> float | None:
        return self.device_days_reporting / self.device_days if self.device_days else None


def scopes(sites: Iterable[dict[str, Any]]) -> list[Scope]:
    by: dict[tuple[str, str], set[str]] = {}
    for s in sites:
        by.setdefault(("district", s["district"]), set()).add(s["site_id"])
        by.setdefault(("community", s["community"]), set()).add(s["site_id"])
    return [Scope(lv, name, frozenset(ids)) for (lv, name), ids in sorted(by.items())]


async def _rows(conn: Conn, q: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    cur = await conn.execute(q, params)
    return list(await cur.fetchall())


async def gather(conn: Conn, *, month: date) -> list[ScopeFigures]:
    start, end = month_bounds(month, PLAN_TZ)
    p: dict[str, Any] = {"start": start, "end": end}
    sites = await _rows(conn, "SELECT site_id, kind, community, district FROM sites", {})
    site_of = {str(s["site_id"]): s for s in sites}
    residents = await _rows(
        conn,
        "SELECT site_id, count(*) AS n FROM residents WHERE admitted_at < %(end)s "
        "AND (discharged_at IS NULL OR discharged_at >= %(start)s) GROUP BY site_id",
        p,
    )
    alerts = await _rows(
        conn,
        "SELECT site_id, colour, kind, count(*) AS n FROM alerts WHERE raised_at >= %(start)s "
        "AND raised_at < %(end)s GROUP BY site_id, colour, kind",
        p,
    )
    orders = await order_times(conn, where=sql.SQL("TRUE"), params={}, since=start, until=end)
    visits = await _rows(
        conn,
        "SELECT r.site_id, cf.visits_per_month AS need, (SELECT count(*) FROM visits v "
        "WHERE v.resident_id = r.resident_id AND v.visited_at >= %(start)s "
        "AND v.visited_at < %(end)s) AS made FROM care_flags cf "
        "JOIN residents r USING (resident_id) WHERE cf.flagged_at < %(end)s "
        "AND r.admitted_at < %(end)s AND (r.discharged_at IS NULL OR r.discharged_at >= %(start)s)",
        p,
    )
    findings = await _rows(
        conn,
        "SELECT site_id, count(*) FILTER (WHERE opened_at >= %(start)s) AS opened, "
        "count(*) FILTER (WHERE closed_at >= %(start)s AND closed_at < %(end)s) AS closed, "
        "count(*) FILTER (WHERE closed_at IS NULL OR closed_at >= %(end)s) AS open_at_end "
        "FROM safety_findings WHERE opened_at < %(end)s GROUP BY site_id",
        p,
    )
    # a device is up on a day it sent anything (a reading or an event); counted over the days
    # of the month it was installed
    uptime = await _rows(
        conn,
        "SELECT d.site_id, sum(GREATEST(0, (least(%(end)s, coalesce(d.retired_at, %(end)s))::date "
        "- greatest(%(start)s, d.registered_at)::date))) AS days, "
        "(SELECT count(*) FROM (SELECT DISTINCT device_key, time_bucket('1 day', time) "
        "FROM (SELECT device_key, time FROM telemetry WHERE time >= %(start)s AND time < %(end)s "
        "UNION ALL SELECT device_key, time FROM events WHERE time >= %(start)s "
        "AND time < %(end)s) x JOIN devices dd USING (device_key) "
        "WHERE dd.site_id = d.site_id) y) AS up FROM devices d "
        "WHERE d.registered_at < %(end)s GROUP BY d.site_id",
        p,
    )
    label = month.strftime("%Y-%m")
    out = []
    for scope in scopes(sites):
        last = (end - timedelta(days=1)).date()
        f = ScopeFigures(scope, label, f"{month.isoformat()} to {last.isoformat()} {PLAN_TZ}")
        inside = scope.sites.__contains__
        for r in residents:
            if inside(str(r["site_id"])):
                f.residents_by_site_kind[str(site_of[str(r["site_id"])]["kind"])] += int(r["n"])
        for r in alerts:
            if inside(str(r["site_id"])):
                f.alerts_by_colour_kind[(str(r["colour"]), str(r["kind"]))] += int(r["n"])
        mine: list[OrderTimes] = [o for o in orders if inside(o.site_id)]
        f.orders = summarise_group(scope.name, mine, top=5)
        f.top_requests = {c.group: c.top_cases for c in _by_community(mine)}
        f.providers = summarise(mine, by=GroupBy.PROVIDER)
        for r in visits:
            if inside(str(r["site_id"])):
                f.visits_due += 1
                f.visits_done += int(int(r["made"]) >= int(r["need"]))
        for r in findings:
            if inside(str(r["site_id"])):
                f.findings_opened += int(r["opened"])
                f.findings_closed += int(r["closed"])
                f.findings_open_at_end += int(r["open_at_end"])
        for r in uptime:
            if inside(str(r["site_id"])):
                f.device_days += int(r["days"] or 0)
                f.device_days_reporting += min(int(r["up"] or 0), int(r["days"] or 0))
        out.append(f)
    return out


def _by_community(orders: list[OrderTimes]) -> list[Figures]:
    return summarise(orders, by=GroupBy.COMMUNITY)
