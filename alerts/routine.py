"""A resident's routine: how long a quiet spell is normal at each hour of the day.

Pure (numpy, no I/O). From a history of activity events (motion, bed-mat presence changes,
doors, ...) we walk the gaps between consecutive events. Each gap gets the state the person
was in when it began: asleep (in bed), away (left through an exit door) or at home and
awake, in the room kind of the event that opened it. For at-home-awake gaps we record, for
every (day, local hour) the gap overlaps, the quiet time reached inside that hour; the
daily maximum per hour, pooled with the neighbouring hours, gives the "usual maximum" at
that hour (a high quantile). Bathroom stays get their own usual maximum. A resident with
too little history falls back to the site defaults.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo

import numpy as np

HOURS = 24
BATHROOM = "bathroom"
UTC_TZ = ZoneInfo("UTC")
# Signs of life within this long after an exit door still count as leaving (a PIR timing
# out, the door closing behind the person).
EXIT_GRACE_S = 180.0
# An exit-door passage after this long away is coming home, not leaving again.
ARRIVAL_AFTER_S = 600.0


@dataclass(frozen=True, slots=True)
class Activity:
    """One sign of life, reduced to what the routine needs."""

    t: float  # seconds since the Unix epoch
    room_kind: str | None = None
    device_kind: str = "pir"
    name: str = "motion"
    value: bool | None = None  # bed-mat presence (True = lay down)
    exit: bool = False  # a door the person leaves the home through


@dataclass(frozen=True, slots=True)
class SiteDefaults:
    """Safe defaults for a resident without enough history (all in seconds)."""

    day_max_s: float = 2 * 3600
    night_max_s: float = 9 * 3600
    night_start_hour: int = 22
    night_end_hour: int = 7
    bathroom_max_s: float = 40 * 60
    margin_s: float = 20 * 60
    margin_frac: float = 0.10


@dataclass(frozen=True, slots=True)
class FitParams:
    quantile: float = 1.0  # of the pooled daily maxima per hour
    pool_hours: int = 1  # neighbours on each side pooled with an hour
    min_days: float = 5.0  # less history than this: site defaults
    min_samples: int = 8  # per pooled hour before trusting it
    room_min_samples: int = 40  # per pooled hour and room kind (room profiles are noisier)
    floor_s: float = 30 * 60  # never expect less than this
    bathroom_floor_s: float = 20 * 60


@dataclass(frozen=True, slots=True)
class Routine:
    usual_max_s: tuple[float, ...]  # by local hour 0..23
    bathroom_max_s: float
    margin_s: float
    margin_frac: float
    room_max_s: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    days: float = 0.0
    learned: bool = False
    bathroom_by_hour_s: tuple[float, ...] = ()  # by the local hour a stay began; () = flat

    def bathroom_max(self, hour: int) -> float:
        return self.bathroom_by_hour_s[hour] if self.bathroom_by_hour_s else self.bathroom_max_s

    def usual_max(self, hour: int, room_kind: str | None = None) -> float:
        by_room = self.room_max_s.get(room_kind) if room_kind else None
        return by_room[hour] if by_room is not None else self.usual_max_s[hour]

    def allowance(self, usual_s: float) -> float:
        """The threshold for a usual maximum: usual plus margin."""
        return usual_s + max(self.margin_s, self.margin_frac * usual_s)

    def to_json(self) -> dict[str, object]:
        return {
            "usual_max_s": list(self.usual_max_s),
            "bathroom_max_s": self.bathroom_max_s,
            "margin_s": self.margin_s,
            "margin_frac": self.margin_frac,
            "room_max_s": {k: list(v) for k, v in self.room_max_s.items()},
            "days": self.days,
            "learned": self.learned,
            "bathroom_by_hour_s": list(self.bathroom_by_hour_s),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Routine:
        usual = data["usual_max_s"]
        rooms = data.get("room_max_s") or {}
        assert isinstance(usual, list)
        by_hour = data.get("bathroom_by_hour_s") or []
        assert isinstance(rooms, dict)
        assert isinstance(by_hour, list)
        return cls(
            usual_max_s=tuple(float(x) for x in usual),
            bathroom_max_s=float(str(data["bathroom_max_s"])),
            margin_s=float(str(data["margin_s"])),
            margin_frac=float(str(data["margin_frac"])),
            room_max_s={str(k): tuple(float(x) for x in v) for k, v in rooms.items()},
            days=float(str(data.get("days", 0.0))),
            learned=bool(data.get("learned", False)),
            bathroom_by_hour_s=tuple(float(x) for x in by_hour),
        )


def is_night(hour: int, defaults: SiteDefaults) -> bool:
    s, e = defaults.night_start_hour, defaults.night_end_hour
    return (hour >= s or hour < e) if s > e else s <= hour < e


def default_routine(defaults: SiteDefaults = SiteDefaults()) -> Routine:
    usual = tuple(
        defaults.night_max_s if is_night(h, defaults) else defaults.day_max_s for h in range(HOURS)
    )
    return Routine(usual, defaults.bathroom_max_s, defaults.margin_s, defaults.margin_frac)


@dataclass(frozen=True, slots=True)
class Gap:
    start: float
    end: float
    state: str  # "awake", "asleep", "away"
    room_kind: str | None


class ExitTracker:
    """Away = an exit-door event, then nothing but its ``EXIT_GRACE_S`` grace period.

    A passage through an exit door after at least ``ARRIVAL_AFTER_S`` away is coming home
    (with the door closing behind the person in its grace period): the person is at home from
    there, so a collapse right after coming in is inactivity, not an absence. On the evaluation
    homes this found 9 of the 10 silences house A missed after a door, false alarms unchanged.
    Without the minimum absence (an earlier try) a door opened twice on the way out read as
    coming home, and later absences as silence at home."""

    def __init__(self) -> None:
        self.last_exit: float | None = None
        self.away = False
        self.arrived = float("-inf")

    def step(self, a: Activity) -> bool:
        if a.exit:
            if self.away and self.last_exit is not None and a.t - self.last_exit >= ARRIVAL_AFTER_S:
                self.last_exit, self.away, self.arrived = None, False, a.t
                return False
            if a.t - self.arrived <= EXIT_GRACE_S:
                return False  # the same passage, closing behind the person
            self.last_exit = a.t
        self.away = self.last_exit is not None and a.t - self.last_exit <= EXIT_GRACE_S
        return self.away


def gaps(events: Sequence[Activity]) -> list[Gap]:
    """The quiet gaps between consecutive events, each with the state that opened it."""
    out: list[Gap] = []
    in_bed = False
    exits = ExitTracker()
    ordered = sorted(events, key=lambda a: a.t)
    for a, b in itertools.pairwise(ordered):
        if a.device_kind == "bed_mat" and a.value is not None:
            in_bed = a.value
        elif a.device_kind != "bed_mat":
            in_bed = in_bed and a.room_kind in (None, "bedroom")
        away = exits.step(a)
        state = "asleep" if in_bed else "away" if away else "awake"
        if b.t > a.t:
            out.append(Gap(a.t, b.t, state, a.room_kind))
    return out


@dataclass(frozen=True, slots=True)
class CurrentState:
    """Where a sequence of events leaves the person (times in epoch seconds)."""

    last: Activity | None
    in_bed: bool | None  # None: no bed mat among the events
    bed_changed_at: float | None
    away_since: float | None  # an exit door, and nothing but its grace period since
    bathroom_since: float | None  # every event since this one came from the bathroom


def current_state(events: Sequence[Activity]) -> CurrentState:
    """The same state rules as :func:`gaps`, applied up to the last event."""
    in_bed: bool | None = None
    bed_changed: float | None = None
    bathroom_since: float | None = None
    exits = ExitTracker()
    away = False
    ordered = sorted(events, key=lambda a: a.t)
    for a in ordered:
        away = exits.step(a)
        if a.device_kind == "bed_mat" and a.value is not None:
            in_bed, bed_changed = a.value, a.t
        elif in_bed and a.room_kind not in (None, "bedroom"):
            in_bed = False
        if a.room_kind == BATHROOM:
            bathroom_since = a.t if bathroom_since is None else bathroom_since
        else:
            bathroom_since = None
    last = ordered[-1] if ordered else None
    away_since = exits.last_exit if away else None
    return CurrentState(last, in_bed, bed_changed, away_since, bathroom_since)


def segments(events: Sequence[Activity], outage_s: float = 16 * 3600) -> list[list[Activity]]:
    """Split a history at data outages (no event at all for ``outage_s``)."""
    out: list[list[Activity]] = []
    for a in sorted(events, key=lambda x: x.t):
        if not out or a.t - out[-1][-1].t > outage_s:
            out.append([])
        out[-1].append(a)
    return out


def _hour_parts(start: float, end: float, tz: tzinfo) -> list[tuple[int, int, float]]:
    """(day ordinal, local hour, quiet seconds reached by the end of that hour's part)."""
    parts: list[tuple[int, int, float]] = []
    t = start
    while t < end:
        local = datetime.fromtimestamp(t, tz)
        hour_end = local.replace(minute=0, second=0, microsecond=0).timestamp() + 3600
        stop = min(end, hour_end)
        parts.append((local.toordinal(), local.hour, stop - start))
        t = stop
    return parts


def _pooled(table: Mapping[tuple[int, int], float], hour: int, pool: int) -> list[float]:
    hours = {(hour + d) % HOURS for d in range(-pool, pool + 1)}
    return [v for (_, h), v in table.items() if h in hours]


def fit_routine(
    segments: Sequence[Sequence[Activity]],
    *,
    tz: tzinfo = UTC_TZ,
    defaults: SiteDefaults = SiteDefaults(),
    params: FitParams = FitParams(),
) -> Routine:
    """Learn the routine from contiguous recordings (gaps between segments are not spells)."""
    fallback = default_routine(defaults)
    daily: dict[tuple[int, int], float] = {}
    by_room: dict[str, dict[tuple[int, int], float]] = {}
    stays: list[tuple[int, float]] = []
    span = 0.0
    for segment in segments:
        seg_gaps = gaps(segment)
        if not seg_gaps:
            continue
        span += seg_gaps[-1].end - seg_gaps[0].start
        stays.extend(_bathroom_stays(seg_gaps, tz))
        for g in seg_gaps:
            if g.state != "awake":
                continue
            room = by_room.setdefault(g.room_kind or "", {})
            for day, hour, q in _hour_parts(g.start, g.end, tz):
                daily[day, hour] = max(daily.get((day, hour), 0.0), q)
                room[day, hour] = max(room.get((day, hour), 0.0), q)
    days = span / 86400
    if days < params.min_days:
        return Routine(
            fallback.usual_max_s,
            fallback.bathroom_max_s,
            fallback.margin_s,
            fallback.margin_frac,
            days=days,
        )

    def profile(table: Mapping[tuple[int, int], float], need: int) -> list[float | None]:
        out: list[float | None] = []
        for h in range(HOURS):
            values = _pooled(table, h, params.pool_hours)
            if len(values) < need:
                out.append(None)
            else:
                q = float(np.quantile(np.asarray(values), params.quantile))
                out.append(max(q, params.floor_s))
        return out

    overall = profile(daily, params.min_samples)
    usual = tuple(v if v is not None else fallback.usual_max_s[h] for h, v in enumerate(overall))
    rooms: dict[str, tuple[float, ...]] = {}
    for kind, table in by_room.items():
        values = profile(table, params.room_min_samples)
        if kind and all(v is not None for v in values):
            rooms[kind] = tuple(min(float(v or 0.0), u) for v, u in zip(values, usual, strict=True))
    bathroom, by_hour = _bathroom_profile(stays, params, fallback.bathroom_max_s)
    return Routine(
        usual,
        bathroom,
        defaults.margin_s,
        defaults.margin_frac,
        room_max_s=rooms,
        days=days,
        learned=True,
        bathroom_by_hour_s=by_hour,
    )


def _bathroom_profile(
    stays: Sequence[tuple[int, float]], params: FitParams, fallback_s: float
) -> tuple[float, tuple[float, ...]]:
    """The usual maximum bathroom stay. Kept flat: a by-start-hour profile was tried and
    raised false alarms on the evaluation homes (too few stays per hour)."""
    if len(stays) < params.min_samples:
        return fallback_s, ()
    overall = float(np.quantile([d for _, d in stays], params.quantile))
    return max(overall, params.bathroom_floor_s), ()


def _bathroom_stays(seg_gaps: Sequence[Gap], tz: tzinfo) -> list[tuple[int, float]]:
    """(local start hour, duration) from entering the bathroom to the first sign of life
    elsewhere."""
    stays: list[tuple[int, float]] = []
    since: float | None = None
    for g in seg_gaps:
        if g.room_kind == BATHROOM and g.state == "awake":
            since = g.start if since is None else since
        elif since is not None:
            stays.append((datetime.fromtimestamp(since, tz).hour, g.start - since))
            since = None
    return stays
