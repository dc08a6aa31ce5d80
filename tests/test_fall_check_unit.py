"""The "did you fall?" check, pure parts (bands, the wearer's window, lying still, the check's
decision, its replay in the live path, the simulated wristband's answer)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from alerts.detection.detectors.base import CheckContext, ContextEvent, Dismissed, Verdict
from alerts.detection.events_json import verdict_from_json, verdict_to_json
from alerts.detection.fall import check as C
from alerts.detection.fall import features as F
from alerts.detection.fall.detector import AccFallDetector, AccWindow
from alerts.detection.fall.live import Scored, checked
from alerts.detection.fall.model import FallModel
from alerts.evaluate.training.sisfall import COUNT_TO_MS2
from devices.careplan import CarePlanError, care_plan_for
from devices.domain import CareProfile, Colour, DeviceKind
from devices.wire import parse_senml
from simulators import devices as packs
from simulators.population import answers_fall_check

FIXTURES = Path(__file__).parent / "fixtures"
T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


class Fixed:
    """An estimator that scores every window ``p`` (the bands, not the model, are tested)."""

    def __init__(self, p: float) -> None:
        self.p = p

    def predict_proba(self, X: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.column_stack([np.full(len(X), 1 - self.p), np.full(len(X), self.p)])


def fall_window(check_s: int = 30) -> AccWindow:
    raw = np.loadtxt(FIXTURES / "sisfall_F01_SA01_R01_cut.txt", delimiter=",", comments="#")
    x = F.resample(raw * COUNT_TO_MS2, 200.0)[: int(6.5 * 50)]
    return AccWindow(3, "wb-0042", "home-17", T0, 50.0, x[:, 0], x[:, 1], x[:, 2], 7,
                     placement="wrist", check_s=check_s)  # fmt: skip


def detector(p: float) -> AccFallDetector:
    model = FallModel(Fixed(p), 0.7, 1.4, {"placement": "wrist"})
    return AccFallDetector(model, {"wrist": model})


def test_a_certain_fall_pages_and_a_likely_one_asks_first() -> None:
    certain = detector(C.CERTAIN["wrist"]).evaluate(fall_window(), now=T0)
    assert certain is not None
    assert certain.details["band"] == "certain"
    assert "check" not in certain.details
    likely = detector(0.8).evaluate(fall_window(), now=T0)
    assert likely is not None
    assert likely.details["band"] == "likely"
    assert (likely.details["check"], likely.details["check_window_s"]) == (True, 30)
    # a resident who is never asked (dementia: window 0) is paged at once
    never = detector(0.8).evaluate(fall_window(check_s=0), now=T0)
    assert never is not None
    assert "check" not in never.details
    assert detector(0.5).evaluate(fall_window(), now=T0) is None  # below the threshold


def test_the_window_comes_from_the_care_plan() -> None:
    assert C.window_s(()) == 30
    frail, dementia = (
        care_plan_for(CareProfile.FRAIL, None),
        care_plan_for(CareProfile.DEMENTIA, {}),
    )
    assert (frail.fall_check_s, dementia.fall_check_s) == (30, 0)
    assert C.window_s((frail, care_plan_for(CareProfile.FRAIL, {"fall_check_s": 20}))) == 20
    assert C.window_s((frail, dementia)) == 0  # a shared band: never ask
    with pytest.raises(CarePlanError):
        care_plan_for(CareProfile.FRAIL, {"fall_check_s": 50})  # impact to order >= 60 s
    assert C.due_at(T0, 45) - T0 < timedelta(seconds=55)


def still_trace(move_at: float | None, *, seconds: float = 20.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    t = np.arange(0, seconds, 0.02)
    x = np.column_stack([np.zeros_like(t), np.zeros_like(t), np.full_like(t, 9.81)])
    x += rng.normal(0, 0.03, x.shape)  # sensor noise
    if move_at is not None:
        x[(t > move_at) & (t < move_at + 0.5), 0] += 3.0  # an arm lifted
    return t, x


def test_lying_still_after_the_impact() -> None:
    t, x = still_trace(None)
    assert C.still_since(t, x, impact=1.0) == pytest.approx(1.0 + C.SETTLE_S + C.STILL_S, abs=0.05)
    t, x = still_trace(6.0)
    assert C.still_since(t, x, impact=1.0) is None  # moved: conscious
    t, x = still_trace(None, seconds=10.0)
    assert C.still_since(t, x, impact=1.0) is None  # not yet known


def pending(due_s: int = 33) -> C.PendingCheck:
    verdict = Verdict("acc_fall", "fall", Colour.RED, T0, "home-17", "acc_fall:3:1", "fall:7",
                      120, "Possible fall", resident_id=7, device_key=3,
                      details={"check": True})  # fmt: skip
    return C.PendingCheck(41, verdict, 3, T0 + timedelta(seconds=due_s), 30)


def ev(name: str, at_s: float, *, key: int = 3, vb: bool | None = None, vs: str | None = None) -> ContextEvent:  # fmt: skip
    return ContextEvent(T0 + timedelta(seconds=at_s), name, key, "wristband", value_bool=vb,
                        value_text=vs)  # fmt: skip


def test_the_check_decides() -> None:
    check, at = pending(), T0 + timedelta(seconds=10)
    assert C.judge(check, CheckContext([]), still_at=None, now=at) is None  # still waiting
    ok = CheckContext([ev(C.ANSWER, 8, vs="41")])
    assert isinstance(C.judge(check, ok, still_at=None, now=at), Dismissed)
    for wrong in (ev(C.ANSWER, 8, vs="40"), ev(C.ANSWER, 8, key=9, vs="41"), ev(C.ANSWER, 40, vs="41")):  # fmt: skip
        assert C.judge(check, CheckContext([wrong]), still_at=None, now=at) is None
    sos = C.judge(check, CheckContext([ev(C.ANSWER, 8, vs="41"), ev("sos", 9, vb=True)]),
                  still_at=None, now=at)  # fmt: skip
    assert isinstance(sos, Verdict)
    assert sos.details["check_outcome"] == "sos"
    assert sos.fold_key == "sos:7"  # joins the SOS press's alert: one order
    still = C.judge(check, CheckContext([]), still_at=at, now=at)
    assert isinstance(still, Verdict)
    assert still.details["check_outcome"] == "lying_still"
    late = C.judge(check, CheckContext([]), still_at=None, now=check.due_at)
    assert isinstance(late, Verdict)
    assert late.details["check_outcome"] == "no_answer"
    assert late.fold_key == "fall:7"
    assert "no answer within 30 s" in late.explanation
    assert verdict_from_json(verdict_to_json(late)) == late


def test_the_replay_counts_checks_and_pages() -> None:
    likely = Scored(3.0, 5.0, 0.8, None, 120)
    assert checked([likely], certain=0.99) == checked([likely, replace(likely, impact_t=4.0)],
                                                      certain=0.99)  # fmt: skip
    one = checked([likely], certain=0.99)
    assert (one.checks, one.paged_at_once, one.paged_if_answered) == (1, False, False)
    assert one.page_t == 3.0 + C.DETECT_LAG_S + 30
    sure = checked([likely, replace(likely, confidence=0.995)], certain=0.99)
    assert (sure.checks, sure.paged_at_once, sure.page_t) == (1, True, 5.0)
    lying = checked([replace(likely, still_t=15.0)], certain=0.99)
    assert (lying.paged_if_answered, lying.page_t) == (True, 15.0)
    assert checked([likely], certain=0.0).paged_at_once  # no check band: every fall pages


def test_a_simulated_wristband_answers_over_the_wire() -> None:
    cmd: dict[str, object] = {"type": "fall_check", "check_id": "41", "window_s": 30,
                              "impact_ts": 1795000000.0, "until_ts": 1795000033.0}  # fmt: skip
    pack = packs.fall_check_answer(cmd, device_id="wb-0042", now=1795000010.0, can_answer=True)
    assert pack is not None
    parsed = parse_senml(packs.encode(pack), now=1795000011.0)
    [rec] = parsed.records
    assert (rec.name, rec.value, rec.time) == (C.ANSWER, "41", 1795000010.0)
    assert packs.fall_check_answer(cmd, device_id="wb-0042", now=1795000040.0, can_answer=True) is None  # fmt: skip
    assert packs.fall_check_answer(cmd, device_id="wb-0042", now=1795000010.0, can_answer=False) is None  # fmt: skip
    names = [f"resident {i}" for i in range(200)]
    share = sum(answers_fall_check(n, CareProfile.FRAIL) for n in names) / len(names)
    assert 0.55 < share < 0.85
    assert not any(answers_fall_check(n, CareProfile.DEMENTIA) for n in names)


class Sent:
    """Stands in for a player's MQTT client: keeps what it was asked to publish."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes]] = []

    def publish(self, topic: str, payload: bytes, qos: int = 0) -> None:
        self.published.append((topic, payload))


