"""The "did you fall?" check a likely (not certain) fall puts to the wearer: its rules.

Pure: no I/O, no clock. The acc fall detector scores each impact; at or above the placement's
``CERTAIN`` confidence it pages at once, between the model's threshold and ``CERTAIN`` the
backend first asks the wearer (a ``fall_check`` command; the wristband vibrates and offers
"I'm OK"). The wearer's window comes from the care plan (``fall_check_s``; 0, the dementia
default, skips the check and pages at once). :func:`judge` decides a pending check: cancelled
by the wearer, or raised at once on an SOS, on lying still, or when the window ran out.

Bands chosen with ``python -m alerts.evaluate.falls bands`` (docs/detection-falls.md) on the
subject-wise and leave-one-data-set-out replays: per placement, the highest band of the sweep
at which at least 90% of the caught falls still page at once (the rest page when the window
runs out, 33 s after the impact) in every scheme of that placement. Sensitivity does not
depend on it (an unanswered check pages); false pages on activities fall as it rises.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt

from alerts.detection.detectors.base import CheckContext, Dismissed, Verdict
from alerts.detection.fall import features as F
from devices.careplan import DEFAULT_FALL_CHECK_S, CarePlan
from devices.wire import FALL_CHECK_ANSWER

F64 = npt.NDArray[np.float64]

# At or above this confidence a fall pages at once, per placement of the model that judged it;
# below, down to the model's threshold, the wearer is asked first. 1.0 would ask for every
# fall, the model's threshold for none.
CERTAIN: dict[str, float] = {"wrist": 0.99, "waist": 0.98, "chest": 0.999}
DETECT_LAG_S = 3  # an impact is judged 2-3 s after it (features.POST_S plus a pack)
SETTLE_S = 2.0  # movement this soon after the impact is the fall itself
STILL_S = 10.0  # no movement at all for this long after it: lying still, page at once
STILL_RANGE_G = 0.05  # "no movement": every axis (0.5-s mean) within this range
ANSWER = FALL_CHECK_ANSWER  # the event name of "I'm OK" (vs = the check id)


def certain_for(model_placement: str, threshold: float) -> float:
    """The confidence from which a fall pages at once (never below the model's threshold)."""
    return max(threshold, CERTAIN.get(model_placement, 1.0))


def window_s(plans: Sequence[CarePlan]) -> int:
    """The wearer's window: the shortest of the care plans of everyone the device may concern
    (0 if any of them skips the check); the default without a plan."""
    if not plans:
        return DEFAULT_FALL_CHECK_S
    return min(p.fall_check_s for p in plans)


def due_at(impact: datetime, window: int) -> datetime:
    """When an unanswered check pages: the window counted from when the band vibrates."""
    return impact + timedelta(seconds=DETECT_LAG_S + window)


def still_since(t: F64, samples: F64, *, impact: float) -> float | None:
    """The time (same clock as ``t``) at which the wearer had lain still for ``STILL_S``
    seconds, starting ``SETTLE_S`` after the impact; None if they moved or the data ends
    first. ``samples`` in m/s2, any rate (put on the 50 Hz grid first)."""
    t = np.asarray(t, dtype=np.float64)
    x = np.asarray(samples, dtype=np.float64).reshape(-1, 3)
    keep = t >= impact + SETTLE_S
    t, x = t[keep], x[keep]
    if len(t) < 2 or t[-1] - t[0] < STILL_S:
        return None
    try:
        rate, grid = F.to_uniform(t, x)
    except ValueError:
        return None
    x50 = F.resample(grid, rate)
    k = max(1, int(0.5 * F.RATE_HZ))
    kernel = np.ones(k) / k
    smooth = np.column_stack([np.convolve(x50[:, i], kernel, mode="valid") for i in range(3)])
    n = int(STILL_S * F.RATE_HZ) - k + 1
    if len(smooth) < n:
        return None
    first = smooth[:n]  # the first STILL_S seconds after settling
    span = float((first.max(axis=0) - first.min(axis=0)).max()) / F.GRAVITY
    if span >= STILL_RANGE_G:
        return None  # moved after the fall: not lying still
    return float(t[0] + STILL_S)


@dataclass(frozen=True, slots=True)
class PendingCheck:
    """A check in the database: the fall that is raised unless the wearer cancels it."""

    check_id: int
    verdict: Verdict  # what is raised if the wearer does not cancel
    device_key: int
    due_at: datetime
    window_s: int


def judge(
    check: PendingCheck, context: CheckContext, *, still_at: datetime | None, now: datetime
) -> Verdict | Dismissed | None:
    """A pending check at ``now``: the alert to raise, the cancel, or None (keep waiting).

    An SOS after the impact (any of the resident's devices), lying still, or the window run
    out raise the fall at once; an "I'm OK" from the checked device carrying this check's id
    within the window cancels it. An SOS outweighs a cancel."""
    v = check.verdict
    impact = v.occurred_at
    sos = next(
        (
            e
            for e in context.events
            if e.name == "sos" and e.value_bool and e.time >= impact - timedelta(seconds=5)
        ),
        None,
    )
    if sos is not None:
        # one situation, one order: the fall joins the SOS press's alert (SosDetector's key)
        raised = _raise(check, f"SOS pressed at {sos.time:%H:%M:%S} during the check", "sos")
        if v.resident_id is not None:
            raised = replace(raised, fold_key=f"sos:{v.resident_id}")
        return raised
    if still_at is not None:
        return _raise(check, f"lying still since the impact ({STILL_S:.0f} s)", "lying_still")
    ok = next(
        (
            e
            for e in context.events
            if e.name == ANSWER
            and e.device_key == check.device_key
            and e.value_text == str(check.check_id)
            and impact <= e.time <= check.due_at
        ),
        None,
    )
    if ok is not None:
        return Dismissed(
            f"cancelled on the wearable at {ok.time:%H:%M:%S} "
            f"({(ok.time - impact).total_seconds():.0f} s after the impact): the wearer is OK"
        )
    if now >= check.due_at:
        return _raise(check, f"no answer within {check.window_s} s", "no_answer")
    return None


def _raise(check: PendingCheck, why: str, reason: str) -> Verdict:
    v = check.verdict
    return replace(
        v,
        explanation=f'{v.explanation}; asked "did you fall?" on the wearable: {why}',
        details={**v.details, "check_outcome": reason, "check_id": check.check_id},
    )
