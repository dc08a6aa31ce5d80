"""The live fall detector on raw accelerometer windows. Pure: a window and ``now`` in, a
verdict out; the worker loads the samples and stores the alert."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt

from alerts.detection.detectors.base import Verdict
from alerts.detection.fall import features as F
from alerts.detection.fall.check import certain_for
from alerts.detection.fall.model import FallModel
from devices.careplan import DEFAULT_FALL_CHECK_S
from devices.domain import Colour

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True, eq=False)
class AccWindow:
    """The last few seconds of one device's accelerometer, on a uniform grid (m/s2)."""

    device_key: int
    device_id: str
    site_id: str
    start: datetime  # time of the first sample
    rate_hz: float
    acc_x: F64
    acc_y: F64
    acc_z: F64
    resident_id: int | None = None
    resident_name: str | None = None
    room_name: str | None = None
    device_kind: str = "wristband"
    placement: str = "unknown"  # where the device sits on the body (devices.domain.Placement)
    # seconds the wearer has to answer "did you fall?" (care plan; 0: never ask, page at once)
    check_s: int = DEFAULT_FALL_CHECK_S

    def samples(self) -> F64:
        return np.column_stack([self.acc_x, self.acc_y, self.acc_z]).astype(np.float64)


# The model an unknown placement gets: the wrist's, trained on the hardest negatives (arm
# gestures, clapping, a hand hitting a table), so it cries wolf least wherever it is worn.
CONSERVATIVE = "wrist"
# A placement with no data set of its own is judged by its nearest neighbour on the body.
NEAREST = {"neck": "chest"}  # a pendant hangs at the chest


@dataclass(frozen=True, slots=True)
class AccFallDetector:
    """Fires on the impact of a fall in the window's last seconds, judged by the model trained
    for the device's placement (``models``; ``model`` when none matches and no conservative
    model exists, as with a single-model setup).

    The impact is judged once ``features.POST_S`` seconds of its aftermath are in (the first
    alert comes 2-3 s after the impact); lying still afterwards raises the model's confidence.
    A fall at or above the placement's certain band (``check.CERTAIN``) pages at once; below
    it the verdict says ``check`` (ask the wearer first, ``alerts/detection/fall/check.py``) unless the
    wearer's window is 0.
    """

    model: FallModel = field(repr=False)
    models: Mapping[str, FallModel] = field(default_factory=dict, repr=False)
    name: str = "acc_fall"
    debounce_s: int = 120

    def model_for(self, placement: str) -> tuple[FallModel, str, bool]:
        """(model, the placement it was made for, whether it is a stand-in)."""
        if placement in self.models:
            return self.models[placement], placement, False
        near = NEAREST.get(placement, "")
        if near in self.models:
            return self.models[near], near, True
        if CONSERVATIVE in self.models:
            return self.models[CONSERVATIVE], CONSERVATIVE, True
        return (
            self.model,
            str(self.model.card.get("placement", "waist")),
            placement != str(self.model.card.get("placement", "waist")),
        )

    def evaluate(self, window: AccWindow, *, now: datetime) -> Verdict | None:
        return self.assess(window, now=now)[1]

    def assess(self, window: AccWindow, *, now: datetime) -> tuple[float, Verdict | None]:
        """(the window's fall confidence, the verdict if it fires)."""
        samples = window.samples()
        if len(samples) < 2 or not np.all(np.isfinite(samples)):
            return 0.0, None
        x50 = F.resample(samples, window.rate_hz)
        if len(x50) < F.N:
            return 0.0, None  # not enough history yet
        w = x50[-F.N :][None, :, :]
        model, made_for, stand_in = self.model_for(window.placement)
        peak = float(np.max(np.linalg.norm(w[0, F.CAND_LO : F.CAND_HI], axis=1))) / F.GRAVITY
        if peak < model.gate_g:
            return 0.0, None  # no impact: the model would score it 0 (the cheap, common path)
        feats = F.features(w)
        confidence = float(model.score(feats)[0])
        if confidence < model.threshold:
            return confidence, None
        offset_s = (len(x50) - F.N + int(F.peak_index(w)[0])) / F.RATE_HZ
        impact = window.start + timedelta(seconds=offset_s)
        named = dict(zip(F.FEATURES, (float(v) for v in feats[0]), strict=True))
        source = window.resident_id if window.resident_id is not None else f"d{window.device_key}"
        explanation = _explain(window, impact, named, confidence)
        if stand_in:
            why = "nearest" if NEAREST.get(window.placement) == made_for else "most conservative"
            explanation += (
                f"; placement {window.placement} has no model of its own, judged by the "
                f"{made_for} model ({why})"
            )
        certain = certain_for(made_for, model.threshold)
        ask = confidence < certain and window.check_s > 0
        band = {"band": "certain" if confidence >= certain else "likely", "certain": certain}
        if ask:
            band |= {"check": True, "check_window_s": window.check_s}
        return confidence, Verdict(
            detector=self.name,
            kind="fall",
            colour=Colour.RED,
            occurred_at=impact,
            site_id=window.site_id,
            resident_id=window.resident_id,
            device_key=window.device_key,
            idem_key=f"acc_fall:{window.device_key}:{impact.timestamp():.1f}",
            fold_key=f"fall:{source}",
            fold_s=self.debounce_s,
            explanation=explanation,
            details={
                "device_id": window.device_id,
                "placement": window.placement,
                "model_placement": made_for,
                "confidence": round(confidence, 3),
                "threshold": model.threshold,
                "model_sha256": str(model.card.get("model_sha256", ""))[:12],
                "model_id": model.model_id,  # which model judged (its card's version and hash)
                **band,
                **{k: round(v, 3) for k, v in named.items()},
            },
        )


def _explain(window: AccWindow, impact: datetime, f: dict[str, float], confidence: float) -> str:
    who = window.resident_name or f"site {window.site_id}"
    where = f" in {window.room_name}" if window.room_name else ""
    after = (
        "lying still since"
        if f["post_still_frac"] >= 0.6
        else "moving since"
        if f["post_std_g"] > 0.15
        else "little movement since"
    )
    return (
        f"Possible fall of {who}{where} at {impact:%H:%M:%S} UTC: {window.device_kind} "
        f"{window.device_id} measured an impact of {f['peak_g']:.1f} g "
        f"(lowest {f['freefall_min_g']:.1f} g just before), body turned "
        f"{f['tilt_change_deg']:.0f} degrees, {after}; confidence {confidence:.0%}"
    )
