"""The keys a verdict is stored under never change between versions (issue 16's re-cut moved
their construction into ``verdict_about``): a redelivered event after an upgrade must find its
alert (idem key) and its open incident (fold key), or it would page staff twice."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from alerts.detection.detectors.base import StreamEvent, Verdict
from alerts.detection.detectors.safety import DeviceFallDetector, SmokeDetector, SosDetector

times = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
)


def _event(
    name: str, at: datetime, device_key: int, resident: int | None, **kw: object
) -> StreamEvent:
    return StreamEvent(
        kind="event",
        name=name,
        time=at,
        device_key=device_key,
        device_id=f"dev-{device_key}",
        device_kind="button",
        site_id="home-17",
        resident_id=resident,
        room_name="卧室",
        **kw,  # type: ignore[arg-type]
    )


@given(times, st.integers(1, 10**9), st.none() | st.integers(1, 10**9))
def test_sos_and_fall_keys_are_the_historical_ones(
    at: datetime, device_key: int, resident: int | None
) -> None:
    source = resident if resident is not None else f"d{device_key}"
    sos = SosDetector().evaluate(_event("sos", at, device_key, resident, value_bool=True), now=at)
    assert sos is not None
    assert sos.idem_key == f"sos:{device_key}:{at.timestamp()}"
    assert sos.fold_key == f"sos:{source}"
    assert (sos.resident_id, sos.device_key, sos.site_id, sos.occurred_at) == (
        resident,
        device_key,
        "home-17",
        at,
    )
    fall = DeviceFallDetector().evaluate(
        _event("fall", at, device_key, resident, value_bool=True), now=at
    )
    assert isinstance(fall, Verdict)  # no confidence: a certain fall
    assert fall.idem_key == f"fall:{device_key}:{at.timestamp()}"
    assert fall.fold_key == f"fall:{source}"


@given(times, st.integers(1, 10**9), st.none() | st.integers(1, 10**9))
def test_smoke_folds_on_the_site_and_belongs_to_no_resident(
    at: datetime, device_key: int, resident: int | None
) -> None:
    smoke = SmokeDetector().evaluate(
        _event("smoke", at, device_key, resident, value_bool=True), now=at
    )
    assert smoke is not None
    assert smoke.idem_key == f"smoke:{device_key}:{at.timestamp()}"
    assert smoke.fold_key == "smoke:home-17"
    assert smoke.resident_id is None
