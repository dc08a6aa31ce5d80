"""Technical alerts: a device that went offline (and stayed offline), low battery, stale data.

In a home-care bed nobody else is watching, so a safety device going dark there is yellow;
in a nursing home, where staff walk the corridors, it is a green technical ticket.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from alerts.detection.detectors.base import (
    CheckContext,
    Deferral,
    Dismissed,
    StreamEvent,
    Verdict,
    verdict_about,
)
from devices.domain import Colour


def technical_colour(site_kind: str) -> Colour:
    return Colour.YELLOW if site_kind == "home_care_bed" else Colour.GREEN


@dataclass(frozen=True, slots=True)
class DeviceOfflineDetector:
    """The broker announced the device offline (its Last Will, or it said so). A device that is
    back within ``grace_s`` (a reboot, a Wi-Fi hiccup) raises nothing."""

    name: str = "device_offline"
    grace_s: int = 180
    debounce_s: int = 6 * 3600

    def evaluate(self, event: StreamEvent, *, now: datetime) -> Deferral | None:
        if event.kind != "status" or event.name != "online" or event.value_bool is not False:
            return None
        return Deferral(
            detector=self.name,
            key=f"offline:{event.device_key}:{event.time.timestamp()}",
            due_at=event.time + timedelta(seconds=self.grace_s),
            event=event,
        )

    def recheck(
        self, event: StreamEvent, context: CheckContext, *, now: datetime
    ) -> Verdict | Dismissed:
        if context.device_online:
            return Dismissed("back online")
        down = int((now - event.time).total_seconds() // 60)
        where = f" in {event.room_name}" if event.room_name else ""
        return verdict_about(
            event,
            detector=self.name,
            kind="device_offline",
            colour=technical_colour(event.site_kind),
            fold_s=self.debounce_s,
            key="offline",
            fold_on=event.device_key,
            explanation=f"{event.device_kind} {event.device_id}{where} at site {event.site_id} "
            f"offline for {down} min",
            details={
                "device_id": event.device_id,
                "device_kind": event.device_kind,
                "room_name": event.room_name,
                "down_s": int((now - event.time).total_seconds()),
            },
        )
