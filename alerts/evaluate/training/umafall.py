"""Read UMAFall recordings straight from the shared tar.xz (never unpacked into the repo).

UMAFall (Casilari, Santoyo-Ramon, Cano-Garcia, Procedia Computer Science 110:32-39, 2017;
CC BY 4.0): 19 people aged 18-68, 746 traces of 12-15 s, accelerometers at the wrist, waist,
chest, ankle (TI SensorTag, about 20 Hz, uneven timestamps) and in a trouser pocket (phone,
about 200 Hz). Units are g, converted to m/s2. The SensorTags clip at 8 g; 20 wrist files
hold glitch samples above 8.5 g (up to ~109 g) that no real movement makes on a sensor that
clips at 8 g: they are dropped here (as the data set's notes advise). Parsed once and cached
under ``.build/umafall`` keyed by the archive's sha256.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from alerts.evaluate.training.cache import BUILD_DIR, cached
from alerts.evaluate.training.sisfall import sha256_of
from devices.shared_data import SHARED_DATA

DEFAULT_ARCHIVE = SHARED_DATA / "umafall" / "umafall_extracted_files.tar.xz"
CACHE_DIR = BUILD_DIR / "umafall"
GRAVITY = 9.80665
GLITCH_G = 8.5
SENSORS = {0: "pocket", 1: "chest", 2: "waist", 3: "wrist", 4: "ankle"}
NAME = re.compile(
    r"UMAFall_Subject_(?P<subject>\d\d)_(?P<kind>ADL|Fall|FALL)_(?P<activity>[A-Za-z_]+?)_"
    r"(?P<trial>\d+)_\d{4}-\d\d-\d\d_[\d-]+\.csv$"
)
AGE = re.compile(rb"% Age: *(\d+)")

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Recording:
    subject: str  # U01..U19
    activity: str  # e.g. Aplausing, Jogging, forwardFall
    trial: int
    is_fall: bool
    age: int | None
    placement: str  # wrist, waist, chest, ankle, pocket
    times: F64  # seconds from the trace's start, ascending, unique
    samples: F64  # (n, 3) m/s2


def parse(text: bytes) -> tuple[int | None, dict[int, tuple[F64, F64]]]:
    """(age, {sensor id: (times s, xyz m/s2)}) of one trace file (accelerometer rows only)."""
    age_match = AGE.search(text)
    body = b"\n".join(
        line for line in text.splitlines() if line.strip() and not line.startswith(b"%")
    )
    try:
        nums = np.fromstring(body.replace(b";", b" "), dtype=np.float64, sep=" ")
    except ValueError:  # a few rows are corrupt ("1.098.044.276;-6,10E+10"): drop them
        nums = np.array([v for line in body.splitlines() for v in _row(line)], dtype=np.float64)
    if nums.size % 7:
        raise ValueError(f"expected 7 columns, got {nums.size} values")
    rows = nums.reshape(-1, 7)
    rows = rows[rows[:, 5] == 0]  # accelerometer
    t0 = rows[:, 0].min() if len(rows) else 0.0
    out: dict[int, tuple[F64, F64]] = {}
    for sensor in SENSORS:
        r = rows[rows[:, 6] == sensor]
        r = r[np.all(np.abs(r[:, 2:5]) <= GLITCH_G, axis=1)]
        r = r[np.argsort(r[:, 0], kind="stable")]
        _, first = np.unique(r[:, 0], return_index=True)  # one sample per timestamp
        r = r[first]
        if len(r) >= 20:
            out[sensor] = ((r[:, 0] - t0) / 1000.0, r[:, 2:5] * GRAVITY)
    return (int(age_match[1]) if age_match else None), out


def _row(line: bytes) -> list[float]:
    try:
        values = [float(v) for v in line.strip().rstrip(b";").split(b";")]
    except ValueError:
        return []
    return values if len(values) == 7 else []


def _scan(archive: Path) -> Iterator[Recording]:
    with tarfile.open(archive, "r|xz") as tar:
        for member in tar:
            match = NAME.search(member.name)
            if not member.isfile() or match is None or (f := tar.extractfile(member)) is None:
                continue
            age, sensors = parse(f.read())
            for sensor, (t, x) in sensors.items():
                yield Recording(
                    f"U{match['subject']}",
                    match["activity"],
                    int(match["trial"]),
                    match["kind"].lower() == "fall",
                    age,
                    SENSORS[sensor],
                    t,
                    x,
                )


def _arrays(archive: Path) -> dict[str, npt.NDArray[Any]]:
    recs = sorted(_scan(archive), key=lambda r: (r.placement, r.subject, r.activity, r.trial))
    meta = [
        (
            r.subject,
            r.activity,
            str(r.trial),
            "1" if r.is_fall else "0",
            "" if r.age is None else str(r.age),
            r.placement,
        )
        for r in recs
    ]
    return {
        "meta": np.array(meta),
        "lengths": np.array([len(r.times) for r in recs], dtype=np.int64),
        "data": np.concatenate([np.column_stack([r.times, r.samples]) for r in recs]),
    }


def recordings(archive: Path = DEFAULT_ARCHIVE, *, use_cache: bool = True) -> list[Recording]:
    """Every (trace, placement), sorted by (placement, subject, activity, trial)."""
    d = (
        cached(CACHE_DIR / f"acc-{sha256_of(archive)[:16]}.npz", lambda: _arrays(archive))
        if use_cache
        else _arrays(archive)
    )
    meta, lengths, data = d["meta"], d["lengths"], d["data"]
    ends = np.cumsum(lengths)
    out = []
    for m, end, n in zip(meta, ends, lengths, strict=True):
        subject, activity, trial, fall, age, placement = (str(v) for v in m)
        chunk = data[end - n : end].astype(np.float64)
        out.append(
            Recording(
                subject,
                activity,
                int(trial),
                fall == "1",
                int(age) if age else None,
                placement,
                chunk[:, 0].copy(),
                chunk[:, 1:].copy(),
            )
        )
    return out
