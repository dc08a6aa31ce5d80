"""Pure parts of the population simulator: calibration, routines, vitals, SisFall conversion,
incidents, hostile faults, the clock and the judge."""

from __future__ import annotations

import itertools
import random
import statistics
from datetime import UTC, datetime
from pathlib import Path

import pytest

from devices.domain import CareProfile, DeviceKind
from devices.wire import parse_senml
from simulators import calibration, sisfall
from simulators import devices as packs
from simulators.api import Alert
from simulators.clock import epoch_clock, sim_start
from simulators.conform import build, cast
from simulators.fleet import DeviceCreds
from simulators.hostile import MALFORMED
from simulators.judge import judge, scorecard
from simulators.population import PROFILE_DEVICES, build_population, vitals
from simulators.routine import DAY, day_events, local_midnight
from simulators.scenario import BUNDLED, load
from simulators.timeline import Op, Truth

CALIB = calibration.load()
MIDNIGHT = local_midnight(1_795_000_000.0)


def creds() -> list[DeviceCreds]:
    """The shape of the demo seed's credentials file for room 101 and home-17."""
    out = [DeviceCreds("sunrise", "smoke-sunrise-1", DeviceKind.SMOKE, "pw")]
    for kind, prefix in ((DeviceKind.PIR, "pir"), (DeviceKind.DOOR, "door")):
        out.append(DeviceCreds("sunrise", f"{prefix}-r101", kind, "pw", None, "room 101"))
    out.append(DeviceCreds("sunrise", "sos-r101", DeviceKind.SOS_BUTTON, "pw", None, "room 101"))
    for i, name in enumerate(("Wang Fang", "Li Wei")):
        for kind, prefix in ((DeviceKind.WRISTBAND, "wb"), (DeviceKind.BED_MAT, "bed")):
            out.append(
                DeviceCreds("sunrise", f"{prefix}-s{i + 1:02d}", kind, "pw", name, "room 101")
            )
    for kind, prefix in (
        (DeviceKind.SOS_BUTTON, "btn"),
        (DeviceKind.WRISTBAND, "wb"),
        (DeviceKind.BED_MAT, "bed"),
        (DeviceKind.SEAT_MAT, "seat"),
        (DeviceKind.PIR, "pir"),
        (DeviceKind.DOOR, "door"),
        (DeviceKind.SMOKE, "smoke"),
    ):
        out.append(DeviceCreds("home-17", f"{prefix}-0042", kind, "pw", "Zheng Hui", "bedroom"))
    return out


def test_calibration_reads_the_real_logs_format(tmp_path: Path) -> None:
    (tmp_path / "houseA.sensors").write_text("100000\t5\t1\n100030\t1\t1\n100200\t1\t2\n")
    (tmp_path / "houseA.activities").write_text("")
    assert calibration.read_intervals(tmp_path / "houseA.sensors")[0] == (100000.0, 5.0, 1)
    assert calibration.thin([0.0, 30.0, 61.0, 200.0]) == [0.0, 61.0, 200.0]
    shares = calibration.spell_histogram([30.0, 90.0, 400.0, 40000.0])
    assert shares[0] == pytest.approx(1 / 3)  # 1-2 min
    assert shares[-1] == pytest.approx(1 / 3)  # open bin
    assert sum(calibration.hour_share([0.0, 3600.0, 3700.0])) == pytest.approx(1.0)


def test_shipped_calibration_names_its_source_and_is_plausible() -> None:
    assert "Kasteren" in CALIB.source
    assert 22.0 < CALIB.bed_time_h.mean < 27.0
    assert 6.0 < CALIB.sleep_h.mean < 10.0
    assert sum(CALIB.real_hour_share) == pytest.approx(1.0, abs=0.01)
    assert CALIB.awake_gap_s_quantiles == sorted(CALIB.awake_gap_s_quantiles)


