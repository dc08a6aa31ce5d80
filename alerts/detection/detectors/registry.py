"""The declarative lists of detectors: event detectors with the stream names that feed each
one, and periodic (tick) detectors run on every resident's snapshot."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from alerts.detection.detectors.base import EventDetector, Rechecker
from alerts.detection.detectors.health import DeviceOfflineDetector
from alerts.detection.detectors.inactivity import InactivityDetector
from alerts.detection.detectors.night import BedExitDetector, WanderingDetector
from alerts.detection.detectors.safety import DeviceFallDetector, SmokeDetector, SosDetector
from alerts.detection.detectors.snapshot import TickSpec
from alerts.detection.fall.assembly import WindowDetector
from alerts.detection.fall.detector import AccFallDetector
from alerts.detection.fall.model import FallModel


@dataclass(frozen=True, slots=True)
class DetectorSpec:
    detector: EventDetector
    names: frozenset[str]  # stream names (event or status) this detector reads


def build_registry(
    *, fall_min_confidence: float, fall_confirm_confidence: float = 0.7
) -> tuple[DetectorSpec, ...]:
    return (
        DetectorSpec(SosDetector(), frozenset({"sos"})),
        DetectorSpec(
            DeviceFallDetector(
                min_confidence=fall_min_confidence, confirm_confidence=fall_confirm_confidence
            ),
            frozenset({"fall"}),
        ),
        DetectorSpec(SmokeDetector(), frozenset({"smoke"})),
        DetectorSpec(WanderingDetector(), frozenset({"door"})),
        DetectorSpec(BedExitDetector(), frozenset({"presence"})),
        DetectorSpec(DeviceOfflineDetector(), frozenset({"online"})),
    )


def build_window_registry(
    *, fall_model: FallModel, fall_models: Mapping[str, FallModel] | None = None
) -> tuple[WindowDetector, ...]:
    """Detectors fed the last seconds of a device's raw accelerometer ('acc' outbox rows);
    ``fall_models`` are the per-placement fall models (``fall_model`` without them)."""
    return (AccFallDetector(fall_model, dict(fall_models or {})),)


def route(specs: tuple[DetectorSpec, ...]) -> Mapping[str, tuple[EventDetector, ...]]:
    table: dict[str, list[EventDetector]] = {}
    for spec in specs:
        for name in spec.names:
            table.setdefault(name, []).append(spec.detector)
    return {k: tuple(v) for k, v in table.items()}


def rechecks(specs: tuple[DetectorSpec, ...]) -> Mapping[str, Rechecker]:
    """Detectors that defer, by name: the check loop asks them again when a check is due."""
    out: dict[str, Rechecker] = {}
    for spec in specs:
        if isinstance(spec.detector, Rechecker):
            out[spec.detector.name] = spec.detector
    return out


def build_tick_registry() -> tuple[TickSpec, ...]:
    """The periodic detectors, run on every resident's snapshot each tick."""
    return (TickSpec(InactivityDetector()),)
