"""Retraining with carers' examples (issue 13 item 5), no database: the adoption rule (never
adopt a model that catches fewer falls), and the whole retrain path (train, re-check on the
reference data, refuse or write the next version) on a tiny synthetic corpus standing in for
UMAFall's wrist recordings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from alerts.detection.fall import features as F
from alerts.detection.fall import model as M
from alerts.evaluate import falls
from alerts.evaluate.training import carers, corpus, sisfall, train
from alerts.evaluate.training.carers import Decision, Example, Figure, adoption
from alerts.evaluate.training.corpus import Rec

G = F.GRAVITY
RATE = 50.0
T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def fig(caught: int, falls_: int = 100, scheme: str = "subject-wise CV umafall") -> Figure:
    return Figure(scheme, falls_, caught, adl=500, false_alarms=5)


def test_a_candidate_catching_fewer_falls_is_refused() -> None:
    d = adoption([fig(91)], [fig(90)])
    assert d == Decision(False, d.lines)
    assert "91.0% (91/100)" in d.lines[0]
    assert "90.0% (90/100)" in d.lines[0]
    assert "FEWER FALLS CAUGHT" in d.lines[0]


@pytest.mark.parametrize("caught", [91, 92, 100])
def test_a_candidate_catching_as_many_or_more_is_adopted(caught: int) -> None:
    d = adoption([fig(91)], [fig(caught)])
    assert d.adopt
    assert "FEWER" not in d.lines[0]


def test_every_scheme_must_hold_and_rates_compare_exactly() -> None:
    cv, lodo = "subject-wise CV sisfall", "leave-sisfall-out (trained on umafall)"
    current = [fig(1787, 1798, cv), fig(1768, 1798, lodo)]
    assert adoption(current, [fig(1790, 1798, cv), fig(1768, 1798, lodo)]).adopt
    refused = adoption(current, [fig(1798, 1798, cv), fig(1767, 1798, lodo)])
    assert not refused.adopt
    assert [("FEWER" in line) for line in refused.lines] == [False, True]
    # the same rate over other counts is equal, not fewer (2/3 == 4/6); 3/5 < 2/3
    assert adoption([fig(2, 3)], [fig(4, 6)]).adopt
    assert not adoption([fig(2, 3)], [fig(3, 5)]).adopt


def test_a_missing_scheme_or_no_current_figures_refuses() -> None:
    cv, lodo = "subject-wise CV umafall", "leave-umafall-out (trained on sisfall)"
    assert not adoption([fig(90, scheme=cv), fig(90, scheme=lodo)], [fig(99, scheme=cv)]).adopt
    nothing = adoption([], [fig(99)])
    assert not nothing.adopt
    assert "no evaluated figures" in nothing.lines[0]


def test_the_shipped_cards_give_figures_to_compare_with() -> None:
    for placement in M.PLACEMENTS:
        card = json.loads((M.MODEL_ROOT / placement / M.CARD_FILE).read_text())
        figures = carers.figures_of_card(card)
        assert figures, placement
        assert all(0 < f.caught <= f.falls for f in figures)
        assert adoption(figures, figures).adopt  # the same model again is adopted
        assert M.model_id(card) == f"{placement}-v{card['version']}-{card['model_sha256'][:12]}"
        assert card["model_id"] == M.model_id(card)


def test_a_card_whose_model_id_does_not_match_its_version_and_hash_is_refused() -> None:
    card = json.loads((M.MODEL_ROOT / "wrist" / M.CARD_FILE).read_text())
    sha, sk = card["model_sha256"], card["sklearn_version"]
    good = {**card, "version": 3, "model_id": f"wrist-v3-{sha[:12]}"}
    M.check_card(good, model_sha256=sha, sklearn_version=sk)
    with pytest.raises(M.ModelError, match="wrist-v2-"):
        M.check_card(
            {**good, "model_id": f"wrist-v2-{sha[:12]}"}, model_sha256=sha, sklearn_version=sk
        )


# -- the retrain path on a tiny corpus -------------------------------------------------------


def trace(rng: np.random.Generator, *, fall: bool, length_s: float = 12.0) -> np.ndarray:
    """A wrist at rest (gravity on z); a fall: 0.3 s of free fall, an impact of 3-5 g, then
    lying still with gravity on x; an activity: 3 s of claps of 2-3 g, the posture kept."""
    n = int(length_s * RATE)
    x = np.tile([0.0, 0.0, G], (n, 1)) + rng.normal(0, 0.02 * G, (n, 3))
    at = int(rng.uniform(4.5, 6.0) * RATE)
    if fall:
        x[at - 15 : at] = rng.normal(0, 0.05 * G, (15, 3)) + np.array([0, 0, 0.2 * G])
        x[at : at + 5] = [rng.uniform(3, 5) * G, 0.5 * G, 0.5 * G]
        x[at + 5 :] = np.tile([G, 0.0, 0.0], (n - at - 5, 1)) + rng.normal(
            0, 0.01 * G, (n - at - 5, 3)
        )
    else:
        for k in range(6):
            c = at - 50 + k * 25
            x[c : c + 3, 0] += rng.uniform(2, 3) * G
    return x


def rec(rng: np.random.Generator, subject: str, trial: int, *, fall: bool) -> Rec:
    x = trace(rng, fall=fall)
    t = np.arange(len(x)) / RATE
    activity = "forwardFall" if fall else "Aplausing"
    return Rec("umafall", subject, activity, trial, fall, 30, "wrist", t, x)


def example(rng: np.random.Generator, example_id: int, *, fall_shaped: bool) -> Example:
    x = trace(rng, fall=fall_shaped, length_s=20.0)
    return Example(
        example_id=example_id,
        alert_id=example_id,
        order_id=example_id,
        site_id="home-17",
        resident_id=100 + example_id % 4,
        device_key=7,
        device_id="wb-0042",
        placement="wrist",
        model_placement="wrist",
        model_id="wrist-v1-000000000000",
        impact_at=T0,
        labelled_by="staff-homes",
        labelled_at=T0,
        times=np.arange(len(x)) / RATE - 10.0,
        samples=x,
    )


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """A wrist corpus of 5 people (3 falls, 3 activities each) in place of UMAFall's, its
    caches under tmp_path, and a model root holding a model trained and evaluated on it as
    the documented commands do (train, then the evaluation's figures into the card). On one
    thread, as the commands run (a few seconds; OpenMP on a shared machine took minutes)."""
    rng = np.random.default_rng(13)
    recs = [
        rec(rng, f"S{s}", k, fall=fall)
        for s in range(5)
        for k in range(3)
        for fall in (True, False)
    ]
    monkeypatch.setitem(corpus._CACHE, "umafall:wrist", recs)
    monkeypatch.setattr(sisfall, "CACHE_DIR", tmp_path / "cache" / "sisfall")
    archive = tmp_path / "tiny.tar.xz"
    archive.write_bytes(b"tiny synthetic wrist corpus")
    monkeypatch.setattr(train, "SOURCES", {"umafall": ("tiny synthetic corpus", archive)})
    root = tmp_path / "model"
    with threadpool_limits(1):
        train.write("wrist", root)
        falls.write_cards(falls.cross_validate(["wrist"]), "baseline", root)
        yield root


def test_retraining_adopts_a_model_that_catches_as_many_and_refuses_one_that_misses(
    tiny: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tiny
    card_path = root / "wrist" / M.CARD_FILE
    before = json.loads(card_path.read_text())
    (baseline,) = carers.figures_of_card(before)
    assert baseline.caught == baseline.falls == 15  # the tiny corpus is easy

    # harmless hard negatives (claps carers marked as false alarms): adopted, version 2
    rng = np.random.default_rng(5)
    claps = [example(rng, i, fall_shaped=False) for i in range(1, 5)]
    assert carers.retrain_placement("wrist", claps, root) == 0
    after = json.loads(card_path.read_text())
    assert after["version"] == 2
    assert after["model_id"] == f"wrist-v2-{after['model_sha256'][:12]}"
    assert after["replaces"] == M.model_id(before)
    assert after["carer_examples"]["example_ids"] == [1, 2, 3, 4]
    assert after["carer_examples"]["residents"] == 4
    assert after["data"]["used"]["carer:wrist"]["recordings"] == 4
    assert carers.figures_of_card(after)[0].caught == 15
    assert M.load(root / "wrist").model_id == after["model_id"]  # the worker would load it
    out = capsys.readouterr().out
    assert "sensitivity current 100.0% (15/15), candidate 100.0% (15/15)" in out
    assert "adopted wrist-v2-" in out

    # real falls a carer wrongly marked as false alarms: the candidate misses falls, refused
    wrong = [example(rng, i, fall_shaped=True) for i in range(10, 40)]
    blob = (root / "wrist" / M.MODEL_FILE).read_bytes()
    assert carers.retrain_placement("wrist", wrong, root) == 1
    out = capsys.readouterr().out
    assert "FEWER FALLS CAUGHT" in out
    assert "REFUSED" in out
    assert "sensitivity current 100.0% (15/15), candidate " in out
    assert json.loads(card_path.read_text()) == after  # nothing written
    assert (root / "wrist" / M.MODEL_FILE).read_bytes() == blob
