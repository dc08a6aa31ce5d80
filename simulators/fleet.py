"""The simulated fleet: device credentials from the demo seed, and which device has an incident."""

from __future__ import annotations

import random
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Final

import msgspec

from devices.domain import DeviceKind
from devices.wire import Channel, DeviceTopic

SOS_KINDS: Final = frozenset({DeviceKind.SOS_BUTTON, DeviceKind.WRISTBAND})
FALL_KINDS: Final = frozenset({DeviceKind.RADAR, DeviceKind.WRISTBAND})


class DeviceCreds(msgspec.Struct, frozen=True):
    """One device of the credentials file the backend's demo seed writes."""

    site_id: str
    device_id: str
    kind: DeviceKind
    password: str
    resident: str | None = None
    room: str | None = None

    def topic(self, channel: Channel) -> str:
        return str(DeviceTopic(self.site_id, self.device_id, channel))

    def __repr__(self) -> str:  # keep the password out of logs and tracebacks
        return f"DeviceCreds({self.site_id}/{self.device_id}, {self.kind})"


class _CredsFile(msgspec.Struct):
    devices: list[DeviceCreds]


def load_devices(path: Path) -> list[DeviceCreds]:
    """Read and check the credentials file; raises msgspec or wire errors on bad content."""
    devices = msgspec.json.decode(path.read_bytes(), type=_CredsFile).devices
    seen: set[str] = set()
    for device in devices:
        device.topic(Channel.STATUS)  # validates site_id and device_id
        if device.device_id in seen:
            raise ValueError(f"device {device.device_id} is listed twice in {path}")
        seen.add(device.device_id)
    return devices


class IncidentKind(StrEnum):
    SOS = "sos"
    FALL = "fall"


@dataclass(frozen=True, slots=True)
class Incident:
    kind: IncidentKind
    device_id: str
    confidence: float = 0.9  # for falls: the on-device detector's confidence


def first_device(
    devices: Iterable[DeviceCreds], *, site_id: str, kinds: Collection[DeviceKind]
) -> DeviceCreds | None:
    return next((d for d in devices if d.site_id == site_id and d.kind in kinds), None)


def scripted_incidents(devices: Iterable[DeviceCreds]) -> list[tuple[float, Incident]]:
    """The demo's opening incidents as (seconds after start, incident)."""
    devices = list(devices)
    script: list[tuple[float, Incident]] = []
    if button := first_device(devices, site_id="home-17", kinds={DeviceKind.SOS_BUTTON}):
        script.append((20.0, Incident(IncidentKind.SOS, button.device_id)))
    if wearer := first_device(devices, site_id="sunrise", kinds=FALL_KINDS):
        script.append((40.0, Incident(IncidentKind.FALL, wearer.device_id, confidence=0.9)))
    return script


def random_incident(devices: Iterable[DeviceCreds], rng: random.Random) -> Incident | None:
    """An SOS or a fall from a random resident's device; None if no device can report one."""
    candidates = [d for d in devices if d.resident and d.kind in SOS_KINDS | FALL_KINDS]
    if not candidates:
        return None
    device = rng.choice(candidates)
    possible = [IncidentKind.SOS] if device.kind in SOS_KINDS else []
    if device.kind in FALL_KINDS:
        possible.append(IncidentKind.FALL)
    kind = rng.choice(possible)
    confidence = round(rng.uniform(0.7, 0.98), 2) if kind is IncidentKind.FALL else 0.9
    return Incident(kind, device.device_id, confidence=confidence)
