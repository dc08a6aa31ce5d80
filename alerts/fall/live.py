"""A recording through the same live path the worker runs: cut into the 1-s packs a device
sends (each stored as one ``acc_windows`` row: the first sample's time, offsets from it),
for every pack the packs the worker would load (``acc_stream.LOAD_SQL``: starting within
``HISTORY_S`` before it), assembled by ``acc_stream.assemble`` and judged by the detector.

Used by the evaluation and by the ``external`` command, so a figure printed there is the
figure of the worker, not of an offline feature pipeline.

A device streams all day, so the worker always has the seconds before an impact; a recorded
trace often starts just before the fall (UMAFall's falls come 2-3 s in). ``lead_in_s``
puts that many seconds of the wearer at rest before the trace (each axis at its mean over
the trace's first half second), so an early impact has the history the detector needs
(6 s windows, the impact at least 2 s in); the trace itself is judged as recorded, and all
times returned are from the trace's own start.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from alerts.acc_stream import HISTORY_S, assemble
from alerts.detectors.base import StreamEvent, Verdict
from alerts.fall.detector import AccFallDetector

F64 = npt.NDArray[np.float64]
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
PACK_S = 1.0
LEAD_IN_S = 6.0


@dataclass(frozen=True, slots=True)
class Outcome:
    fired: bool
    first_alert_t: float | None  # seconds from the start when the worker raises the first alert
    impact_t: float | None  # seconds from the start of the first alert's impact
    max_confidence: float  # highest confidence of any window (0 if none reached the model)
    checks: int  # "did you fall?" checks the backend would have sent the wearer
    alerts: int  # alerts after folding (one situation within the detector's fold window)
    verdicts: tuple[Verdict, ...]


def packs(times: F64, samples: F64, *, start: datetime = EPOCH) -> list[dict[str, object]]:
    """The recording as 1-s packs (rows as ``LOAD_SQL`` returns them, without ``ord``)."""
    t = np.asarray(times, dtype=np.float64)
    x = np.asarray(samples, dtype=np.float64).reshape(-1, 3)
    if len(t) == 0:
        return []
    which = np.floor((t - t[0]) / PACK_S).astype(np.int64)
    cuts = np.flatnonzero(np.diff(which)) + 1
    out: list[dict[str, object]] = []
    for idx in np.split(np.arange(len(t)), cuts):
        t0 = float(t[idx[0]])
        out.append(
            {
                "t0": start.timestamp() + t0,
                "t_offset": (t[idx] - t0).tolist(),
                "acc_x": x[idx, 0].tolist(),
                "acc_y": x[idx, 1].tolist(),
                "acc_z": x[idx, 2].tolist(),
            }
        )
    return out


def with_lead_in(times: F64, samples: F64, lead_in_s: float) -> tuple[F64, F64]:
    t = np.asarray(times, dtype=np.float64)
    x = np.asarray(samples, dtype=np.float64).reshape(-1, 3)
    if lead_in_s <= 0 or len(t) < 2:
        return t, x
    dt = float(np.median(np.diff(t)))
    if not dt > 0:
        return t, x
    n = round(lead_in_s / dt)
    rest = x[t < t[0] + 0.5].mean(axis=0)
    lead_t = t[0] - dt * np.arange(n, 0, -1)
    return np.concatenate([lead_t, t]), np.concatenate([np.tile(rest, (n, 1)), x])


def event_for(
    time: datetime, *, device_kind: str = "wristband", placement: str = "unknown"
) -> StreamEvent:
    return StreamEvent(
        kind="acc",
        name="acc",
        time=time,
        device_key=1,
        device_id="eval-1",
        device_kind=device_kind,
        site_id="eval",
        placement=placement,
    )


def run(
    times: F64,
    samples: F64,
    detector: AccFallDetector,
    *,
    placement: str = "unknown",
    start: datetime = EPOCH,
    lead_in_s: float = LEAD_IN_S,
) -> Outcome:
    times, samples = with_lead_in(times, samples, lead_in_s)
    rows = packs(times, samples, start=start)
    t0s = np.array([float(p["t0"]) for p in rows])  # type: ignore[arg-type]
    verdicts: list[Verdict] = []
    best = 0.0
    checks = 0
    first: float | None = None
    last_alert: datetime | None = None
    alerts = 0
    for i, p in enumerate(rows):
        t = float(p["t0"])  # type: ignore[arg-type]
        lo = int(np.searchsorted(t0s, t - HISTORY_S, side="right"))
        event = event_for(datetime.fromtimestamp(t, UTC), placement=placement)
        window = assemble(event, rows[lo : i + 1])
        if window is None:
            continue
        pack_end = t + max(p["t_offset"])  # type: ignore[call-overload]
        now = datetime.fromtimestamp(pack_end, UTC)
        confidence, verdict = detector.assess(window, now=now)
        best = max(best, confidence)
        if verdict is None:
            continue
        if verdict.details.get("check"):
            checks += 1
        verdicts.append(verdict)
        if (
            last_alert is None
            or (verdict.occurred_at - last_alert).total_seconds() > verdict.fold_s
        ):
            alerts += 1
            last_alert = verdict.occurred_at
        if first is None:
            first = pack_end - start.timestamp()
    impact = (verdicts[0].occurred_at - start).total_seconds() if verdicts else None
    return Outcome(bool(verdicts), first, impact, best, checks, alerts, tuple(verdicts))
