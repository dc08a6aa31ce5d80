"""Both data sets as one list of recordings per placement, and the training windows made from
them (with the augmentation that makes a model hold on devices it has never seen).

Augmentation (training only, never on evaluated recordings): each recording is used as it
is and once more as another device would have measured it: a random sensor orientation
(a random rotation), a sampling rate of 20, 25, 50 or 100 Hz, clipping at 4 g or 8 g (or
none) and sensor noise of 0.02 g. Deterministic (seeded by the recording's key).
"""

from __future__ import annotations

import hashlib
import sys
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.signal import resample_poly
from scipy.spatial.transform import Rotation

from alerts.detection.fall import features as F
from alerts.evaluate.training import sisfall, umafall
from alerts.evaluate.training.cache import cached

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
LABEL_TOL_S = 0.3
AUG_RATES = (20.0, 25.0, 50.0, 100.0)
AUG_CLIPS_G = (4.0, 8.0, None)
NOISE_G = 0.02
AUG_COPIES = 1  # augmented copies per recording (besides the recording as recorded)
# Training data per placement: (data set, its placement). A chest sensor and a belt move with
# the trunk, so the chest model also learns from SisFall's waist; the wrist learns only
# from wrists (an arm is not a body).
TRAINING: dict[str, tuple[tuple[str, str], ...]] = {
    "wrist": (("umafall", "wrist"),),
    "waist": (("sisfall", "waist"), ("umafall", "waist")),
    "chest": (("umafall", "chest"), ("sisfall", "waist")),
}


@dataclass(frozen=True, slots=True)
class Rec:
    dataset: str
    subject: str
    activity: str
    trial: int
    is_fall: bool
    age: int | None
    placement: str
    times: F64  # seconds from the start
    samples: F64  # (n, 3) m/s2

    @property
    def key(self) -> str:
        return f"{self.dataset}:{self.placement}:{self.subject}:{self.activity}:{self.trial}"

    @property
    def duration_s(self) -> float:
        return float(self.times[-1] - self.times[0]) if len(self.times) else 0.0


_CACHE: dict[str, list[Rec]] = {}


def load(dataset: str, placement: str) -> list[Rec]:
    key = f"{dataset}:{placement}"
    if key not in _CACHE:
        if dataset == "sisfall":
            out = (
                [
                    Rec(
                        "sisfall",
                        r.subject,
                        r.code,
                        r.trial,
                        r.is_fall,
                        None,
                        "waist",
                        np.arange(len(r.samples)) / sisfall.RATE_HZ,
                        r.samples.astype(np.float64),
                    )
                    for r in sisfall.recordings()
                ]
                if placement == "waist"
                else []
            )
        else:
            out = [
                Rec(
                    "umafall",
                    r.subject,
                    r.activity,
                    r.trial,
                    r.is_fall,
                    r.age,
                    r.placement,
                    r.times,
                    r.samples,
                )
                for r in umafall.recordings()
                if r.placement == placement
            ]
        _CACHE[key] = out
    return _CACHE[key]


def uniform(rec: Rec) -> tuple[float, F64]:
    if rec.dataset == "sisfall":
        return sisfall.RATE_HZ, rec.samples
    return F.to_uniform(rec.times, rec.samples)


def augment(rate: float, x: F64, seed: int) -> tuple[float, F64]:
    rng = np.random.default_rng(seed)
    x = Rotation.random(random_state=rng).apply(x)
    target = float(rng.choice(AUG_RATES))
    if target < rate:
        from fractions import Fraction

        ratio = Fraction(target / rate).limit_denominator(64)
        x = resample_poly(x, ratio.numerator, ratio.denominator, axis=0, padtype="line")
        rate = target
    x = x + rng.normal(0.0, NOISE_G * F.GRAVITY, size=x.shape)
    clip = AUG_CLIPS_G[int(rng.integers(len(AUG_CLIPS_G)))]
    if clip is not None:
        x = np.clip(x, -clip * F.GRAVITY, clip * F.GRAVITY)
    return rate, np.asarray(x, dtype=np.float64)


def windows_of(rate: float, x: F64, is_fall: bool) -> tuple[F64, I64]:
    """Features and labels (1 impact, 0 ADL, -1 fall recording but not its impact)."""
    x50 = F.resample(x, rate)
    w = F.windows(x50)
    feats = F.features(w)
    y = np.zeros(len(feats), dtype=np.int64)
    if is_fall and len(w):
        fall_t = np.argmax(np.linalg.norm(x50, axis=1)) / F.RATE_HZ
        impact_t = np.arange(len(w)) * F.STEP_S + F.peak_index(w) / F.RATE_HZ
        y[:] = -1
        y[np.abs(impact_t - fall_t) <= LABEL_TOL_S] = 1
    return feats, y


@dataclass(frozen=True, slots=True)
class Windows:
    X: F64
    y: I64
    rec: I64  # index into the recordings list given to ``training_windows``
    subject: npt.NDArray[np.str_]  # per window ("dataset:subject")
    copy: I64  # 0 the recording as it is, 1.. its augmented copies

    def arrays(self) -> dict[str, npt.NDArray[Any]]:
        return {
            "X": self.X,
            "y": self.y,
            "rec": self.rec,
            "subject": self.subject,
            "copy": self.copy,
        }


def training_windows(recs: list[Rec], *, augmented: bool = True, cache: bool = True) -> Windows:
    """Every window of every recording (and of its augmented copy); cached under .build/ by
    the recordings' keys (``cache=False`` for recordings whose key does not fix their
    samples: carers' examples, numbered per database)."""
    digest = hashlib.sha256(
        f"v2{F.FEATURES}{F.N}{F.STEP}{AUG_RATES}{AUG_CLIPS_G}{NOISE_G}{augmented}".encode()
        + (f"copies{AUG_COPIES}".encode() if AUG_COPIES != 1 else b"")
        + "\n".join(r.key for r in recs).encode()
    ).hexdigest()[:16]
    if cache:
        path = sisfall.CACHE_DIR.parent / "fall-windows" / f"{digest}.npz"
        d = cached(path, lambda: _windows(recs, augmented=augmented).arrays())
        return Windows(d["X"], d["y"], d["rec"], d["subject"], d["copy"])
    return _windows(recs, augmented=augmented)


def _windows(recs: list[Rec], *, augmented: bool) -> Windows:
    xs, ys, ids, copy_ids = [], [], [], []
    for i, r in enumerate(recs):
        if i % 500 == 0:
            print(f"  windows {i}/{len(recs)}", file=sys.stderr, flush=True)
        rate, x = uniform(r)
        copies = [(rate, x)]
        if augmented:
            seed = zlib.crc32(r.key.encode())
            copies += [augment(rate, x, seed + c) for c in range(AUG_COPIES)]
        for c, (cr, cx) in enumerate(copies):
            feats, y = windows_of(cr, cx, r.is_fall)
            xs.append(feats)
            ys.append(y)
            ids.append(np.full(len(feats), i, dtype=np.int64))
            copy_ids.append(np.full(len(feats), c, dtype=np.int64))
    rec = np.concatenate(ids)
    subjects = np.array([f"{r.dataset}:{r.subject}" for r in recs])
    return Windows(
        np.concatenate(xs), np.concatenate(ys), rec, subjects[rec], np.concatenate(copy_ids)
    )
