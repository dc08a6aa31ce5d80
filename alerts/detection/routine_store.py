"""Learn each resident's routine from TimescaleDB and cache it in ``resident_routines``.

History = activity events of the devices serving the resident (assigned to them, or in their
room and not assigned to someone else) and their wristbands' per-minute movement readings
(``activity`` / ``steps`` above 0), over the last ``history_days``, thinned in SQL to
one row per device and minute (a PIR firing every few seconds adds nothing to quiet-spell
lengths). Data outages (no event at all for ``outage_s``) split the history into segments so
a dead gateway is not learned as a normal quiet spell.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from psycopg.types.json import Jsonb

from alerts.detection.routine import (
    MOVEMENT,
    Activity,
    Routine,
    SiteDefaults,
    fit_routine,
    segments,
)
from alerts.detection.snapshots import ACTIVITY_NAMES, EXIT_ROOM_KINDS, SERVING_CTE, activity_of
from devices.db import AsyncPool
from devices.registry import Conn

log = logging.getLogger(__name__)

DUE_SQL = """
SELECT r.resident_id, s.timezone
FROM residents r JOIN sites s ON s.site_id = r.site_id
LEFT JOIN resident_routines rr ON rr.resident_id = r.resident_id
WHERE r.discharged_at IS NULL AND (rr.fitted_at IS NULL OR rr.fitted_at < %(stale)s)
ORDER BY rr.fitted_at NULLS FIRST, r.resident_id
LIMIT %(limit)s
"""

# The serving devices come from the snapshot query's CTEs (one definition of "serving").
# Besides the events, a wristband's per-minute movement (``activity`` / ``steps`` above 0 in
# ``telemetry``), which the live snapshot reads as a sign of life: the routine is learnt from
# the same signs the detector judges by (before session 13 it was learnt from events alone,
# so a resident whose wristband was their main sign of life had spells learnt too long).
HISTORY_SQL = (
    SERVING_CTE
    + """
SELECT s.resident_id, s.kind, s.room_kind, s.exit, e.name,
       min(e.time) AS time, (array_agg(e.value_bool ORDER BY e.time DESC))[1] AS value_bool,
       NULL::float8 AS value_num
FROM serving s
JOIN events e ON e.device_key = s.device_key AND e.name = ANY(%(names)s)
    AND e.time > %(since)s AND e.time <= %(now)s
WHERE s.resident_id = ANY(%(residents)s)
GROUP BY s.resident_id, s.device_key, s.kind, s.room_kind, s.exit, e.name,
         time_bucket('1 minute', e.time)
UNION ALL
SELECT s.resident_id, s.kind, s.room_kind, s.exit, t.metric,
       min(t.time), NULL::boolean, max(t.value)
FROM serving s
JOIN telemetry t ON t.device_key = s.device_key AND t.metric = ANY(%(movement)s)
    AND t.value > 0 AND t.time > %(since)s AND t.time <= %(now)s
WHERE s.kind = 'wristband' AND s.resident_id = ANY(%(residents)s)
GROUP BY s.resident_id, s.device_key, s.kind, s.room_kind, s.exit, t.metric,
         time_bucket('1 minute', t.time)
ORDER BY resident_id, time
"""
)


async def fit_residents(
    conn: Conn,
    *,
    residents: Sequence[tuple[int, str]],
    now: datetime,
    defaults: SiteDefaults,
    history_days: int,
    outage_s: float = 16 * 3600,
) -> dict[int, Routine]:
    """Fit and store the routines of ``residents`` ((id, timezone) pairs)."""
    since = now - timedelta(days=history_days)
    cur = await conn.execute(
        HISTORY_SQL,
        {
            "now": now,
            "since": since,
            "names": ACTIVITY_NAMES,
            "movement": list(MOVEMENT),
            "exit_kinds": list(EXIT_ROOM_KINDS),
            "residents": [rid for rid, _ in residents],
        },
    )
    history: dict[int, list[Activity]] = {}
    for row in await cur.fetchall():
        history.setdefault(int(row["resident_id"]), []).append(activity_of(row))
    fitted: dict[int, Routine] = {}
    for rid, tz in residents:
        events = history.get(rid, [])
        routine = await asyncio.to_thread(
            fit_routine, segments(events, outage_s), tz=ZoneInfo(tz), defaults=defaults
        )
        fitted[rid] = routine
        await conn.execute(
            "INSERT INTO resident_routines (resident_id, fitted_at, history_from, history_to, "
            "events, learned, routine) VALUES (%s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (resident_id) DO UPDATE SET fitted_at = EXCLUDED.fitted_at, "
            "history_from = EXCLUDED.history_from, history_to = EXCLUDED.history_to, "
            "events = EXCLUDED.events, learned = EXCLUDED.learned, routine = EXCLUDED.routine",
            (rid, now, since, now, len(events), routine.learned, Jsonb(routine.to_json())),
        )
    return fitted


async def refresh_routines(
    pool: AsyncPool,
    *,
    now: datetime,
    defaults: SiteDefaults,
    max_age_s: float,
    history_days: int,
    batch: int = 20,
) -> int:
    """Refit up to ``batch`` residents whose routine is missing or older than ``max_age_s``."""
    async with pool.connection() as conn, conn.transaction():
        cur = await conn.execute(
            DUE_SQL, {"stale": now - timedelta(seconds=max_age_s), "limit": batch}
        )
        due = [(int(r["resident_id"]), str(r["timezone"])) for r in await cur.fetchall()]
        if due:
            await fit_residents(
                conn, residents=due, now=now, defaults=defaults, history_days=history_days
            )
            log.info("refitted %d routine(s)", len(due))
    return len(due)
