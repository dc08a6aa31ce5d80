"""The inactivity detector on any home's logs, learning as it runs live (past days only).

For every evaluated day ``d`` of a home the routine is fitted on the events of the
``history_days`` before ``d`` (nothing from ``d`` or later; site defaults while there are
fewer than ``FitParams.min_days`` days), then day ``d`` is replayed through the live snapshot
builder and detector with a 60-s tick:

* untouched (up to the recording's last event: after it every sensor is silent because the
  recording ended): every alert is a false alarm (d), split by what the labels say about the spell:
  ``sensor gap`` (the labels say the person was away, asleep or doing something the sensors
  did not see) or ``long benign spell`` (no label: quiet, most likely resting);
* from ``per_day`` random onsets between 08:00 and 20:00 local where the labels do not say
  away or asleep, the person never moves again (every later event removed): the first alert
  gives (c) the time from the last sign of life to the alert, and (a) whether a silence of a
  drawn length (2-6 h, 4-12 h) is alerted (an alert before its end: the replay is identical
  until then). (b) among silences outlasting the detector's own threshold for the state at
  onset by 30 min, the share alerted within 30 min of that threshold.

Check-ins ("press if you are fine", :mod:`alerts.detection.check_in`, the live rules and
budget; the resident is assumed to wear a wristband that can answer): one asked during the
home's own recorded life is answered at once (a sign of life: the spell starts again), one
asked during an injected silence is not (its alert comes when the window ends). (e) counts
the check-ins asked on the untouched days per resident-day, and the false alarms that still
followed within ``AFTER_CHECK_IN_S`` of an answered check-in.

(f) Up at night (with ``night_rng``): on each night, one real sign of life outside the bedroom
in the sleep window, drawn at random where the labels do not say away; the person never moves
again from the second after it. The time from that sign of life to the alert, by the state
the detector reads then. Kept apart from (a)-(c), which are daytime figures.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import partial
from typing import Protocol
from zoneinfo import ZoneInfo

import numpy as np

from alerts.detection import check_in as CI
from alerts.detection.detectors.base import Verdict
from alerts.detection.detectors.snapshot import ResidentSnapshot, TickDetector
from alerts.detection.routine import (
    AWAY_MARK,
    Activity,
    Deadline,
    FitParams,
    Routine,
    SiteDefaults,
    Window,
    fit_routine,
    is_sign_of_life,
    segments,
)
from alerts.evaluate.datasets.kasteren import Home, label_kind
from alerts.evaluate.replay import Replayer
from devices.domain import RoomKind

DAY = 86400.0
HOUR = 3600.0
NEVER_S = 24 * HOUR  # how long "never moves again" is followed
AFTER_CHECK_IN_S = 6 * HOUR  # a false alarm this soon after an answered check-in: "after" one
CHECK_POLL_S = 1.0  # the check loop's poll (ELDERCARE_CHECKS_POLL_INTERVAL_S): unanswered check-ins


class HasDeadline(TickDetector, Protocol):
    def deadline(self, s: ResidentSnapshot) -> Deadline | None: ...


@dataclass
class Onset:
    t0: float
    state: str  # the detector's reading at onset ("away" when it would never alert)
    last_sign: float
    alarm: float | None  # first alert if the person never moves again (within NEVER_S)
    deadline: float | None  # the detector's own threshold crossing for the onset state
    short_s: float  # a 2-6 h silence from t0
    long_s: float  # a 4-12 h silence from t0
    learned: bool
    asked: bool = False  # a check-in was asked (unanswered: the alarm is its window's end)


@dataclass
class FalseAlarm:
    at: float
    state: str
    cause: str  # "sensor gap" or "long benign spell"
    learned: bool
    after_check_in: bool = False  # within AFTER_CHECK_IN_S of an answered check-in
    last_sign: float | None = None  # the alerted spell's last sign of life (epoch s)


@dataclass
class HomeRun:
    home: str
    days: int = 0
    learned_days: int = 0
    onsets: list[Onset] = field(default_factory=list)
    false_alarms: list[FalseAlarm] = field(default_factory=list)
    check_ins: list[float] = field(default_factory=list)  # asked (and answered), untouched days
    night_onsets: list[Onset] = field(default_factory=list)  # (f): up at night, then silent
    first_day_check_ins: int = 0  # of which on site defaults


@dataclass
class CheckIns:
    """The live check-in rules on a replay: the window (0: none asked) and the home's budget."""

    detector: HasDeadline
    window_s: float
    tick_s: float = CI.TICK_S
    asked: list[float] = field(default_factory=list)

    def waits(self, snap: ResidentSnapshot, t: float, v: Verdict, replay: Replayer) -> bool:
        """Nobody asked and the threshold still ahead: no alarm yet (the spell stays open)."""
        d = self.detector.deadline(snap)
        if d is not None and t < CI.raise_from(d, self.tick_s):
            replay.seen.discard(v.idem_key)
            return True
        return False

    def unanswered(self, snap: ResidentSnapshot, first: float) -> tuple[float, bool]:
        """(alarm time, asked) of a spell nobody answers, from the detector's first verdict at
        ``first``: the tick loop asks at the first tick the rules allow (an early question
        may wait for the threshold's), and the check loop (polling every second) raises at
        the due time; nobody asked: the last tick not after the threshold."""
        d = self.detector.deadline(snap)
        if d is None:
            return first, False
        stop = CI.raise_from(d, self.tick_s)
        t = first
        while True:
            due = self.due(snap, t)
            if due is not None:
                return math.ceil(due / CHECK_POLL_S) * CHECK_POLL_S, True
            if t >= stop:
                return t, False
            t += self.tick_s

    def due(self, snap: ResidentSnapshot, t: float) -> float | None:
        d = self.detector.deadline(snap)
        if d is None:
            return None
        recent = sum(1 for a in self.asked if t - CI.BUDGET_S < a <= t)
        return CI.due_at(
            d, now=t, window_s=self.window_s, asked_recently=recent, can_answer=self.window_s > 0
        )


