"""Device health on a timer: low battery, and a device that says it is online but sends nothing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from alerts.detection.detectors.base import Verdict
from alerts.detection.detectors.health import technical_colour

# How long each kind may stay silent while online before it is stale. Streaming devices report
# every few seconds; event devices (buttons, doors, smoke) only send a status now and then.
STALE_AFTER: Mapping[str, timedelta] = {
    "wristband": timedelta(minutes=15),
    "bed_mat": timedelta(minutes=15),
    "radar": timedelta(minutes=15),
    "room_sensor": timedelta(hours=2),
}
EVENT_DEVICE_STALE = timedelta(hours=26)


@dataclass(frozen=True, slots=True)
class DeviceHealth:
    device_key: int
    device_id: str
    device_kind: str
    site_id: str
    site_kind: str
    online: bool | None
    battery: float | None
    last_seen_at: datetime | None
    room_name: str | None = None
    resident_id: int | None = None


@dataclass(frozen=True, slots=True)
class DeviceHealthDetector:
    name: str = "device_health"
    low_battery: float = 15.0
    stale_after: Mapping[str, timedelta] = field(default_factory=lambda: dict(STALE_AFTER))

    def evaluate(self, device: DeviceHealth, *, now: datetime) -> list[Verdict]:
        out: list[Verdict] = []
        where = f" in {device.room_name}" if device.room_name else ""
        label = f"{device.device_kind} {device.device_id}{where} at site {device.site_id}"
        if device.battery is not None and device.battery < self.low_battery:
            day = now.date().isoformat()
            out.append(
                self._verdict(
                    device,
                    kind="low_battery",
                    idem=f"battery:{device.device_key}:{day}",
                    at=now,
                    fold_s=24 * 3600,
                    text=f"{label}: battery at {device.battery:.0f}%; replace or charge it",
                    extra={"battery": device.battery},
                )
            )
        limit = self.stale_after.get(device.device_kind, EVENT_DEVICE_STALE)
        seen = device.last_seen_at
        if device.online and seen is not None and now - seen > limit:
            hours = (now - seen).total_seconds() / 3600
            out.append(
                self._verdict(
                    device,
                    kind="device_stale",
                    idem=f"stale:{device.device_key}:{seen.timestamp()}",
                    at=seen,
                    fold_s=6 * 3600,
                    text=f"{label}: online but no data for {hours:.1f} h",
                    extra={"silent_s": int((now - seen).total_seconds())},
                )
            )
        return out

    def _verdict(
        self,
        device: DeviceHealth,
        *,
        kind: str,
        idem: str,
        at: datetime,
        fold_s: int,
        text: str,
        extra: dict[str, object],
    ) -> Verdict:
        return Verdict(
            detector=self.name,
            kind=kind,
            colour=technical_colour(device.site_kind),
            occurred_at=at,
            site_id=device.site_id,
            resident_id=device.resident_id,
            device_key=device.device_key,
            idem_key=idem,
            fold_key=f"{kind}:{device.device_key}",
            fold_s=fold_s,
            explanation=text,
            details={
                "device_id": device.device_id,
                "device_kind": device.device_kind,
                "room_name": device.room_name,
                **extra,
            },
        )
