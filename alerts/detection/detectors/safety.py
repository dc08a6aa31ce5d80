"""Life-safety events reported by devices: SOS presses, device-detected falls, smoke."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from alerts.detection.detectors.base import (
    CheckContext,
    ContextEvent,
    Deferral,
    Dismissed,
    StreamEvent,
    Verdict,
    verdict_about,
    where,
    who,
)
from devices.domain import Colour


@dataclass(frozen=True, slots=True)
class SosDetector:
    """An SOS press is always red. Presses of one button within ``debounce_s`` are one alert."""

    name: str = "sos"
    debounce_s: int = 120

    def evaluate(self, event: StreamEvent, *, now: datetime) -> Verdict | None:
        if event.name != "sos" or event.value_bool is not True:
            return None
        return verdict_about(
            event,
            detector=self.name,
            kind="sos",
            colour=Colour.RED,
            fold_s=self.debounce_s,
            explanation=f"SOS pressed by {who(event)} ({event.device_kind} {event.device_id}) "
            f"at {event.time:%H:%M:%S} UTC",
            details=where(event),
        )


@dataclass(frozen=True, slots=True)
class DeviceFallDetector:
    """A fall detected on the device (radar, wristband), fused with the resident's other sensors.

    With no confidence given, or at least ``confirm_confidence``, the device's word is taken and
    the alert is raised at once: a confirmed fall is never held back. Between ``min_confidence``
    and ``confirm_confidence`` one noisy device does not page staff alone: the report is looked
    at again ``fusion_wait_s`` later. An SOS press confirms it; movement seen by another sensor
    after the fall (motion, getting into bed, a door) weakens it to nothing; silence confirms it.
    Below ``min_confidence`` the device itself says it was probably not a fall.
    """

    name: str = "device_fall"
    min_confidence: float = 0.2
    confirm_confidence: float = 0.7
    fusion_wait_s: int = 30
    settle_s: int = 10  # movement this soon after the impact is the fall itself
    debounce_s: int = 120

    def evaluate(self, event: StreamEvent, *, now: datetime) -> Verdict | Deferral | None:
        if event.name != "fall" or event.value_bool is not True:
            return None
        confidence = event.value_num
        if confidence is None or confidence >= self.confirm_confidence:
            return self._verdict(event, because="")
        if confidence < self.min_confidence:
            return None
        return Deferral(
            detector=self.name,
            key=f"fall:{event.device_key}:{event.time.timestamp()}",
            due_at=event.time + timedelta(seconds=self.fusion_wait_s),
            event=event,
        )

    def recheck(
        self, event: StreamEvent, context: CheckContext, *, now: datetime
    ) -> Verdict | Dismissed:
        sos = next((e for e in context.events if e.name == "sos" and e.value_bool), None)
        if sos is not None:
            return self._verdict(
                event,
                because=f"; confirmed by an SOS press at {sos.time:%H:%M:%S}",
                extra={"sos_at": sos.time.isoformat()},
            )
        moved_after = event.time + timedelta(seconds=self.settle_s)
        for seen in context.events:
            if seen.time >= moved_after and seen.device_key != event.device_key and _movement(seen):
                where = f" in the {seen.room_kind}" if seen.room_kind else ""
                return Dismissed(
                    f"fall reported with confidence {event.value_num:.2f}, but {seen.device_kind} "
                    f"saw {seen.name}{where} at {seen.time:%H:%M:%S}"
                )
        quiet = int((now - event.time).total_seconds())
        return self._verdict(
            event,
            because=f"; no movement from other sensors for {quiet} s after",
            extra={"quiet_s": quiet},
        )

    def _verdict(
        self, event: StreamEvent, *, because: str, extra: dict[str, object] | None = None
    ) -> Verdict:
        extra = extra or {}
        confidence = event.value_num
        conf_text = f", confidence {confidence:.2f}" if confidence is not None else ""
        return verdict_about(
            event,
            detector=self.name,
            kind="fall",
            colour=Colour.RED,
            fold_s=self.debounce_s,
            explanation=f"Fall detected for {who(event)} by {event.device_kind} "
            f"{event.device_id}{conf_text}{because}",
            details={**where(event), "confidence": confidence, **extra},
        )


def _movement(seen: ContextEvent) -> bool:
    if seen.name == "motion":
        return seen.value_bool is True
    if seen.name == "presence":
        # lying in bed after a reported fall means the person got up and into bed
        return seen.value_bool is True and seen.device_kind == "bed_mat"
    return seen.name == "door"


@dataclass(frozen=True, slots=True)
class SmokeDetector:
    """Smoke is a site-wide red alert: one per site per ``debounce_s``, whichever detector."""

    name: str = "smoke"
    debounce_s: int = 600

    def evaluate(self, event: StreamEvent, *, now: datetime) -> Verdict | None:
        if event.name != "smoke" or event.value_bool is not True:
            return None
        place = f" in {event.room_name}" if event.room_name else ""
        return verdict_about(
            event,
            detector=self.name,
            kind="smoke",
            colour=Colour.RED,
            fold_s=self.debounce_s,
            fold_on=event.site_id,
            of_resident=False,
            explanation=f"Smoke detected{place} at site {event.site_id} by {event.device_id}",
            details=where(event),
        )
