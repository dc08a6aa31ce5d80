"""The trained fall model, versioned in the repo, and the checks made before it is used.

One model per placement: ``model/<placement>/fall_model.joblib`` is a scikit-learn estimator
written by ``python -m alerts.evaluate.training.train``; ``model/<placement>/card.json`` describes it
(data, splits, evaluated figures, hash, version). Loading refuses (``ModelError``) when
the file's sha256 differs from the card, when scikit-learn's major.minor differs from the one
that trained it, or when the card's features, rate or window differ from this code's.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import numpy.typing as npt

from alerts.detection.fall import features as F
from alerts.detection.fall.forest import Forest

MODEL_ROOT = Path(__file__).resolve().parent / "model"
PLACEMENTS = ("wrist", "waist", "chest")  # placements with a model of their own
MODEL_DIR = MODEL_ROOT / "waist"  # the default single model (SisFall's placement)
MODEL_FILE = "fall_model.joblib"
JERK = F.FEATURES.index("jerk_max_gps")
AFTER = F.FEATURES.index("post_sma_g")
CARD_FILE = "card.json"


def passes_gates(
    X: npt.NDArray[np.float64],
    *,
    gate_g: float,
    jerk_gate_gps: float = 0.0,
    aftermath_gate_g: float = math.inf,
) -> npt.NDArray[np.bool_]:
    """Feature rows the model may judge: a peak of at least ``gate_g``, an impact at least as
    sharp as the jerk gate, an aftermath no livelier than the aftermath gate (the rest score
    0; the live model and the training's scoring use this one rule)."""
    return np.asarray(
        (X[:, 0] >= gate_g) & (X[:, JERK] >= jerk_gate_gps) & (X[:, AFTER] <= aftermath_gate_g),
        dtype=np.bool_,
    )


class ModelError(RuntimeError):
    """The model on disk cannot be trusted with this code."""


def model_id(card: Mapping[str, Any]) -> str:
    """Which model judged: ``<placement>-v<version>-<sha256 prefix>``, from its card (cards
    before versioning are version 1; a model trained in memory has no hash: ``unsaved``)."""
    sha = str(card.get("model_sha256", ""))[:12] or "unsaved"
    return f"{card.get('placement', 'waist')}-v{int(card.get('version', 1))}-{sha}"


@dataclass(frozen=True, slots=True)
class FallModel:
    estimator: Any
    threshold: float
    gate_g: float
    card: Mapping[str, Any]
    # windows whose impact changes slower than this (g/s) score 0: a body lowered, not a
    # blow (the card's ``jerk_gate_gps``; 0 for cards without one)
    jerk_gate_gps: float = 0.0
    # windows whose aftermath moves more than this (``post_sma_g``, g) score 0: a trunk still
    # hopping or jogging after the "impact" has not fallen (the card's ``aftermath_gate_g``,
    # learnt with the model; none for cards without one)
    aftermath_gate_g: float = math.inf
    # the estimator's trees as flat arrays (the same scores, far faster one window at a
    # time); None for an estimator it cannot read, which is then asked itself
    forest: Forest | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "forest", Forest.from_estimator(self.estimator))

    @property
    def model_id(self) -> str:
        return model_id(self.card)

    def score(self, X: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Fall probability per feature row; rows whose peak is under the gate score 0."""
        out = np.zeros(len(X))
        gated = passes_gates(
            X,
            gate_g=self.gate_g,
            jerk_gate_gps=self.jerk_gate_gps,
            aftermath_gate_g=self.aftermath_gate_g,
        )
        if gated.any():
            out[gated] = (
                self.forest.proba(X[gated])
                if self.forest is not None
                else self.estimator.predict_proba(X[gated])[:, 1]
            )
        return out


def major_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def check_card(card: Mapping[str, Any], *, model_sha256: str, sklearn_version: str) -> None:
    if card.get("model_sha256") != model_sha256:
        raise ModelError(
            f"fall model sha256 {model_sha256} does not match its card "
            f"({card.get('model_sha256')}); retrain with python -m alerts.evaluate.training.train"
        )
    if "model_id" in card and card["model_id"] != model_id(card):
        raise ModelError(
            f"fall model card names {card['model_id']}, its version and hash make it "
            f"{model_id(card)}"
        )
    trained = str(card.get("sklearn_version", "?"))
    if major_minor(trained) != major_minor(sklearn_version):
        raise ModelError(
            f"fall model was trained with scikit-learn {trained}, this is {sklearn_version}; "
            "retrain with python -m alerts.evaluate.training.train"
        )
    expected = {
        "features": list(F.FEATURES),
        "rate_hz": F.RATE_HZ,
        "window_s": F.WINDOW_S,
        "step_s": F.STEP_S,
    }
    for key, value in expected.items():
        if card.get(key) != value:
            raise ModelError(f"fall model card {key}={card.get(key)!r}, the code uses {value!r}")


def load(directory: Path = MODEL_DIR) -> FallModel:
    try:
        card = json.loads((directory / CARD_FILE).read_text())
        blob = (directory / MODEL_FILE).read_bytes()
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read the fall model in {directory}: {exc}") from exc
    # the installed version without importing scikit-learn (seconds of start-up, and the
    # alerts lane process, which loads no model, imports this module)
    check_card(
        card,
        model_sha256=hashlib.sha256(blob).hexdigest(),
        sklearn_version=version("scikit-learn"),
    )
    # Only unpickled after the sha256 matched the card committed with it.
    estimator = joblib.load(directory / MODEL_FILE)
    return FallModel(
        estimator,
        float(card["threshold"]),
        float(card["gate_g"]),
        card,
        jerk_gate_gps=float(card.get("jerk_gate_gps", 0.0)),
        aftermath_gate_g=aftermath_gate_of(card),
    )


def aftermath_gate_of(card: Mapping[str, Any]) -> float:
    """The card's aftermath gate in g; ``inf`` (none) where it has none (null or absent)."""
    value = card.get("aftermath_gate_g")
    return math.inf if value is None else float(value)


def load_all(root: Path = MODEL_ROOT) -> dict[str, FallModel]:
    """Every placement's model; refuses (``ModelError``) if one is missing or untrusted."""
    return {placement: load(root / placement) for placement in PLACEMENTS}