def local_days(home: Home) -> list[float]:
    """Local midnights of the evaluated days: the labelled ones, or every day with events."""
    tz = ZoneInfo(home.timezone)
    times = [lab.start for lab in home.labels] or [a.t for a in home.events]
    dates = sorted({datetime.fromtimestamp(t, tz).date() for t in times})
    return [_midnight(d, tz) for d in dates]


def _midnight(d: date, tz: ZoneInfo) -> float:
    return datetime(d.year, d.month, d.day, tzinfo=tz).timestamp()


def _pick(home: Home, day: float, rng: np.random.Generator, count: int) -> list[float]:
    out: list[float] = []
    first, last = home.events[0].t, home.events[-1].t
    for _ in range(200):
        if len(out) == count:
            break
        t0 = float(day + rng.uniform(8 * HOUR, 20 * HOUR))
        if home.at_home_awake(t0, t0 + 60) and first < t0 < last:
            out.append(t0)
    return out


def _night_pick(
    home: Home,
    events: list[Activity],
    times: list[float],
    day: float,
    window: Window,
    rng: np.random.Generator,
) -> float | None:
    """(f) One real sign of life outside the bedroom (a room known) in the sleep window that
    begins on ``day``'s evening, drawn at random, where the labels do not say away: the
    person was up; the onset is the second after it. None: nobody seen up that night."""
    start = day + window.start_h * HOUR
    end = day + DAY + window.end_h * HOUR if window.start_h > window.end_h else start
    ups = [
        a.t
        for a in events[bisect.bisect_left(times, start) : bisect.bisect_left(times, end)]
        if is_sign_of_life(a)
        and a.room_kind not in (None, RoomKind.BEDROOM)
        and not _away_at(home, a.t)
    ]
    return float(ups[int(rng.integers(len(ups)))]) + 1.0 if ups else None


def _away_at(home: Home, t: float) -> bool:
    return any(lab.start <= t < lab.end and label_kind(lab.name) == "away" for lab in home.labels)


def away_marks_of(home: Home) -> list[Activity]:
    """An ``away`` mark at the start of every labelled absence and its end ("back home"):
    what a resident pressing "going out" and "back", or a carer's note, would tell the live
    detector."""
    out: list[Activity] = []
    for lab in home.labels:
        if label_kind(lab.name) == "away":
            for t, value in ((lab.start, True), (lab.end, False)):
                out.append(Activity(t, None, "label", AWAY_MARK, value))
    return out


def _cause(home: Home, start: float, end: float) -> str:
    for lab in home.labels:
        if lab.start < end and start < lab.end:
            return "sensor gap"
    return "long benign spell"


