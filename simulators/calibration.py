"""Calibrate daily routines on the real van Kasteren home logs (houses A-C of tlDatasets).

``python -m simulators calibrate --data <dir>`` reads ``houseX.sensors`` / ``.activities``
(``start_epoch <TAB> duration_s <TAB> id``; the epoch is local time written as UTC, so the hour of
day is ``start % 86400 // 3600``) in place and writes a compact parameter file,
``simulators/calibration.json``. The method (docs/simulators.md):

* sleep: the ``go-to-bed`` activity gives bed time (hours after noon) and sleep length;
* night toilet visits: ``use-toilet`` activities inside a ``go-to-bed`` interval, per night;
* meals: start hour of ``prep-breakfast`` and ``prep-dinner``;
* outings: ``leave-house`` per day, start hour and length;
* events: firings thinned to one per ``HOLD_S`` = 60 s (a PIR's hold time), so a burst of
  cupboard and door contacts counts once, as one motion report of our PIR would;
* quiet spells while awake at home: the gaps between consecutive events outside
  ``go-to-bed`` and ``leave-house``, kept as 21 quantiles (a renewal process samples them);
* movement in bed: the gaps between events inside a ``go-to-bed`` interval, 21 quantiles;
* for the comparison plot: the share of the day's firings in each hour and a histogram of
  quiet spells (gaps >= 1 min) over all firings.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import msgspec

SOURCE: Final = (
    "van Kasteren et al. (Pervasive 2010) tlDatasets houses A-C, as converted in "
    "github.com/agnesvanbelle/TL@14b5df4 source-code/our_project/data_src/data/"
)
HOUSES: Final = ("houseA", "houseB", "houseC")
DEFAULT_OUT: Final = Path(__file__).with_name("calibration.json")
# Quiet-spell histogram bins in minutes (right edges; the last bin is open-ended).
SPELL_EDGES_MIN: Final = (1, 2, 5, 10, 20, 30, 60, 120, 240, 480)
DAY: Final = 86400.0
HOLD_S: Final = 60.0  # firings closer than this to the last kept one are one event (PIR hold time)
MIN_SLEEP_H: Final = 3.0  # shorter go-to-bed intervals are naps, not the night
MAX_GAP_S: Final = 12 * 3600.0  # longer gaps are unlabelled absences, not quiet spells at home

Interval = tuple[float, float, int]  # start, duration, id


def read_intervals(path: Path) -> list[Interval]:
    out: list[Interval] = []
    for line in path.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and parts[0].strip():
            out.append((float(parts[0]), float(parts[1]), int(parts[2])))
    return sorted(out)


def read_names(path: Path) -> dict[int, str]:
    names: dict[int, str] = {}
    for line in path.read_text().splitlines():
        key, _, name = line.partition("\t")
        if key.strip():
            names[int(key)] = name.strip()
    return names


def hour_of(t: float) -> int:
    return int(t % DAY // 3600)


def spell_histogram(gaps_s: Sequence[float]) -> list[float]:
    """Share of quiet spells (gaps >= 1 min) per bin [edge_k, edge_k+1); the last is open."""
    counts = [0] * len(SPELL_EDGES_MIN)
    spells = [g / 60.0 for g in gaps_s if g >= 60.0]
    for minutes in spells:
        i = next((k for k, edge in enumerate(SPELL_EDGES_MIN[1:]) if minutes < edge), None)
        counts[len(SPELL_EDGES_MIN) - 1 if i is None else i] += 1
    total = max(1, len(spells))
    return [c / total for c in counts]


def thin(times: Sequence[float], hold_s: float = HOLD_S) -> list[float]:
    """Keep a firing only if it comes ``hold_s`` or more after the last kept one."""
    kept: list[float] = []
    for t in sorted(times):
        if not kept or t - kept[-1] >= hold_s:
            kept.append(t)
    return kept


def hour_share(times: Sequence[float]) -> list[float]:
    counts = [0] * 24
    for t in times:
        counts[hour_of(t)] += 1
    total = max(1, sum(counts))
    return [c / total for c in counts]


class Stat(msgspec.Struct, frozen=True):
    mean: float
    sd: float


class Calibration(msgspec.Struct, frozen=True):
    """The compact routine parameters (see the module docstring for how each is measured)."""

    source: str
    houses: list[str]
    days: float
    bed_time_h: Stat  # hours after midnight of the evening before, 12..36
    sleep_h: Stat
    night_toilets_per_night: float
    breakfast_h: Stat
    dinner_h: Stat
    outings_per_day: float
    outing_start_h: Stat
    outing_min_quantiles: list[float]
    awake_gap_s_quantiles: list[float]
    asleep_gap_s_quantiles: list[float]
    real_hour_share: list[float]
    real_spell_share: list[float]


def _stats(values: Sequence[float]) -> Stat:
    if not values:
        return Stat(0.0, 0.0)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return Stat(round(statistics.fmean(values), 3), round(sd, 3))


def quantiles(values: Sequence[float], n: int = 20) -> list[float]:
    ordered = sorted(values)
    if not ordered:
        return [0.0] * (n + 1)
    picks = [ordered[min(len(ordered) - 1, math.floor(i * len(ordered) / n))] for i in range(n)]
    return [round(x, 1) for x in [*picks, ordered[-1]]]


@dataclass(slots=True)
class _Acc:
    bed_h: list[float]
    sleep_h: list[float]
    night_toilets: list[float]
    breakfast_h: list[float]
    dinner_h: list[float]
    outings_per_day: list[float]
    outing_start_h: list[float]
    outing_min: list[float]
    awake_gaps: list[float]
    asleep_gaps: list[float]
    all_gaps: list[float]
    shares: list[list[float]]
    days: float = 0.0


def _inside(t: float, spans: Sequence[tuple[float, float]]) -> bool:
    return any(a <= t < b for a, b in spans)


def _house(acc: _Acc, data_dir: Path, house: str) -> None:
    sensors = read_intervals(data_dir / f"{house}.sensors")
    acts = read_intervals(data_dir / f"{house}.activities")
    names = read_names(data_dir / f"{house}.activity_names")
    by = {name: [a for a in acts if names.get(a[2]) == name] for name in set(names.values())}
    sleeps = [(s, s + d) for s, d, _ in by.get("go-to-bed", []) if d >= MIN_SLEEP_H * 3600]
    outs = [(s, s + d) for s, d, _ in by.get("leave-house", [])]
    days = max(1.0, (sensors[-1][0] - sensors[0][0]) / DAY)
    acc.days += days
    for start, end in sleeps:
        acc.bed_h.append((start % DAY / 3600 - 12.0) % 24.0 + 12.0)  # 12..36 h after midnight
        acc.sleep_h.append((end - start) / 3600)
        acc.night_toilets.append(sum(1 for s, _, _ in by.get("use-toilet", []) if start <= s < end))
    acc.breakfast_h += [s % DAY / 3600 for s, _, _ in by.get("prep-breakfast", [])]
    acc.dinner_h += [s % DAY / 3600 for s, _, _ in by.get("prep-dinner", [])]
    acc.outings_per_day.append(len(outs) / days)
    acc.outing_start_h += [s % DAY / 3600 for s, _ in outs]
    acc.outing_min += [(e - s) / 60 for s, e in outs]
    times = thin([s for s, _, _ in sensors])
    acc.shares.append(hour_share(times))
    for a, b in itertools.pairwise(times):
        gap = b - a
        acc.all_gaps.append(gap)
        if gap >= MAX_GAP_S or _inside(a, outs):
            continue
        if _inside(a, sleeps) and _inside(b, sleeps):
            acc.asleep_gaps.append(gap)
        elif not _inside(a, sleeps):
            acc.awake_gaps.append(gap)


def calibrate(data_dir: Path) -> Calibration:
    acc = _Acc([], [], [], [], [], [], [], [], [], [], [], [])
    for house in HOUSES:
        _house(acc, data_dir, house)
    share = [round(statistics.fmean(s[h] for s in acc.shares), 4) for h in range(24)]
    return Calibration(
        source=SOURCE,
        houses=list(HOUSES),
        days=round(acc.days, 1),
        bed_time_h=_stats(acc.bed_h),
        sleep_h=_stats(acc.sleep_h),
        night_toilets_per_night=round(statistics.fmean(acc.night_toilets or [0.0]), 3),
        breakfast_h=_stats(acc.breakfast_h),
        dinner_h=_stats(acc.dinner_h),
        outings_per_day=round(statistics.fmean(acc.outings_per_day), 3),
        outing_start_h=_stats(acc.outing_start_h),
        outing_min_quantiles=quantiles(acc.outing_min),
        awake_gap_s_quantiles=quantiles(acc.awake_gaps),
        asleep_gap_s_quantiles=quantiles(acc.asleep_gaps),
        real_hour_share=share,
        real_spell_share=[round(x, 4) for x in spell_histogram(acc.all_gaps)],
    )


def write(params: Calibration, out: Path = DEFAULT_OUT) -> None:
    out.write_bytes(msgspec.json.format(msgspec.json.encode(params), indent=1) + b"\n")


def load(path: Path = DEFAULT_OUT) -> Calibration:
    return msgspec.json.decode(path.read_bytes(), type=Calibration)