@pytest.mark.parametrize("profile", list(CareProfile))
def test_a_day_of_routine_stays_in_the_day_and_sleeps_at_night(profile: CareProfile) -> None:
    rng = random.Random(3)
    events = [
        e
        for d in range(10)
        for e in day_events(profile, day_start=MIDNIGHT + d * DAY, calib=CALIB, rng=rng)
    ]
    assert events == sorted(events)
    assert all(MIDNIGHT <= e.at < MIDNIGHT + 10 * DAY for e in events)
    in_bed = [
        ((e.at - MIDNIGHT) % DAY) / 3600
        for e in events
        if e.value is True and e.name == "presence" and e.device is DeviceKind.BED_MAT
    ]
    assert len(in_bed) >= 9  # to bed every night (and back after night toilet visits)
    assert all(h >= 20 or h < 11 for h in in_bed)  # never into bed in the afternoon
    assert sum(1 for e in events if e.name == "motion") > 10 * 50  # moving every day
    seated = [e for e in events if e.device is DeviceKind.SEAT_MAT]
    assert sum(e.value is True for e in seated) == sum(e.value is False for e in seated)
    if profile is not CareProfile.BED_BOUND:  # long quiet spells by day are spent seated
        assert sum(e.value is True for e in seated) >= 5


def test_independent_residents_go_out_and_bed_bound_ones_do_not() -> None:
    def outings(profile: CareProfile) -> int:
        """Door opened, and opened again with no movement at home in between (a visitor
        moves about the room; someone who went out does not)."""
        rng = random.Random(5)
        evs = sorted(
            (
                e
                for d in range(30)
                for e in day_events(profile, day_start=MIDNIGHT + d * DAY, calib=CALIB, rng=rng)
                if e.name == "motion" or (e.name == "door" and e.value == "open")
            ),
            key=lambda e: e.at,
        )
        opens = [i for i, e in enumerate(evs) if e.name == "door"]
        return sum(
            1
            for a, b in itertools.pairwise(opens)
            if all(e.name != "motion" for e in evs[a + 1 : b])
        )

    assert outings(CareProfile.INDEPENDENT) > 2 * outings(CareProfile.FRAIL)
    assert outings(CareProfile.BED_BOUND) < outings(CareProfile.FRAIL)


def test_vitals_follow_a_daily_rhythm_and_deteriorate() -> None:
    rng = random.Random(1)
    four_am = MIDNIGHT + 4 * 3600
    four_pm = MIDNIGHT + 16 * 3600
    night = statistics.fmean(
        vitals(CareProfile.FRAIL, now=four_am, asleep=True, rng=rng).hr for _ in range(50)
    )
    day = statistics.fmean(
        vitals(CareProfile.FRAIL, now=four_pm, asleep=False, rng=rng).hr for _ in range(50)
    )
    assert night + 10 < day
    sick = vitals(CareProfile.FRAIL, now=four_pm, asleep=False, rng=rng, deterioration=1.0)
    assert sick.hr > 120
    assert sick.spo2 < 90


def test_profiles_decide_which_devices_a_resident_has() -> None:
    people = {r.name: r for r in build_population(creds())}
    assert people["Wang Fang"].profile is CareProfile.INDEPENDENT  # the seed's order
    assert people["Li Wei"].profile is CareProfile.FRAIL
    assert not people["Wang Fang"].wears_band
    assert people["Li Wei"].device(DeviceKind.WRISTBAND).device_id == "wb-s02"  # type: ignore[union-attr]
    assert people["Li Wei"].device(DeviceKind.PIR).device_id == "pir-r101"  # type: ignore[union-attr]
    assert set(people["Zheng Hui"].devices) == PROFILE_DEVICES[CareProfile.FRAIL]


def test_sisfall_conversion_and_resampling() -> None:
    text = "\r\n".join(["256,0,-256,1,2,3,4,5,6;"] * 8) + "\r\n"
    samples = sisfall.parse_recording(text)
    assert samples[0][0] == pytest.approx(256 * 32 / 8192 * 9.80665)  # 1 g
    assert len(sisfall.resample(samples)) == 2
    traces = sisfall.load()
    assert traces.rate_hz == 50
    assert len(traces.traces) == 15
    for t in traces.traces:
        peak = max(sum(v * v for v in s) ** 0.5 for s in t.samples)
        assert peak > 2 * 9.81, t.file  # a real impact, well above 1 g
        assert len(t.samples) == 200