def evaluate_home(
    home: Home,
    detector: HasDeadline,
    *,
    rng: np.random.Generator,
    per_day: int = 3,
    tick_s: float = 60.0,
    history_days: int = 28,
    outage_s: float = 16 * HOUR,
    defaults: SiteDefaults | None = None,
    params: FitParams | None = None,
    check_in_s: float = 0.0,
    away_marks: bool = False,
    night_rng: np.random.Generator | None = None,
) -> HomeRun:
    defaults = defaults or SiteDefaults()
    checks = CheckIns(detector, check_in_s, tick_s)
    params = params or FitParams()
    run = HomeRun(home.name)
    tz = ZoneInfo(home.timezone)
    window = Window(defaults.night_start_hour, defaults.night_end_hour)
    events = list(home.events)
    if away_marks:  # the labelled absences as "away" marks: evidence of having left
        events = sorted(events + away_marks_of(home), key=lambda a: a.t)
    times = [a.t for a in events]
    # The recording's end: the untouched days are judged up to it (a home whose sensors all
    # stop is a device-health matter, and here the recording simply ends).
    recorded_until = home.events[-1].t if home.events else 0.0
    for day in local_days(home):
        lo = bisect.bisect_left(times, day - history_days * DAY)
        hi = bisect.bisect_left(times, day)
        routine = fit_routine(
            segments(events[lo:hi], outage_s), tz=tz, defaults=defaults, params=params
        )
        run.days += 1
        run.learned_days += int(routine.learned)
        end = _midnight((datetime.fromtimestamp(day, tz) + timedelta(days=1, hours=2)).date(), tz)
        end = min(end, recorded_until)  # after it every device is silent: not the resident
        replay = Replayer(events, routine, detector, start=day - 2 * DAY, timezone=home.timezone)
        earlier = set(checks.asked)

        def answered_before(
            t: float,
            snap: ResidentSnapshot,
            v: Verdict,
            earlier: set[float] = earlier,
            replay: Replayer = replay,
        ) -> bool:
            if t in earlier:  # asked when that day was evaluated: answered then
                replay.answer(t)
                return True
            return checks.waits(snap, t, v, replay)

        def ask(
            t: float,
            snap: ResidentSnapshot,
            v: Verdict,
            replay: Replayer = replay,
            learned: bool = routine.learned,
        ) -> bool:
            if checks.due(snap, t) is None:
                return checks.waits(snap, t, v, replay)
            checks.asked.append(t)  # recorded life: answered at once
            run.check_ins.append(t)
            run.first_day_check_ins += int(not learned)
            replay.answer(t)
            return True

        # spells already alerted (or asked about) before the day
        replay.run(day - 2 * DAY, day, tick_s, answered_before)
        for alarm in replay.run(day, end, tick_s, ask):
            seen = alarm.verdict.details.get("last_sign_of_life_at")  # (not the replay's end)
            last = datetime.fromisoformat(seen).timestamp() if isinstance(seen, str) else alarm.at
            state = str(alarm.verdict.details.get("state", "?"))
            after = any(0 <= alarm.at - a <= AFTER_CHECK_IN_S for a in checks.asked)
            run.false_alarms.append(
                FalseAlarm(
                    alarm.at, state, _cause(home, last, alarm.at), routine.learned, after, last
                )
            )
        silence = partial(_silence, home, events, times, routine, detector, checks, tick_s=tick_s)
        night_t0 = _night_pick(home, events, times, day, window, night_rng) if night_rng else None
        if night_t0 is not None and night_t0 < recorded_until:
            run.night_onsets.append(silence(night_t0, rng=None))
        for t0 in _pick(home, day, rng, per_day):
            run.onsets.append(silence(t0, rng=rng))
    return run


def _silence(
    home: Home,
    events: list[Activity],
    times: list[float],
    routine: Routine,
    detector: HasDeadline,
    checks: CheckIns,
    t0: float,
    *,
    tick_s: float,
    rng: np.random.Generator | None,
) -> Onset:
    """The person never moves again from ``t0``: every later event removed, the first alert
    within a day (after an unanswered check-in); with ``rng``, a 2-6 h and a 4-12 h silence
    length drawn for (a)."""
    before = events[: bisect.bisect_left(times, t0)]
    silent = Replayer(before, routine, detector, start=t0 - 2 * DAY, timezone=home.timezone)
    snap = silent.snapshot(t0)
    dl = detector.deadline(snap)
    state = dl.state if dl else snap.rest_state
    first = silent.first_alarm(t0, t0 + NEVER_S, tick_s)
    alarm_at = first.at if first else None
    asked = False
    if first is not None and silent.last_snapshot is not None:
        alarm_at, asked = checks.unanswered(silent.last_snapshot, first.at)
    last = snap.last_activity_at.timestamp() if snap.last_activity_at else t0
    return Onset(
        t0,
        state,
        last,
        alarm_at if alarm_at is None or alarm_at < t0 + NEVER_S else None,
        dl.at if dl else None,
        float(rng.uniform(2 * HOUR, 6 * HOUR)) if rng else NEVER_S,
        float(rng.uniform(4 * HOUR, 12 * HOUR)) if rng else NEVER_S,
        routine.learned,
        asked,
    )


