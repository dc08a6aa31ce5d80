"""One device's accelerometer packs as one uniform window, and what a window detector is.
Pure: the packs come from ``alerts.detection.acc_stream`` (live) or a recording (evaluation)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

import numpy as np

from alerts.detection.detectors.base import StreamEvent, Verdict
from alerts.detection.fall import features as F
from alerts.detection.fall.check import window_s
from alerts.detection.fall.detector import AccWindow

HISTORY_S = F.WINDOW_S + 0.5  # packs starting this long before the new one (plus the new one)


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