def _scenario_msgs(name: str, start: float = 1_795_000_000.0) -> list:  # type: ignore[type-arg]
    sc = load(BUNDLED / f"{name}.toml")
    c = creds()
    return build(sc, cast(sc, c), {d.device_id: d for d in c}, start=start)


def test_the_test_scenario_builds_valid_packs_truths_and_faults() -> None:
    start = 1_795_000_000.0
    msgs = _scenario_msgs("smoke-sos-fall", start)
    truths = [m.truth for m in msgs if m.op is Op.TRUTH and m.truth]
    assert [t.what for t in truths] == ["sos", "fall", "smoke"]
    assert truths[1].device_id == "wb-0042"
    names = set()
    for m in msgs:
        if m.pack is not None:
            parsed = parse_senml(packs.encode(m.pack), now=start + 100)
            names |= {r.name for r in parsed.records}
    assert {"sos", "fall", "smoke", "acc_x", "hr", "seq"} <= names
    assert sum(1 for m in msgs if m.raw in MALFORMED) == 18  # 9, duplicated
    seqs = [
        int(m.pack[-1]["v"])
        for m in sorted(msgs, key=lambda m: m.at)
        if m.device_id == "pir-0042" and m.pack
    ]
    assert len(seqs) > len(set(seqs))  # duplicates repeat their number
    wb = [
        int(m.pack[-1]["v"])
        for m in sorted(msgs, key=lambda m: m.at)
        if m.device_id == "wb-0042" and m.pack
    ]
    assert wb != sorted(wb)  # out of order


def test_compressed_clock_never_runs_ahead_of_the_wall() -> None:
    wall = 1_795_000_000.0
    start = sim_start(wall_now=wall, duration=86400, speed=120, start_local=None)
    clock = epoch_clock(start, wall, speed=120)
    assert clock.sim_of(wall + 86400 / 120) == pytest.approx(wall)
    six = sim_start(wall_now=wall, duration=86400, speed=120, start_local="06:00")
    assert six <= start
    assert ((six + 8 * 3600) % DAY) == pytest.approx(6 * 3600)


def _truth(**kw: object) -> Truth:
    base: dict[str, object] = dict(
        id=1,
        what="smoke",
        site_id="home-17",
        resident=None,
        device_id="smoke-0042",
        sim_start=1000.0,
        sim_at=1000.0,
        expect_colour="red",
        expect_kind=["smoke"],
        max_delay_s=10.0,
        accept=False,
        wall_at=1000.0,
    )
    return Truth(**(base | kw))  # type: ignore[arg-type]


def _alert(alert_id: int, kind: str, raised: float, colour: str = "red") -> Alert:
    return Alert(
        alert_id=alert_id,
        site_id="home-17",
        resident_id=None,
        resident_name=None,
        kind=kind,
        colour=colour,
        occurred_at=datetime.fromtimestamp(1000.0, UTC),
        raised_at=datetime.fromtimestamp(raised, UTC),
        explanation="x",
        order_id=None,
        order_state=None,
    )


def test_the_judge_names_missed_late_wrong_and_false_alarms() -> None:
    truths = [
        _truth(),
        _truth(id=2, what="sos", expect_kind=["sos"]),
        _truth(id=3, what="fall", expect_kind=["fall"]),
    ]
    alerts = [
        _alert(1, "smoke", 1002.0),
        _alert(2, "sos", 1030.0),
        _alert(3, "inactivity", 1005.0),
        _alert(4, "fall", 1001.0, "yellow"),
    ]
    verdicts, false_alarms = judge(truths, alerts, speed=1.0, accepted={}, accept_errors={})
    assert [v.passed for v in verdicts] == [True, False, False]
    assert "raised after 30.0 s" in verdicts[1].problems[0]
    assert "colour yellow" in verdicts[2].problems[0]
    assert [a.alert_id for a in false_alarms] == [3]
    lines, ok = scorecard("t", verdicts, false_alarms, max_false=0)
    assert not ok
    assert any(line.startswith("  MISSED #2 sos") for line in lines)
    assert any("FALSE ALARM alert 3" in line for line in lines)


