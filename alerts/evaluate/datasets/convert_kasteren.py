"""``python -m alerts.evaluate.datasets.convert_kasteren OUTDIR``: the five shared homes (van Kasteren
A-C, MIT/Tapia D-E) in the evaluation's home format (:mod:`alerts.evaluate.datasets.external`).

Read in place from ../shared/data/smarthome-kasteren/tl_format_houses_A-E; written to
OUTDIR/house-A .. house-E (use a temporary directory, never the repository). Each sensor
firing (start, duration) becomes device-protocol events:

* PIR: ``motion`` at the start, and at the end unless it stayed on for over 30 min (a stuck
  PIR's end says nothing);
* bed mat (the two halves merged) and couch mat: ``presence`` true / false;
* toilet flush and sink float: ``flush`` true at the start, false at the end (the cistern
  refilled: not an action of the person);
* every reed or mercury contact (doors, cupboards, fridge, microwave door, ...): ``door``
  open / closed, both edges actions.

Labels (:func:`~alerts.evaluate.datasets.kasteren.label_kind`, whole labels, never substrings):
leave-house -> away, go-to-bed and Sleeping -> sleeping, everything else -> other (MIT's
Putting-away-dishes, -groceries, -laundry are at home). MIT's Going-out-to-work (for shopping,
entertainment, to exercise, to school) marks only the minutes of leaving: its ``away`` row
lasts until the return (:func:`~alerts.evaluate.datasets.kasteren.with_returns`: the first
exit-door event at least 10 min after its start and after its end, or the next label, whichever
comes first). Timezone UTC (the epochs are local time written as UTC, so hours of day read
directly).
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from alerts.evaluate.datasets.kasteren import (
    DATA_DIR,
    HOMES,
    PIR_MAX_ACTIVE_S,
    SENSOR_OVERRIDES,
    Sensor,
    _merge,
    _names,
    _rows,
    classify,
    label_kind,
    labels_of,
)

KIND = {"pir": "pir", "bed_mat": "bed_mat", "seat_mat": "seat_mat", "flush": "flush"}


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def _role(s: Sensor) -> str:
    return "exit_door" if s.exit else {"bed_mat": "bed", "seat_mat": "seat"}.get(s.device_kind, "")


def _events(dev: str, s: Sensor, start: int, duration: int) -> list[tuple[float, str, str, str]]:
    end = float(start + max(duration, 0))
    if s.device_kind == "pir":
        out = [(float(start), dev, "motion", "true")]
        if 0 < duration <= PIR_MAX_ACTIVE_S:
            out.append((end, dev, "motion", "true"))
        return out
    name, on, off = {
        "seat_mat": ("presence", "true", "false"),
        "flush": ("flush", "true", "false"),
    }.get(s.device_kind, ("door", "open", "closed"))
    return [(float(start), dev, name, on), (end, dev, name, off)]


def convert_home(name: str, out: Path, data_dir: Path = DATA_DIR) -> Path:
    home = out / f"house-{name}"
    home.mkdir(parents=True, exist_ok=True)
    names = _names(data_dir / f"house{name}.sensor_names") | SENSOR_OVERRIDES.get(name, {})
    sensors = {k: classify(v) for k, v in names.items()}
    events: list[tuple[float, str, str, str]] = []
    beds: list[tuple[float, float]] = []
    used: dict[str, Sensor] = {}
    for start, duration, sid in _rows(data_dir / f"house{name}.sensors"):
        s = sensors.get(sid) or classify(str(sid))
        if s.device_kind == "bed_mat":
            beds.append((float(start), float(start + duration)))
            used["bed"] = s
            continue
        dev = f"{KIND.get(s.device_kind, 'door')}-{sid}"
        used[dev] = s
        events.extend(_events(dev, s, start, duration))
    for b0, b1 in _merge(beds):
        events += [(b0, "bed", "presence", "true"), (b1, "bed", "presence", "false")]
    events.sort()
    with (home / "devices.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["device", "kind", "room", "role"])
        for dev, s in sorted(used.items()):
            kind = "bed_mat" if dev == "bed" else KIND.get(s.device_kind, "door")
            w.writerow([dev, kind, "bedroom" if dev == "bed" else s.room_kind or "", _role(s)])
    with (home / "events.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["time", "device", "name", "value"])
        w.writerows((_iso(t), d, n, v) for t, d, n, v in events)
    exits = sorted(t for t, dev, _, _ in events if dev in used and used[dev].exit)
    with (home / "labels.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["start", "end", "activity"])
        for lab in labels_of(name, exits, data_dir):
            w.writerow([_iso(lab.start), _iso(lab.end), label_kind(lab.name)])
    (home / "home.json").write_text(json.dumps({"timezone": "UTC"}) + "\n", encoding="utf-8")
    return home


def main(
    out: Annotated[Path, typer.Argument(help="directory to write house-A .. house-E into")],
    data_dir: Annotated[Path, typer.Option(help="the TL release (../shared/data/...)")] = DATA_DIR,
) -> None:
    """Convert the shared homes to the evaluation's home format."""
    for name in HOMES:
        typer.echo(convert_home(name, out, data_dir))


if __name__ == "__main__":
    typer.run(main)
