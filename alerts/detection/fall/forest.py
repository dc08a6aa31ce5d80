"""A fitted binary ``HistGradientBoostingClassifier`` scored as flat arrays, every tree at
once: the same fall probability as ``predict_proba`` (to rounding of the sum), without the
per-call input validation and the per-tree Python loop that make scikit-learn slow for the
one window the detector scores at a time (bench.detectors: windows with an impact).

Reads the fitted trees (``_predictors``, ``_baseline_prediction``: private attributes, so
``from_estimator`` returns None for anything else and the caller falls back to
``predict_proba``); the card pins scikit-learn's major.minor, and
``tests/test_fall_unit.py`` checks the shipped models score as ``predict_proba`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import expit

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Forest:
    roots: I64  # (trees,) index of each tree's root in the flat arrays
    feature: I64
    threshold: F64
    missing_left: npt.NDArray[np.bool_]
    left: I64
    right: I64
    leaf: npt.NDArray[np.bool_]
    value: F64
    depth: int
    baseline: float

    @classmethod
    def from_estimator(cls, estimator: Any) -> Forest | None:
        try:
            if estimator.n_trees_per_iteration_ != 1 or estimator.is_categorical_ is not None:
                return None
            nodes = [p[0].nodes for p in estimator._predictors]
            baseline = float(np.asarray(estimator._baseline_prediction).reshape(-1)[0])
        except (AttributeError, IndexError, TypeError):
            return None
        sizes = np.array([len(n) for n in nodes], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        flat = np.concatenate(nodes)
        shift = np.repeat(offsets, sizes)
        return cls(
            roots=offsets,
            feature=flat["feature_idx"].astype(np.int64),
            threshold=flat["num_threshold"].astype(np.float64),
            missing_left=flat["missing_go_to_left"].astype(bool),
            left=flat["left"].astype(np.int64) + shift,
            right=flat["right"].astype(np.int64) + shift,
            leaf=flat["is_leaf"].astype(bool),
            value=flat["value"].astype(np.float64),
            depth=int(flat["depth"].max()),
            baseline=baseline,
        )

    def proba(self, X: F64) -> F64:
        """Fall probability per row of ``X`` (rows, features)."""
        X = np.asarray(X, dtype=np.float64)
        node = np.broadcast_to(self.roots, (len(X), len(self.roots))).copy()
        rows = np.arange(len(X))[:, None]
        for _ in range(self.depth):
            x = X[rows, self.feature[node]]
            go_left = np.where(np.isnan(x), self.missing_left[node], x <= self.threshold[node])
            node = np.where(
                self.leaf[node], node, np.where(go_left, self.left[node], self.right[node])
            )
        raw = self.baseline + self.value[node].sum(axis=1)
        return np.asarray(expit(raw), dtype=np.float64)
