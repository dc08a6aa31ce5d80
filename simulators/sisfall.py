"""Real fall accelerometer traces from SisFall, cut down to a small fixture.

``python -m simulators falls --archive SisFall_dataset.tar.xz`` streams the archive in place
(never unpacking it), takes the first recording of each fall activity F01..F15, converts the
ADXL345 channel to m/s2 as the dataset's Readme says (13 bit over +-16 g: g = v * 32 / 8192),
resamples 200 Hz to the wristband's 50 Hz (mean of each run of 4 samples) and keeps 4 s around
the peak of the acceleration magnitude. The result, ``simulators/sisfall_falls.json``, is what
the simulator replays on a wristband's accelerometer stream when a resident falls.

Note: SisFall was recorded at the waist, not the wrist; the trace is the body's fall, which is
what a wrist-worn device also feels at impact, but the wrist adds arm swing we do not model.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import msgspec

SOURCE: Final = (
    "SisFall (Sucerquia, Lopez, Vargas-Bonilla, Sensors 17(1):198, 2017), copy at "
    "github.com/Brisabrin/FallDetectionAlgorithm@19c3aa2 SisFall_dataset/; ADXL345 channel"
)
DEFAULT_OUT: Final = Path(__file__).with_name("sisfall_falls.json")
SOURCE_HZ: Final = 200
TARGET_HZ: Final = 50
KEEP_S: Final = 4.0
STANDARD_GRAVITY: Final = 9.80665
ADXL345_G_PER_COUNT: Final = 32.0 / 8192.0
FALL_FILE: Final = re.compile(r"(F\d\d)_(S[AE]\d\d)_R\d\d\.txt$")

Sample = tuple[float, float, float]


class FallTrace(msgspec.Struct, frozen=True):
    file: str
    activity: str
    samples: list[list[float]]  # [x, y, z] in m/s2 at rate_hz


class FallTraces(msgspec.Struct, frozen=True):
    source: str
    rate_hz: int
    traces: list[FallTrace]


def parse_recording(text: str) -> list[Sample]:
    """The ADXL345 columns of one SisFall recording, in m/s2 at 200 Hz."""
    out: list[Sample] = []
    for line in text.splitlines():
        cols = line.strip().rstrip(";").split(",")
        if len(cols) < 3 or not cols[0].strip():
            continue
        x, y, z = (int(c) * ADXL345_G_PER_COUNT * STANDARD_GRAVITY for c in cols[:3])
        out.append((x, y, z))
    return out


def resample(samples: list[Sample], *, factor: int = SOURCE_HZ // TARGET_HZ) -> list[Sample]:
    """Downsample by an integer factor, averaging each run (a boxcar anti-alias filter)."""
    out: list[Sample] = []
    for i in range(0, len(samples) - factor + 1, factor):
        run = samples[i : i + factor]
        out.append(
            (
                sum(s[0] for s in run) / factor,
                sum(s[1] for s in run) / factor,
                sum(s[2] for s in run) / factor,
            )
        )
    return out


def around_peak(samples: list[Sample], *, rate_hz: int = TARGET_HZ) -> list[Sample]:
    """``KEEP_S`` seconds centred on the largest acceleration magnitude."""
    keep = int(KEEP_S * rate_hz)
    peak = max(range(len(samples)), key=lambda i: sum(v * v for v in samples[i]))
    start = max(0, min(len(samples) - keep, peak - keep // 2))
    return samples[start : start + keep]


def _fall_members(archive: Path) -> Iterator[tuple[str, str, str]]:
    with tarfile.open(archive, "r:xz") as tar:
        for member in tar:
            match = FALL_FILE.search(member.name)
            if not match or not member.isfile():
                continue
            handle = tar.extractfile(member)
            if handle is not None:
                yield member.name, match.group(1), handle.read().decode("ascii", "replace")


def extract(archive: Path) -> FallTraces:
    traces: dict[str, FallTrace] = {}
    for name, activity, text in _fall_members(archive):
        if activity in traces:
            continue
        cut = around_peak(resample(parse_recording(text)))
        rounded = [[round(v, 2) for v in s] for s in cut]
        traces[activity] = FallTrace(
            file=name.split("/", 1)[-1], activity=activity, samples=rounded
        )
        if len(traces) == 15:
            break
    ordered = [traces[k] for k in sorted(traces)]
    return FallTraces(source=SOURCE, rate_hz=TARGET_HZ, traces=ordered)


def write(traces: FallTraces, out: Path = DEFAULT_OUT) -> None:
    out.write_bytes(msgspec.json.encode(traces) + b"\n")


def load(path: Path = DEFAULT_OUT) -> FallTraces:
    return msgspec.json.decode(path.read_bytes(), type=FallTraces)
