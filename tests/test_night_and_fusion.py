"""Pure units: night watch (wandering, bed exit), fall fusion, device offline, care plans."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.detection.detectors.base import (
    CheckContext,
    ContextEvent,
    Deferral,
    Dismissed,
    StreamEvent,
    Verdict,
)
from alerts.detection.detectors.health import DeviceOfflineDetector
from alerts.detection.detectors.night import BedExitDetector, WanderingDetector
from alerts.detection.detectors.registry import build_registry, rechecks
from alerts.detection.detectors.safety import DeviceFallDetector
from alerts.detection.events_json import event_from_json, event_to_json
from devices.careplan import CarePlan, CarePlanError, care_plan_for
from devices.domain import CareProfile, Colour

# 02:30 in Shanghai (UTC+8) is 18:30 UTC the day before.
NIGHT = datetime(2026, 11, 22, 18, 30, tzinfo=UTC)
DAY = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)  # 11:00 in Shanghai
DEMENTIA = care_plan_for(CareProfile.DEMENTIA, None)
INDEPENDENT = care_plan_for(CareProfile.INDEPENDENT, None)


def ev(
    name: str,
    *,
    at: datetime = NIGHT,
    vb: bool | None = None,
    vs: str | None = None,
    num: float | None = None,
    device_kind: str = "door",
    plans: tuple[CarePlan, ...] = (DEMENTIA,),
    site_kind: str = "nursing_home",
    room_kind: str | None = "bedroom",
    kind: str = "event",
) -> StreamEvent:
    return StreamEvent(
        kind=kind,
        name=name,
        time=at,
        device_key=11,
        device_id="dev-11",
        device_kind=device_kind,
        site_id="sunrise",
        value_bool=vb,
        value_num=num,
        value_text=vs,
        room_id=3,
        room_name="room 101",
        resident_id=5,
        resident_name="Li Hua",
        room_kind=room_kind,
        site_kind=site_kind,
        care_plans=plans,
    )


def seen(
    name: str, after_s: float, *, vb: bool | None = True, kind: str = "pir", key: int = 12
) -> ContextEvent:
    return ContextEvent(
        time=NIGHT + timedelta(seconds=after_s),
        name=name,
        device_key=key,
        device_kind=kind,
        room_kind="bedroom",
        value_bool=vb,
    )


def test_care_plan_defaults_follow_the_profile_and_refuse_nonsense() -> None:
    assert DEMENTIA.wandering_watch
    assert DEMENTIA.bed_exit_watch
    assert not INDEPENDENT.wandering_watch
    custom = care_plan_for(
        CareProfile.INDEPENDENT, {"wandering_watch": True, "hr": {"low": 40, "high": 100}}
    )
    assert custom.wandering_watch
    assert custom.hr.low == 40
    with pytest.raises(CarePlanError, match="hr"):
        care_plan_for(CareProfile.FRAIL, {"hr": {"low": 120, "high": 60}})
    with pytest.raises(CarePlanError, match="unknown_key"):
        care_plan_for(CareProfile.FRAIL, {"unknown_key": 1})


@given(st.times(), st.times(), st.times())
def test_night_window_wraps_midnight(start: time, end: time, at: time) -> None:
    plan = CarePlan(night_start=start, night_end=end)
    inside = start <= at < end if start <= end else (at >= start or at < end)
    assert plan.is_night(at) is inside


def test_wandering_only_at_night_for_watched_residents_and_red_at_exit_doors() -> None:
    det = WanderingDetector()
    room_door = det.evaluate(ev("door", vs="open"), now=NIGHT)
    assert room_door is not None
    assert room_door.colour is Colour.YELLOW
    assert "02:30" in room_door.explanation
    home_door = det.evaluate(ev("door", vs="open", site_kind="home_care_bed"), now=NIGHT)
    assert home_door is not None
    assert home_door.colour is Colour.RED
    assert det.evaluate(ev("door", vs="open", at=DAY), now=DAY) is None
    assert det.evaluate(ev("door", vs="closed"), now=NIGHT) is None
    assert det.evaluate(ev("door", vs="open", plans=(INDEPENDENT,)), now=NIGHT) is None
    # a shared room: watched if anyone in it is
    assert det.evaluate(ev("door", vs="open", plans=(INDEPENDENT, DEMENTIA)), now=NIGHT)


def test_bed_exit_defers_then_alerts_unless_back_in_bed() -> None:
    det = BedExitDetector()
    exit_ = ev("presence", vb=False, device_kind="bed_mat")
    deferral = det.evaluate(exit_, now=NIGHT)
    assert isinstance(deferral, Deferral)
    assert deferral.due_at == NIGHT + timedelta(seconds=DEMENTIA.bed_exit_return_s)
    assert det.evaluate(ev("presence", vb=True, device_kind="bed_mat"), now=NIGHT) is None
    assert det.evaluate(replace(exit_, time=DAY), now=DAY) is None
    due = deferral.due_at
    back = CheckContext([seen("presence", 300, kind="bed_mat", key=exit_.device_key)])
    assert isinstance(det.recheck(exit_, back, now=due), Dismissed)
    roommate = CheckContext([seen("presence", 300, kind="bed_mat", key=exit_.device_key + 1)])
    assert isinstance(det.recheck(exit_, roommate, now=due), Verdict)
    gone = det.recheck(exit_, CheckContext([seen("motion", 60)]), now=due)
    assert isinstance(gone, Verdict)
    assert gone.colour is Colour.YELLOW
    assert "has not returned for 20 min" in gone.explanation


def test_getting_up_just_before_the_night_ends_is_the_day_beginning() -> None:
    det = BedExitDetector()
    dawn = NIGHT + timedelta(hours=3, minutes=20)  # 05:50 in Shanghai; the night ends at 06:00
    exit_ = ev("presence", vb=False, device_kind="bed_mat", at=dawn)
    deferral = det.evaluate(exit_, now=dawn)
    assert isinstance(deferral, Deferral)
    up = CheckContext([seen("motion", 3 * 3600 + 20 * 60 + 300)])  # moving about at 05:55
    day = det.recheck(exit_, up, now=deferral.due_at)
    assert isinstance(day, Dismissed)
    assert "up for the day" in day.reason
    # no sign of life since getting up: still an alert, morning or not
    assert isinstance(det.recheck(exit_, CheckContext([]), now=deferral.due_at), Verdict)
    # a PIR clearing is not movement
    cleared = CheckContext([seen("motion", 3 * 3600 + 20 * 60 + 300, vb=False)])
    assert isinstance(det.recheck(exit_, cleared, now=deferral.due_at), Verdict)


def test_unsure_fall_is_confirmed_by_silence_or_sos_and_dismissed_by_movement() -> None:
    det = DeviceFallDetector(min_confidence=0.2, confirm_confidence=0.7)
    fall = ev("fall", vb=True, num=0.45, device_kind="wristband")
    assert isinstance(det.evaluate(fall, now=NIGHT), Deferral)
    due = NIGHT + timedelta(seconds=30)
    silent = det.recheck(fall, CheckContext([]), now=due)
    assert isinstance(silent, Verdict)
    assert silent.colour is Colour.RED
    assert "no movement from other sensors for 30 s" in silent.explanation
    sos = det.recheck(
        fall, CheckContext([seen("sos", 5, kind="sos_button"), seen("motion", 20)]), now=due
    )
    assert isinstance(sos, Verdict)
    assert "confirmed by an SOS press" in sos.explanation
    walked = det.recheck(fall, CheckContext([seen("motion", 20)]), now=due)
    assert isinstance(walked, Dismissed)
    assert "pir saw motion" in walked.reason
    # the impact itself shakes nearby sensors: movement in the first seconds proves nothing
    assert isinstance(det.recheck(fall, CheckContext([seen("motion", 3)]), now=due), Verdict)
    # the falling device's own readings are not independent evidence
    own = seen("motion", 20, key=fall.device_key)
    assert isinstance(det.recheck(fall, CheckContext([own]), now=due), Verdict)


def test_offline_device_gets_a_grace_period_and_colour_by_site_kind() -> None:
    det = DeviceOfflineDetector(grace_s=180)
    off = ev("online", vb=False, kind="status", device_kind="sos_button", site_kind="home_care_bed")
    assert isinstance(det.evaluate(off, now=NIGHT), Deferral)
    assert det.evaluate(replace(off, value_bool=True), now=NIGHT) is None
    later = NIGHT + timedelta(minutes=4)
    assert isinstance(det.recheck(off, CheckContext([], device_online=True), now=later), Dismissed)
    still = det.recheck(off, CheckContext([], device_online=False), now=later)
    assert isinstance(still, Verdict)
    assert still.colour is Colour.YELLOW
    nursing = det.recheck(replace(off, site_kind="nursing_home"), CheckContext([]), now=later)
    assert isinstance(nursing, Verdict)
    assert nursing.colour is Colour.GREEN


def test_a_deferred_event_survives_the_round_trip_through_json() -> None:
    e = ev("presence", vb=False, device_kind="bed_mat", plans=(DEMENTIA, INDEPENDENT))
    assert event_from_json(event_to_json(e)) == e


def test_every_deferring_detector_can_be_rechecked() -> None:
    names = set(rechecks(build_registry(fall_min_confidence=0.2)))
    assert names == {"device_fall", "bed_exit", "device_offline"}
