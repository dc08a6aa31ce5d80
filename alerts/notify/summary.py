"""The daily wellbeing summary: time in bed (bed-mat presence), activity (motion triggers vs
the resident's own last two weeks) and the day's alerts. Pure computation plus one reader."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from alerts.notify.messages import WHAT, Message
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


def activity(today: int, baseline: Sequence[int]) -> tuple[str, str]:
    """How active compared with their own usual: (English, Chinese)."""
    if len(baseline) < MIN_BASELINE_DAYS:
        return (f"{today} movements recorded", f"记录到{today}次活动")
    usual = sum(baseline) / len(baseline)
    ratio = today / usual if usual else 1.0
    if ratio < 0.5:
        return ("much less active than usual", "活动量明显少于平时")
    if ratio < 0.8:
        return ("less active than usual", "活动量少于平时")
    if ratio > 1.5:
        return ("more active than usual", "活动量多于平时")
    return ("active as usual", "活动量与平时相当")


def render_summary(
    facts: DayFacts, *, resident: str, day: date, start: datetime, end: datetime, lang: str
) -> Message:
    zh = lang == "zh"
    if facts.in_bed_at_start is None and not facts.presence:
        bed = ("no bed-mat data", "无床垫数据")
    else:
        hours = (
            time_in_bed(
                start, end, initial=bool(facts.in_bed_at_start), changes=facts.presence
            ).total_seconds()
            / 3600
        )
        bed = (f"in bed {hours:.1f} h", f"卧床{hours:.1f}小时")
    act = activity(facts.motion_today, facts.motion_baseline)
    if not facts.alerts:
        alerts = ("no alerts", "无警报")
    else:
        red = sum(1 for a in facts.alerts if a.colour == "red")
        kinds = ", ".join(
            sorted({WHAT[a.kind][0] if a.kind in WHAT else a.kind for a in facts.alerts})
        )
        open_ = sum(1 for a in facts.alerts if a.state not in ("resolved", "cancelled"))
        alerts = (
            f"{len(facts.alerts)} alert(s) ({red} urgent: {kinds}); "
            + (f"{open_} still open" if open_ else "all handled"),
            f"{len(facts.alerts)}条警报（紧急{red}条）；"
            + (f"{open_}条仍在处理" if open_ else "均已处理"),
        )
    i = 1 if zh else 0
    if zh:
        return Message(
            f"{resident} {day:%m月%d日} 日报", f"{resident}：{bed[i]}；{act[i]}；{alerts[i]}。"
        )
    return Message(
        f"Daily summary for {resident}, {day:%d %b}",
        f"{resident}: {bed[i]}, {act[i]}, {alerts[i]}.",
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
