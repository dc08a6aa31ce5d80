"""Arrays parsed or computed once and kept under the checkout's ``.build/`` (never committed).

Several processes may want the same file at once (the test suite's workers, a training run
beside an evaluation): the first to take the file's lock builds it, the others wait for it and
load what it wrote. A file is written under a name of its own and renamed into place, so a
reader never sees half of one.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

BUILD_DIR = Path(__file__).resolve().parents[3] / ".build"

Arrays = Mapping[str, npt.NDArray[Any]]


def _load(path: Path) -> dict[str, npt.NDArray[Any]]:
    with np.load(path) as d:
        return {k: d[k] for k in d.files}


def cached(path: Path, build: Callable[[], Arrays]) -> Arrays:
    """The arrays kept at ``path`` (an ``.npz``), built by ``build()`` by whichever process
    comes first."""
    if path.exists():
        return _load(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.with_name(path.name + ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if path.exists():  # another process built it while this one waited
            return _load(path)
        arrays = build()
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, **arrays)  # type: ignore[arg-type]
        tmp.replace(path)
        return arrays
