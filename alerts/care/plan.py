"""Pure visit-plan logic: when a priority resident's next visit is due, how urgent their
visit is from what the sensors know, and the monthly visit rate. ``now`` always comes in.

Due rule: a resident with ``n`` visits a month is due ``30 / n`` days after their last visit
(or after they were flagged, if never visited), and never later than the end of the month
while the month's ``n`` visits are not done: the monthly visit rate (Ningbo: 100 % of the
priority group) is counted per calendar month.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

MONTH_DAYS = 30
REMIND_BEFORE = timedelta(days=3)


class Flag(StrEnum):
    LIVING_ALONE = "living_alone"  # 独居
    EMPTY_NEST = "empty_nest"  # 空巢
    DISABLED = "disabled"  # 失能 / 残疾
    OTHER_PRIORITY = "other_priority"  # 其他重点对象


def month_bounds(month: date, tz: str) -> tuple[datetime, datetime]:
    """[start, end) of a calendar month in the site's time zone."""
    start = datetime(month.year, month.month, 1, tzinfo=ZoneInfo(tz))
    nxt = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return start, datetime(nxt.year, nxt.month, 1, tzinfo=ZoneInfo(tz))


def parse_month(text: str) -> date:
    """``2026-11`` -> 2026-11-01; ValueError otherwise."""
    year, _, mon = text.partition("-")
    if len(year) != 4 or len(mon) != 2:
        raise ValueError(f"month must look like 2026-11, not {text!r}")
    return date(int(year), int(mon), 1)


def next_due(
    *,
    visits_per_month: int,
    last_visit: datetime | None,
    flagged_at: datetime,
    visits_this_month: int,
    month_end: datetime,
) -> datetime:
    due = (last_visit or flagged_at) + timedelta(days=MONTH_DAYS / visits_per_month)
    if visits_this_month < visits_per_month:
        due = min(due, month_end)
    return due


class DueState(StrEnum):
    OK = "ok"
    DUE_SOON = "due_soon"  # within REMIND_BEFORE: the visitor is reminded
    OVERDUE = "overdue"


def due_state(
    due: datetime, *, now: datetime, remind_before: timedelta = REMIND_BEFORE
) -> DueState:
    if now > due:
        return DueState.OVERDUE
    if now >= due - remind_before:
        return DueState.DUE_SOON
    return DueState.OK


@dataclass(frozen=True, slots=True)
class SensorFacts:
    """What the sensors know about one resident, read at ``now``."""

    red_alerts: int = 0  # last 14 days
    yellow_alerts: int = 0
    green_alerts: int = 0
    activity_week: int = 0  # events from their devices and room in the last 7 days
    activity_baseline: float | None = None  # weekly average over the 3 weeks before
    last_activity: datetime | None = None
    failing_devices: int = 0  # offline, low battery or silent


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a resident rose up the plan: catalogue message ``visits.reason.<key>`` with its
    parameters (counts, hours, days), rendered in the reader's language where it is shown."""

    key: str
    params: tuple[tuple[str, int], ...] = ()

    def as_json(self) -> dict[str, object]:
        return {"key": self.key, "params": dict(self.params)}


@dataclass(frozen=True, slots=True)
class Priority:
    score: float
    reasons: tuple[Reason, ...] = field(default_factory=tuple)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(r.key for r in self.reasons)


def priority(facts: SensorFacts, *, due: datetime, now: datetime) -> Priority:
    """Who should be visited first: recent alerts, falling activity, long silences, failing
    devices and lateness add up (0 = nothing to worry about)."""
    score, why = 0.0, list[Reason]()
    alerts = 10 * min(facts.red_alerts, 3) + 5 * min(facts.yellow_alerts, 3)
    alerts += 2 * min(facts.green_alerts, 3)
    if alerts:
        score += alerts
        counts = (facts.red_alerts, facts.yellow_alerts, facts.green_alerts)
        why.append(
            Reason("recent_alerts", tuple(zip(("red", "yellow", "green"), counts, strict=True)))
        )
    base = facts.activity_baseline
    if base is not None and base >= 10 and facts.activity_week < 0.7 * base:
        score += round(30 * (1 - facts.activity_week / base), 1)
        why.append(
            Reason("falling_activity", (("percent", round(100 * facts.activity_week / base)),))
        )
    if facts.last_activity is not None:
        silent_h = (now - facts.last_activity).total_seconds() / 3600
        if silent_h >= 12:
            score += 25 if silent_h >= 24 else 15
            why.append(Reason("long_silence", (("hours", int(silent_h)),)))
    if facts.failing_devices:
        score += 8 * min(facts.failing_devices, 3)
        why.append(Reason("failing_devices", (("n", facts.failing_devices),)))
    late_days = (now - due).total_seconds() / 86400
    if late_days > 0:
        score += min(2 * late_days, 20)
        why.append(Reason("overdue", (("days", math.ceil(late_days)),)))
    elif late_days > -REMIND_BEFORE.days:
        score += 5
        why.append(Reason("due_soon", (("days", math.ceil(-late_days)),)))
    return Priority(round(score, 1), tuple(why))


@dataclass(frozen=True, slots=True)
class Rate:
    community: str
    month: str
    priority_residents: int
    visited: int  # with at least their policy's number of visits in the month
    rate: float | None  # visited / priority residents; None when there is nobody to visit
    not_visited: tuple[int, ...]  # resident ids


def visit_rate(community: str, month: str, residents: Iterable[tuple[int, int, int]]) -> Rate:
    """``residents``: (resident id, visits required in the month, visits made in the month)."""
    rows: Sequence[tuple[int, int, int]] = sorted(residents)
    done = [rid for rid, need, made in rows if made >= need]
    missing = tuple(rid for rid, need, made in rows if made < need)
    rate = len(done) / len(rows) if rows else None
    return Rate(community, month, len(rows), len(done), rate, missing)
