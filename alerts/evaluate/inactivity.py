"""``python -m alerts.evaluate.inactivity``: the inactivity detector on five real homes.

Leave-one-day-out: for every labelled day of a home, the routine is fitted on all the
home's OTHER days, then that day is replayed through the live detector

* untouched, to count false alarms per resident-day, and
* with injected silences: at random daytime points (08:00-20:00) where the activity labels
  say the person is at home and awake, the person "stops moving" for 2-6 h (all the home's
  sensor events in that period are removed). Detected = an alert during the silence.

Delays are measured from the injected start and from the moment the silence passed the
resident's usual maximum at that hour (spell start + usual maximum, as the alert reports).
Fixed seed: the same command prints the same figures.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import typer

from alerts.datasets.kasteren import HOMES, Home, load_home
from alerts.detectors.inactivity import InactivityDetector
from alerts.evaluate.replay import Replayer
from alerts.routine import FitParams, SiteDefaults, fit_routine, segments

DAY = 86400.0
HOUR = 3600.0


@dataclass
class HomeResult:
    home: str
    days: int = 0
    false_alarms: int = 0
    injected: int = 0
    detected: int = 0
    delay_start_s: list[float] = field(default_factory=list)
    delay_usual_s: list[float] = field(default_factory=list)
    learned_days: int = 0
    out_at_start: int = 0  # injected right after an exit door (the detector reads: away)
    detected_out: int = 0
    missed: Counter[str] = field(default_factory=Counter)  # why a silence went unalerted


def labelled_days(home: Home) -> list[float]:
    return sorted({np.floor(label.start / DAY) * DAY for label in home.labels})


def pick_injections(
    home: Home, day: float, rng: np.random.Generator, count: int, tries: int = 200
) -> list[tuple[float, float]]:
    picks: list[tuple[float, float]] = []
    for _ in range(tries):
        if len(picks) == count:
            break
        t0 = day + rng.uniform(8 * HOUR, 20 * HOUR)
        duration = rng.uniform(2 * HOUR, 6 * HOUR)
        if home.at_home_awake(t0, t0 + 60) and home.events[0].t < t0 < home.events[-1].t:
            picks.append((float(t0), float(duration)))
    return picks


def evaluate_home(
    home: Home,
    *,
    rng: np.random.Generator,
    per_day: int,
    tick_s: float,
    outage_h: float,
    defaults: SiteDefaults,
    params: FitParams,
) -> HomeResult:
    result = HomeResult(home.name)
    detector = InactivityDetector()
    events = list(home.events)
    for day in labelled_days(home):
        train = [a for a in events if a.t < day], [a for a in events if a.t >= day + DAY]
        routine = fit_routine(
            [s for part in train for s in segments(part, outage_h * HOUR)],
            defaults=defaults,
            params=params,
        )
        result.days += 1
        result.learned_days += int(routine.learned)
        context = day - 2 * DAY
        untouched = Replayer(events, routine, detector, start=context)
        untouched.run(context, day, tick_s)  # debounce state: spells already alerted
        result.false_alarms += len(untouched.run(day, day + DAY, tick_s))
        for t0, duration in pick_injections(home, day, rng, per_day):
            result.injected += 1
            silenced = [a for a in events if not t0 <= a.t < t0 + duration]
            replay = Replayer(silenced, routine, detector, start=t0 - 2 * DAY)
            out = replay.snapshot(t0).away
            result.out_at_start += int(out)
            alarms = replay.run(t0, t0 + duration, tick_s)
            if not alarms:
                result.missed[why_missed(replay, t0 + duration)] += 1
                continue
            first = alarms[0]
            result.detected += 1
            result.detected_out += int(out)
            result.delay_start_s.append(first.at - t0)
            details = first.verdict.details
            spell_start = datetime.fromisoformat(str(details["spell_start"])).timestamp()
            usual = float(str(details["usual_max_s"]))
            result.delay_usual_s.append(first.at - max(spell_start + usual, t0))
    return result


def why_missed(replay: Replayer, end: float) -> str:
    """The state the detector saw at the end of a missed silence."""
    snap = replay.snapshot(end)
    if snap.away:
        return "away"
    if snap.in_bed:
        return "in bed"
    return "within usual"


def _pct(values: list[float], q: float) -> str:
    return f"{np.percentile(values, q) / 60:6.0f}" if values else "     -"


def report(results: list[HomeResult]) -> str:
    lines = [
        "home  days  learned  injected  detected  rate    delay from start (min)  "
        "past usual max (min)  false alarms/resident-day",
        "                                                  median    p95          median    p95",
    ]
    total = HomeResult("all")
    for r in [*results, total]:
        if r is not total:
            total.days += r.days
            total.learned_days += r.learned_days
            total.false_alarms += r.false_alarms
            total.injected += r.injected
            total.detected += r.detected
            total.delay_start_s += r.delay_start_s
            total.delay_usual_s += r.delay_usual_s
            total.missed += r.missed
            total.out_at_start += r.out_at_start
            total.detected_out += r.detected_out
        rate = 100.0 * r.detected / r.injected if r.injected else float("nan")
        fa = r.false_alarms / r.days if r.days else float("nan")
        lines.append(
            f"{r.home:<5} {r.days:>4}  {r.learned_days:>7}  {r.injected:>8}  {r.detected:>8}  "
            f"{rate:5.1f}%  {_pct(r.delay_start_s, 50)}  {_pct(r.delay_start_s, 95)}"
            f"          {_pct(r.delay_usual_s, 50)}  {_pct(r.delay_usual_s, 95)}"
            f"                 {fa:.3f} ({r.false_alarms})"
        )
    lines.append("")
    for r in [*results, total]:
        why = ", ".join(f"{k} {v}" for k, v in sorted(r.missed.items())) or "none"
        home_n = r.injected - r.out_at_start
        home_rate = 100.0 * (r.detected - r.detected_out) / home_n if home_n else float("nan")
        lines.append(
            f"{r.home}: missed ({why}); {r.out_at_start} silences began right after an exit "
            f"door (read as away; labels say home); without them "
            f"{r.detected - r.detected_out}/{home_n} = {home_rate:.1f}% detected"
        )
    return "\n".join(lines)


def main(
    seed: int = typer.Option(20261123, help="random seed for the injected silences"),
    per_day: int = typer.Option(3, help="injected silences per evaluated day"),
    tick_s: float = typer.Option(60.0, help="replay tick (the live loop's tick_interval_s)"),
    homes: str = typer.Option("".join(HOMES), help="which homes, e.g. ABC"),
    quantile: float = typer.Option(FitParams().quantile, help="of the daily maxima per hour"),
    margin_min: float = typer.Option(SiteDefaults().margin_s / 60, help="minimum margin"),
    margin_frac: float = typer.Option(SiteDefaults().margin_frac, help="margin x usual"),
    outage_h: float = typer.Option(16.0, help="longer silences split the history"),
    room_min: int = typer.Option(FitParams().room_min_samples, help="samples for room profiles"),
) -> None:
    """Leave-one-day-out evaluation of the inactivity detector on houses A-E."""
    rng = np.random.default_rng(seed)
    defaults = SiteDefaults(margin_s=margin_min * 60, margin_frac=margin_frac)
    params = FitParams(quantile=quantile, room_min_samples=room_min)
    results = [
        evaluate_home(
            load_home(h),
            rng=rng,
            per_day=per_day,
            tick_s=tick_s,
            outage_h=outage_h,
            defaults=defaults,
            params=params,
        )
        for h in homes
    ]
    typer.echo(
        f"Inactivity on van Kasteren A-C + MIT/Tapia D-E, leave-one-day-out, seed {seed}, "
        f"{per_day} silences/day of 2-6 h at 08-20 h, tick {tick_s:.0f} s, quantile "
        f"{quantile}, margin max({margin_min:.0f} min, {margin_frac:.2f} x usual)"
    )
    typer.echo(report(results))


if __name__ == "__main__":
    typer.run(main)
