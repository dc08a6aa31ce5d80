"""Reader for the five single-person smart-home logs (van Kasteren houses A-C, MIT/Tapia
subjects 1-2 as houses D-E), in the "TL" tab-separated format.

Source: ../shared/data/smarthome-kasteren/tl_format_houses_A-E (see SOURCE.txt there).
``.sensors`` / ``.activities`` rows are ``epoch_start_s <TAB> duration_s <TAB> id``; the
epoch is local time written as UTC, so hours of day read directly in UTC. Every sensor
firing becomes two signs of life (its start and its end: a door opened and closed, a mat
pressed and released). The two bed-mat halves of a bed are merged into one occupancy signal.
Each sensor is mapped to a room kind by a declarative keyword table.

Labels are read whole, never as substrings (:func:`label_kind`): van Kasteren's
``leave-house`` covers the whole absence and is ``away``; MIT's ``Putting-away-dishes`` (and
groceries, laundry) is done at home. MIT's ``Going-out-to-work`` (for shopping, ...) marks only
the few minutes of leaving: it is read as the departure of an absence lasting until the return
(:func:`with_returns`), the first exit-door event at least 10 min after the label's start and
not inside the label itself, or the next label, whichever comes first.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from alerts.detection.routine import Activity
from devices.shared_data import SHARED_DATA

DATA_DIR = SHARED_DATA / "smarthome-kasteren" / "tl_format_houses_A-E"
HOMES = ("A", "B", "C", "D", "E")

EXIT_DOORS = ("front door", "frontdoor", "foyer,door", "hallway,door")
BED_MATS = ("press bed", "bed right pressure", "bed mat left")
# First match wins; checked against the lower-cased sensor name (MIT names start "Room,").
ROOM_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("bathroom", ("bathroom,", "toilet", "badkamer", "bath", "shower", "flush")),
    ("kitchen", ("kitchen,", "butlers pantry,", "keuken", "gootsteen")),
    ("bedroom", ("bedroom", "slaapkamer", "dresser", "bed")),
    ("living", ("living", "couch", "den,", "dinning", "office")),
    ("entrance", ("front", "foyer", "hallway", "porch", "keys", "hall-")),
    (
        "kitchen",
        ("fridge", "freezer", "microwave", "magnetron", "cupboard", "dishwasher", "cutl", "stove"),
    ),
    ("kitchen", ("toaster", "refrigerator", "cabinet", "table", "drawer", "washing")),
)
# House B's named front door (id 7) never fires in this release; the unnamed sensor 4 fires
# at 31 of the 40 labelled departures and is taken as the front door (what an installer
# would record when commissioning). See docs/detection-inactivity.md.
SENSOR_OVERRIDES: dict[str, dict[int, str]] = {"B": {4: "front door (unnamed id 4)"}}
PIR_MAX_ACTIVE_S = 30 * 60
# Whole labels (lower-cased), never substrings: MIT's "Putting-away-dishes" is at home.
AWAY_LABELS = ("leave-house", "away")  # the whole absence (van Kasteren; the home format)
# MIT/Tapia: only the moment of leaving (minutes); read up to the return (with_returns).
DEPARTURE_LABELS = (
    "going-out-to-work",
    "going-out-for-entertainment",
    "going-out-to-exercise",
    "going-out-for-shopping",
    "going-out-to-school",
)
ASLEEP_LABELS = ("go-to-bed", "sleeping")
RETURN_AFTER_S = 10 * 60  # an exit door this soon after a departure label is still leaving
SEAT_MATS = ("couch",)
FLUSHES = ("flush", "float")


@dataclass(frozen=True, slots=True)
class Sensor:
    name: str
    room_kind: str | None
    device_kind: str  # "bed_mat", "seat_mat", "flush", "door", "pir" or "contact"
    exit: bool


@dataclass(frozen=True, slots=True)
class Label:
    start: float
    end: float
    name: str


@dataclass(frozen=True, slots=True)
class Home:
    name: str
    events: tuple[Activity, ...]  # sorted by time
    labels: tuple[Label, ...]
    timezone: str = "UTC"  # the TL epochs are local time written as UTC

    def label_at(self, t: float) -> str | None:
        for label in self.labels:
            if label.start <= t < label.end:
                return label.name
        return None

    def at_home_awake(self, start: float, end: float) -> bool:
        """No away or sleeping label overlaps [start, end)."""
        for label in self.labels:
            if label.start < end and start < label.end and label_kind(label.name) != "other":
                return False
        return True


def label_kind(name: str) -> str:
    """``away``, ``sleeping`` or ``other`` for an activity label, matched as a whole label."""
    lower = name.strip().lower()
    if lower in AWAY_LABELS or lower in DEPARTURE_LABELS:
        return "away"
    return "sleeping" if lower in ASLEEP_LABELS else "other"


def with_returns(labels: Sequence[Label], exits: Sequence[float]) -> tuple[Label, ...]:
    """Each departure label (:data:`DEPARTURE_LABELS`) extended to the return: the first
    exit-door event (``exits``, sorted) at least :data:`RETURN_AFTER_S` after its start and
    not before its end (a door inside the label is the leaving), or the start of the next
    label (an activity at home, or a new departure: the person was back), whichever comes
    first; never shorter than the label. Every other label as it is, in the same order."""
    starts = sorted(lab.start for lab in labels)
    out: list[Label] = []
    for lab in labels:
        if lab.name.strip().lower() not in DEPARTURE_LABELS:
            out.append(lab)
            continue
        ends = []
        i = bisect.bisect_left(exits, max(lab.start + RETURN_AFTER_S, lab.end))
        if i < len(exits):
            ends.append(exits[i])
        j = bisect.bisect_right(starts, lab.start)
        if j < len(starts):
            ends.append(starts[j])
        out.append(Label(lab.start, max(lab.end, min(ends, default=lab.end)), lab.name))
    return tuple(out)


def labels_of(name: str, exits: Sequence[float], data_dir: Path = DATA_DIR) -> tuple[Label, ...]:
    """House ``name``'s activity labels, in file order, departures read up to the return
    (:func:`with_returns`, ``exits`` the house's exit-door event times, sorted)."""
    names = _names(data_dir / f"house{name}.activity_names")
    labels = [
        Label(float(s), float(s + d), names.get(i, str(i)))
        for s, d, i in _rows(data_dir / f"house{name}.activities")
    ]
    return with_returns(labels, exits)


def classify(name: str) -> Sensor:
    lower = name.lower().strip()
    exit_door = any(k in lower for k in EXIT_DOORS)
    bed = any(k in lower for k in BED_MATS)
    room = "entrance" if exit_door else None
    if room is None:
        room = next((kind for kind, keys in ROOM_KEYWORDS if any(k in lower for k in keys)), None)
    kind = (
        "bed_mat"
        if bed
        else "seat_mat"
        if any(k in lower for k in SEAT_MATS)
        else "flush"
        if any(k in lower for k in FLUSHES)
        else "door"
        if "door" in lower
        else "pir"
        if "pir" in lower
        else "contact"
    )
    return Sensor(name.strip(), room, kind, exit_door)


def _names(path: Path) -> dict[int, str]:
    out: dict[int, str] = {}
    for line in path.read_text(encoding="latin-1").splitlines():
        if line.strip():
            key, _, name = line.partition("\t")
            out[int(key)] = name
    return out


def _rows(path: Path) -> list[tuple[int, int, int]]:
    rows: list[tuple[int, int, int]] = []
    for line in path.read_text().splitlines():
        if line.strip():
            a, b, c = line.split("\t")[:3]
            rows.append((int(a), int(b), int(c)))
    return rows


def _edges(sensor: Sensor, start: int, duration: int) -> tuple[int, ...]:
    """A firing's signs of life: its start, and its end (a door closed, a cupboard shut).
    A PIR's end is only its timeout; after a long activation it says nothing (stuck)."""
    if duration <= 0 or (sensor.device_kind == "pir" and duration > PIR_MAX_ACTIVE_S):
        return (start,)
    return (start, start + duration)


def _merge(intervals: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for s, e in sorted(intervals):
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def load_home(name: str, data_dir: Path = DATA_DIR) -> Home:
    names = _names(data_dir / f"house{name}.sensor_names") | SENSOR_OVERRIDES.get(name, {})
    sensors = {k: classify(v) for k, v in names.items()}
    events: list[Activity] = []
    bed: list[tuple[float, float]] = []
    for start, duration, sid in _rows(data_dir / f"house{name}.sensors"):
        s = sensors.get(sid) or classify(str(sid))
        if s.device_kind == "bed_mat":
            bed.append((float(start), float(start + duration)))
            continue
        for t in _edges(s, start, duration):
            events.append(Activity(float(t), s.room_kind, s.device_kind, s.name, None, s.exit))
    for s_, e_ in _merge(bed):
        events.append(Activity(s_, "bedroom", "bed_mat", "presence", True))
        events.append(Activity(e_, "bedroom", "bed_mat", "presence", False))
    events.sort(key=lambda a: a.t)
    labels = labels_of(name, [a.t for a in events if a.exit], data_dir)
    return Home(name, tuple(events), labels)
