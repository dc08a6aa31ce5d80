"""A recording through the same live path the worker runs: cut into the 1-s packs a device
sends (each stored as one ``acc_windows`` row: the first sample's time, offsets from it),
for every pack the packs the worker would load (``acc_stream.LOAD_SQL``: starting within
``HISTORY_S`` before it), assembled by ``assembly.assemble`` and judged by the detector.

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

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from alerts.detection.detectors.base import StreamEvent, Verdict
from alerts.detection.fall import check as C
from alerts.detection.fall.assembly import HISTORY_S, assemble
from alerts.detection.fall.detector import AccFallDetector
from devices.careplan import DEFAULT_FALL_CHECK_S

F64 = npt.NDArray[np.float64]
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
PACK_S = 1.0
LEAD_IN_S = 6.0


@dataclass(frozen=True, slots=True)
class Scored:
    """One firing window: when (seconds from the trace's start), how sure, and whether the
    wearer then lay still (``check.still_since``), for replaying the check at any band."""

    impact_t: float
    judged_t: float  # the end of the pack whose window fired
    confidence: float
    still_t: float | None
    fold_s: int


@dataclass(frozen=True, slots=True)
class Checked:
    """What the check does with a recording's firing windows."""

    checks: int  # "did you fall?" questions put to the wearer
    paged_at_once: bool  # a window in the certain band (or no check allowed)
    paged_if_answered: bool  # paged even if the wearer answers "I'm OK" (certain, or still)
    page_t: float | None  # seconds from the start when staff are paged if nobody answers


def checked(
    scored: Sequence[Scored], *, certain: float, window: int = DEFAULT_FALL_CHECK_S
) -> Checked:
    """The check's state machine (as ``alerts.detection.checks`` runs it) over a recording's firing
    windows: a certain one pages at once; a likely one opens a check unless one is open or an
    alert was paged within the fold window; a check pages when the wearer lies still or the
    window runs out (the wearer never answering: a fallen person), and is cancelled when the
    wearer answers (an activity: the person is fine), unless lying still came first."""
    checks, at_once, if_ok = 0, False, False
    page_t: float | None = None
    open_due: float | None = None
    last_page: float | None = None
    for s in scored:
        if s.confidence >= certain or window <= 0:
            at_once = if_ok = True
            last_page = s.impact_t
            page_t = s.judged_t if page_t is None else min(page_t, s.judged_t)
            continue
        if last_page is not None and s.impact_t - last_page <= s.fold_s:
            continue  # folds into the alert already raised
        if open_due is not None and s.impact_t <= open_due:
            continue  # one question at a time
        checks += 1
        open_due = s.impact_t + C.DETECT_LAG_S + window
        paged = open_due if s.still_t is None else min(open_due, s.still_t)
        page_t = paged if page_t is None else min(page_t, paged)
        if s.still_t is not None and s.still_t <= open_due:
            if_ok = True
            last_page = s.impact_t
    return Checked(checks, at_once, if_ok, page_t)


@dataclass(frozen=True, slots=True)
class Outcome:
    fired: bool  # staff would be paged if the wearer did nothing (never answered a check)
    first_alert_t: float | None  # seconds from the start when the worker raises the first alert
    impact_t: float | None  # seconds from the start of the first alert's impact
    max_confidence: float  # highest confidence of any window (0 if none reached the model)
    checks: int  # "did you fall?" checks the backend would have sent the wearer
    alerts: int  # alerts after folding (one situation within the detector's fold window)
    verdicts: tuple[Verdict, ...]
    scored: tuple[Scored, ...] = ()
    paged_at_once: bool = False
    paged_if_answered: bool = False  # the wearer answered every check "I'm OK"
    page_t: float | None = None  # when staff are paged if nobody answers


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
    check_s: int = DEFAULT_FALL_CHECK_S,
) -> Outcome:
    times, samples = with_lead_in(times, samples, lead_in_s)
    rows = packs(times, samples, start=start)
    t0s = np.array([float(p["t0"]) for p in rows])  # type: ignore[arg-type]
    verdicts: list[Verdict] = []
    scored: list[Scored] = []
    best = 0.0
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
        verdicts.append(verdict)
        impact_t = (verdict.occurred_at - start).total_seconds()
        still = C.still_since(times, samples, impact=impact_t)
        scored.append(
            Scored(impact_t, pack_end - start.timestamp(), confidence, still, verdict.fold_s)
        )
        if (
            last_alert is None
            or (verdict.occurred_at - last_alert).total_seconds() > verdict.fold_s
        ):
            alerts += 1
            last_alert = verdict.occurred_at
        if first is None:
            first = pack_end - start.timestamp()
    impact = (verdicts[0].occurred_at - start).total_seconds() if verdicts else None
    band = verdicts[0].details.get("certain", 1.0) if verdicts else 1.0
    certain = float(band) if isinstance(band, int | float) else 1.0
    c = checked(scored, certain=certain, window=check_s)
    return Outcome(
        bool(verdicts),
        first,
        impact,
        best,
        c.checks,
        alerts,
        tuple(verdicts),
        tuple(scored),
        c.paged_at_once,
        c.paged_if_answered,
        c.page_t,
    )
