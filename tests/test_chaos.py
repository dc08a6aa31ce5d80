"""The chaos run (issue 18, item 7): its plan, its judge and its faults in isolation, then the
short run end to end against a fresh main job (``bash scripts/chaos.sh chaos-short``)."""

from __future__ import annotations

import itertools
import os
import random
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from devices.domain import CareProfile, DeviceKind
from simulators import chaos_plan
from simulators.api import Alert, Order
from simulators.attacks import Outcome, poison_payloads
from simulators.chaos import Metrics
from simulators.chaos_judge import incidents, kind_group, p99, payload_outcome, scorecard
from simulators.chaos_plan import AttackWhat, Chaos, FaultWhat
from simulators.faults import Operator, find_pids
from simulators.fleet import DeviceCreds
from simulators.population import build_population
from simulators.scenario import Scenario, What
from simulators.timeline import Truth
from tests.services import ROOT

T0 = 1_795_000_000.0


def _creds() -> list[DeviceCreds]:
    out = [DeviceCreds("s", "smoke-1", DeviceKind.SMOKE, "pw")]
    for i in range(24):
        room = f"room {i // 2}"
        if i % 2 == 0:
            out += [
                DeviceCreds("s", f"btn-{i}", DeviceKind.SOS_BUTTON, "pw", room=room),
                DeviceCreds("s", f"pir-{i}", DeviceKind.PIR, "pw", room=room),
            ]
        out.append(DeviceCreds("s", f"wb-{i}", DeviceKind.WRISTBAND, "pw", f"R{i}", room))
    out += [DeviceCreds("x", f"att-{i}", DeviceKind.PIR, "pw") for i in range(4)]
    return out


def _plan(seed: int = 18) -> chaos_plan.Plan:
    scenario = Scenario(name="t", sites=["s"], duration_s=120)
    residents = build_population(
        [d for d in _creds() if d.site_id == "s"],
        profiles=dict.fromkeys([f"R{i}" for i in range(24)], CareProfile.FRAIL),
    )
    return chaos_plan.plan(scenario, Chaos(seed=seed, incident_every_s=6), residents)


def test_the_plan_is_seeded_and_keeps_faults_and_attacks_apart() -> None:
    a, b = _plan(), _plan()
    assert a.faults == b.faults
    assert a.attacks == b.attacks
    assert a.scenario.incident == b.scenario.incident
    assert _plan(seed=19).faults != a.faults
    assert sorted(f.what for f in a.faults) == sorted(FaultWhat)
    assert sorted(x.what for x in a.attacks) == sorted(AttackWhat)
    moments = sorted([f.at_s for f in a.faults] + [x.at_s for x in a.attacks])
    assert all(b - a > 2.0 for a, b in itertools.pairwise(moments))
    assert moments[0] >= 8.0
    assert moments[-1] <= 120 - 8.0


@pytest.mark.parametrize(
    "path", sorted(chaos_plan.CHAOS_BUNDLED.glob("*.toml")), ids=lambda p: p.stem
)
def test_bundled_chaos_scenarios_load_and_play_every_fault(path: Path) -> None:
    scenario, chaos = chaos_plan.load(path)
    assert scenario.speed == 1.0
    assert set(chaos.faults) == set(FaultWhat)
    assert chaos_plan.load(Path(path.stem)) == (scenario, chaos)  # by its bare name


def test_every_attack_has_a_witness_and_the_flood_its_own_sos() -> None:
    p = _plan()
    assert sorted(p.witnesses.values()) == sorted(AttackWhat)
    assert p.flood_sos is not None
    flood_at = next(x.at_s for x in p.attacks if x.what is AttackWhat.FLOOD)
    own = p.scenario.incident[p.flood_sos - 1]
    assert own.what is What.SOS
    assert own.device is not None
    assert own.device.startswith("btn-")
    assert own.at_s == pytest.approx(flood_at + chaos_plan.FLOOD_SOS_AFTER_S)


def test_incidents_of_one_room_are_kept_outside_the_fold_window() -> None:
    p = _plan()
    by_room: dict[str, list[float]] = {}
    for inc in p.scenario.incident:
        if inc.what is not What.SMOKE:
            room = inc.resident and f"room {int(inc.resident[1:]) // 2}"
            by_room.setdefault(str(room), []).append(inc.at_s)
    for times in by_room.values():
        times.sort()
        assert all(b - a >= chaos_plan.FOLD_GAP_S for a, b in itertools.pairwise(times))
    assert len(p.scenario.incident) >= 8


