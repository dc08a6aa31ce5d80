"""Daily routines: one resident's day as a list of device events, drawn from calibrated laws.

Pure: ``day_events(profile, day_start=..., calib=..., rng=...)`` returns the events of the
local day starting at ``day_start`` (simulated epoch seconds of local midnight). The laws come
from :mod:`simulators.calibration` (real homes), bent per care profile by :data:`PROFILES`.
"""

from __future__ import annotations

import bisect
import itertools
import random
from dataclasses import dataclass
from typing import Final

from devices.domain import CareProfile, DeviceKind
from simulators.calibration import Calibration, Stat

HOUR: Final = 3600.0
DAY: Final = 24 * HOUR


@dataclass(frozen=True, slots=True)
class ProfileLaw:
    """How a care profile bends the calibrated routine of an (independent) adult."""

    gap_scale: float  # quiet spells at home are this much longer
    sleep_sd_scale: float  # bed time varies this much more
    sleep_extra_h: float  # hours added to the night
    night_toilet_scale: float
    outing_scale: float
    visitors_per_day: float  # family, carers, staff rounds
    ambient: bool = True  # moves about the room on their own
    wanders: bool = False  # may open the door at night (used by incidents, not by routine)
    # In care the night is kept by the care routine: staff get residents up from this local
    # hour, when their care plan's night watch ends (up for good before it is what the
    # bed-exit watch is for: an incident, not ordinary life). None: whenever they wake.
    up_from_h: float | None = None


PROFILES: Final[dict[CareProfile, ProfileLaw]] = {
    CareProfile.INDEPENDENT: ProfileLaw(1.0, 1.0, 0.0, 1.0, 1.0, 0.5),
    CareProfile.FRAIL: ProfileLaw(1.6, 1.0, 1.0, 1.6, 0.3, 1.5, up_from_h=6.0),
    CareProfile.DEMENTIA: ProfileLaw(1.3, 1.8, 0.5, 2.0, 0.1, 2.0, wanders=True, up_from_h=6.0),
    CareProfile.BED_BOUND: ProfileLaw(1.0, 0.5, 2.0, 0.0, 0.0, 6.0, ambient=False, up_from_h=6.0),
}


@dataclass(frozen=True, slots=True, order=True)
class RoutineEvent:
    at: float  # simulated epoch seconds
    device: DeviceKind  # which of the resident's devices reports it
    name: str  # "motion", "presence", "door" or "activity" (wristband, % of the minute moving)
    value: bool | str | float


def _normal(rng: random.Random, stat: Stat, *, sd_scale: float = 1.0) -> float:
    return rng.gauss(stat.mean, stat.sd * sd_scale)


def sample_quantiles(rng: random.Random, qs: list[float]) -> float:
    """Inverse-CDF sampling, linear between the stored quantiles."""
    u = rng.random() * (len(qs) - 1)
    i = int(u)
    if i >= len(qs) - 1:
        return qs[-1]
    return qs[i] + (qs[i + 1] - qs[i]) * (u - i)


def _poisson(rng: random.Random, mean: float) -> int:
    count, t = 0, rng.expovariate(1.0) if mean > 0 else float("inf")
    while t < mean:
        count += 1
        t += rng.expovariate(1.0)
    return count


@dataclass(frozen=True, slots=True)
class Night:
    bed_at: float
    wake_at: float


def night(law: ProfileLaw, calib: Calibration, *, evening_of: float, rng: random.Random) -> Night:
    """The night that starts on the evening of the day beginning at ``evening_of``."""
    bed_h = min(27.0, max(20.0, _normal(rng, calib.bed_time_h, sd_scale=law.sleep_sd_scale)))
    sleep_h = min(12.0, max(5.0, _normal(rng, calib.sleep_h) + law.sleep_extra_h))
    bed_at = evening_of + bed_h * HOUR
    wake_at = bed_at + sleep_h * HOUR
    if law.up_from_h is not None:
        wake_at = max(wake_at, evening_of + DAY + law.up_from_h * HOUR + 300.0)
    return Night(bed_at, wake_at)


def _burst(out: list[RoutineEvent], at: float, rng: random.Random, n: int) -> None:
    for k in range(n):
        out.append(RoutineEvent(at + k * rng.uniform(60.0, 240.0), DeviceKind.PIR, "motion", True))


def _door_pair(out: list[RoutineEvent], at: float, back: float) -> None:
    out.append(RoutineEvent(at, DeviceKind.DOOR, "door", "open"))
    out.append(RoutineEvent(at + 20.0, DeviceKind.DOOR, "door", "closed"))
    out.append(RoutineEvent(back, DeviceKind.DOOR, "door", "open"))
    out.append(RoutineEvent(back + 20.0, DeviceKind.DOOR, "door", "closed"))


def _inside(t: float, spans: list[tuple[float, float]]) -> bool:
    return any(a <= t < b for a, b in spans)


@dataclass(frozen=True, slots=True)
class DayPlan:
    events: list[RoutineEvent]
    nights: list[Night]  # the night ending this morning and the one starting tonight


def day_events(
    profile: CareProfile, *, day_start: float, calib: Calibration, rng: random.Random
) -> list[RoutineEvent]:
    """Every routine device event of one local day, sorted by time."""
    return day_plan(profile, day_start=day_start, calib=calib, rng=rng).events


