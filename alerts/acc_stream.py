"""Live wiring of the accelerometer detectors: for every new acc window claimed from the
outbox, load that device's last few seconds of ``acc_windows`` (one query for the whole batch),
put them on a uniform grid and run the window detectors."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

import numpy as np

from alerts.detectors.base import StreamEvent, Verdict
from alerts.fall import features as F
from alerts.fall.check import window_s
from alerts.fall.detector import AccWindow
from devices.registry import Conn

HISTORY_S = F.WINDOW_S + 0.5  # packs starting this long before the new one (plus the new one)

LOAD_SQL = """
SELECT u.ord, extract(epoch FROM w.time)::float8 AS t0, w.t_offset, w.acc_x, w.acc_y, w.acc_z
FROM unnest(%s::int[], %s::timestamptz[]) WITH ORDINALITY AS u(k, t, ord)
JOIN acc_windows w ON w.device_key = u.k
     AND w.time > u.t - make_interval(secs => %s) AND w.time <= u.t
ORDER BY u.ord, w.time
"""


class WindowDetector(Protocol):
    @property
    def name(self) -> str: ...

    def evaluate(self, window: AccWindow, *, now: datetime) -> Verdict | None: ...


def assemble(event: StreamEvent, packs: Sequence[dict[str, object]]) -> AccWindow | None:
    """The packs of one device (start time, offsets, axes) as one uniform window."""
    times: list[float] = []
    xyz: list[tuple[float, float, float]] = []
    for p in packs:
        t0 = float(p["t0"])  # type: ignore[arg-type]
        offsets, ax, ay, az = (p[k] for k in ("t_offset", "acc_x", "acc_y", "acc_z"))
        for dt, x, y, z in zip(offsets, ax, ay, az, strict=True):  # type: ignore[call-overload]
            times.append(t0 + float(dt))
            xyz.append((float(x), float(y), float(z)))
    if len(times) < 2:
        return None
    try:
        rate, grid = F.to_uniform(np.array(times), np.array(xyz))
    except ValueError:
        return None
    return AccWindow(
        device_key=event.device_key,
        device_id=event.device_id,
        site_id=event.site_id,
        start=datetime.fromtimestamp(min(times), UTC),
        rate_hz=rate,
        acc_x=grid[:, 0],
        acc_y=grid[:, 1],
        acc_z=grid[:, 2],
        resident_id=event.resident_id,
        resident_name=event.resident_name,
        room_name=event.room_name,
        device_kind=event.device_kind,
        placement=event.placement,
        check_s=window_s(event.care_plans),
    )


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