def poisson_interval(k: int, exposure: float, level: float = 0.95) -> tuple[float, float]:
    """Exact (Garwood) interval for a Poisson rate: k events over ``exposure`` units."""
    alpha = (1 - level) / 2

    def cdf(x: int, lam: float) -> float:  # P(X <= x)
        term = total = math.exp(-lam)
        for i in range(1, x + 1):
            term *= lam / i
            total += term
        return total

    def solve(f: object, target: float) -> float:
        assert callable(f)
        lo, hi = 0.0, max(10.0, 10.0 * (k + 1))
        for _ in range(200):
            mid = (lo + hi) / 2
            if f(mid) > target:
                lo = mid
            else:
                hi = mid
        return (lo + hi) / 2

    lower = 0.0 if k == 0 else solve(lambda lam: cdf(k - 1, lam), 1 - alpha)
    upper = solve(lambda lam: cdf(k, lam), alpha)
    return lower / exposure, upper / exposure


def _alerted(o: Onset, length: float) -> bool:
    return o.alarm is not None and o.alarm < o.t0 + length


def _quantiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"n": 0, "median_min": None, "p95_min": None}
    arr = np.asarray(values)  # inf = not alerted within NEVER_S
    med = float(np.percentile(arr, 50, method="inverted_cdf"))
    p95 = float(np.percentile(arr, 95, method="inverted_cdf"))
    return {
        "n": len(values),
        "median_min": None if math.isinf(med) else round(med / 60, 1),
        "p95_min": None if math.isinf(p95) else round(p95 / 60, 1),
    }


def figures(run: HomeRun) -> dict[str, object]:
    """(a)-(e) for one home (or several runs merged)."""
    ons = run.onsets
    short = [_alerted(o, o.short_s) for o in ons]
    long_ = [_alerted(o, o.long_s) for o in ons]
    beyond = [
        (o, length)
        for o in ons
        for length in (o.short_s, o.long_s)
        if o.deadline is not None and o.t0 + length >= o.deadline + 1800
    ]
    within = [o.alarm is not None and o.alarm <= o.deadline + 1800 for o, _ in beyond if o.deadline]
    delays = [(o.alarm - o.last_sign) if o.alarm else math.inf for o in ons]
    by_state: dict[str, list[float]] = {}
    for o, d in zip(ons, delays, strict=True):
        by_state.setdefault(o.state, []).append(d)
    night: dict[str, list[float]] = {"all": []}
    for o in run.night_onsets:
        d = (o.alarm - o.last_sign) if o.alarm else math.inf
        night["all"].append(d)
        night.setdefault(o.state, []).append(d)
    fa = run.false_alarms
    lo, hi = poisson_interval(len(fa), run.days) if run.days else (math.nan, math.nan)
    first_days = run.days - run.learned_days
    fa_first = [f for f in fa if not f.learned]
    return {
        "home": run.home,
        "resident_days": run.days,
        "learned_days": run.learned_days,
        "a_2_6h_alerted": {"n": len(short), "share": _share(short)},
        "a_4_12h_alerted": {"n": len(long_), "share": _share(long_)},
        "b_within_30min_of_own_threshold": {"n": len(within), "share": _share(within)},
        "c_last_sign_to_alert": {"all": _quantiles(delays)}
        | {state: _quantiles(v) for state, v in sorted(by_state.items())},
        "d_false_alarms": {
            "count": len(fa),
            "per_resident_day": len(fa) / run.days if run.days else None,
            "poisson95": [lo, hi],
            "by_cause": dict(Counter(f.cause for f in fa)),
            "by_state": dict(Counter(f.state for f in fa)),
            "first_days": {"days": first_days, "count": len(fa_first)},
            "learned_days": {"days": run.learned_days, "count": len(fa) - len(fa_first)},
        },
        "e_check_ins": {
            "count": len(run.check_ins),
            "per_resident_day": len(run.check_ins) / run.days if run.days else None,
            "first_days": run.first_day_check_ins,
            "false_alarms_after_check_in": sum(f.after_check_in for f in fa),
            "onsets_asked_unanswered": sum(o.asked for o in ons),
        },
        "f_up_at_night": {k: _quantiles(v) for k, v in night.items()},
    }


