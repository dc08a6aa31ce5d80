"""Scenario files (TOML): a site, its residents, a timeline of incidents and faults, and the
expected outcome of each incident. See simulators/scenarios/*.toml and docs/simulators.md."""

from __future__ import annotations

import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Final

import msgspec

from devices.domain import CareProfile, Colour

BUNDLED: Final = Path(__file__).with_name("scenarios")


class What(StrEnum):
    SOS = "sos"
    FALL = "fall"  # wristband/radar with on-device detection: raw trace + `fall` event
    FALL_ACCEL = "fall_accel"  # raw accelerometer trace only, no device verdict
    SMOKE = "smoke"
    INACTIVITY = "inactivity"
    NIGHT_WANDERING = "night_wandering"
    BED_EXIT = "bed_exit"
    VITALS = "vitals"


class FaultKind(StrEnum):
    DROPOUT = "dropout"  # Last Will fires, reconnects after for_s with a burst of backlog
    BATTERY_DRAIN = "battery_drain"  # battery falls to empty, then the device drops out
    CLOCK_DRIFT = "clock_drift"  # timestamps drift by drift_s_per_h
    DUPLICATE = "duplicate"  # every message in the window is sent twice
    OUT_OF_ORDER = "out_of_order"  # neighbouring messages in the window swap places
    MALFORMED = "malformed"  # a volley of broken payloads
    IMPERSONATE = "impersonate"  # publishes an SOS naming another device / on its topic
    RECONNECT_FLOOD = "reconnect_flood"  # every device drops and all reconnect at once


class Incident(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    at_s: float  # simulated seconds after the start
    what: What
    resident: str | None = None  # who (their devices are used)
    device: str | None = None  # or which device (smoke detectors, a given button)
    expect_colour: Colour | None = None  # None: no alert expected (a control)
    expect_kind: list[str] = msgspec.field(default_factory=list)  # any of these alert kinds
    max_delay_s: float = 15.0  # wall seconds from detectable to alert raised
    detect_after_s: float = 0.0  # simulated seconds from start until detectable
    duration_s: float = 0.0  # how long the condition lasts (inactivity, bed exit, vitals ramp)
    confidence: float = 0.9  # on-device fall confidence
    accept: bool = False  # accept the order through the API as a responder would
    needs: str = ""  # the detector this incident needs, shown in the scorecard
    # inactivity: where the resident collapses: "" (up and about in their room), "seated" (in
    # the armchair: seat mat pressed), "after_home" (right after coming home from an outing)
    where: str = ""


class Fault(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    at_s: float
    what: FaultKind
    device: str | None = None  # None: every device (reconnect_flood) or a random one
    victim: str | None = None  # impersonate: the device it pretends to be
    for_s: float = 30.0
    drift_s_per_h: float = 60.0
    count: int = 5


class Scenario(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    description: str = ""
    sites: list[str] = msgspec.field(default_factory=list)
    residents: dict[str, CareProfile] = msgspec.field(default_factory=dict)  # profile overrides
    only_residents: list[str] | None = None  # simulate only these (default: all of the sites)
    duration_s: float = 60.0
    speed: float = 1.0  # 1 = real time; 144 = a day in 10 minutes
    start_local: str | None = None  # "HH:MM" local time of day the simulated run starts at
    telemetry_every_s: float = 300.0
    acc_streaming: str = "incidents"  # "all" wearers, only around "incidents", or "none"
    routine: bool = True  # play daily routines (motion, door, bed presence)
    seed: int = 1
    max_false_alarms: int = 0
    # Alert kinds the faults are expected to cause (technical tickets such as "device_offline"
    # or "low_battery"): listed, not counted as false alarms.
    tolerate_kinds: list[str] = msgspec.field(default_factory=list)
    settle_s: float = 5.0  # wall seconds to keep watching for false alarms after the end
    incident: list[Incident] = msgspec.field(default_factory=list)
    fault: list[Fault] = msgspec.field(default_factory=list)


def load(path: Path) -> Scenario:
    """Read a scenario; a bare name means a bundled one (``quiet-day``)."""
    if not path.exists() and (BUNDLED / f"{path}.toml").exists():
        path = BUNDLED / f"{path}.toml"
    with path.open("rb") as fh:
        raw = tomllib.load(fh)
    scenario = msgspec.convert(raw, type=Scenario)
    for inc in scenario.incident:
        if inc.resident is None and inc.device is None:
            raise ValueError(
                f"{path}: incident {inc.what} at {inc.at_s} s names no resident/device"
            )
        if inc.expect_colour is not None and not inc.expect_kind:
            raise ValueError(f"{path}: incident {inc.what} at {inc.at_s} s expects no alert kind")
        if not 0 <= inc.at_s <= scenario.duration_s:
            raise ValueError(f"{path}: incident at {inc.at_s} s is outside the run")
    if scenario.speed < 1.0:
        raise ValueError(f"{path}: speed must be >= 1 (1 = real time)")
    return scenario
