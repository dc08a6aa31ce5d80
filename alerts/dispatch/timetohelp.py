"""Time-to-help figures: how long each stage of an order took, summarised per site, per
provider (who accepted) or per community.

Stages of one order (seconds): ``detect`` sensor event -> alert raised; ``offer`` order
opened -> first offered; ``accept`` sensor event (or, for a service order, the order
opening) -> accepted; ``arrive`` accepted -> on site; ``resolve`` on site -> resolved; and
``total`` start -> on site.

Definitions (docs/dispatch.md):

* percentiles are nearest-rank (the smallest value with at least q% of values at or
  below it), so every figure is a time that really happened;
* ``accepted_within_60s`` / ``_300s``: among orders that needed a responder (all except
  those cancelled before anyone accepted), the share accepted within 60 s / 300 s of the
  start -- an order still waiting, or never accepted, counts as not within;
* ``false_alarm_rate``: resolved with outcome ``false_alarm`` / all resolved;
* ``top_cases``: the most frequent categories, most frequent first (ties by name);
* ``score`` (0-100, the provider score): 100 x (0.5 x accepted_within_60s + 0.3 x
  accepted_within_300s + 0.2 x resolved / accepted). Speed to accept dominates, as in the
  hotline's five-minute rule; finishing what one accepted counts for the rest.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from psycopg import sql

from devices.registry import Conn

STAGES = ("detect", "offer", "accept", "arrive", "resolve", "total")
QUANTILES = (50, 90, 99)


class GroupBy(StrEnum):
    SITE = "site"
    PROVIDER = "provider"
    COMMUNITY = "community"


@dataclass(frozen=True, slots=True)
class OrderTimes:
    order_id: int
    site_id: str
    community: str
    provider: str | None
    category: str
    outcome: str | None
    event_at: datetime | None
    raised_at: datetime | None
    opened_at: datetime
    offered_at: datetime | None = None
    accepted_at: datetime | None = None
    on_site_at: datetime | None = None
    resolved_at: datetime | None = None
    cancelled_at: datetime | None = None

    @property
    def start(self) -> datetime:
        return self.event_at or self.opened_at

    def stages(self) -> dict[str, float | None]:
        def span(a: datetime | None, b: datetime | None) -> float | None:
            return (b - a).total_seconds() if a is not None and b is not None else None

        return {
            "detect": span(self.event_at, self.raised_at),
            "offer": span(self.opened_at, self.offered_at),
            "accept": span(self.start, self.accepted_at),
            "arrive": span(self.accepted_at, self.on_site_at),
            "resolve": span(self.on_site_at, self.resolved_at),
            "total": span(self.start, self.on_site_at),
        }


@dataclass(frozen=True, slots=True)
class Figures:
    group: str
    orders: int
    accepted: int
    resolved: int
    percentiles: dict[str, dict[str, float | None]]
    accepted_within_60s: float | None
    accepted_within_300s: float | None
    false_alarm_rate: float | None
    top_cases: list[tuple[str, int]] = field(default_factory=list)
    score: float | None = None


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(math.ceil(q / 100 * len(ordered)), 1)
    return ordered[rank - 1]


def _share(hits: int, of: int) -> float | None:
    return hits / of if of else None


def summarise_group(group: str, orders: Sequence[OrderTimes], *, top: int = 3) -> Figures:
    stages = [o.stages() for o in orders]
    pct = {
        stage: {
            f"p{q}": percentile([v for s in stages if (v := s[stage]) is not None], q)
            for q in QUANTILES
        }
        for stage in STAGES
    }
    # orders that needed a responder: all but those cancelled before anyone accepted
    accept_s = [
        s["accept"]
        for o, s in zip(orders, stages, strict=True)
        if not (o.cancelled_at is not None and o.accepted_at is None)
    ]
    within_60 = _share(sum(1 for v in accept_s if v is not None and v <= 60), len(accept_s))
    within_300 = _share(sum(1 for v in accept_s if v is not None and v <= 300), len(accept_s))
    accepted = sum(1 for o in orders if o.accepted_at is not None)
    resolved = [o for o in orders if o.resolved_at is not None]
    false_alarms = _share(sum(1 for o in resolved if o.outcome == "false_alarm"), len(resolved))
    cases = sorted(Counter(o.category for o in orders).items(), key=lambda kv: (-kv[1], kv[0]))
    score = None
    if within_60 is not None and within_300 is not None:
        done = _share(len(resolved), accepted) or 0.0
        score = round(100 * (0.5 * within_60 + 0.3 * within_300 + 0.2 * done), 1)
    return Figures(
        group=group,
        orders=len(orders),
        accepted=accepted,
        resolved=len(resolved),
        percentiles=pct,
        accepted_within_60s=within_60,
        accepted_within_300s=within_300,
        false_alarm_rate=false_alarms,
        top_cases=cases[:top],
        score=score,
    )


KEYS: dict[GroupBy, Callable[[OrderTimes], str | None]] = {
    GroupBy.SITE: lambda o: o.site_id,
    GroupBy.PROVIDER: lambda o: o.provider,
    GroupBy.COMMUNITY: lambda o: o.community,
}


def summarise(orders: Iterable[OrderTimes], *, by: GroupBy) -> list[Figures]:
    """One :class:`Figures` per group (orders without a provider are left out of the
    per-provider figures), sorted by group name."""
    groups: dict[str, list[OrderTimes]] = {}
    for o in orders:
        key = KEYS[by](o)
        if key is not None:
            groups.setdefault(key, []).append(o)
    return [summarise_group(k, v) for k, v in sorted(groups.items())]


ORDER_TIMES_SQL = sql.SQL(
    "SELECT o.order_id, o.site_id, s.community, coalesce(r.name, u.username) AS provider, "
    "o.category, o.outcome, o.event_at, a.raised_at, o.opened_at, o.offered_at, "
    "o.accepted_at, o.on_site_at, o.resolved_at, o.cancelled_at "
    "FROM dispatch_orders o JOIN sites s ON s.site_id = o.site_id "
    "LEFT JOIN alerts a ON a.alert_id = o.alert_id "
    "LEFT JOIN users u ON u.user_id = o.accepted_by "
    "LEFT JOIN responders r ON r.user_id = o.accepted_by "
    "WHERE {} AND o.opened_at >= %(since)s AND o.opened_at < %(until)s "
    "AND (%(site)s::text IS NULL OR o.site_id = %(site)s) ORDER BY o.order_id"
)


async def order_times(
    conn: Conn,
    *,
    where: sql.Composable,
    params: dict[str, Any],
    since: datetime,
    until: datetime,
    site_id: str | None = None,
) -> list[OrderTimes]:
    cur = await conn.execute(
        ORDER_TIMES_SQL.format(where),
        {**params, "since": since, "until": until, "site": site_id},
    )
    return [OrderTimes(**r) for r in await cur.fetchall()]