def _share(flags: list[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def merge(runs: list[HomeRun], name: str = "all") -> HomeRun:
    out = HomeRun(name)
    for r in runs:
        out.days += r.days
        out.learned_days += r.learned_days
        out.onsets += r.onsets
        out.false_alarms += r.false_alarms
        out.check_ins += r.check_ins
        out.first_day_check_ins += r.first_day_check_ins
        out.night_onsets += r.night_onsets
    return out


def _pct(x: object) -> str:
    return "    -" if not isinstance(x, float) else f"{100 * x:5.1f}%"


def _min(x: object) -> str:
    return "  >24h" if x is None else f"{float(str(x)):6.0f}"


def table(rows: list[dict[str, object]]) -> str:
    lines = [
        "home      days learned  2-6h    4-12h   (b)30min  last sign->alert min  "
        "false alarms/day [95%]         first days  causes",
        "                                                   median   p95",
    ]
    for f in rows:
        a2, a4 = f["a_2_6h_alerted"], f["a_4_12h_alerted"]
        b, c, d = (
            f["b_within_30min_of_own_threshold"],
            f["c_last_sign_to_alert"],
            f["d_false_alarms"],
        )
        assert isinstance(a2, dict)
        assert isinstance(a4, dict)
        assert isinstance(b, dict)
        assert isinstance(d, dict)
        assert isinstance(c, dict)
        whole = c["all"]
        assert isinstance(whole, dict)
        ci, first, causes = d["poisson95"], d["first_days"], d["by_cause"]
        assert isinstance(ci, list)
        assert isinstance(first, dict)
        assert isinstance(causes, dict)
        rate = d["per_resident_day"]
        lines.append(
            f"{f['home']!s:<9} {f['resident_days']!s:>4} {f['learned_days']!s:>6}  "
            f"{_pct(a2['share'])}  {_pct(a4['share'])}  {_pct(b['share'])}   "
            f"{_min(whole['median_min'])} {_min(whole['p95_min'])}        "
            f"{float(str(rate)):.3f} ({d['count']}) [{ci[0]:.3f}, {ci[1]:.3f}]"
            f"     {first['count']}/{first['days']} d  "
            + ", ".join(f"{k} {v}" for k, v in sorted(causes.items()))
        )
    lines.append("")
    lines.append("(c) by state at onset: median / p95 min (n)")
    for f in rows:
        c = f["c_last_sign_to_alert"]
        assert isinstance(c, dict)
        parts = [
            f"{k} {_min(v['median_min']).strip()} / {_min(v['p95_min']).strip()} ({v['n']})"
            for k, v in c.items()
            if k != "all"
        ]
        lines.append(f"{f['home']!s:<9} " + "; ".join(parts))
    lines.append(
        "(e) check-ins asked on the untouched days (answered), per resident-day; false alarms "
        f"within {AFTER_CHECK_IN_S / HOUR:.0f} h after one; injected silences asked (unanswered)"
    )
    for f in rows:
        e = f["e_check_ins"]
        assert isinstance(e, dict)
        rate = e["per_resident_day"]
        lines.append(
            f"{f['home']!s:<9} {float(str(rate)):.3f} ({e['count']}, first days "
            f"{e['first_days']}); after: {e['false_alarms_after_check_in']}; "
            f"silences asked: {e['onsets_asked_unanswered']}"
        )
    lines.append(
        "(f) up at night outside the bedroom, then never moves again: last sign -> alert, "
        "median / p95 min (n), by state"
    )
    for f in rows:
        night = f.get("f_up_at_night")
        assert isinstance(night, dict)
        lines.append(f"{f['home']!s:<9} " + "; ".join(_row(k, v) for k, v in night.items()))
    return "\n".join(lines)


def _row(key: str, v: dict[str, object]) -> str:
    return f"{key} {_min(v['median_min']).strip()} / {_min(v['p95_min']).strip()} ({v['n']})"
