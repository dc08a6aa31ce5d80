"""The evaluation's quick proxy (``alerts.evaluate.falls_proxy``): its recipe variants change
only what they name, and on a tiny separable synthetic wrist corpus it scores every fold's
held-out people and finds the falls and the quiet activities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from alerts.detection.fall import features as F
from alerts.evaluate import falls_proxy
from alerts.evaluate.training import corpus, learn, sisfall
from alerts.evaluate.training.corpus import Rec

G = F.GRAVITY
RATE = 50.0


def trace(rng: np.random.Generator, *, fall: bool) -> np.ndarray:
    """A wrist at rest; a fall: free fall, an impact of 3-5 g, lying still turned 90 degrees;
    an activity: six claps of 2-3 g, the posture kept."""
    n = int(12.0 * RATE)
    x = np.tile([0.0, 0.0, G], (n, 1)) + rng.normal(0, 0.02 * G, (n, 3))
    at = int(rng.uniform(4.5, 6.0) * RATE)
    if fall:
        x[at - 15 : at] = rng.normal(0, 0.05 * G, (15, 3)) + np.array([0, 0, 0.2 * G])
        x[at : at + 5] = [rng.uniform(3, 5) * G, 0.5 * G, 0.5 * G]
        x[at + 5 :] = np.tile([G, 0.0, 0.0], (n - at - 5, 1))
    else:
        for k in range(6):
            x[at - 50 + k * 25 : at - 47 + k * 25, 0] += rng.uniform(2, 3) * G
    return x


def test_variants_change_only_what_they_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(learn, "PARAMS", dict(learn.PARAMS))
    monkeypatch.setattr(
        learn, "PLACEMENT_PARAMS", {p: dict(v) for p, v in learn.PLACEMENT_PARAMS.items()}
    )
    monkeypatch.setattr(learn, "SPEC_TARGET", learn.SPEC_TARGET)
    monkeypatch.setattr(corpus, "AUG_COPIES", corpus.AUG_COPIES)
    before = dict(learn.PARAMS)
    falls_proxy.apply("base")
    assert before == learn.PARAMS
    falls_proxy.apply("iter250+mf0.5+spec0.985+copies2")
    assert {**before, "max_iter": 250, "max_features": 0.5} == learn.PARAMS
    assert learn.SPEC_TARGET == 0.985
    assert corpus.AUG_COPIES == 2
    assert learn.params_for("wrist")["max_iter"] == 250
    assert learn.params_for("wrist")["max_features"] == 0.5
    with pytest.raises(ValueError, match="unknown variant part 'bounce2'"):
        falls_proxy.apply("bounce2")


@pytest.mark.parametrize("copies", [1, 2])
def test_the_proxy_scores_every_held_out_person(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, copies: int
) -> None:
    rng = np.random.default_rng(13)
    recs = [
        Rec(
            "umafall",
            f"S{s}",
            "forwardFall" if fall else "Aplausing",
            k,
            fall,
            30,
            "wrist",
            np.arange(600) / RATE,
            trace(rng, fall=fall),
        )
        for s in range(5)
        for k in range(3)
        for fall in (True, False)
    ]
    monkeypatch.setitem(corpus._CACHE, "umafall:wrist", recs)
    monkeypatch.setattr(sisfall, "CACHE_DIR", tmp_path / "cache" / "sisfall")
    monkeypatch.setattr(corpus, "AUG_COPIES", copies)
    with threadpool_limits(1):
        lines = falls_proxy.run("wrist", None)
    assert lines == [
        "wrist | subject-wise CV umafall | sensitivity 15/15 | specificity 15/15 | none"
    ]
    w = corpus.training_windows(recs)
    assert sorted(set(w.copy.tolist())) == list(range(copies + 1))
