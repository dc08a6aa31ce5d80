"""``python -m alerts.evaluate.falls``: subject-wise cross-validation of the fall detector on
SisFall, at recording level, as the live detector would stream it (a window every second).

A fall recording counts as detected if any of its windows fires; an ADL recording is a false
positive if any of its windows fires. Thresholds are chosen inside the training folds.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits

from alerts.fall import learn, sisfall

FOLD_S = 120.0  # live alerts of one resident within this many seconds are one situation


@dataclass(frozen=True, slots=True)
class Figures:
    falls: int
    adl: int
    detected: int
    false_positive_recordings: int
    sensitivity: float
    specificity: float
    f1: float
    adl_hours: float
    false_alarms_per_adl_hour: float
    fired_windows_per_adl_hour: float


def figures(
    ds: learn.Dataset, fired: npt.NDArray[np.bool_], recs: npt.NDArray[np.bool_]
) -> Figures:
    """Recording-level figures over the recordings selected by ``recs``."""
    any_fired = np.zeros(len(ds.subject), dtype=bool)
    np.logical_or.at(any_fired, ds.rec, fired)
    fall, adl = recs & ds.is_fall, recs & ~ds.is_fall
    tp, fn = int(np.sum(any_fired & fall)), int(np.sum(~any_fired & fall))
    fp, tn = int(np.sum(any_fired & adl)), int(np.sum(~any_fired & adl))
    sens = tp / (tp + fn) if tp + fn else float("nan")
    spec = tn / (tn + fp) if tn + fp else float("nan")
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")
    hours = float(ds.duration_s[adl].sum() / 3600.0)
    adl_windows = fired & adl[ds.rec]
    # Live, firing windows of one recording (< FOLD_S long) fold into one alert.
    return Figures(
        falls=int(fall.sum()),
        adl=int(adl.sum()),
        detected=tp,
        false_positive_recordings=fp,
        sensitivity=sens,
        specificity=spec,
        f1=f1,
        adl_hours=hours,
        false_alarms_per_adl_hour=fp / hours if hours else float("nan"),
        fired_windows_per_adl_hour=int(adl_windows.sum()) / hours if hours else float("nan"),
    )


def report(ds: learn.Dataset, cv: learn.CvResult) -> dict[str, Figures]:
    everyone = np.ones(len(ds.subject), dtype=bool)
    adults = np.char.startswith(ds.subject, "SA")
    return {
        "all": figures(ds, cv.fired, everyone),
        "SA adults 19-30": figures(ds, cv.fired, adults),
        "SE elderly 60-75": figures(ds, cv.fired, ~adults),
    }


def print_report(ds: learn.Dataset, cv: learn.CvResult, rows: dict[str, Figures]) -> None:
    print(
        f"SisFall subject-wise {learn.OUTER_FOLDS}-fold CV (GroupKFold by subject), "
        f"{len(set(ds.subject))} subjects, {len(ds.subject)} recordings, {len(ds.X)} windows"
    )
    print(
        "thresholds chosen inside the training folds:", ", ".join(f"{t:.3f}" for t in cv.thresholds)
    )
    for name, f in rows.items():
        print(
            f"{name:18s} sensitivity {f.sensitivity:7.2%} ({f.detected}/{f.falls})  "
            f"specificity {f.specificity:7.2%} ({f.adl - f.false_positive_recordings}/{f.adl})  "
            f"F1 {f.f1:.3f}  false alarms/h ADL {f.false_alarms_per_adl_hour:.3f} "
            f"(fired windows/h {f.fired_windows_per_adl_hour:.2f}, {f.adl_hours:.2f} h ADL)"
        )
    any_fired = np.zeros(len(ds.subject), dtype=bool)
    np.logical_or.at(any_fired, ds.rec, cv.fired)
    for label, wrong in (
        ("missed falls", ds.is_fall & ~any_fired),
        ("ADL false positives", ~ds.is_fall & any_fired),
    ):
        codes, counts = np.unique(ds.code[wrong], return_counts=True)
        by_code = ", ".join(f"{c} x{n}" for c, n in zip(codes, counts, strict=True))
        print(f"{label} by activity: {by_code or 'none'}")
    se06 = ds.is_fall & (ds.subject == "SE06")
    print(
        f"note: of the elderly only SE06 performed falls ({int(se06.sum())} recordings); "
        "elderly sensitivity rests on one person"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--archive", type=Path, default=sisfall.DEFAULT_ARCHIVE)
    args = parser.parse_args()
    threadpool_limits(1)  # one thread: OpenMP spinning on a shared machine is far slower
    ds = learn.build(args.archive)
    cv = learn.cross_validate(ds)
    rows = report(ds, cv)
    print_report(ds, cv, rows)


if __name__ == "__main__":
    main()
