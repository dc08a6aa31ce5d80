"""Training a placement's model on any selection of recordings (the shipped model, or one
fold of the evaluation): the windows come from ``corpus`` (cached per data set), the fit
and the nested threshold from ``learn``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from alerts.evaluate.training import corpus, learn
from alerts.evaluate.training.corpus import Rec

Keep = Callable[[Rec], bool]


@dataclass(frozen=True, slots=True)
class Trained:
    estimator: Any
    threshold: float
    aftermath_gate_g: float  # inf: none (``learn.aftermath_gate``)
    data: dict[str, Any]  # per source: recordings, falls, subjects, windows


def train(placement: str, keep: Keep = lambda r: True, extra: Sequence[Rec] = ()) -> Trained:
    """The model, threshold and gates for ``placement`` on the kept recordings, plus
    ``extra`` (carers' labelled examples, ``carers.py``: hard negatives, each its own
    recording, grouped by resident; never cached, as they come from a database)."""
    Xs, ys, recs, groups, falls = [], [], [], [], []
    offset = 0
    summary: dict[str, Any] = {}
    sources: list[tuple[str, list[Rec], bool]] = [
        (f"{dataset}:{where}", corpus.load(dataset, where), True)
        for dataset, where in corpus.TRAINING[placement]
    ]
    if extra:
        sources.append((f"carer:{placement}", list(extra), False))
    for name, pool, cached in sources:
        w = corpus.training_windows(pool, cache=cached)
        kept = np.array([keep(r) for r in pool], dtype=bool)
        if not kept.any():
            continue
        m = kept[w.rec]
        Xs.append(w.X[m])
        ys.append(w.y[m])
        # each copy is its own recording for the threshold (another device measuring it)
        recs.append(w.rec[m] + offset + w.copy[m] * len(pool))
        groups.append(w.subject[m])
        copies = 1 + corpus.AUG_COPIES
        falls.append(np.tile(np.array([r.is_fall for r in pool], dtype=bool), copies))
        offset += copies * len(pool)
        summary[name] = {
            "recordings": int(kept.sum()),
            "falls": int(sum(r.is_fall for r, k in zip(pool, kept, strict=True) if k)),
            "subjects": len({r.subject for r, k in zip(pool, kept, strict=True) if k}),
            "windows": int(m.sum()),
        }
    if not Xs:
        raise ValueError(f"no training data for {placement}")
    is_fall: npt.NDArray[np.bool_] = np.concatenate(falls)
    X, y, rec = np.concatenate(Xs), np.concatenate(ys), np.concatenate(recs)
    model, threshold = learn.fit_pooled(
        X, y, rec, np.concatenate(groups), is_fall, learn.params_for(placement)
    )
    return Trained(model, threshold, learn.aftermath_gate(placement, X, y, rec), summary)