def test_the_scenario_players_wristband_answers_unless_its_wearer_fell() -> None:
    import msgspec
    import paho.mqtt.client as mqtt

    from simulators.fleet import DeviceCreds
    from simulators.player import Player
    from simulators.session import Broker

    band = DeviceCreds("home-17", "wb-0042", DeviceKind.WRISTBAND, "pw", "Wang Fang")
    player = Player({"wb-0042": band}, broker=Broker("127.0.0.1", 1), on_truth=lambda t: None,
                    answers={"wb-0042": True})  # fmt: skip
    link = player.links["wb-0042"]
    sent = Sent()
    link.client = sent  # type: ignore[assignment]
    msg = mqtt.MQTTMessage(topic=b"eldercare/v1/home-17/wb-0042/cmd")
    until = datetime.now(UTC).timestamp() + 30
    msg.payload = msgspec.json.encode({"type": "fall_check", "check_id": "7", "until_ts": until})
    player._on_command(link, None, None, msg)
    [(topic, payload)] = sent.published
    assert topic == "eldercare/v1/home-17/wb-0042/event"
    assert msgspec.json.decode(payload)[0]["vs"] == "7"
    player.fell["wb-0042"] = datetime.now(UTC).timestamp() - 10  # really on the floor
    player._on_command(link, None, None, msg)
    assert len(sent.published) == 1
