"""Life-safety events reported by devices: SOS presses, device-detected falls, smoke."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from alerts.detectors.base import StreamEvent, Verdict, who
from devices.domain import Colour


@dataclass(frozen=True, slots=True)
class SosDetector:
    """An SOS press is always red. Presses of one button within ``debounce_s`` are one alert."""

    name: str = "sos"
    debounce_s: int = 120

    def evaluate(self, event: StreamEvent, *, now: datetime) -> Verdict | None:
        if event.name != "sos" or event.value_bool is not True:
            return None
        source = event.resident_id if event.resident_id is not None else f"d{event.device_key}"
        return Verdict(
            detector=self.name,
            kind="sos",
            colour=Colour.RED,
            occurred_at=event.time,
            site_id=event.site_id,
            resident_id=event.resident_id,
            device_key=event.device_key,
            idem_key=f"sos:{event.device_key}:{event.time.timestamp()}",
            fold_key=f"sos:{source}",
            fold_s=self.debounce_s,
            explanation=f"SOS pressed by {who(event)} ({event.device_kind} {event.device_id}) "
            f"at {event.time:%H:%M:%S} UTC",
            details={"device_id": event.device_id},
        )


@dataclass(frozen=True, slots=True)
class DeviceFallDetector:
    """A fall detected on the device (radar, wristband). Below ``min_confidence`` the device
    alone does not page staff; with no confidence given the device's word is taken."""

    name: str = "device_fall"
    min_confidence: float = 0.5
    debounce_s: int = 120

    def evaluate(self, event: StreamEvent, *, now: datetime) -> Verdict | None:
        if event.name != "fall" or event.value_bool is not True:
            return None
        confidence = event.value_num
        if confidence is not None and confidence < self.min_confidence:
            return None
        source = event.resident_id if event.resident_id is not None else f"d{event.device_key}"
        conf_text = f", confidence {confidence:.2f}" if confidence is not None else ""
        return Verdict(
            detector=self.name,
            kind="fall",
            colour=Colour.RED,
            occurred_at=event.time,
            site_id=event.site_id,
            resident_id=event.resident_id,
            device_key=event.device_key,
            idem_key=f"fall:{event.device_key}:{event.time.timestamp()}",
            fold_key=f"fall:{source}",
            fold_s=self.debounce_s,
            explanation=f"Fall detected for {who(event)} by {event.device_kind} "
            f"{event.device_id}{conf_text}",
            details={"device_id": event.device_id, "confidence": confidence},
        )


@dataclass(frozen=True, slots=True)
class SmokeDetector:
    """Smoke is a site-wide red alert: one per site per ``debounce_s``, whichever detector."""

    name: str = "smoke"
    debounce_s: int = 600

    def evaluate(self, event: StreamEvent, *, now: datetime) -> Verdict | None:
        if event.name != "smoke" or event.value_bool is not True:
            return None
        where = f" in {event.room_name}" if event.room_name else ""
        return Verdict(
            detector=self.name,
            kind="smoke",
            colour=Colour.RED,
            occurred_at=event.time,
            site_id=event.site_id,
            resident_id=None,
            device_key=event.device_key,
            idem_key=f"smoke:{event.device_key}:{event.time.timestamp()}",
            fold_key=f"smoke:{event.site_id}",
            fold_s=self.debounce_s,
            explanation=f"Smoke detected{where} at site {event.site_id} by {event.device_id}",
            details={"device_id": event.device_id},
        )
