"""Simulated residents' homes in the inactivity evaluation's home format.

``python -m simulators homes OUT --residents 5 --days 28`` writes OUT/sim-<profile>-<n>/ with
``devices.csv``, ``events.csv``, ``labels.csv`` and ``home.json`` (format:
docs/detection-inactivity.md), one single-room home-care bed per resident with the devices its
care profile has (PIR, front door, bed mat, seat mat, wristband activity). Labels come from
the simulator's own truth: ``sleeping`` for each night, ``away`` for each outing. Then
``python -m alerts.evaluate.inactivity external OUT/*`` judges them like real homes. Pure: no
broker, no database; the same seed writes the same files.
"""

from __future__ import annotations

import csv
import json
import random
from datetime import UTC, datetime
from pathlib import Path

from devices.domain import DEFAULT_TIMEZONE, CareProfile, DeviceKind
from simulators.calibration import Calibration
from simulators.clock import UTC_OFFSET_H
from simulators.population import PROFILE_DEVICES
from simulators.routine import DAY, day_plan

DEVICES = {  # kind -> (device id, kind in the format, room, role)
    DeviceKind.PIR: ("pir", "pir", "living", ""),
    DeviceKind.DOOR: ("door", "door", "entrance", "exit_door"),
    DeviceKind.BED_MAT: ("bed", "bed_mat", "bedroom", "bed"),
    DeviceKind.SEAT_MAT: ("seat", "seat_mat", "living", "seat"),
    DeviceKind.WRISTBAND: ("wb", "wristband", "", ""),
}
START = 1_790_000_000.0  # a fixed simulated epoch (2026-09), local midnight is derived


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def _value(name: str, value: bool | str | float) -> str:
    if name == "door":
        return str(value)
    if name == "activity":
        return f"{float(value):g}"
    return "true" if value is True else "false"


def _outings(events: list[tuple[float, str, str, str]]) -> list[tuple[float, float]]:
    """Door opened, then nothing but the door until it is opened again: an outing."""
    out: list[tuple[float, float]] = []
    left: float | None = None
    for t, dev, name, value in events:
        if dev == "door" and name == "door" and value == "open":
            if left is not None:
                out.append((left, t))
                left = None
            else:
                left = t
        elif dev != "door" and left is not None:
            left = None  # a visitor: someone moved at home
    return out


def write_home(
    out: Path, name: str, profile: CareProfile, *, days: int, calib: Calibration, seed: int
) -> Path:
    rng = random.Random(seed)
    home = out / name
    home.mkdir(parents=True, exist_ok=True)
    kinds = [k for k in DEVICES if k in PROFILE_DEVICES[profile]]
    midnight = START - (START + UTC_OFFSET_H * 3600) % DAY
    events: list[tuple[float, str, str, str]] = []
    nights: list[tuple[float, float]] = []
    for d in range(days):
        plan = day_plan(profile, day_start=midnight + d * DAY, calib=calib, rng=rng)
        nights += [(n.bed_at, n.wake_at) for n in plan.nights]
        for e in plan.events:
            if e.device in kinds:
                events.append((e.at, DEVICES[e.device][0], e.name, _value(e.name, e.value)))
    events.sort()
    with (home / "devices.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["device", "kind", "room", "role"])
        w.writerows(DEVICES[k] for k in kinds)
    with (home / "events.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["time", "device", "name", "value"])
        w.writerows((_iso(t), dev, n, v) for t, dev, n, v in events)
    with (home / "labels.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["start", "end", "activity"])
        for t0, t1 in sorted(set(nights)):
            w.writerow([_iso(t0), _iso(t1), "sleeping"])
        for t0, t1 in _outings(events):
            w.writerow([_iso(t0), _iso(t1), "away"])
    meta = {"timezone": DEFAULT_TIMEZONE, "source": f"simulators.homes seed {seed} {profile}"}
    (home / "home.json").write_text(json.dumps(meta) + "\n", encoding="utf-8")
    return home


def write_homes(
    out: Path, *, residents: int, days: int, calib: Calibration, seed: int
) -> list[Path]:
    profiles = (CareProfile.FRAIL, CareProfile.INDEPENDENT, CareProfile.DEMENTIA)
    return [
        write_home(
            out,
            f"sim-{profiles[i % 3]}-{i + 1}",
            profiles[i % 3],
            days=days,
            calib=calib,
            seed=seed + i,
        )
        for i in range(residents)
    ]
