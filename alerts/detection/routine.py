"""A resident's routine: where they rest, and how long a quiet spell there is normal.

Pure (numpy, no I/O). The history of signs of life is walked event by event
(:class:`StateWalk`); each quiet gap until the next sign of life gets the state the person was
in when it began:

* ``bed`` (bed mat pressed, no sign of life outside the bedroom since),
* ``seated`` (seat mat pressed, or a radar seeing a still presence, and no sign of life in
  another room since),
* ``bathroom`` (motion or presence seen in the bathroom, and every sign of life since from
  there; a bathroom door is a passage and ends a stay, a flush keeps one open),
* ``away`` (an exit door, then nothing but its grace period, and evidence of having left: an
  ``away`` event or a radar seeing the room empty; never alerts; a declared absence, the
  ``away`` event, lasts until the exit door or "back home", whatever moves inside),
* ``door`` (the same without evidence: a collapse just after the door looks like this; judged
  with the at-home cap),
* ``active`` (at home, none of the above),
* ``night`` (a deadline's state, not the walk's: a spell at home begun in the sleep window
  by a sign of life outside the bedroom, in a home with no bed mat or where the care plan
  does not watch bed exits; :func:`up_at_night`).

Signs of life (:func:`is_sign_of_life`): motion, doors, both edges of bed and seat mats and of
radar presence, SOS and fall events, a flush or appliance **start** (a cistern refilling or an
appliance switching itself off is not an action), a wristband's movement (an ``activity``
level or ``steps`` count above zero), a check-in's answer and "back home" (``away`` false).

For each state the normal length of a spell is learned by the local hour at which the detector
starts counting it (:func:`anchor`: the onset, or the end of the sleep window for a spell that
begins in it, and for a spell begun by day whose threshold falls in it, in ``bed`` or, in a
home that cannot tell sleep (no bed mat), when it began less than 2 h before the window). The
threshold is the learned normal plus margin, never above the state's **cap** (care plan, else
the site defaults: 2 h active, 4 h seated or in bed, 45 min in the bathroom). In a home with
no seat mat or radar a person sitting still cannot be told from one lying on the floor, so the
``active`` cap there is the seated one, and the resident is asked from the active cap on
(:attr:`Deadline.ask_point`, :mod:`alerts.detection.check_in`). Too little history: the caps
themselves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

import numpy as np

from devices.domain import RoomKind

HOURS = 24
BATHROOM = "bathroom"
UTC_TZ = ZoneInfo("UTC")
NIGHT = "night"  # up in the sleep window outside the bedroom (:func:`up_at_night`)
STATES = ("active", "seated", "bathroom", "bed", "door", NIGHT)
SEATS = ("seat_mat", "radar")
STARTS_ONLY = ("flush", "appliance")
# Only these put a person IN the bathroom: a door is a passage (either side), and a flush is
# mostly the end of a visit (it keeps a stay open, it does not open one).
PRESENCE_KINDS = ("pir", "radar", "seat_mat")  # their end is the device's, not the person's
MOVEMENT = ("activity", "steps")  # wristband per-minute readings: > 0 is movement
# Signs of life within this long after an exit door still count as leaving (a PIR timing
# out, the door closing behind the person).
EXIT_GRACE_S = 180.0
# An exit-door passage after this long away is coming home, not leaving again.
ARRIVAL_AFTER_S = 600.0
# Evidence of having left (an exit door alone is not: a collapse just after it looks the
# same): an "away" mark (``AWAY_MARK`` true: the resident or a carer says they are out; the
# evaluation marks the labelled absences) or a radar seeing the room empty, from this long
# before the exit door on.
AWAY_MARK = "away"
EVIDENCE_BEFORE_S = 600.0
# In a home without a bed mat, a spell begun more than this before the sleep window is not
# deferred to its end (the person was not going to bed): it alerts within its day cap.
EVENING_LEAD_S = 2 * 3600.0


@dataclass(frozen=True, slots=True)
class Activity:
    """One event of a device serving the resident, reduced to what the routine needs."""

    t: float  # seconds since the Unix epoch
    room_kind: str | None = None
    device_kind: str = "pir"
    name: str = "motion"
    value: bool | float | None = None  # presence / flush / appliance on; activity level
    exit: bool = False  # a door the person leaves the home through


def is_away_evidence(a: Activity) -> bool:
    if a.name == AWAY_MARK:
        return a.value is True
    return a.device_kind == "radar" and a.name == "presence" and a.value is False


def is_sign_of_life(a: Activity) -> bool:
    if a.name == AWAY_MARK:  # "back home" pressed is an action; "going out" is evidence only
        return a.value is False
    if a.name in STARTS_ONLY or a.device_kind in STARTS_ONLY:
        return a.value is True
    if a.name in MOVEMENT:
        return not isinstance(a.value, bool) and isinstance(a.value, float | int) and a.value > 0
    return True


@dataclass(frozen=True, slots=True)
class SiteDefaults:
    """Caps for residents whose care plan states none, and the margin (all in seconds)."""

    active_max_s: float = 2 * 3600
    seated_max_s: float = 4 * 3600
    bathroom_max_s: float = 45 * 60
    margin_s: float = 20 * 60
    margin_frac: float = 0.10
    night_start_hour: float = 22.0  # the care plan's default sleep window
    night_end_hour: float = 6.0

    def caps(self) -> dict[str, float]:
        s = self.seated_max_s
        return {"active": self.active_max_s, "seated": s, "bed": s, "bathroom": self.bathroom_max_s}


@dataclass(frozen=True, slots=True)
class FitParams:
    quantile: float = 1.0  # of the spells pooled per anchor hour
    pool_hours: int = 2  # neighbours on each side pooled with an hour
    min_days: float = 5.0  # less history than this: site defaults
    min_samples: int = 8  # per pooled hour before trusting it
    floor_s: float = 30 * 60  # never expect less than this
    bathroom_floor_s: float = 20 * 60


@dataclass(frozen=True, slots=True)
class Window:
    """The sleep window in local hours (may wrap past midnight)."""

    start_h: float = 22.0
    end_h: float = 6.0

    def contains(self, local: datetime) -> bool:
        h = local.hour + local.minute / 60
        s, e = self.start_h, self.end_h
        return (h >= s or h < e) if s > e else s <= h < e

    def next_edge(self, local: datetime, edge_h: float) -> datetime:
        day = local.replace(hour=0, minute=0, second=0, microsecond=0)
        at = day + timedelta(hours=edge_h)
        return at if at > local else at + timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Routine:
    normal_s: Mapping[str, tuple[float | None, ...]]  # state -> by anchor hour; None: unknown
    caps_s: Mapping[str, float]
    margin_s: float
    margin_frac: float
    days: float = 0.0
    learned: bool = False

    def allowance(self, usual_s: float) -> float:
        return usual_s + max(self.margin_s, self.margin_frac * usual_s)

    def normal(self, state: str, hour: int) -> float | None:
        by_hour = self.normal_s.get(state)
        return by_hour[hour] if by_hour else None

    def threshold(self, state: str, hour: int, cap_s: float | None = None) -> float:
        """Learned normal plus margin, never above the cap (plan's, else the site's)."""
        cap = cap_s if cap_s is not None else self.caps_s.get(state, self.caps_s["active"])
        usual = self.normal(state, hour)
        return cap if usual is None else min(self.allowance(usual), cap)

    def to_json(self) -> dict[str, object]:
        return {
            "version": 2,
            "normal_s": {k: list(v) for k, v in self.normal_s.items()},
            "caps_s": dict(self.caps_s),
            "margin_s": self.margin_s,
            "margin_frac": self.margin_frac,
            "days": self.days,
            "learned": self.learned,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object], defaults: SiteDefaults | None = None) -> Routine:
        """A stored routine; one of an older format gives the site defaults until refitted."""
        if data.get("version") != 2:
            return default_routine(defaults or SiteDefaults())
        normal, caps = data["normal_s"], data["caps_s"]
        assert isinstance(normal, dict)
        assert isinstance(caps, dict)
        return cls(
            normal_s={
                str(k): tuple(None if x is None else float(x) for x in v) for k, v in normal.items()
            },
            caps_s={str(k): float(v) for k, v in caps.items()},
            margin_s=float(str(data["margin_s"])),
            margin_frac=float(str(data["margin_frac"])),
            days=float(str(data.get("days", 0.0))),
            learned=bool(data.get("learned", False)),
        )


def default_routine(defaults: SiteDefaults = SiteDefaults(), days: float = 0.0) -> Routine:
    return Routine({}, defaults.caps(), defaults.margin_s, defaults.margin_frac, days=days)


class ExitTracker:
    """Out through the exit door = an exit-door event, then nothing but its ``EXIT_GRACE_S``
    grace period (and evidence of leaving: ``confirmed``, see :func:`is_away_evidence`).

    A passage through an exit door after at least ``ARRIVAL_AFTER_S`` away is coming home
    (with the door closing behind the person in its grace period): a collapse right after
    coming in is inactivity, not an absence. Without the minimum absence a door opened twice
    on the way out read as coming home, and later absences as silence at home.

    A **declared** absence (an away mark, "going out", with the exit door) lasts until the
    person comes back through the exit door or says so ("back home"): signs of life inside
    meanwhile are someone else's (a visitor, a pet, a partner) or a sensor's, not the
    resident's, who is out (issue 17: house B's recorded motion during its labelled
    absences, then quiet, read as a resident at home and alerted). Other evidence (a radar
    seeing the room empty) ends at the next sign of life inside, as before."""

    def __init__(self) -> None:
        self.last_exit: float | None = None
        self.away = False
        self.confirmed = False
        self.arrived = float("-inf")
        self.evidence_at = float("-inf")
        self.declared_at = float("-inf")  # the last away mark
        self.declared = False  # away, and said so: held until the door or "back"

    def step(self, a: Activity) -> bool:
        if a.name == AWAY_MARK and a.value is False:
            self.back(a.t)
            return False
        if is_away_evidence(a):
            self.evidence_at = a.t
            if self.away:
                self.confirmed = True
                return True  # the room seen empty after leaving: still away
        if a.exit:
            if self.away and self.last_exit is not None and a.t - self.last_exit >= ARRIVAL_AFTER_S:
                self.last_exit, self.away, self.arrived = None, False, a.t
                return False
            if a.t - self.arrived <= EXIT_GRACE_S:
                return False  # the same passage, closing behind the person
            if not self.away:
                self.confirmed = a.t - self.evidence_at <= EVIDENCE_BEFORE_S
                self.declared = a.t - self.declared_at <= EVIDENCE_BEFORE_S
            self.last_exit = a.t
        held = self.away and self.declared
        self.away = held or (self.last_exit is not None and a.t - self.last_exit <= EXIT_GRACE_S)
        if not self.away:
            self.confirmed = self.declared = False
        return self.away

    def evidence(self, t: float) -> None:
        """Evidence of leaving that is not a sign of life (an away mark: declared). "Going out"
        pressed after coming home means the next exit door is leaving again, not the door
        closing behind the person (pressed at the same instant as "back", it changes nothing:
        the order of simultaneous events is not known)."""
        self.evidence_at = self.declared_at = t
        if t > self.arrived:
            self.arrived = float("-inf")
        if self.away:
            self.confirmed = self.declared = True

    def back(self, t: float) -> None:
        """Back home pressed (an away mark false): at home from ``t``, with or without a
        door seen (a door within the grace is the same passage)."""
        self.last_exit, self.away, self.confirmed, self.declared = None, False, False, False
        self.arrived = t
        self.evidence_at = self.declared_at = float("-inf")


class StateWalk:
    """The state rules, one sign of life at a time (shared by learning and the snapshot)."""

    def __init__(self) -> None:
        self.exits = ExitTracker()
        self.away = False
        self.in_bed: bool | None = None  # None: no bed mat seen
        self.bed_changed: float | None = None
        self.seat_room: str | None = None  # set while seated ("" for a seat without a room)
        self.seated_since: float | None = None
        self.bathroom_since: float | None = None
        self.has_bed = False
        self.has_seat = False

    def mark(self, a: Activity) -> None:
        """An event that is not a sign of life but tells where the person is."""
        if is_away_evidence(a):
            self.exits.evidence(a.t)

    def step(self, a: Activity) -> None:
        self.away = self.exits.step(a)
        room = a.room_kind
        if a.device_kind == "bed_mat" and a.name == "presence":
            self.has_bed = True
            self.in_bed, self.bed_changed = a.value is True, a.t
        elif self.in_bed and room not in (None, "bedroom"):
            self.in_bed = False
        if a.device_kind in SEATS and a.name == "presence":
            self.has_seat = True
            if a.value is True:
                self.seat_room = room or ""
                self.seated_since = self.seated_since or a.t
            else:
                self.seat_room = self.seated_since = None
        elif self.seat_room is not None and room is not None and room != self.seat_room:
            self.seat_room = self.seated_since = None
        if room == BATHROOM and a.device_kind in PRESENCE_KINDS:
            self.bathroom_since = self.bathroom_since or a.t
        elif room == BATHROOM and a.device_kind == "door":
            self.bathroom_since = None  # a passage: the person may be on either side
        elif room is not None and room != BATHROOM:
            self.bathroom_since = None

    @property
    def state(self) -> str:
        if self.away:  # out through the exit door: away if known to have left
            return "away" if self.exits.confirmed else "door"
        if self.in_bed:
            return "bed"
        if self.seat_room is not None:
            return "seated"
        return BATHROOM if self.bathroom_since is not None else "active"


@dataclass(frozen=True, slots=True)
class Gap:
    start: float
    end: float
    state: str  # one of STATES or "away"
    room_kind: str | None
    bathroom_since: float | None = None


def signs(events: Sequence[Activity]) -> list[Activity]:
    return sorted((a for a in events if is_sign_of_life(a)), key=lambda a: a.t)


def gaps(events: Sequence[Activity]) -> list[Gap]:
    """The quiet gaps between consecutive signs of life, each with the state that opened it
    (or that evidence of leaving during it turned into ``away``)."""
    out: list[Gap] = []
    walk = StateWalk()
    prev: Activity | None = None
    for b in sorted(events, key=lambda a: a.t):
        if not is_sign_of_life(b):
            walk.mark(b)
            continue
        if prev is not None and b.t > prev.t:
            out.append(Gap(prev.t, b.t, walk.state, prev.room_kind, walk.bathroom_since))
        walk.step(b)
        prev = b
    return out


@dataclass(frozen=True, slots=True)
class CurrentState:
    """Where a sequence of events leaves the person (times in epoch seconds)."""

    last: Activity | None  # the last sign of life
    in_bed: bool | None  # None: no bed mat among the events
    bed_changed_at: float | None
    away_since: float | None  # an exit door, and nothing but its grace period since
    bathroom_since: float | None  # every event since this one came from the bathroom
    state: str = "active"
    seated_since: float | None = None
    has_bed_mat: bool = False
    has_seat_sensor: bool = False


def current_state(events: Sequence[Activity]) -> CurrentState:
    """The same state rules as :func:`gaps`, applied up to the last sign of life."""
    walk = StateWalk()
    last: Activity | None = None
    for a in sorted(events, key=lambda x: x.t):
        if is_sign_of_life(a):
            walk.step(a)
            last = a
        else:
            walk.mark(a)
    away_since = walk.exits.last_exit if walk.away else None
    return CurrentState(
        last,
        walk.in_bed,
        walk.bed_changed,
        away_since,
        walk.bathroom_since,
        walk.state,
        walk.seated_since,
        walk.has_bed,
        walk.has_seat,
    )


def anchor(
    state: str, start: float, tz: tzinfo, window: Window, *, has_bed: bool
) -> tuple[float, float | None]:
    """(when the detector starts counting a spell begun at ``start``, the latest it may stop
    counting by day: the next sleep-window start, or None).

    A spell begun in the sleep window counts from the window's end (at night, out of bed and
    not back is the night bed-exit watch's job). A spell begun by day whose threshold falls in
    the window is counted from the window's end too when sleep cannot be told (no bed mat) or
    the person is in bed. Bathroom stays are counted at night as by day."""
    if state == BATHROOM:
        return start, None
    local = datetime.fromtimestamp(start, tz)
    if window.contains(local):
        return window.next_edge(local, window.end_h).timestamp(), None
    if state == "bed" or not has_bed:
        stop = window.next_edge(local, window.start_h).timestamp()
        if state != "bed" and stop - start > EVENING_LEAD_S:
            return start, None  # long before bedtime: not deferred past the night
        return start, stop
    return start, None


def up_at_night(state: str, start: float, room: str | None, tz: tzinfo, window: Window) -> bool:
    """A spell at home begun in the sleep window by a sign of life outside the bedroom (a room
    known, not the bedroom): the person was up. Unless a bed mat and the care plan's bed-exit
    watch cover the night, such a spell is also watched from its onset with its own learned
    normal (:func:`deadline`)."""
    return (
        state in ("active", "door")
        and room is not None
        and room != RoomKind.BEDROOM
        and window.contains(datetime.fromtimestamp(start, tz))
    )


def segments(events: Sequence[Activity], outage_s: float = 16 * 3600) -> list[list[Activity]]:
    """Split a history at data outages (no event at all for ``outage_s``)."""
    out: list[list[Activity]] = []
    for a in sorted(events, key=lambda x: x.t):
        if not out or a.t - out[-1][-1].t > outage_s:
            out.append([])
        out[-1].append(a)
    return out


def spell_samples(
    seg_gaps: Sequence[Gap], tz: tzinfo, window: Window, *, has_bed: bool
) -> list[tuple[str, int, float]]:
    """(state, local anchor hour, length counted) of every spell, as the detector counts it;
    bathroom stays run from entering to the first sign of life elsewhere."""
    out: list[tuple[str, int, float]] = []
    stay: float | None = None
    for g in seg_gaps:
        if g.state == BATHROOM:
            stay = g.bathroom_since if stay is None else stay
            continue
        if stay is not None:
            out.append((BATHROOM, datetime.fromtimestamp(stay, tz).hour, g.start - stay))
            stay = None
        if g.state == "away":
            continue
        if up_at_night(g.state, g.start, g.room_kind, tz, window):
            out.append((NIGHT, datetime.fromtimestamp(g.start, tz).hour, g.end - g.start))
        base, stop = anchor(g.state, g.start, tz, window, has_bed=has_bed)
        end = g.end if stop is None else min(g.end, stop)
        if end > base:
            out.append((g.state, datetime.fromtimestamp(base, tz).hour, end - base))
        if stop is not None and g.end > stop:  # crossed the sleep window: the morning part
            morning = window.next_edge(datetime.fromtimestamp(stop, tz), window.end_h)
            if g.end > morning.timestamp():
                out.append((g.state, morning.hour, g.end - morning.timestamp()))
    return out


def fit_routine(
    segments: Sequence[Sequence[Activity]],
    *,
    tz: tzinfo = UTC_TZ,
    defaults: SiteDefaults = SiteDefaults(),
    params: FitParams = FitParams(),
) -> Routine:
    """Learn the routine from contiguous recordings (gaps between segments are not spells)."""
    window = Window(defaults.night_start_hour, defaults.night_end_hour)
    has_bed = any(a.device_kind == "bed_mat" for seg in segments for a in seg)
    samples: list[tuple[str, int, float]] = []
    span = 0.0
    for segment in segments:
        seg_gaps = gaps(segment)
        if seg_gaps:
            span += seg_gaps[-1].end - seg_gaps[0].start
            samples += spell_samples(seg_gaps, tz, window, has_bed=has_bed)
    days = span / 86400
    if days < params.min_days:
        return default_routine(defaults, days)
    normal: dict[str, tuple[float | None, ...]] = {}
    for state in STATES:
        floor = params.bathroom_floor_s if state == BATHROOM else params.floor_s
        by_hour: list[float | None] = []
        for h in range(HOURS):
            hours = {(h + d) % HOURS for d in range(-params.pool_hours, params.pool_hours + 1)}
            values = [x for s, hh, x in samples if s == state and hh in hours]
            if len(values) < params.min_samples:
                by_hour.append(None)
            else:
                by_hour.append(max(float(np.quantile(values, params.quantile)), floor))
        normal[state] = tuple(by_hour)
    return Routine(
        normal, defaults.caps(), defaults.margin_s, defaults.margin_frac, days=days, learned=True
    )


@dataclass(frozen=True, slots=True)
class Deadline:
    """When a quiet spell becomes an alert, and why."""

    state: str
    counted_from: float  # epoch s: the spell's onset (bathroom: entering), or a window's end
    at: float  # epoch s
    threshold_s: float
    cap_s: float
    learned: bool = False
    reasons: tuple[str, ...] = field(default_factory=tuple)
    # When the resident may be asked "are you fine?", seconds after ``counted_from`` (None:
    # at the threshold). Earlier than the threshold where sitting cannot be seen (no seat mat
    # or radar): at the ``active`` cap, since a 2-h still spell there may be a person on the
    # floor (:func:`deadline`).
    ask_s: float | None = None

    @property
    def ask_point(self) -> float:
        """Epoch s: the threshold, or the earlier point at which to ask."""
        return self.at if self.ask_s is None else min(self.at, self.counted_from + self.ask_s)


def deadline(
    routine: Routine,
    *,
    state: str,
    last_sign: float,
    bathroom_since: float | None,
    tz: tzinfo,
    window: Window,
    caps: Mapping[str, float],
    has_bed: bool,
    has_seat: bool,
    last_room: str | None = None,
    bed_exit_watched: bool = False,
) -> Deadline | None:
    """The alert time of the current spell (None while away); ``last_room``: the room kind of
    the last sign of life; ``bed_exit_watched``: the care plan watches bed exits at night
    (the ``bed_exit`` detector), so a home with a bed mat needs no night watch here."""
    if state == "away":
        return None
    start = bathroom_since if state == BATHROOM and bathroom_since is not None else last_sign
    # Without a seat mat or radar, sitting still cannot be told from lying on the floor.
    # Quiet after an exit door without evidence of leaving is judged as at home.
    at_home = state in ("active", "door")
    cap_state = ("seated" if not has_seat else "active") if at_home else state
    cap = caps.get(cap_state, caps["active"])
    base, stop = anchor(state, start, tz, window, has_bed=has_bed)
    in_window = base > start  # begun in the sleep window: counted from its end
    hour = datetime.fromtimestamp(base, tz).hour
    threshold = routine.threshold(state, hour, cap)
    at = base + threshold
    if stop is not None and at > stop:
        base = window.next_edge(datetime.fromtimestamp(stop, tz), window.end_h).timestamp()
        hour = datetime.fromtimestamp(base, tz).hour
        threshold = routine.threshold(state, hour, cap)
        at = base + threshold
    # Where sitting cannot be seen the threshold of a spell at home is the seated cap (4 h):
    # ask from the active cap (2 h) on, when the plan and the budget allow a question. Not
    # when the resident is most likely asleep: seen last in the bedroom, in a spell counted
    # from the sleep window's end, in a home with no bed mat (which would tell). Asked 2 h
    # after the window, they would be woken on a morning they sleep in (house A: 4 of its 9
    # questions, at 07:59) and the budget's one early question spent for three days; their
    # own mornings' learned threshold decides instead, never above the cap.
    asleep = not has_bed and last_room == RoomKind.BEDROOM and base > start
    ask_s = min(threshold, caps["active"]) if at_home and not has_seat and not asleep else None
    learned = routine.normal(state, hour) is not None
    # up at night outside the bedroom (:func:`up_at_night`; ``in_window`` is its window test)
    up = in_window and at_home and last_room is not None and last_room != RoomKind.BEDROOM
    if up and not (has_bed and bed_exit_watched):
        night = _night_watch(routine, start, tz, cap)
        if night is not None and start + night < at:
            return Deadline(NIGHT, start, start + night, night, cap, True)
    return Deadline(state, base, at, threshold, cap, learned, ask_s=ask_s)


def _night_watch(routine: Routine, start: float, tz: tzinfo, cap: float) -> float | None:
    """The threshold of a spell begun up at night outside the bedroom (in a home without a bed
    mat, or with one whose resident's plan does not watch bed exits): this home's learned
    normal for such spells at that hour plus margin, or None (not watched from the onset:
    counted from the window's end, as before) when too little is learned or the learned
    normal plus margin passes the cap. A home whose resident is often quiet outside the
    bedroom for hours at night (asleep on the couch, or back in bed unseen) gets no night
    watch: it would alarm on their nights."""
    if not routine.normal_s.get(NIGHT):
        return None
    usual = routine.normal(NIGHT, datetime.fromtimestamp(start, tz).hour)
    if usual is None or routine.allowance(usual) > cap:
        return None
    return routine.allowance(usual)
