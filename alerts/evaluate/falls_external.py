"""``python -m alerts.evaluate.falls external DIR --out FILE``: the shipped fall models on
anyone's recordings, through the live path the worker runs.

DIR holds ``manifest.csv`` with the header ``recording,file,placement,label,subject,age``
(placement ``wrist|waist|neck|chest``; label ``fall|adl``; age in years, may be empty) and
one CSV per recording (``file``, relative to DIR) with the header ``t,x,y,z``: seconds from
the start and acceleration in m/s2, at any steady rate. Each recording is cut into the 1-s
packs a device sends and judged as the worker would; FILE gets one row per recording:
``recording,fired,first_alert_t,max_confidence,checks`` (``fired``: staff would be paged if
the wearer did nothing; ``first_alert_t``: seconds from the start when the first alert would
be raised; ``checks``: "did you fall?" checks the wearer would have been asked, with the
default 30-s window and the shipped bands, ``alerts.detection.fall.check``). Sensitivity and
specificity per placement and age group are printed.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from alerts.detection.fall import live
from alerts.detection.fall.detector import AccFallDetector
from alerts.detection.fall.model import load, load_all
from alerts.evaluate.falls import pct
from devices.domain import Placement

COLUMNS = ("recording", "file", "placement", "label", "subject", "age")
OUT_COLUMNS = ("recording", "fired", "first_alert_t", "max_confidence", "checks")


class ManifestError(ValueError):
    """The directory does not follow the documented format."""


@dataclass(frozen=True, slots=True)
class Entry:
    recording: str
    file: Path
    placement: str
    is_fall: bool
    subject: str
    age: int | None

    @property
    def age_group(self) -> str:
        if self.age is None:
            return "age unknown"
        return "<65" if self.age < 65 else "65-79" if self.age < 80 else "80+"


def read_manifest(directory: Path) -> list[Entry]:
    path = directory / "manifest.csv"
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ManifestError(f"{path}: header must be {','.join(COLUMNS)}")
        out = []
        for n, row in enumerate(reader, start=2):
            try:
                out.append(_entry(directory, row))
            except ValueError as exc:
                raise ManifestError(f"{path}:{n}: {exc}") from exc
    return out


def _entry(directory: Path, row: dict[str, str]) -> Entry:
    placement = Placement.parse(row["placement"])
    if placement is Placement.UNKNOWN:
        raise ValueError(f"placement must be wrist, waist, neck or chest, not {row['placement']!r}")
    if row["label"] not in ("fall", "adl"):
        raise ValueError(f"label must be fall or adl, not {row['label']!r}")
    age = int(row["age"]) if row["age"].strip() else None
    file = (directory / row["file"]).resolve()
    if directory.resolve() not in file.parents:
        raise ValueError(f"{row['file']} is outside {directory}")
    return Entry(
        row["recording"], file, placement.value, row["label"] == "fall", row["subject"], age
    )


def read_recording(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with path.open() as f:
        if f.readline().strip().replace(" ", "") != "t,x,y,z":
            raise ManifestError(f"{path}: header must be t,x,y,z")
        data = np.loadtxt(f, delimiter=",", ndmin=2)
    if data.shape[1] != 4 or len(data) < 2 or not np.all(np.isfinite(data)):
        raise ManifestError(f"{path}: need at least two finite rows of t,x,y,z")
    return data[:, 0], data[:, 1:]


def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m alerts.evaluate.falls external")
    parser.add_argument("directory", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    threadpool_limits(1)
    detector = AccFallDetector(load(), load_all())
    entries = read_manifest(args.directory)
    results: list[tuple[Entry, live.Outcome]] = []
    with args.out.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(OUT_COLUMNS)
        for e in entries:
            t, x = read_recording(e.file)
            o = live.run(t - t[0], x, detector, placement=e.placement)
            results.append((e, o))
            writer.writerow(
                [
                    e.recording,
                    int(o.fired),
                    "" if o.first_alert_t is None else f"{o.first_alert_t:.2f}",
                    f"{o.max_confidence:.3f}",
                    o.checks,
                ]
            )
    groups: dict[str, list[tuple[Entry, live.Outcome]]] = {}
    for e, o in results:
        for key in (f"{e.placement}", f"{e.placement} {e.age_group}"):
            groups.setdefault(key, []).append((e, o))
    for key in sorted(groups):
        rows = groups[key]
        falls = [o for e, o in rows if e.is_fall]
        adl = [o for e, o in rows if not e.is_fall]
        print(
            f"{key:22s} sensitivity {pct(sum(o.fired for o in falls), len(falls))}  "
            f"specificity {pct(sum(not o.fired for o in adl), len(adl))}"
        )
    print(f"wrote {len(results)} rows to {args.out}", file=sys.stderr)
