"""The daily wellbeing summary: time in bed (bed-mat presence), activity (motion triggers vs
the resident's own last two weeks) and the day's alerts. Pure computation plus one reader."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from alerts.notify.messages import Message, locale_for, what
from devices.i18n import Locale, t
from devices.registry import Conn

BASELINE_DAYS = 14
MIN_BASELINE_DAYS = 3


@dataclass(frozen=True, slots=True)
class DayAlert:
    kind: str
    colour: str
    at: datetime
    state: str | None
    outcome: str | None


@dataclass(frozen=True, slots=True)
class DayFacts:
    in_bed_at_start: bool | None  # None: no bed mat reading before the day
    presence: Sequence[tuple[datetime, bool]]  # bed-mat changes within the day, in order
    motion_today: int
    motion_baseline: Sequence[int]  # per earlier day that had any motion
    alerts: Sequence[DayAlert]


def summary_window(local_day: date, *, hour: int, tz: str) -> tuple[datetime, datetime]:
    """The 24 hours ending at the summary hour of ``local_day``."""
    end = datetime.combine(local_day, time(hour), tzinfo=ZoneInfo(tz))
    return end - timedelta(days=1), end


def due_day(now: datetime, *, hour: int, tz: str) -> date | None:
    """The local day whose summary is due at ``now`` (None before today's summary hour)."""
    local = now.astimezone(ZoneInfo(tz))
    return local.date() if local.hour >= hour else None


def time_in_bed(
    start: datetime, end: datetime, *, initial: bool, changes: Sequence[tuple[datetime, bool]]
) -> timedelta:
    total, since = timedelta(), start if initial else None
    for at, present in changes:
        at = min(max(at, start), end)
        if present and since is None:
            since = at
        elif not present and since is not None:
            total += at - since
            since = None
    if since is not None:
        total += end - since
    return total


def activity(today: int, baseline: Sequence[int], locale: Locale) -> str:
    """How active compared with their own usual."""
    if len(baseline) < MIN_BASELINE_DAYS:
        return t("summary.movements", locale, n=today)
    usual = sum(baseline) / len(baseline)
    ratio = today / usual if usual else 1.0
    if ratio < 0.5:
        return t("summary.much_less", locale)
    if ratio < 0.8:
        return t("summary.less", locale)
    if ratio > 1.5:
        return t("summary.more", locale)
    return t("summary.usual", locale)


def render_summary(
    facts: DayFacts, *, resident: str, day: date, start: datetime, end: datetime, lang: str
) -> Message:
    loc = locale_for(lang)
    if facts.in_bed_at_start is None and not facts.presence:
        bed = t("summary.no_bed", loc)
    else:
        spent = time_in_bed(start, end, initial=bool(facts.in_bed_at_start), changes=facts.presence)
        bed = t("summary.in_bed", loc, hours=f"{spent.total_seconds() / 3600:.1f}")
    if not facts.alerts:
        alerts = t("summary.no_alerts", loc)
    else:
        red = sum(1 for a in facts.alerts if a.colour == "red")
        kinds = t("summary.list_sep", loc).join(sorted({what(a.kind, loc) for a in facts.alerts}))
        open_ = sum(1 for a in facts.alerts if a.state not in ("resolved", "cancelled"))
        alerts = t("summary.alerts", loc, n=len(facts.alerts), red=red, kinds=kinds) + (
            t("summary.still_open", loc, n=open_) if open_ else t("summary.all_handled", loc)
        )
    month = t(f"month.{day.month}", loc)
    date_text = t("fmt.date", loc, day=day.day, month=day.month, mon=month)
    return Message(
        t("summary.subject", loc, resident=resident, date=date_text),
        t(
            "summary.text",
            loc,
            resident=resident,
            bed=bed,
            activity=activity(facts.motion_today, facts.motion_baseline, loc),
            alerts=alerts,
        ),
    )


DEVICES_SQL = """
SELECT device_key FROM device_assignments
WHERE resident_id = %(r)s AND during && tstzrange(%(from)s, %(end)s)
UNION
SELECT d.device_key FROM devices d JOIN residents me ON me.room_id = d.room_id
WHERE me.resident_id = %(r)s AND d.kind = 'pir' AND (
    SELECT count(*) FROM residents x WHERE x.room_id = me.room_id AND x.discharged_at IS NULL) = 1
"""


async def gather(conn: Conn, *, resident_id: int, start: datetime, end: datetime) -> DayFacts:
    """Read one resident's day: their own devices, and the PIR of a room they live in alone."""
    since = start - timedelta(days=BASELINE_DAYS)
    p = {"r": resident_id, "from": since, "start": start, "end": end}
    cur = await conn.execute(DEVICES_SQL, p)
    p["keys"] = [int(r["device_key"]) for r in await cur.fetchall()]
    cur = await conn.execute(
        "SELECT value_bool FROM events WHERE device_key = ANY(%(keys)s) AND name = 'presence' "
        "AND time < %(start)s AND time > %(start)s - interval '2 days' "
        "ORDER BY time DESC LIMIT 1",
        p,
    )
    row = await cur.fetchone()
    initial = None if row is None else bool(row["value_bool"])
    cur = await conn.execute(
        "SELECT time, value_bool FROM events WHERE device_key = ANY(%(keys)s) "
        "AND name = 'presence' AND time >= %(start)s AND time < %(end)s ORDER BY time",
        p,
    )
    presence = [(r["time"], bool(r["value_bool"])) for r in await cur.fetchall()]
    cur = await conn.execute(
        "SELECT floor(extract(epoch FROM (%(end)s - time)) / 86400)::int AS days_ago, "
        "count(*) AS n FROM events WHERE device_key = ANY(%(keys)s) AND name = 'motion' "
        "AND value_bool AND time >= %(from)s AND time < %(end)s GROUP BY 1",
        p,
    )
    per_day = {int(r["days_ago"]): int(r["n"]) for r in await cur.fetchall()}
    cur = await conn.execute(
        "SELECT a.kind, a.colour, a.occurred_at, o.state, o.outcome FROM alerts a "
        "LEFT JOIN dispatch_orders o USING (alert_id) WHERE a.resident_id = %(r)s "
        "AND a.occurred_at >= %(start)s AND a.occurred_at < %(end)s ORDER BY a.occurred_at",
        p,
    )
    alerts = [
        DayAlert(r["kind"], r["colour"], r["occurred_at"], r["state"], r["outcome"])
        for r in await cur.fetchall()
    ]
    return DayFacts(
        in_bed_at_start=initial,
        presence=presence,
        motion_today=per_day.pop(0, 0),
        motion_baseline=[n for n in per_day.values() if n > 0],
        alerts=alerts,
    )
