"""Placement-aware fall detection: the placement vocabulary, the model chosen per placement,
the live replay (1-s packs through ``acc_stream.assemble``), the evaluation's statistics and
the ``external`` command on a tiny generated fixture."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from alerts.detection.fall import features as F
from alerts.detection.fall import live
from alerts.detection.fall import model as M
from alerts.detection.fall.detector import AccFallDetector, AccWindow
from alerts.evaluate import falls as E
from alerts.evaluate import falls_external as X
from alerts.evaluate.training.sisfall import COUNT_TO_MS2
from devices.domain import Placement

FIXTURES = Path(__file__).parent / "fixtures"
T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def fixture(name: str) -> np.ndarray:
    """A cut of a SisFall recording (waist, 200 Hz ADXL345 counts) in m/s2."""
    return np.loadtxt(FIXTURES / name, delimiter=",", comments="#") * COUNT_TO_MS2


def test_placement_parses_names_and_aliases() -> None:
    assert Placement.parse("Wrist") is Placement.WRIST
    assert Placement.parse(" belt ") is Placement.WAIST
    assert Placement.parse("pendant") is Placement.NECK
    assert Placement.parse("") is Placement.UNKNOWN
    with pytest.raises(ValueError, match="ankle"):
        Placement.parse("ankle")


def test_wilson_interval_matches_the_textbook() -> None:
    lo, hi = E.wilson(0, 10)
    assert lo == 0.0
    assert hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = E.wilson(95, 100)
    assert lo == pytest.approx(0.8883, abs=1e-4)
    assert hi == pytest.approx(0.9785, abs=1e-4)


def test_scheme_filter_keeps_only_the_matching_schemes(monkeypatch: pytest.MonkeyPatch) -> None:
    def recording(dataset: str, subject: int, fall: bool) -> E.Rec:
        t = np.arange(10) / 50.0
        return E.Rec(dataset, f"S{subject}", "x", 1, fall, None, "waist", t, np.zeros((10, 3)))

    made = {d: [recording(d, s, s % 2 == 0) for s in range(10)] for d in ("sisfall", "umafall")}
    monkeypatch.setattr(E.corpus, "load", lambda dataset, where: made[dataset])
    names = [name for name, _, _ in E.splits("waist")]
    assert names.count("subject-wise CV sisfall") == E.FOLDS
    assert "leave-umafall-out (trained on sisfall)" in names
    leave = [(name, keep, test) for name, keep, test in E.splits("waist", "leave")]
    assert [n for n, _, _ in leave] == [
        "leave-sisfall-out (trained on umafall)",
        "leave-umafall-out (trained on sisfall)",
    ]
    _, keep, test = leave[0]
    assert [r.key for r in test] == [r.key for r in made["sisfall"]]
    assert not any(keep(r) for r in made["sisfall"])
    assert all(keep(r) for r in made["umafall"])
    only_cv = {name for name, _, _ in E.splits("waist", "CV umafall")}
    assert only_cv == {"subject-wise CV umafall"}


def test_every_placement_has_a_model_that_matches_its_card() -> None:
    models = M.load_all()
    assert set(models) == set(M.PLACEMENTS)
    for placement, model in models.items():
        assert model.card["placement"] == placement
        assert 0.0 < model.threshold < 1.0


def quiet(n: int, rate: float) -> np.ndarray:
    """``n`` samples of a device lying still (rate only documents the caller's intent)."""
    rng = np.random.default_rng(3)
    out: np.ndarray = rng.normal(0, 0.05, size=(n, 3)) + np.array([0.0, 0.0, 9.81])
    return out


def test_unknown_and_neck_placements_say_which_model_judged_them() -> None:
    models = M.load_all()
    detector = AccFallDetector(M.load(), models)
    assert detector.model_for("wrist") == (models["wrist"], "wrist", False)
    assert detector.model_for("neck") == (models["chest"], "chest", True)
    assert detector.model_for("unknown") == (models["wrist"], "wrist", True)
    x = F.resample(fixture("sisfall_F01_SA01_R01_cut.txt"), 200.0)[: int(6.5 * 50)]
    for placement, words in (("unknown", "most conservative"), ("neck", "nearest")):
        w = AccWindow(3, "wb-1", "s", T0, 50.0, x[:, 0], x[:, 1], x[:, 2], placement=placement)
        confidence, verdict = detector.assess(w, now=T0)
        if verdict is not None:  # whether it fires depends on the model; the words do not
            assert words in verdict.explanation
            assert verdict.details["placement"] == placement
        assert 0.0 <= confidence <= 1.0


def test_live_packs_are_one_second_rows_of_the_recording() -> None:
    t = np.arange(0, 3.5, 0.05)
    x = quiet(len(t), 20.0)
    rows = live.packs(t, x, start=T0)
    assert len(rows) == 4
    assert [r["t0"] for r in rows] == pytest.approx([T0.timestamp() + s for s in (0, 1, 2, 3)])
    assert sum(len(r["acc_x"]) for r in rows) == len(t)  # type: ignore[arg-type, misc]
    assert rows[1]["t_offset"][0] == 0.0  # type: ignore[index]


def test_live_run_fires_on_a_real_fall_and_not_on_walking() -> None:
    detector = AccFallDetector(M.load(), M.load_all())
    fall = fixture("sisfall_F01_SA01_R01_cut.txt")
    t = np.arange(len(fall)) / 200.0
    out = live.run(t, fall, detector, placement="waist")
    assert out.fired
    assert out.alerts == 1
    assert out.first_alert_t is not None
    assert out.impact_t is not None
    assert 0.0 < out.first_alert_t - out.impact_t < 4.0  # judged 2-3 s after the impact
    walk = fixture("sisfall_D01_SA01_R01_cut.txt")
    calm = live.run(np.arange(len(walk)) / 200.0, walk, detector, placement="waist")
    assert not calm.fired
    assert calm.max_confidence < 0.5


def test_a_trace_that_starts_just_before_the_fall_is_judged_with_a_lead_in() -> None:
    """UMAFall's falls come 2-3 s into the trace; a device streams all day, so the replay
    gives the detector the history it would have had (without it, the impact is never in a
    window's candidate range and the fall is missed)."""
    detector = AccFallDetector(M.load(), M.load_all())
    fall = fixture("sisfall_F01_SA01_R01_cut.txt")[int(1.8 * 200) :]  # impact now ~2.2 s in
    t = np.arange(len(fall)) / 200.0
    cold = live.run(t, fall, detector, placement="waist", lead_in_s=0.0)
    assert not cold.fired
    warm = live.run(t, fall, detector, placement="waist")
    assert warm.fired
    assert warm.impact_t is not None
    assert 1.7 < warm.impact_t < 2.7  # times are from the trace's own start


def write_fixture(directory: Path) -> None:
    """Two SisFall cuts (waist) at 100 Hz and a quiet wrist trace at 25 Hz, as a vendor
    would send them."""
    rows = [("fall-1", "fall1.csv", "belt", "fall", "SA01", "")]
    rows += [("walk-1", "walk1.csv", "waist", "adl", "SA01", "21")]
    rows += [("rest-1", "rest1.csv", "wrist", "adl", "P9", "84")]
    with (directory / "manifest.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(X.COLUMNS)
        w.writerows(rows)
    for name, samples, rate in (
        ("fall1.csv", fixture("sisfall_F01_SA01_R01_cut.txt")[::2], 100.0),
        ("walk1.csv", fixture("sisfall_D01_SA01_R01_cut.txt")[::2], 100.0),
        ("rest1.csv", quiet(25 * 20, 25.0), 25.0),
    ):
        t = np.arange(len(samples)) / rate
        np.savetxt(
            directory / name,
            np.column_stack([t, samples]),
            delimiter=",",
            header="t,x,y,z",
            comments="",
            fmt="%.5f",
        )


def test_external_command_writes_one_row_per_recording(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_fixture(tmp_path)
    out = tmp_path / "result.csv"
    E.main(["external", str(tmp_path), "--out", str(out)])
    with out.open() as f:
        got = {r["recording"]: r for r in csv.DictReader(f)}
    assert list(got) == ["fall-1", "walk-1", "rest-1"]
    assert got["fall-1"]["fired"] == "1"
    assert float(got["fall-1"]["first_alert_t"]) > 0
    assert got["walk-1"]["fired"] == "0"
    assert got["walk-1"]["first_alert_t"] == ""
    assert got["rest-1"]["fired"] == "0"
    printed = capsys.readouterr().out
    assert "waist" in printed
    assert "wrist 80+" in printed
    assert "100.0% (1/1" in printed


def test_external_command_refuses_a_bad_manifest(tmp_path: Path) -> None:
    (tmp_path / "manifest.csv").write_text(
        "recording,file,placement,label,subject,age\nr1,../escape.csv,wrist,fall,s,\n"
    )
    with pytest.raises(X.ManifestError, match="outside"):
        X.read_manifest(tmp_path)
    (tmp_path / "manifest.csv").write_text(
        "recording,file,placement,label,subject,age\nr1,a.csv,ankle,fall,s,\n"
    )
    with pytest.raises(X.ManifestError):
        X.read_manifest(tmp_path)


def test_placement_is_provisioned_and_travels_with_acc_windows(
    services: object, database_url: str
) -> None:
    """The seeded wristbands are on the wrist; a device provisioned as a belt clip is at the
    waist; the worker's claim hands the placement to the acc path (and the detector)."""
    import asyncio

    import psycopg
    from psycopg.rows import dict_row

    from alerts.detection.worker import CLAIM_SQL, claim_params, to_event
    from devices.domain import DeviceKind
    from devices.registry import provision_device
    from tests.services import Services, query, seed

    assert isinstance(services, Services)
    seed(services, database_url)
    kinds = query(database_url, "SELECT kind, placement FROM devices")
    assert {r["placement"] for r in kinds if r["kind"] == "wristband"} == {"wrist"}
    assert {r["placement"] for r in kinds if r["kind"] == "bed_mat"} == {"unknown"}

    async def provision() -> int:
        async with await psycopg.AsyncConnection.connect(database_url, row_factory=dict_row) as c:
            p = await provision_device(
                c,
                device_id="clip-9",
                site_id="home-17",
                kind=DeviceKind.WRISTBAND,
                now=T0,
                placement=Placement.parse("belt"),
            )
            await c.commit()
            return p.device_key

    key = asyncio.run(provision())
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        conn.execute(
            "INSERT INTO stream_outbox (kind, device_key, time, name) VALUES ('acc', %s, %s, 'acc')",
            (key, T0),
        )
        rows = conn.execute(CLAIM_SQL, claim_params(1000)).fetchall()
        [row] = [r for r in rows if r["device_key"] == key]
        assert to_event(row).placement == "waist"
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("UPDATE devices SET placement = 'ankle' WHERE device_key = %s", (key,))
