"""Check-ins ("press if you are fine"), away needing evidence, the evening lead in homes
without a bed mat: the pure rules, with explicit time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.detection import check_in as C
from alerts.detection.detectors.inactivity import InactivityDetector
from alerts.detection.detectors.snapshot import DeviceSnapshot
from alerts.detection.routine import (
    Activity,
    Deadline,
    Routine,
    Window,
    anchor,
    current_state,
    default_routine,
    gaps,
    is_sign_of_life,
)
from alerts.detection.snapshots import build_snapshot
from alerts.evaluate.replay import RESIDENT, Replayer
from devices.careplan import CareProfile, care_plan_for
from simulators import devices as packs

DAY0 = datetime(2026, 3, 2, tzinfo=UTC)
H = 3600.0
T = (DAY0 + timedelta(hours=10)).timestamp()


def motion(t: float, room: str = "living") -> Activity:
    return Activity(t, room, "pir", "motion")


def deadline(*, learned: bool = True, threshold: float = H, cap: float = 4 * H) -> Deadline:
    return Deadline("active", T, T + threshold, threshold, cap, learned)


def device(kind: str, key: int, *, personal: bool = True) -> DeviceSnapshot:
    return DeviceSnapshot(key, f"{kind}-{key}", kind, None, personal, None)


def test_asked_at_the_threshold_or_one_window_before_the_cap_never_alerting_past_it() -> None:
    learned = deadline()  # threshold 1 h, cap 4 h
    assert C.ask_at(learned, 600) == T + H
    assert C.due_at(learned, now=T + H, window_s=600, asked_recently=0, can_answer=True) == (
        T + H + 600
    )
    # a threshold at the cap (site defaults, or a long learned normal): asked one window
    # before it, so an unanswered check-in alerts at the cap, as without asking
    for d in (deadline(threshold=4 * H), deadline(learned=False, threshold=4 * H)):
        assert C.ask_at(d, 600) == T + 4 * H - 600
        assert C.due_at(d, now=T + 4 * H - 600, window_s=600, asked_recently=0,
                        can_answer=True) == T + 4 * H  # fmt: skip
    # close to the cap: asked a window before it, due at the cap
    near = deadline(threshold=4 * H - 300)
    assert C.ask_at(near, 600) == T + 4 * H - 600
    # the plan asks nothing: the threshold itself
    assert C.ask_at(learned, 0) == T + H
    # asked late (a restart) with too little left before the cap: alert directly
    assert C.due_at(near, now=T + 4 * H - 60, window_s=600, asked_recently=0,
                    can_answer=True) is None  # fmt: skip
    for kwargs in (
        {"window_s": 0, "asked_recently": 0, "can_answer": True},  # plan says no (dementia)
        {"window_s": 600, "asked_recently": C.BUDGET, "can_answer": True},  # budget spent
        {"window_s": 600, "asked_recently": 0, "can_answer": False},  # nothing to press
    ):
        assert C.due_at(learned, now=T + H, **kwargs) is None  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(
    st.floats(0, 6 * H),
    st.floats(60, 6 * H),
    st.floats(0, 1800),
    st.floats(0, 7 * H),
)
def test_asking_never_alerts_past_the_cap(threshold: float, cap: float, window: float, late: float) -> None:  # fmt: skip
    threshold = min(threshold, cap)
    d = deadline(threshold=threshold, cap=cap)
    ask = C.ask_at(d, window)
    assert T <= ask <= d.at
    now = ask + late
    due = C.due_at(d, now=now, window_s=window, asked_recently=0, can_answer=True)
    if due is not None:
        assert due <= T + cap
        assert due >= d.at  # never earlier than without asking (the ask point is the threshold)
        assert due - now >= C.MIN_ANSWER_S


def test_the_care_plan_allows_check_ins_except_for_dementia() -> None:
    assert care_plan_for(CareProfile.FRAIL, None).check_in_s == 600
    assert care_plan_for(CareProfile.INDEPENDENT, None).check_in_s == 600
    assert care_plan_for(CareProfile.DEMENTIA, None).check_in_s == 0
    assert care_plan_for(CareProfile.DEMENTIA, {"check_in_s": 300}).check_in_s == 300


def test_the_answering_device_is_the_residents_own_wristband_then_button() -> None:
    shared_button = device("sos_button", 3, personal=False)
    band, button = device("wristband", 9), device("sos_button", 2)
    assert C.answering_device([shared_button], site_kind="nursing_home") is None
    assert C.answering_device([shared_button], site_kind="home_care_bed") == shared_button
    assert C.answering_device([button, band], site_kind="nursing_home") == band
    assert C.answering_device([device("pir", 1), device("bed_mat", 4)], site_kind="x") is None


PENDING = C.PendingCheckIn(check_id=7, device_key=9, asked_at=T, due_at=T + 600, window_s=600)


def test_judge_an_answer_any_sign_of_life_or_the_window_running_out() -> None:
    ok = Activity(T + 30, None, "wristband", C.ANSWER)
    assert C.judge(PENDING, [(ok, 9, "7")], now=T + 40) == C.Answer(T + 30, "answered")
    # another check's answer, another device's, or one before the question: not an answer
    for item in (
        (ok, 9, "8"),
        (ok, 5, "7"),
        (Activity(T - 1, None, "wristband", C.ANSWER), 9, "7"),
    ):
        assert C.judge(PENDING, [item], now=T + 40) is None
    assert C.judge(PENDING, [(motion(T + 100), 1, None)], now=T + 200) == C.Answer(
        T + 100, "sign of life"
    )
    # a cistern refilling is not the person; the window ran out: raise
    refill = Activity(T + 100, "bathroom", "flush", "flush", False)
    assert C.judge(PENDING, [(refill, 1, None)], now=T + 599) is None
    assert C.judge(PENDING, [(refill, 1, None)], now=T + 600) == "no answer"
    late = Activity(T + 700, None, "wristband", C.ANSWER)
    assert C.judge(PENDING, [(late, 9, "7")], now=T + 700) == "no answer"


EVENTS = st.tuples(
    st.floats(T - 100, T + 900, allow_nan=False),
    st.sampled_from([C.ANSWER, "fall_check_ok", "motion", "flush", "appliance", "away"]),
    st.sampled_from(["wristband", "sos_button", "pir", "flush", "label"]),
    st.integers(1, 10),
    st.one_of(st.none(), st.sampled_from(["7", "8", "", "07"])),
    st.one_of(st.none(), st.booleans()),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(EVENTS, max_size=12), st.floats(T, T + 2000, allow_nan=False))
def test_judge_over_whatever_the_devices_send(items: list, now: float) -> None:  # type: ignore[type-arg]
    feed = [
        (Activity(t, None, kind, name, value), key, text)
        for t, name, kind, key, text, value in items
    ]
    result = C.judge(PENDING, feed, now=now)
    if isinstance(result, C.Answer):
        assert PENDING.asked_at <= result.at <= PENDING.due_at
        hit = [x for x in feed if x[0].t == result.at]
        assert hit
        if result.how == "answered":
            assert any(x[0].name == C.ANSWER and x[1] == 9 and x[2] == "7" for x in hit)
    elif result == "no answer":
        assert now >= PENDING.due_at
    else:
        assert result is None
        assert now < PENDING.due_at
    # the oracle: this check's answer from the asked device, or any other sign of life,
    # in the window; the first one decides
    counts = [
        x[0].t
        for x in feed
        if PENDING.asked_at <= x[0].t <= PENDING.due_at
        and (
            (x[0].name == C.ANSWER and x[1] == 9 and x[2] == "7")
            or (x[0].name != C.ANSWER and is_sign_of_life(x[0]))
        )
    ]
    if counts:
        assert isinstance(result, C.Answer)
        assert result.at == min(counts)
    else:
        assert not isinstance(result, C.Answer)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["type", "check_id", "until_ts", "window_s"]),
        st.one_of(st.text(max_size=5), st.integers(), st.floats(allow_nan=False), st.none()),
    ),
    st.booleans(),
)
def test_the_simulated_button_answers_only_a_live_check(command: dict, can: bool) -> None:  # type: ignore[type-arg]
    pack = packs.check_answer(command, device_id="wb-1", now=1795000000.0, can_answer=can)
    if pack is None:
        return
    assert can
    assert command["type"] in ("check_in", "fall_check")
    records = msgspec.json.decode(packs.encode(pack))
    assert records[-1]["vs"] == command["check_id"]
    assert records[-1]["n"] == packs.ANSWERS[command["type"]]


def test_the_simulated_wristband_answers_a_check_in_within_its_window() -> None:
    cmd = {"type": "check_in", "check_id": "41", "window_s": 600, "until_ts": 1795000600.0}
    pack = packs.check_answer(cmd, device_id="wb-0042", now=1795000010.0, can_answer=True)
    assert pack is not None
    record = msgspec.json.decode(packs.encode(pack))[-1]
    assert (record["n"], record["vs"]) == ("check_in_ok", "41")
    assert packs.check_answer(cmd, device_id="wb-0042", now=1795000601.0, can_answer=True) is None
    assert packs.check_answer(cmd, device_id="wb-0042", now=1795000010.0, can_answer=False) is None


def door(t: float) -> Activity:
    return Activity(t, "entrance", "door", "door", exit=True)


def test_away_needs_evidence_of_leaving() -> None:
    left = [motion(T), door(T + 30)]
    assert current_state(left).state == "door"
    marked = current_state([*left, Activity(T + 40, None, "label", "away", True)])
    assert marked.state == "away"
    before = current_state([motion(T), Activity(T + 10, None, "label", "away", True), door(T + 30)])
    assert before.state == "away"  # said "going out", then left
    stale = [Activity(T - 3600, None, "label", "away", True), motion(T), door(T + 30)]
    assert current_state(stale).state == "door"  # an hour-old mark is not about this exit
    back = [*left, Activity(T + 40, None, "label", "away", True)]
    back.append(Activity(T + 2 * H, None, "label", "away", False))  # "back", no door seen
    now_home = current_state(back)
    assert now_home.state == "active"  # at home, quiet since "back" was pressed
    assert now_home.last is not None
    assert now_home.last.t == T + 2 * H
    assert current_state([*back, door(T + 2 * H + 60)]).state == "active"  # the same passage
    radar = [*left, Activity(T + 90, "living", "radar", "presence", False)]
    assert current_state(radar).state == "away"
    assert current_state([*radar, motion(T + 3 * H)]).state == "active"  # back home
    # the mark is not a sign of life: the gap runs from the door and learns as "away"
    g = gaps([*left, Activity(T + 40, None, "label", "away", True), motion(T + 2 * H)])
    assert [(x.start, x.state) for x in g] == [(T, "active"), (T + 30, "away")]
    g = gaps([*left, motion(T + 2 * H)])
    assert [x.state for x in g] == ["active", "door"]


def test_homes_without_a_bed_mat_defer_only_spells_begun_near_bedtime() -> None:
    tz, window = UTC, Window(22.0, 6.0)
    early = (DAY0 + timedelta(hours=17)).timestamp()
    late = (DAY0 + timedelta(hours=21)).timestamp()
    assert anchor("active", early, tz, window, has_bed=False) == (early, None)
    assert (
        anchor("active", late, tz, window, has_bed=False)[1]
        == (DAY0 + timedelta(hours=22)).timestamp()
    )
    # a 4-h cap from 19:00 reaches 23:00, inside the night: alerted then, not the next morning
    routine: Routine = default_routine()
    t = (DAY0 + timedelta(hours=19)).timestamp()
    snap = build_snapshot(
        resident=dict(RESIDENT),
        activities=[motion(t)],
        routine=routine,
        now=datetime.fromtimestamp(t + 60, UTC),
    )
    d = InactivityDetector().deadline(snap)
    assert d is not None
    assert d.at == t + 4 * H


def test_the_replay_answers_a_check_in_and_the_spell_starts_again() -> None:
    events = [motion(T)]
    replay = Replayer(events, default_routine(), InactivityDetector(), start=T - H)
    asked: list[float] = []

    def ask(t: float, _snap: object, _verdict: object) -> bool:
        asked.append(t)
        replay.answer(t)
        return True

    alarms = replay.run(T, T + 9 * H, 60.0, ask)  # type: ignore[arg-type]
    assert alarms == []
    # a home that cannot see sitting: asked at the 2-h active cap (at the last tick not after
    # it), not near the 4-h one; each answer restarts the spell
    assert asked[:2] == [T + 2 * H - 60, T + 4 * H - 120]
