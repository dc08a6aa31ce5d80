"""Fall detection, pure parts: resampling, windows, features, the model card, the verdict."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.detection.fall import features as F
from alerts.detection.fall import model as M
from alerts.detection.fall.detector import AccFallDetector, AccWindow
from alerts.evaluate.training.sisfall import COUNT_TO_MS2, parse_counts
from devices.domain import Colour

FIXTURES = Path(__file__).parent / "fixtures"
T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def fixture(name: str) -> np.ndarray:
    """A cut of a SisFall recording (200 Hz ADXL345 counts) in m/s2."""
    return np.loadtxt(FIXTURES / name, delimiter=",", comments="#") * COUNT_TO_MS2


def window(samples: np.ndarray, rate: float, resident_id: int | None = 7) -> AccWindow:
    return AccWindow(
        device_key=3,
        device_id="wb-0042",
        site_id="home-17",
        start=T0,
        rate_hz=rate,
        acc_x=samples[:, 0],
        acc_y=samples[:, 1],
        acc_z=samples[:, 2],
        resident_id=resident_id,
        resident_name="Wang Fang",
        room_name="bedroom",
    )


def test_parse_counts_reads_the_original_format() -> None:
    text = b"  -9,-257, -25,  84, 247,  27,-120,-987,  63;\r\n  -3,-263, -23,  99, 258,  35,-110,-1016,  68;\r\n"
    assert parse_counts(text).tolist() == [[-9, -257, -25], [-3, -263, -23]]


@settings(max_examples=60, deadline=None)
@given(
    rate=st.one_of(st.sampled_from([25.0, 50.0, 100.0, 200.0]), st.floats(5.0, 400.0)),
    n=st.integers(0, 700),
    level=st.floats(-150.0, 150.0),
)
def test_resample_any_rate_and_length(rate: float, n: int, level: float) -> None:
    x = np.full((n, 3), level)
    out = F.resample(x, rate)
    assert out.shape[1] == 3
    assert np.all(np.isfinite(out))
    # the polyphase ratio is the nearest fraction with a denominator up to 64 (37.42 Hz ->
    # 75/56), so the length follows that ratio, and the ratio stays within 2 % of the true one
    ratio = Fraction(F.RATE_HZ / rate).limit_denominator(64)
    assert abs(float(ratio) - F.RATE_HZ / rate) <= 0.02 * F.RATE_HZ / rate
    assert abs(len(out) - n * float(ratio)) <= 2
    if n >= 2:  # a constant signal stays constant (no ringing at the edges)
        assert np.allclose(out, level, atol=0.01 * max(1.0, abs(level)))


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(0, 2 * F.N),
    seed=st.integers(0, 2**16),
    constant=st.booleans(),
)
def test_windows_and_features_never_crash(n: int, seed: int, constant: bool) -> None:
    rng = np.random.default_rng(seed)
    x = np.full((n, 3), 3.0) if constant else rng.normal(0, 20, size=(n, 3))
    w = F.windows(x)
    expected = 0 if n < F.N else 1 + (n - F.N) // F.STEP
    assert w.shape == (expected, F.N, 3)
    feats = F.features(w)
    assert feats.shape == (expected, len(F.FEATURES))
    assert np.all(np.isfinite(feats))


def test_to_uniform_recovers_the_rate_of_jittered_samples() -> None:
    t = np.arange(100) / 25.0 + np.random.default_rng(1).normal(0, 0.001, 100)
    rate, grid = F.to_uniform(t, np.ones((100, 3)))
    assert rate == pytest.approx(25.0, rel=0.01)
    assert len(grid) == pytest.approx(100, abs=2)
    with pytest.raises(ValueError, match="share one time"):
        F.to_uniform(np.zeros(5), np.ones((5, 3)))


def test_features_see_the_impact_of_a_real_fall() -> None:
    feats, impact = F.recording_features(fixture("sisfall_F01_SA01_R01_cut.txt"), 200.0)
    row = dict(zip(F.FEATURES, feats.max(axis=0), strict=True))
    assert row["peak_g"] > 3.0
    assert 3.0 < impact.max() < 5.0  # the impact is at 4 s in the cut


def _trace(*, fall_s: float, turn_s: float, turn_deg: float = 90.0) -> np.ndarray:
    """One 6-s window at 50 Hz: standing (gravity on z), then ``turn_s`` seconds turning
    ``turn_deg`` towards x, ending 0.3 s before an impact at 3 s, ``fall_s`` seconds of free
    fall just before the impact, then lying still."""
    t = np.arange(F.N) / F.RATE_HZ
    impact = 3.0
    start = impact - 0.3 - turn_s
    angle = np.clip((t - start) / max(turn_s, 1e-9), 0.0, 1.0) * np.radians(turn_deg)
    x = np.stack([np.sin(angle), np.zeros_like(t), np.cos(angle)], axis=1) * F.GRAVITY
    x[(t >= impact - fall_s) & (t < impact)] = 0.0
    x[np.abs(t - impact) < 0.01] = [5 * F.GRAVITY, 0.0, 0.0]
    return np.asarray(x)


def test_descent_features_tell_a_free_fall_from_a_lowered_body() -> None:
    names = list(F.FEATURES)
    fall, lowered, knock = F.features(
        np.stack(
            [
                _trace(fall_s=0.5, turn_s=0.5),
                _trace(fall_s=0.0, turn_s=0.5),
                _trace(fall_s=0.0, turn_s=0.5, turn_deg=0.0),  # a still hand hits a table
            ]
        )
    )
    v, vert = names.index("descent_v_ms"), names.index("vert_v_ms")
    assert fall[v] == pytest.approx(0.5 * F.GRAVITY, rel=0.1)  # 0.5 s at 0 g gains ~4.9 m/s
    assert lowered[v] < 0.5
    assert knock[v] < 0.5
    assert fall[vert] > 4.0 > 0.5 > knock[vert]


def test_turn_features_time_the_posture_change() -> None:
    names = list(F.FEATURES)
    quick, slow, none = F.features(
        np.stack(
            [
                _trace(fall_s=0.0, turn_s=0.4),
                _trace(fall_s=0.0, turn_s=1.0),
                _trace(fall_s=0.0, turn_s=0.4, turn_deg=0.0),
            ]
        )
    )
    turn, rate = names.index("turn_pre_deg"), names.index("descent_turn_dps")
    assert min(quick[turn], slow[turn]) > 60.0
    assert none[turn] < 15.0  # not 0: the impact's spike blurs into the smoothed direction
    assert quick[rate] > 1.5 * slow[rate] > 50.0 > none[rate]  # 90 degrees in 0.4 s, in 1 s


def test_card_mismatch_refuses(tmp_path: Path) -> None:
    card = json.loads((M.MODEL_DIR / M.CARD_FILE).read_text())
    sha = card["model_sha256"]
    M.check_card(card, model_sha256=sha, sklearn_version=card["sklearn_version"])
    with pytest.raises(M.ModelError, match="sha256"):
        M.check_card(card, model_sha256="0" * 64, sklearn_version=card["sklearn_version"])
    with pytest.raises(M.ModelError, match=r"scikit-learn 9\.9"):
        M.check_card(
            {**card, "sklearn_version": "9.9.0"}, model_sha256=sha, sklearn_version="1.9.1"
        )
    with pytest.raises(M.ModelError, match="rate_hz"):
        M.check_card(
            {**card, "rate_hz": 25.0}, model_sha256=sha, sklearn_version=card["sklearn_version"]
        )
    shutil.copytree(M.MODEL_DIR, tmp_path / "m")
    with (tmp_path / "m" / M.MODEL_FILE).open("ab") as f:
        f.write(b"tampered")
    with pytest.raises(M.ModelError, match="does not match its card"):
        M.load(tmp_path / "m")
    with pytest.raises(M.ModelError, match="cannot read"):
        M.load(tmp_path / "missing")


def test_shipped_model_matches_its_card() -> None:
    card = json.loads((M.MODEL_DIR / M.CARD_FILE).read_text())
    blob = (M.MODEL_DIR / M.MODEL_FILE).read_bytes()
    assert hashlib.sha256(blob).hexdigest() == card["model_sha256"]
    assert len(blob) < 2_000_000
    assert card["features"] == list(F.FEATURES)
    model = M.load()
    assert 0.0 < model.threshold < 1.0


@pytest.mark.parametrize("placement", M.PLACEMENTS)
def test_shipped_models_score_as_scikit_learn_does(placement: str) -> None:
    model = M.load(M.MODEL_ROOT / placement)
    assert model.forest is not None
    rng = np.random.default_rng(3)
    w = rng.normal(0, 6, size=(200, F.N, 3)) + np.array([0.0, 0.0, F.GRAVITY])
    w[:, 150] += rng.normal(0, 30, size=(200, 3))  # an impact, so the gate passes
    real = [
        F.recording_features(fixture(f"sisfall_{c}_SA01_R01_cut.txt"), 200.0)[0]
        for c in ("F01", "D01", "D07")
    ]
    X = np.concatenate([F.features(w), *real])
    X[:5, 3] = np.nan  # a missing value goes the way the tree learned
    expected = model.estimator.predict_proba(X)[:, 1]
    assert np.ptp(expected) > 0.5  # the rows are not all alike
    assert np.allclose(model.forest.proba(X), expected, rtol=0, atol=1e-12)


class Constant:
    """An estimator the flat forest cannot read: it is asked itself (0.75 for every row)."""

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.tile([0.25, 0.75], (len(X), 1))


def test_an_estimator_the_forest_cannot_read_is_asked_itself() -> None:
    model = M.FallModel(Constant(), 0.5, 1.4, {})
    assert model.forest is None
    assert model.score(np.array([[2.0] * len(F.FEATURES), [1.0] * len(F.FEATURES)])).tolist() == [
        0.75,
        0.0,
    ]


@pytest.mark.parametrize(
    ("feature", "gate", "vetoed", "kept"),
    [
        # an impact softer than the jerk gate: a body lowered, not a blow
        ("jerk_max_gps", {"jerk_gate_gps": 10.0}, 9.9, 10.0),
        # a trunk still moving after the impact (hopping, jogging) has not fallen
        ("post_sma_g", {"aftermath_gate_g": 0.5}, 0.51, 0.5),
    ],
)
def test_a_window_past_a_gate_scores_nothing(
    feature: str, gate: dict[str, float], vetoed: float, kept: float
) -> None:
    k = F.FEATURES.index(feature)
    out, within = np.full(len(F.FEATURES), 2.0), np.full(len(F.FEATURES), 2.0)
    out[k], within[k] = vetoed, kept
    gated = M.FallModel(Constant(), 0.5, 1.4, {}, **gate)
    assert gated.score(np.stack([out, within])).tolist() == [0.0, 0.75]
    assert M.FallModel(Constant(), 0.5, 1.4, {}).score(np.stack([out])).tolist() == [0.75]


def test_the_trunk_models_carry_their_jerk_gate_and_the_wrist_none() -> None:
    from alerts.evaluate.training import learn

    models = M.load_all()
    for placement, model in models.items():
        assert model.jerk_gate_gps == learn.jerk_gate_for(placement)
    assert models["waist"].jerk_gate_gps == models["chest"].jerk_gate_gps == 10.0
    assert models["wrist"].jerk_gate_gps == 0.0
    # the aftermath gate is learnt with each trunk model (a value in g); the wrist has none
    assert 0.2 < models["waist"].aftermath_gate_g < 1.0
    assert 0.2 < models["chest"].aftermath_gate_g < 1.0
    assert models["wrist"].aftermath_gate_g == np.inf


def test_a_card_without_an_aftermath_gate_has_none() -> None:
    assert M.aftermath_gate_of({}) == M.aftermath_gate_of({"aftermath_gate_g": None}) == np.inf
    assert M.aftermath_gate_of({"aftermath_gate_g": 0.5}) == 0.5


def test_the_aftermath_gate_is_learnt_from_the_training_falls_calmest_windows() -> None:
    from alerts.evaluate.training import learn

    after = F.FEATURES.index("post_sma_g")
    # recordings 0-999 fall (two labelled windows each: the calmer one counts), 1000 is an
    # activity whose wild aftermath must not move the gate, 1001 a fall whose only labelled
    # window is under the 1.4-g peak gate (never scored, so never counted)
    n = 1000
    X = np.full((2 * n + 2, len(F.FEATURES)), 3.0)
    rec = np.concatenate([np.arange(n), np.arange(n), [n, n + 1]])
    y = np.concatenate([np.ones(2 * n, dtype=np.int64), [0, 1]])
    X[:n, after] = np.arange(n) / n  # the calm windows: 0.000 .. 0.999 g
    X[n : 2 * n, after] = 5.0
    X[2 * n, after] = 9.0
    X[2 * n + 1, 0], X[2 * n + 1, after] = 1.0, 9.0
    gate = learn.aftermath_gate("chest", X, y, rec)
    assert gate == np.quantile(np.arange(n) / n, learn.AFTERMATH_QUANTILE, method="lower")
    assert 0.99 < gate < 0.999
    assert learn.aftermath_gate("wrist", X, y, rec) == np.inf
    assert learn.aftermath_gate("waist", X, np.zeros_like(y), rec) == np.inf


@pytest.mark.parametrize("rate", [200.0, 100.0, 50.0])
def test_detector_turns_a_real_fall_red(rate: float) -> None:
    detector = AccFallDetector(M.load())
    samples = F.resample(fixture("sisfall_F01_SA01_R01_cut.txt"), 200.0)  # now 50 Hz
    if rate != 50.0:
        samples = F.resample(samples, 50.0 * 50.0 / rate)  # inverse ratio: back up to `rate`
    impact_s = 4.0
    # The live detector sees the last 6 s: feed it up to 2.5 s after the impact.
    live = samples[: int((impact_s + 2.5) * rate)]
    verdict = detector.evaluate(window(live, rate), now=T0 + timedelta(seconds=7))
    assert verdict is not None
    assert (verdict.kind, verdict.colour, verdict.detector) == ("fall", Colour.RED, "acc_fall")
    assert verdict.fold_key == "fall:7"
    assert abs((verdict.occurred_at - T0).total_seconds() - impact_s) <= 0.3
    assert verdict.idem_key == f"acc_fall:3:{verdict.occurred_at.timestamp():.1f}"
    assert "Wang Fang" in verdict.explanation
    assert "confidence" in verdict.explanation
    again = detector.evaluate(window(live, rate), now=T0 + timedelta(seconds=30))
    assert again is not None
    assert again.idem_key == verdict.idem_key


@pytest.mark.parametrize("name", ["sisfall_D01_SA01_R01_cut.txt", "sisfall_D07_SA01_R01_cut.txt"])
def test_detector_ignores_walking_and_sitting(name: str) -> None:
    detector = AccFallDetector(M.load())
    samples = fixture(name)
    for end in range(F.N * 4, len(samples) + 1, 200):
        assert detector.evaluate(window(samples[:end], 200.0), now=T0) is None


def test_detector_waits_for_enough_history() -> None:
    detector = AccFallDetector(M.load())
    short = F.resample(fixture("sisfall_F01_SA01_R01_cut.txt"), 200.0)[: F.N - 1]
    assert detector.evaluate(window(short, 50.0), now=T0) is None
    fold = window(F.resample(fixture("sisfall_F01_SA01_R01_cut.txt"), 200.0)[:325], 50.0, None)
    verdict = detector.evaluate(fold, now=T0)
    assert verdict is None or verdict.fold_key == "fall:d3"


def test_packs_of_the_last_seconds_become_one_uniform_window() -> None:
    from alerts.detection.detectors.base import StreamEvent
    from alerts.detection.fall.assembly import assemble

    event = StreamEvent(
        kind="acc",
        name="acc",
        time=T0 + timedelta(seconds=2),
        device_key=3,
        device_id="wb-0042",
        device_kind="wristband",
        site_id="home-17",
        resident_id=7,
        resident_name="Wang Fang",
    )
    offsets = [i / 50 for i in range(50)]
    packs = [
        {
            "t0": T0.timestamp() + s,
            "t_offset": offsets,
            "acc_x": [float(s)] * 50,
            "acc_y": [0.0] * 50,
            "acc_z": [9.8] * 50,
        }
        for s in (0, 1, 2)
    ]
    window = assemble(event, packs)
    assert window is not None
    assert window.rate_hz == 50.0
    assert window.start == T0
    assert len(window.acc_x) == 150
    assert window.acc_x[0] == 0.0
    assert window.acc_x[-1] == 2.0
    assert (window.resident_id, window.device_kind) == (7, "wristband")
    assert assemble(event, []) is None