def _truth(i: int, at: float, device: str = "btn-0", resident: str | None = "R0") -> Truth:
    return Truth(
        id=i, what="sos", site_id="s", resident=resident, device_id=device, sim_start=at,
        sim_at=at, expect_colour="red", expect_kind=["sos"], max_delay_s=60, accept=False,
        wall_at=at,
    )  # fmt: skip


def _alert(i: int, at: float, order: int | None, kind: str = "sos") -> Alert:
    when = datetime.fromtimestamp(at, UTC)
    return Alert(i, "s", None, None, kind, "red", when, when, "", order, "offered")


def _order(i: int, offered: float | None) -> Order:
    when = datetime.fromtimestamp(T0, UTC)
    at = datetime.fromtimestamp(offered, UTC) if offered is not None else None
    return Order(i, None, "s", "offered", when, when, None, offered_at=at)


def test_the_judge_tells_offered_missed_and_doubled_apart() -> None:
    truths = [_truth(1, T0), _truth(2, T0 + 1.0, "btn-2", "R2"), _truth(3, T0 + 30)]
    truths.append(_truth(4, T0 + 50))
    alerts = [
        _alert(1, T0, 1),
        _alert(2, T0 + 1.0, 2),  # a second apart at the same site: each to its own incident
        _alert(3, T0 + 30, 3),
        _alert(4, T0 + 30.2, 4),  # the same SOS again after a restart: a second order
        _alert(5, T0 + 50, 5),
        _alert(6, T0 + 60, None, "worker_down"),
    ]
    orders = {1: _order(1, T0 + 0.5), 2: _order(2, T0 + 3.0), 3: _order(3, T0 + 31)}
    orders |= {4: _order(4, T0 + 32), 5: _order(5, None)}
    chaos = Chaos()
    vs = incidents(truths, alerts, orders, chaos=chaos, shared=frozenset(), witnesses={})
    assert [v.offer_s for v in vs] == [0.5, 2.0, 1.0, None]
    assert vs[0].problems == []
    assert vs[1].problems == []
    assert vs[2].problems == ["doubled: 2 orders (3, 4)"]
    assert vs[3].problems == ["order 5 never offered to a responder"]
    lines, ok = scorecard("t", vs, [], [], alerts, chaos=chaos, explained=set(), api_outages=[])
    assert not ok
    assert "1 doubled" in lines[-1]
    assert "2/4 incidents offered" in lines[-1]
    assert "other alerts (technical): worker_down x1" in "\n".join(lines)
    vs = incidents(truths[:2], alerts[:2], orders, chaos=chaos, shared=frozenset(), witnesses={})
    assert scorecard("t", vs, [], [], [], chaos=chaos, explained=set(), api_outages=[])[1]


def test_the_latency_bound_is_the_nearest_rank_p99() -> None:
    assert p99([]) is None
    assert p99([1.0, 9.0, 2.0]) == 9.0
    assert p99([float(i) for i in range(1, 201)]) == 198.0
    slow = _truth(1, T0)
    vs = incidents(
        [slow], [_alert(1, T0, 1)], {1: _order(1, T0 + 6)}, chaos=Chaos(), shared=frozenset(),
        witnesses={},
    )  # fmt: skip
    lines, ok = scorecard("t", vs, [], [], [], chaos=Chaos(), explained=set(), api_outages=[])
    assert not ok
    assert "p99 6.00 s (max 5 s)" in lines[-1]


def test_kinds_are_grouped_tolerantly() -> None:
    assert kind_group("sos") == kind_group("vitals_hr") == "resident"
    assert kind_group("device_offline") == "device"
    assert kind_group("worker_down") == kind_group("heartbeat_lost") == "technical"


