"""Read SisFall recordings straight from the original tar.xz (never unpacked into the repo).

Only the ADXL345 accelerometer (columns 1-3: 13 bit, +-16 g, so g = count * 32 / 8192) is used,
converted to m/s2. Recordings are 200 Hz. Parsing the 757 MB of text takes a while, so the
raw counts are cached once under ``.build/`` keyed by the archive's sha256.
"""

from __future__ import annotations

import hashlib
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from alerts.evaluate.training.cache import BUILD_DIR, cached
from devices.shared_data import SHARED_DATA

DEFAULT_ARCHIVE = SHARED_DATA / "sisfall" / "SisFall_dataset.tar.xz"
CACHE_DIR = BUILD_DIR / "sisfall"
RATE_HZ = 200.0
GRAVITY = 9.80665
COUNT_TO_MS2 = 32.0 / 8192.0 * GRAVITY  # ADXL345: (2 * 16 g) / 2**13 per count
NAME = re.compile(r"(?:^|/)(?P<code>[DF]\d\d)_(?P<subject>S[AE]\d\d)_R(?P<trial>\d\d)\.txt$")

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Recording:
    subject: str  # SA01..SA23 (19-30 y), SE01..SE15 (60-75 y)
    code: str  # Fxx fall, Dxx activity of daily living
    trial: int
    samples: F32  # shape (n, 3): ADXL345 x, y, z in m/s2 at RATE_HZ

    @property
    def is_fall(self) -> bool:
        return self.code.startswith("F")

    @property
    def elderly(self) -> bool:
        return self.subject.startswith("SE")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def parse_counts(text: bytes) -> npt.NDArray[np.int16]:
    """The ADXL345 columns of one recording file (CRLF lines of 9 ints ending in ';')."""
    nums = np.fromstring(text.replace(b";", b" ").replace(b",", b" "), dtype=np.int32, sep=" ")
    if nums.size % 9:
        raise ValueError(f"expected 9 columns, got {nums.size} values")
    return nums.reshape(-1, 9)[:, :3].astype(np.int16)


def _scan(archive: Path) -> Iterator[tuple[str, str, int, npt.NDArray[np.int16]]]:
    with tarfile.open(archive, "r|xz") as tar:
        for member in tar:
            match = NAME.search(member.name)
            if not member.isfile() or match is None:
                continue
            f = tar.extractfile(member)
            if f is None:
                continue
            counts = parse_counts(f.read())
            yield match["subject"], match["code"], int(match["trial"]), counts


def _arrays(archive: Path) -> dict[str, npt.NDArray[Any]]:
    rows = sorted(_scan(archive), key=lambda r: (r[0], r[1], r[2]))
    return {
        "keys": np.array([f"{s}_{c}_{t:02d}" for s, c, t, _ in rows]),
        "lengths": np.array([len(r[3]) for r in rows], dtype=np.int64),
        "counts": np.concatenate([r[3] for r in rows]) if rows else np.zeros((0, 3), np.int16),
    }


def _cache_path(archive: Path) -> Path:
    return CACHE_DIR / f"adxl345-{sha256_of(archive)[:16]}.npz"


def recordings(archive: Path = DEFAULT_ARCHIVE, *, use_cache: bool = True) -> Iterator[Recording]:
    """Every recording, sorted by (subject, code, trial), samples in m/s2 at 200 Hz."""
    d = cached(_cache_path(archive), lambda: _arrays(archive)) if use_cache else _arrays(archive)
    keys, lengths, counts = d["keys"], d["lengths"], d["counts"]
    ends = np.cumsum(lengths)
    for key, end, n in zip(keys, ends, lengths, strict=True):
        subject, code, trial = str(key).split("_")
        samples = (counts[end - n : end].astype(np.float32) * np.float32(COUNT_TO_MS2)).astype(
            np.float32
        )
        yield Recording(subject, code, int(trial), samples)


def read_some(
    archive: Path, wanted: set[tuple[str, str, int]]
) -> dict[tuple[str, str, int], Recording]:
    """The (code, subject, trial) recordings asked for, read in one pass over the archive
    without the cache (for tests and demos)."""
    found: dict[tuple[str, str, int], Recording] = {}
    with tarfile.open(archive, "r|xz") as tar:
        for member in tar:
            match = NAME.search(member.name)
            key = (match["code"], match["subject"], int(match["trial"])) if match else None
            if key is None or key not in wanted or (f := tar.extractfile(member)) is None:
                continue
            samples = (parse_counts(f.read()).astype(np.float32) * COUNT_TO_MS2).astype(np.float32)
            found[key] = Recording(key[1], key[0], key[2], samples)
            if len(found) == len(wanted):
                break
    if missing := wanted - set(found):
        raise KeyError(f"{sorted(missing)} not in {archive}")
    return found
