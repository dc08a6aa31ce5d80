"""The declarative lists of detectors: event detectors with the stream names that feed each
one, and periodic (tick) detectors run on every resident's snapshot."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from alerts.detectors.base import EventDetector
from alerts.detectors.inactivity import InactivityDetector
from alerts.detectors.safety import DeviceFallDetector, SmokeDetector, SosDetector
from alerts.detectors.snapshot import TickSpec


@dataclass(frozen=True, slots=True)
class DetectorSpec:
    detector: EventDetector
    names: frozenset[str]  # stream names (event or status) this detector reads


def build_registry(*, fall_min_confidence: float) -> tuple[DetectorSpec, ...]:
    return (
        DetectorSpec(SosDetector(), frozenset({"sos"})),
        DetectorSpec(DeviceFallDetector(min_confidence=fall_min_confidence), frozenset({"fall"})),
        DetectorSpec(SmokeDetector(), frozenset({"smoke"})),
    )


def route(specs: tuple[DetectorSpec, ...]) -> Mapping[str, tuple[EventDetector, ...]]:
    table: dict[str, list[EventDetector]] = {}
    for spec in specs:
        for name in spec.names:
            table.setdefault(name, []).append(spec.detector)
    return {k: tuple(v) for k, v in table.items()}


def build_tick_registry() -> tuple[TickSpec, ...]:
    """The periodic detectors, run on every resident's snapshot each tick."""
    return (TickSpec(InactivityDetector()),)
