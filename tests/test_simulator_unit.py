"""Every pack the simulators build is valid protocol v1, as the backend's own parser sees it."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest

from devices.domain import DeviceKind
from devices.wire import Channel, Pack, parse_senml, parse_status
from simulators import devices as packs
from simulators.fleet import (
    DeviceCreds,
    IncidentKind,
    load_devices,
    random_incident,
    scripted_incidents,
)

NOW = 1_795_000_000.0
DEV = "wb-0001"


def parse(pack: packs.Pack, *, now: float = NOW) -> Pack:
    return parse_senml(packs.encode(pack), now=now)


def values(parsed: Pack) -> dict[str, object]:
    return {r.name: r.value for r in parsed.records}


@pytest.fixture
def rng() -> random.Random:
    return random.Random(42)


@pytest.mark.parametrize("kind", list(DeviceKind))
def test_telemetry_of_every_kind_parses(kind: DeviceKind, rng: random.Random) -> None:
    pack = packs.telemetry_pack(
        kind, device_id=DEV, now=NOW, rng=rng, battery=80.04, present=True, seq=7
    )
    assert pack is not None
    parsed = parse(pack)
    assert parsed.base_name == f"{DEV}:"
    assert all(r.time == NOW for r in parsed.records)
    assert parsed.records[-1].name == "seq"
    assert parsed.records[-1].value == 7


def test_empty_bed_sends_no_vitals(rng: random.Random) -> None:
    for kind in (DeviceKind.BED_MAT, DeviceKind.RADAR):
        pack = packs.telemetry_pack(
            kind, device_id=DEV, now=NOW, rng=rng, battery=50.0, present=False
        )
        assert pack is None


def test_wristband_values_are_plausible(rng: random.Random) -> None:
    for hour in range(24):
        now = NOW + hour * 3600
        parsed = parse(
            packs.wristband_pack(device_id=DEV, now=now, rng=rng, battery=63.27), now=now
        )
        got = values(parsed)
        assert set(got) == {"hr", "spo2", "battery"}
        assert isinstance(got["hr"], float)
        assert 60 <= got["hr"] <= 90
        assert isinstance(got["spo2"], float)
        assert 95 <= got["spo2"] <= 99
        assert got["battery"] == 63.3
        units = {r.name: r.unit for r in parsed.records}
        assert units == {"hr": "beat/min", "spo2": "%", "battery": "%EL"}


def test_heart_rate_follows_a_daily_rhythm() -> None:
    def mean_hr(local_hour: int) -> float:
        rng = random.Random(1)
        now = NOW - NOW % 86400 + (local_hour - packs.UTC_OFFSET_H) * 3600
        hrs = [
            values(parse(packs.vitals_pack(device_id=DEV, now=now, rng=rng), now=now))["hr"]
            for _ in range(50)
        ]
        return sum(float(h) for h in hrs if isinstance(h, float)) / len(hrs)

    assert mean_hr(16) - mean_hr(4) > 10


def test_vitals_and_room_temperature(rng: random.Random) -> None:
    got = values(parse(packs.vitals_pack(device_id=DEV, now=NOW, rng=rng)))
    assert set(got) == {"hr", "rr"}
    assert isinstance(got["rr"], float)
    assert 12 <= got["rr"] <= 20
    temp = values(parse(packs.room_pack(device_id=DEV, now=NOW, rng=rng)))["temp"]
    assert isinstance(temp, float)
    assert 20 <= temp <= 27


@pytest.mark.parametrize(
    ("pack", "name", "value"),
    [
        (packs.motion_pack(device_id=DEV, now=NOW), "motion", True),
        (packs.presence_pack(device_id=DEV, now=NOW, present=False), "presence", False),
        (packs.door_pack(device_id=DEV, now=NOW, is_open=True), "door", "open"),
        (packs.door_pack(device_id=DEV, now=NOW, is_open=False), "door", "closed"),
        (packs.smoke_pack(device_id=DEV, now=NOW, detected=True), "smoke", True),
        (packs.sos_pack(device_id=DEV, now=NOW), "sos", True),
    ],
)
def test_event_packs(pack: packs.Pack, name: str, value: object) -> None:
    parsed = parse(pack)
    assert [(r.name, r.value, r.time) for r in parsed.records] == [(name, value, NOW)]


def test_fall_pack_carries_confidence_in_num() -> None:
    parsed = parse(packs.fall_pack(device_id=DEV, now=NOW, confidence=0.9, seq=3))
    fall, seq = parsed.records
    assert (fall.name, fall.value, fall.num, fall.time) == ("fall", True, 0.9, NOW)
    assert (seq.name, seq.value) == ("seq", 3)


def test_fall_confidence_must_be_a_probability() -> None:
    with pytest.raises(ValueError, match="confidence"):
        packs.fall_pack(device_id=DEV, now=NOW, confidence=1.5)


@pytest.mark.parametrize("make", [packs.resting_samples, packs.fall_samples])
def test_acc_window_has_three_axes_at_equal_times(
    make: Callable[[random.Random, int], list[packs.Sample]], rng: random.Random
) -> None:
    samples = make(rng, 50)
    parsed = parse(packs.acc_window_pack(device_id=DEV, now=NOW, samples=samples, seq=9))
    *acc, seq = parsed.records
    assert (seq.name, seq.value) == ("seq", 9)
    assert len(acc) == 150
    for i in range(50):
        x, y, z = acc[3 * i : 3 * i + 3]
        assert (x.name, y.name, z.name) == ("acc_x", "acc_y", "acc_z")
        assert x.time == y.time == z.time == pytest.approx(NOW - 1.0 + i / 50)
        assert {x.unit, y.unit, z.unit} == {"m/s2"}
    assert acc[-1].time < NOW  # the window ends at the time it is sent


def test_fall_samples_show_an_impact(rng: random.Random) -> None:
    magnitudes = [(x * x + y * y + z * z) ** 0.5 for x, y, z in packs.fall_samples(rng, 50)]
    assert magnitudes[0] == pytest.approx(packs.GRAVITY, abs=0.5)
    assert min(magnitudes) < 0.4 * packs.GRAVITY  # free fall
    assert max(magnitudes) > 2.5 * packs.GRAVITY  # impact


def test_status_and_last_will_parse() -> None:
    status = parse_status(packs.status_payload(now=NOW, battery=87.26), now=NOW)
    assert (status.online, status.battery, status.fw, status.ts) == (True, 87.3, "sim-1.0", NOW)
    mains = parse_status(packs.status_payload(now=NOW, battery=None), now=NOW)
    assert mains.battery is None
    assert mains.online is True
    assert parse_status(packs.LAST_WILL, now=NOW).online is False


def creds(site: str, device: str, kind: DeviceKind, resident: str | None = "A") -> DeviceCreds:
    return DeviceCreds(site, device, kind, password="pw", resident=resident)


def test_scripted_incidents_pick_the_first_matching_devices() -> None:
    fleet = [
        creds("sunrise", "pir-1", DeviceKind.PIR, resident=None),
        creds("home-18", "btn-9", DeviceKind.SOS_BUTTON),
        creds("home-17", "btn-1", DeviceKind.SOS_BUTTON),
        creds("home-17", "btn-2", DeviceKind.SOS_BUTTON),
        creds("sunrise", "radar-3", DeviceKind.RADAR),
        creds("sunrise", "wb-4", DeviceKind.WRISTBAND),
    ]
    (t1, sos), (t2, fall) = scripted_incidents(fleet)
    assert (t1, sos.kind, sos.device_id) == (20.0, IncidentKind.SOS, "btn-1")
    assert (t2, fall.kind, fall.device_id, fall.confidence) == (
        40.0,
        IncidentKind.FALL,
        "radar-3",
        0.9,
    )


def test_random_incidents_come_from_resident_devices_that_can_report_them() -> None:
    fleet = [
        creds("sunrise", "pir-1", DeviceKind.PIR, resident=None),
        creds("sunrise", "wb-1", DeviceKind.WRISTBAND, resident=None),
        creds("home-17", "btn-1", DeviceKind.SOS_BUTTON),
        creds("sunrise", "radar-1", DeviceKind.RADAR),
    ]
    rng = random.Random(3)
    seen = {(i.device_id, i.kind) for _ in range(200) if (i := random_incident(fleet, rng))}
    assert seen == {("btn-1", IncidentKind.SOS), ("radar-1", IncidentKind.FALL)}
    assert random_incident(fleet[:2], rng) is None


def test_load_devices(tmp_path: Path) -> None:
    path = tmp_path / "demo-devices.json"
    doc = {
        "devices": [
            {
                "site_id": "home-17",
                "device_id": "btn-0042",
                "kind": "sos_button",
                "password": "secret",
                "resident": "Wang Fang",
                "room": "bedroom",
            },
            {"site_id": "sunrise", "device_id": "pir-1", "kind": "pir", "password": "x"},
        ]
    }
    path.write_bytes(msgspec.json.encode(doc))
    button, pir = load_devices(path)
    assert (button.kind, button.resident, button.room) == (
        DeviceKind.SOS_BUTTON,
        "Wang Fang",
        "bedroom",
    )
    assert button.topic(Channel.STATUS) == "eldercare/v1/home-17/btn-0042/status"
    assert pir.resident is None
    assert "secret" not in repr(button)


def test_load_devices_refuses_bad_ids_and_kinds(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    bad_id = {"site_id": "home 17", "device_id": "b", "kind": "pir", "password": "x"}
    path.write_bytes(msgspec.json.encode({"devices": [bad_id]}))
    with pytest.raises(ValueError, match="site_id"):
        load_devices(path)
    bad_kind = {"site_id": "h", "device_id": "b", "kind": "toaster", "password": "x"}
    path.write_bytes(msgspec.json.encode({"devices": [bad_kind]}))
    with pytest.raises(msgspec.ValidationError):
        load_devices(path)
