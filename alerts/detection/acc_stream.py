"""Live wiring of the accelerometer detectors: for every new acc window claimed from the
outbox, load that device's last few seconds of ``acc_windows`` (one query for the whole batch),
put them on a uniform grid (``fall.assembly``, pure) and run the window detectors."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from alerts.detection.detectors.base import StreamEvent, Verdict
from alerts.detection.fall.assembly import HISTORY_S, WindowDetector, assemble
from devices.registry import Conn

LOAD_SQL = """
SELECT u.ord, extract(epoch FROM w.time)::float8 AS t0, w.t_offset, w.acc_x, w.acc_y, w.acc_z
FROM unnest(%s::int[], %s::timestamptz[]) WITH ORDINALITY AS u(k, t, ord)
JOIN acc_windows w ON w.device_key = u.k
     AND w.time > u.t - make_interval(secs => %s) AND w.time <= u.t
ORDER BY u.ord, w.time
"""


async def acc_verdicts(
    conn: Conn,
    events: Sequence[StreamEvent],
    detectors: Sequence[WindowDetector],
    now: datetime,
) -> list[Verdict]:
    if not events or not detectors:
        return []
    cur = await conn.execute(
        LOAD_SQL, ([e.device_key for e in events], [e.time for e in events], HISTORY_S)
    )
    packs: dict[int, list[dict[str, object]]] = {}
    for row in await cur.fetchall():
        packs.setdefault(int(row["ord"]), []).append(row)
    verdicts: list[Verdict] = []
    for ord_, event in enumerate(events, start=1):
        window = assemble(event, packs.get(ord_, []))
        if window is None:
            continue
        for detector in detectors:
            verdict = detector.evaluate(window, now=now)
            if verdict is not None:
                verdicts.append(verdict)
    return verdicts