def test_payload_outcomes_say_refused_recorded_or_accepted() -> None:
    poison = Outcome(AttackWhat.POISON, T0, facts={"sent": 7})
    got = payload_outcome(
        poison, rejected={"bad_json": 7}, late=None, ingest_restarts=0, alerts=[],
        flood_sos=None, timeline_status=None,
    )  # fmt: skip
    assert (got.verdict, got.harmful) == ("recorded as dead letter", False)
    crashed = Outcome(AttackWhat.POISON, T0, facts={"sent": 7})
    got = payload_outcome(
        crashed, rejected={}, late=None, ingest_restarts=3, alerts=[], flood_sos=None,
        timeline_status=None,
    )  # fmt: skip
    assert got.harmful
    assert "restarted 3x" in got.detail
    broken = Outcome(AttackWhat.IMPLAUSIBLE, T0, facts={"sent": 3})
    got = payload_outcome(
        broken, rejected={}, late=None, ingest_restarts=0, alerts=[], flood_sos=None,
        timeline_status=500,
    )  # fmt: skip
    assert got.harmful
    assert "timeline answers 500" in got.detail
    old = _alert(9, datetime(2005, 1, 1, tzinfo=UTC).timestamp(), 9)
    got = payload_outcome(
        Outcome(AttackWhat.OLD_SOS, T0), rejected={}, late=None, ingest_restarts=0,
        alerts=[old], flood_sos=None, timeline_status=None,
    )  # fmt: skip
    assert got.harmful
    assert "dispatched as a new emergency" in got.detail


def test_poison_payloads_are_what_the_issue_found() -> None:
    deep, huge, *_ = poison_payloads("pir-1", T0)
    assert deep.startswith(b"[" * 100_000)
    assert len(deep) == 200_000
    assert 900_000 < len(huge) < 1_048_576  # under the broker's message size limit


def test_metrics_add_up_across_ingest_restarts(tmp_path: Path) -> None:
    m = Metrics(None)
    for text in (
        'ingest_messages_rejected_total{reason="bad_json"} 2.0\ningest_late_messages_total 1.0',
        'ingest_messages_rejected_total{reason="bad_json"} 5.0',
        'ingest_messages_rejected_total{reason="bad_json"} 1.0',  # restarted: counts from 0
    ):
        m.feed(text)
        time.sleep(0.01)
    assert m.total == {"bad_json": 6.0, "late": 1.0}
    start, end = m.series[0][0], m.series[-1][0]
    assert m.delta(start, end) == {"bad_json": 4.0}


def test_the_operator_kills_only_its_own_run_and_waits_for_a_restart(tmp_path: Path) -> None:
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)", "-m", "ingest", "run"]
    mine = subprocess.Popen(sleeper, env={**os.environ, "ELDERCARE_RUN_DIR": str(tmp_path)})
    other = subprocess.Popen(sleeper, env={**os.environ, "ELDERCARE_RUN_DIR": "/elsewhere"})
    try:
        deadline = time.monotonic() + 10
        while find_pids(tmp_path, FaultWhat.KILL_INGEST) != [mine.pid]:
            assert time.monotonic() < deadline, "the sleeper was not found"
            time.sleep(0.05)
        done = Operator(tmp_path, rng=random.Random(1), restart_within_s=1.0).do(
            FaultWhat.KILL_INGEST
        )
        assert mine.wait(timeout=5) == -9
        assert done.target == f"pid {mine.pid} (of {mine.pid})"
        assert done.down_s is None  # nobody restarted it: the scorecard says NOT BACK
        assert other.poll() is None
        gone = Operator(tmp_path, rng=random.Random(1), restart_within_s=1.0).do(
            FaultWhat.KILL_ALERTS
        )
        assert gone.error
        assert "no alerts run process" in gone.error
    finally:
        for p in (mine, other):
            p.kill()
            p.wait()


NEEDS = (
    "the chaos run needs, merged: scripts/run.sh restarting each crashed component with "
    "backoff while the others keep serving (supervision); two alerts workers or a restart "
    "fast enough for event->offer p99 < 5 s; ingest dead-lettering poison payloads and "
    "keeping a flooding device's SOS (ingest); device accounts refused $share/wildcard "
    "subscriptions and other clients' ids (broker)"
)


@pytest.mark.integration
def test_the_short_chaos_run_passes_against_the_main_job() -> None:
    env = {**os.environ, "ELDERCARE_CHAOS_DIR": ".run/chaos-test"}
    result = subprocess.run(
        ["bash", "scripts/chaos.sh", "chaos-short"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    out = result.stdout
    print(out, result.stderr[-3000:])
    assert "chaos chaos-short:" in out, f"{NEEDS}\n{out}\n{result.stderr[-3000:]}"
    faults = re.findall(r"^  (?:fault|NOT BACK|FAULT FAILED) (\w+)", out, re.M)
    assert sorted(faults) == sorted(FaultWhat), out
    assert re.search(r"^result: PASS", out, re.M), f"{NEEDS}\n{out}"
    assert result.returncode == 0, out
