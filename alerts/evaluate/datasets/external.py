"""Reader for one home in the evaluation's own format (docs/detection-inactivity.md).

A home is a directory with

* ``devices.csv``: ``device,kind,room,role``; kind one of :data:`KINDS`, role ``exit_door``,
  ``bed``, ``seat`` or empty;
* ``events.csv``: ``time,device,name,value``, ISO-8601 UTC, names as in the device protocol
  (``motion``, ``presence``, ``door``, ``flush``, ``appliance``, ``activity``, ``steps``);
* optional ``labels.csv``: ``start,end,activity`` with activity ``away``, ``sleeping`` or
  ``other``;
* ``home.json``: ``{"timezone": "Europe/Amsterdam"}``.

Every event becomes an :class:`~alerts.detection.routine.Activity`; which of them are signs of life is
the routine's rule (:func:`alerts.detection.routine.is_sign_of_life`), the same as live.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from alerts.detection.routine import Activity
from alerts.evaluate.datasets.kasteren import Home, Label

KINDS = ("pir", "door", "bed_mat", "seat_mat", "flush", "appliance", "wristband", "radar")
ROLES = ("exit_door", "bed", "seat", "")
LABELS = ("away", "sleeping", "other")


class FormatError(ValueError):
    """A home directory that does not follow the format (file, line and why)."""


@dataclass(frozen=True, slots=True)
class Device:
    device: str
    kind: str
    room: str | None
    role: str


def _rows(path: Path, header: tuple[str, ...]) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != header:
            raise FormatError(f"{path}: header must be {','.join(header)}")
        return list(reader)


def _time(text: str, where: str) -> float:
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise FormatError(f"{where}: bad time {text!r}") from None
    if t.tzinfo is None:
        raise FormatError(f"{where}: time {text!r} has no UTC offset")
    return t.timestamp()


def _value(kind: str, name: str, text: str, where: str) -> bool | float | None:
    lower = text.strip().lower()
    if name in ("presence", "flush", "appliance", "motion"):
        if lower not in ("true", "false", "1", "0", ""):
            raise FormatError(f"{where}: {name} needs true/false, not {text!r}")
        return lower in ("true", "1", "") if name == "motion" else lower in ("true", "1")
    if name == "door":
        if lower not in ("open", "closed"):
            raise FormatError(f"{where}: door needs open/closed, not {text!r}")
        return lower == "open"
    if name in ("activity", "steps"):
        try:
            return float(lower)
        except ValueError:
            raise FormatError(f"{where}: {name} needs a number, not {text!r}") from None
    return None


def load_devices(path: Path) -> dict[str, Device]:
    out: dict[str, Device] = {}
    for i, row in enumerate(_rows(path, ("device", "kind", "room", "role")), start=2):
        kind, role = row["kind"].strip(), (row["role"] or "").strip()
        if kind not in KINDS or role not in ROLES:
            raise FormatError(f"{path}:{i}: kind {kind!r} / role {role!r} not in the format")
        out[row["device"].strip()] = Device(row["device"].strip(), kind, row["room"] or None, role)
    return out


def load_external(directory: Path) -> Home:
    devices = load_devices(directory / "devices.csv")
    meta = json.loads((directory / "home.json").read_text(encoding="utf-8"))
    tz = str(meta.get("timezone", "UTC"))
    events: list[Activity] = []
    path = directory / "events.csv"
    for i, row in enumerate(_rows(path, ("time", "device", "name", "value")), start=2):
        where = f"{path}:{i}"
        dev = devices.get(row["device"].strip())
        if dev is None:
            raise FormatError(f"{where}: device {row['device']!r} not in devices.csv")
        name = row["name"].strip()
        value = _value(dev.kind, name, row["value"] or "", where)
        room = "bedroom" if dev.role == "bed" and dev.room is None else dev.room
        events.append(
            Activity(
                _time(row["time"], where), room, dev.kind, name, value, dev.role == "exit_door"
            )
        )
    labels: list[Label] = []
    lpath = directory / "labels.csv"
    if lpath.exists():
        for i, row in enumerate(_rows(lpath, ("start", "end", "activity")), start=2):
            what = row["activity"].strip()
            if what not in LABELS:
                raise FormatError(f"{lpath}:{i}: activity {what!r} not in {LABELS}")
            labels.append(
                Label(_time(row["start"], lpath.name), _time(row["end"], lpath.name), what)
            )
    events.sort(key=lambda a: a.t)
    return Home(directory.name, tuple(events), tuple(labels), tz)
