"""Vital signs against the resident's own ranges, sustained and with hysteresis.

The detector is fed the last readings of one vital sign of one resident and what it remembered
last time (:class:`VitalsState`), and returns the new state with at most one verdict. An alert
opens once the median reading has stayed outside the plan's range for ``vitals_sustained_s``; it
re-arms only when readings are back inside the range by the plan's margin, so a value hovering
on the limit gives one alert, not a storm.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from alerts.detection.detectors.base import Verdict
from devices.careplan import CarePlan, Range
from devices.domain import Colour

# Beyond these, whatever the plan says, it is life safety (red); zero is "no vital signs".
CRITICAL: Mapping[str, Range] = {
    "hr": Range(low=35, high=150),
    "spo2": Range(low=85, high=100),
    "rr": Range(low=5, high=35),
}
LABELS: Mapping[str, tuple[str, str]] = {
    "hr": ("heart rate", "/min"),
    "spo2": ("blood oxygen", "%"),
    "rr": ("breathing rate", "/min"),
}


@dataclass(frozen=True, slots=True)
class VitalsWindow:
    resident_id: int
    resident_name: str
    site_id: str
    metric: str  # "hr", "spo2" or "rr"
    readings: Sequence[tuple[datetime, float]]  # oldest first
    plan: CarePlan


@dataclass(frozen=True, slots=True)
class VitalsState:
    out_since: datetime | None = None  # first reading of the current excursion
    alerted: bool = False  # an alert went out for this excursion

    def to_json(self) -> dict[str, object]:
        return {
            "out_since": self.out_since.isoformat() if self.out_since else None,
            "alerted": self.alerted,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, object]) -> VitalsState:
        since = raw.get("out_since")
        return cls(
            out_since=datetime.fromisoformat(since) if isinstance(since, str) else None,
            alerted=bool(raw.get("alerted", False)),
        )


@dataclass(frozen=True, slots=True)
class VitalsDetector:
    name: str = "vitals"
    recent_s: int = 60  # the median of this last stretch of readings is judged
    debounce_s: int = 30 * 60

    def evaluate(
        self, window: VitalsWindow, state: VitalsState, *, now: datetime
    ) -> tuple[VitalsState, Verdict | None]:
        normal = window.plan.vital_range(window.metric)
        if normal is None or not window.readings:
            return state, None
        last = window.readings[-1][0]
        recent = [v for t, v in window.readings if t >= last - timedelta(seconds=self.recent_s)]
        value = statistics.median(recent)
        if normal.contains(value):
            margin = (normal.high - normal.low) * window.plan.vitals_margin
            if normal.low + margin <= value <= normal.high - margin:
                return VitalsState(), None  # clearly back to normal: re-armed
            return state, None  # near the limit: keep what we had (hysteresis)
        since = state.out_since or _excursion_start(window.readings, normal)
        state = replace(state, out_since=since)
        lasted = (now - since).total_seconds()
        if state.alerted or lasted < window.plan.vitals_sustained_s:
            return state, None
        return replace(state, alerted=True), self._verdict(window, value, normal, since, now)

    def _verdict(
        self, window: VitalsWindow, value: float, normal: Range, since: datetime, now: datetime
    ) -> Verdict:
        label, unit = LABELS[window.metric]
        critical = value <= 0 or not CRITICAL[window.metric].contains(value)
        minutes = max(1, int((now - since).total_seconds() // 60))
        what = "no vital signs" if value <= 0 else f"{label} {value:.0f}{unit}"
        return Verdict(
            detector=self.name,
            kind="no_vital_signs" if value <= 0 else f"vitals_{window.metric}",
            colour=Colour.RED if critical else Colour.YELLOW,
            occurred_at=since,
            site_id=window.site_id,
            resident_id=window.resident_id,
            idem_key=f"vitals:{window.resident_id}:{window.metric}:{since.timestamp()}",
            fold_key=f"vitals:{window.resident_id}:{window.metric}",
            fold_s=self.debounce_s,
            explanation=f"{window.resident_name}: {what} for {minutes} min; usual range "
            f"{normal.low:.0f}-{normal.high:.0f}{unit}",
            details={
                "metric": window.metric,
                "value": value,
                "range": [normal.low, normal.high],
                "lasted_s": int((now - since).total_seconds()),
            },
        )


def _excursion_start(readings: Sequence[tuple[datetime, float]], normal: Range) -> datetime:
    """The first reading of the trailing run of readings outside the range."""
    start = readings[-1][0]
    for t, v in reversed(readings):
        if normal.contains(v):
            break
        start = t
    return start