def test_more_expected_alerts_of_a_caught_incident_are_part_of_it() -> None:
    night = _truth(
        what="night_wandering", expect_colour="yellow", expect_kind=["wandering", "bed_exit"]
    )
    alerts = [
        _alert(1, "wandering", 1001.0, "yellow"),
        _alert(2, "bed_exit", 1020.0, "yellow"),
        _alert(3, "inactivity", 1030.0, "yellow"),
    ]
    verdicts, false_alarms = judge([night], alerts, speed=1.0, accepted={}, accept_errors={})
    assert verdicts[0].passed
    assert verdicts[0].alert is not None
    assert verdicts[0].alert.alert_id == 1
    assert [a.alert_id for a in verdicts[0].also] == [2]
    assert [a.alert_id for a in false_alarms] == [3]
    lines, _ = scorecard("t", verdicts, false_alarms, max_false=1)
    assert any(line.strip().startswith("also alert 2: yellow bed_exit") for line in lines)


@pytest.mark.parametrize("path", sorted(BUNDLED.glob("*.toml")), ids=lambda p: p.stem)
def test_bundled_scenarios_load(path: Path) -> None:
    sc = load(path)
    assert sc.incident or sc.fault or sc.max_false_alarms == 0


@pytest.mark.parametrize(("where", "last"), [("seated", "presence"), ("after_home", "door")])
def test_a_collapse_leaves_its_resting_place_as_the_last_sign_of_life(
    where: str, last: str
) -> None:
    import msgspec

    sc = load(BUNDLED / "collapse-at-home.toml")
    inc = next(i for i in sc.incident if i.where == where)
    sc = msgspec.structs.replace(
        sc, sites=["home-17"], incident=[msgspec.structs.replace(inc, resident="Zheng Hui")]
    )
    c = creds()
    start = 1_795_000_000.0
    msgs = build(sc, cast(sc, c), {d.device_id: d for d in c}, start=start)
    t = start + inc.at_s
    mine = {"pir-0042", "seat-0042", "door-0042", "wb-0042", "bed-0042"}
    events = sorted(
        (m.at, m.device_id, r.get("n"), r.get("vb", r.get("vs")))
        for m in msgs
        if m.pack is not None and m.device_id in mine
        for r in m.pack
        if r.get("n") in ("motion", "presence", "door", "activity")
    )
    before = [e for e in events if e[0] <= t]
    assert before[-1][2] == last
    if where == "seated":
        assert before[-1][1:] == ("seat-0042", "presence", True)
    else:  # back through the door an hour after leaving through it
        assert [e[3] for e in before if e[1] == "door-0042"][-4:] == [
            "open",
            "closed",
            "open",
            "closed",
        ]
    assert not [e for e in events if t < e[0] < t + inc.duration_s]  # nothing moves after


def test_simulated_homes_are_written_in_the_evaluation_format(tmp_path: Path) -> None:
    from alerts.evaluate.datasets.external import load_external
    from simulators.homes import write_home

    path = write_home(tmp_path, "sim-frail", CareProfile.FRAIL, days=6, calib=CALIB, seed=3)
    home = load_external(path)
    kinds = {a.device_kind for a in home.events}
    assert kinds == {"pir", "door", "bed_mat", "seat_mat", "wristband"}
    assert home.timezone == "Asia/Shanghai"
    assert sum(1 for lab in home.labels if lab.name == "sleeping") >= 6
    assert all(lab.start < lab.end for lab in home.labels)
    again = write_home(
        tmp_path / "again", "sim-frail", CareProfile.FRAIL, days=6, calib=CALIB, seed=3
    )
    assert (again / "events.csv").read_text() == (path / "events.csv").read_text()