def day_plan(
    profile: CareProfile, *, day_start: float, calib: Calibration, rng: random.Random
) -> DayPlan:
    """One local day of a resident: the device events and the nights around it."""
    law = PROFILES[profile]
    last_night = night(law, calib, evening_of=day_start - DAY, rng=rng)
    tonight = night(law, calib, evening_of=day_start, rng=rng)
    day_end = day_start + DAY
    asleep = [(day_start - DAY, last_night.wake_at), (tonight.bed_at, day_end + DAY)]
    out: list[RoutineEvent] = []
    for n in (last_night, tonight):
        if day_start <= n.wake_at < day_end:
            out.append(RoutineEvent(n.wake_at, DeviceKind.BED_MAT, "presence", False))
            _burst(out, n.wake_at + 30.0, rng, 2)
        if day_start <= n.bed_at < day_end:
            out.append(RoutineEvent(n.bed_at, DeviceKind.BED_MAT, "presence", True))
    # Night toilet visits: out of bed, motion, back in bed a few minutes later.
    for n in (last_night, tonight):
        for _ in range(_poisson(rng, calib.night_toilets_per_night * law.night_toilet_scale)):
            leave = rng.uniform(n.bed_at + 0.5 * HOUR, n.wake_at - 0.5 * HOUR)
            back = leave + rng.uniform(180.0, 600.0)
            if day_start <= leave < day_end:
                out.append(RoutineEvent(leave, DeviceKind.BED_MAT, "presence", False))
                _burst(out, leave + 15.0, rng, 2)
                out.append(RoutineEvent(back, DeviceKind.BED_MAT, "presence", True))
    # Outings (door out and back) and visitors (door in, some motion, door out).
    away: list[tuple[float, float]] = []
    for _ in range(_poisson(rng, calib.outings_per_day * law.outing_scale)):
        start = day_start + min(21.0, max(7.0, _normal(rng, calib.outing_start_h))) * HOUR
        length = max(10.0, sample_quantiles(rng, calib.outing_min_quantiles)) * 60.0
        back = min(start + length, tonight.bed_at - 600.0)
        if back > start and not _inside(start, asleep):
            _door_pair(out, start, back)
            # "going out" on the button by the door, "back home" after (docs/device-protocol.md:
            # the inactivity detector's evidence of having left); a resident without a button
            # (the dementia profile) leaves no such evidence, and only the door is seen
            out.append(RoutineEvent(start - 30.0, DeviceKind.SOS_BUTTON, "away", True))
            out.append(RoutineEvent(back + 30.0, DeviceKind.SOS_BUTTON, "away", False))
            away.append((start, back))
    for _ in range(_poisson(rng, law.visitors_per_day)):
        at = day_start + rng.uniform(8.0, 20.0) * HOUR
        if not _inside(at, away):
            stay = rng.uniform(300.0, 1800.0)
            _door_pair(out, at, at + stay)
            _burst(out, at + 60.0, rng, rng.randint(2, 5))
    # Meals: a little burst of activity.
    for stat in (calib.breakfast_h, calib.dinner_h):
        at = day_start + _normal(rng, stat) * HOUR
        if not _inside(at, asleep + away) and law.ambient:
            _burst(out, at, rng, rng.randint(2, 4))
    # Ambient movement while awake at home: a renewal process on the calibrated quiet spells
    # (for the bed-bound, movement in bed, on the gaps measured at night).
    gaps = calib.awake_gap_s_quantiles if law.ambient else calib.asleep_gap_s_quantiles
    t = max(day_start, last_night.wake_at)
    while t < min(day_end, tonight.bed_at):
        t += law.gap_scale * sample_quantiles(rng, gaps[:-1])
        if t < tonight.bed_at and not _inside(t, away):
            out.append(RoutineEvent(t, DeviceKind.PIR, "motion", True))
    # Turning in bed and getting up briefly at night: the calibrated gaps between night events.
    for n in (last_night, tonight):
        t = max(day_start, n.bed_at)
        while True:
            t += law.gap_scale * sample_quantiles(rng, calib.asleep_gap_s_quantiles[:-1])
            if t >= min(day_end, n.wake_at):
                break
            out.append(RoutineEvent(t, DeviceKind.PIR, "motion", True))
    _seated_and_moving(
        out, awake=(max(day_start, last_night.wake_at), min(day_end, tonight.bed_at))
    )
    kept = [e for e in out if day_start <= e.at < day_end]
    kept.sort()
    return DayPlan(kept, [last_night, tonight])


SEATED_AFTER_S: Final = 30 * 60  # a quiet spell this long by day is spent in the armchair


def _seated_and_moving(out: list[RoutineEvent], *, awake: tuple[float, float]) -> None:
    """Long quiet spells while awake are spent seated (seat mat pressed, released when the
    next movement comes); every movement is also a minute of wristband activity. Draws no
    random numbers (the level is read off the time), so the rest of the day is unchanged."""
    moves = sorted(e.at for e in out if e.device is DeviceKind.PIR and awake[0] <= e.at < awake[1])
    for a, b in itertools.pairwise(moves):
        if b - a >= SEATED_AFTER_S:
            out.append(RoutineEvent(a + 30.0, DeviceKind.SEAT_MAT, "presence", True))
            out.append(RoutineEvent(b - 20.0, DeviceKind.SEAT_MAT, "presence", False))
    for t in moves:
        level = float(10 + int(t) % 51)  # % of the minute moving
        out.append(RoutineEvent(t, DeviceKind.WRISTBAND, "activity", level))


def local_midnight(t: float, utc_offset_h: float = 8.0) -> float:
    """Simulated epoch seconds of the local midnight at or before ``t``."""
    local = t + utc_offset_h * HOUR
    return local - local % DAY - utc_offset_h * HOUR


def asleep_at(t: float, nights: list[Night]) -> bool:
    """Whether ``t`` falls inside one of the (sorted) nights."""
    i = bisect.bisect_right([n.bed_at for n in nights], t) - 1
    return i >= 0 and t < nights[i].wake_at
