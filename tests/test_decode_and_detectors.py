"""Pure units: message routing in ingest, and the detectors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alerts.detection.detectors.base import Deferral, StreamEvent, Verdict
from alerts.detection.detectors.registry import build_registry, route
from alerts.detection.detectors.safety import DeviceFallDetector, SmokeDetector, SosDetector
from alerts.detection.worker import evaluate
from devices.domain import Colour
from devices.registry import DeviceRef
from devices.wire import Reason
from ingest.decode import DeadLetter, Decoded, Limits, RawMessage, decode

NOW = 1_795_000_000.0
REFS = {
    "wb-1": DeviceRef(7, "wb-1", "home-1", "wristband", False),
    "old-1": DeviceRef(8, "old-1", "home-1", "wristband", True),
}


def _decode(topic: str, payload: bytes) -> Decoded | DeadLetter:
    return decode(RawMessage(topic, payload, NOW), REFS, Limits())


def test_records_are_routed_to_telemetry_events_and_windows() -> None:
    out = _decode(
        "eldercare/v1/home-1/wb-1/telemetry",
        b'[{"bn":"wb-1:","bt":1794999990,"n":"hr","v":70},{"n":"sos","vb":true},'
        b'{"n":"acc_x","v":1,"t":0},{"n":"acc_y","v":2,"t":0},{"n":"acc_z","v":3,"t":0},'
        b'{"n":"note","vs":"hello"}]',
    )
    assert isinstance(out, Decoded)
    assert [(t.metric, t.value) for t in out.telemetry] == [("hr", 70.0)]
    assert [(e.name, e.value_bool, e.value_text) for e in out.events] == [
        ("sos", True, None),
        ("note", None, "hello"),
    ]
    assert out.windows[0].acc_z == (3.0,)
    assert out.last_time == 1794999990


def test_refusals_name_their_reason() -> None:
    cases = {
        "eldercare/v1/home-1/zz-9/event": Reason.UNKNOWN_DEVICE,
        "eldercare/v1/home-2/wb-1/event": Reason.SITE_MISMATCH,
        "eldercare/v1/home-1/old-1/event": Reason.DEVICE_RETIRED,
        "eldercare/v1/home-1/wb-1/cmd": Reason.BAD_TOPIC,
        "other/home-1/wb-1/event": Reason.BAD_TOPIC,
    }
    for topic, reason in cases.items():
        out = _decode(topic, b'[{"n":"sos","vb":true}]')
        assert isinstance(out, DeadLetter), topic
        assert out.reason is reason, topic
    bad = _decode("eldercare/v1/home-1/wb-1/event", b'[{"n":"sos","vs":"yes"}]')
    assert isinstance(bad, DeadLetter)
    assert bad.reason is Reason.BAD_VALUE
    axes = _decode(
        "eldercare/v1/home-1/wb-1/telemetry", b'[{"n":"acc_x","v":1},{"n":"acc_y","v":1}]'
    )
    assert isinstance(axes, DeadLetter)
    assert axes.reason is Reason.BAD_RECORD


def _event(
    name: str,
    *,
    vb: bool | None = True,
    num: float | None = None,
    at: datetime | None = None,
    resident: int | None = 5,
) -> StreamEvent:
    return StreamEvent(
        kind="event",
        name=name,
        time=at or datetime(2026, 11, 23, 3, 0, tzinfo=UTC),
        device_key=7,
        device_id="wb-1",
        device_kind="wristband",
        site_id="home-1",
        value_bool=vb,
        value_num=num,
        room_name="bedroom",
        resident_id=resident,
        resident_name="Wang Fang",
    )


NOW_DT = datetime(2026, 11, 23, 3, 0, 5, tzinfo=UTC)


def test_sos_is_red_and_debounced_into_one_key() -> None:
    first = SosDetector().evaluate(_event("sos"), now=NOW_DT)
    again = SosDetector().evaluate(
        _event("sos", at=_event("sos").time + timedelta(seconds=5)), now=NOW_DT
    )
    assert first is not None
    assert again is not None
    assert first.colour is Colour.RED
    assert first.fold_key == again.fold_key
    assert first.idem_key != again.idem_key
    assert "Wang Fang" in first.explanation
    assert SosDetector().evaluate(_event("sos", vb=False), now=NOW_DT) is None


def test_device_fall_respects_confidence() -> None:
    det = DeviceFallDetector(min_confidence=0.2, confirm_confidence=0.7)
    assert det.evaluate(_event("fall", num=0.1), now=NOW_DT) is None
    sure = det.evaluate(_event("fall", num=0.9), now=NOW_DT)
    assert isinstance(sure, Verdict)
    assert sure.colour is Colour.RED
    assert "0.90" in sure.explanation
    assert isinstance(det.evaluate(_event("fall", num=None), now=NOW_DT), Verdict)
    unsure = det.evaluate(_event("fall", num=0.5), now=NOW_DT)
    assert isinstance(unsure, Deferral)
    assert unsure.due_at == _event("fall").time + timedelta(seconds=30)


def test_smoke_is_site_wide() -> None:
    a = SmokeDetector().evaluate(_event("smoke", resident=None), now=NOW_DT)
    assert a is not None
    assert a.resident_id is None
    assert a.fold_key == "smoke:home-1"


def test_registry_routes_each_event_to_its_detectors() -> None:
    routes = route(build_registry(fall_min_confidence=0.2))
    outcomes = evaluate([_event("sos"), _event("motion"), _event("fall", num=0.8)], routes, NOW_DT)
    assert [v.kind for v in outcomes if isinstance(v, Verdict)] == ["sos", "fall"]


def test_last_seen_is_refreshed_once_per_resolution_and_only_after_commit() -> None:
    from ingest.worker import LastSeenThrottle

    seen = LastSeenThrottle(10.0)
    first = seen.due({1: 100.0, 2: 100.0})
    assert first == {1: 100.0, 2: 100.0}  # never written: due at once
    assert seen.due({1: 105.0}) == {1: 105.0}  # not marked yet (batch not committed)
    seen.mark(first)
    assert seen.due({1: 105.0, 2: 109.9}) == {}  # within the resolution of what is stored
    assert seen.due({1: 110.0, 2: 90.0, 3: 1.0}) == {1: 110.0, 3: 1.0}  # late reading: no-op


def test_values_postgresql_cannot_store_are_refused_at_the_boundary() -> None:
    topic = "eldercare/v1/home-1/wb-1/telemetry"
    acc = ",".join(f'{{"n":"acc_{a}","v":{v},"t":0}}' for a, v in (("x", 1), ("y", 2), ("z", 1e39)))
    cases = {
        "acc out of range (fast path)": f'[{{"bn":"wb-1:","bt":1794999990,{acc[1:]}]',
        "acc out of range (mixed pack)": (
            f'[{{"bn":"wb-1:","bt":1794999990,"n":"hr","v":70}},{acc}]'
        ),
        "NUL in text": '[{"bn":"wb-1:","bt":1794999990,"n":"note","vs":"a\\u0000b"}]',
    }
    for what, payload in cases.items():
        out = _decode(topic, payload.encode())
        assert isinstance(out, DeadLetter), what
        assert out.reason is Reason.BAD_VALUE, (what, out.detail)
    # msgspec already refuses a lone surrogate escape as malformed JSON
    lone = b'[{"bn":"wb-1:","bt":1794999990,"n":"note","vs":"\\ud800"}]'
    out = _decode(topic, lone)
    assert isinstance(out, DeadLetter)
    assert out.reason is Reason.BAD_JSON


def test_a_late_life_safety_event_is_shown_yellow_and_marked_late() -> None:
    """Issue 18 finding 12: an SOS stamped 2005 opened a new red order dated "Jan 1"."""
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    routes = {"sos": (SosDetector(),)}

    def sos(at: datetime) -> StreamEvent:
        return StreamEvent(
            kind="event", name="sos", time=at, device_key=1, device_id="btn-1",
            device_kind="sos_button", site_id="home-1", value_bool=True, resident_id=7,
        )  # fmt: skip

    [fresh] = evaluate([sos(now - timedelta(minutes=2))], routes, now)
    assert isinstance(fresh, Verdict)
    assert fresh.colour is Colour.RED
    assert "late" not in fresh.details
    [old] = evaluate([sos(datetime(2005, 3, 1, 9, 30, tzinfo=UTC))], routes, now)
    assert isinstance(old, Verdict)
    assert old.colour is Colour.YELLOW
    assert old.details["late"] is True
    assert old.explanation.startswith("LATE:")
    assert "2005-03-01 09:30 UTC" in old.explanation
