"""The tick path's throughput: residents judged per second by the tick detectors.

    .venv/bin/python -m bench.ticks [--residents 2000] [--repeats 5] [--at 02:05]

Prints, in one run:
- the baseline: building the residents' snapshots from their recent events
  (``build_snapshot``, pure, one core), what every tick does before any detector runs;
- the tick detectors (``build_tick_registry``: inactivity, with its deadline and check-in
  rules) on those snapshots, at 24 ticks over the next two hours (one core);
- the ratio, which says what judging costs on top of reading the state.

``--at`` is the local time of the snapshots: 02:05 (default) finds every resident up in the
kitchen at night (the night watch's path: from session 14 those ticks raise verdicts, which
costs their building), 10:05 about the home by day.

The residents are synthetic and of four kinds (every combination of a bed mat and a seat mat),
each with a routine fitted on 14 days of its own kind's history (an evening in the living room,
a night up at 02:00, the day about the home), so the learned and the night paths are taken.
No database: the tick's two queries are the same for any detector (``load_snapshots``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta

from alerts.detection.detectors.registry import build_tick_registry
from alerts.detection.detectors.snapshot import ResidentSnapshot
from alerts.detection.routine import Activity, Routine, fit_routine
from alerts.detection.snapshots import build_snapshot
from alerts.detection.ticks import evaluate_snapshots

DAY0 = datetime(2026, 3, 2, tzinfo=UTC)
H = 3600.0
RESIDENT: dict[str, object] = {
    "full_name": "resident",
    "site_id": "bench",
    "site_kind": "home_care_bed",
    "timezone": "Asia/Shanghai",
    "room_id": None,
    "room_name": None,
    "care_profile": "independent",
    "care_plan": {},
}


def history(days: int, *, bed: bool, seat: bool) -> list[Activity]:
    out: list[Activity] = []
    for d in range(days):
        day = (DAY0 + timedelta(days=d)).timestamp() - 8 * H  # local midnight, UTC+8
        out += [Activity(day + 7 * H + k * 15 * 60, "living", "pir", "motion") for k in range(50)]
        out.append(Activity(day + 12 * H, "kitchen", "appliance", "appliance", True))
        if seat:
            out += [
                Activity(day + 14 * H, "living", "seat_mat", "presence", True),
                Activity(day + 15.5 * H, "living", "seat_mat", "presence", False),
            ]
        out.append(Activity(day + 22 * H, "bedroom", "pir", "motion"))
        if bed:
            out.append(Activity(day + 22 * H + 60, "bedroom", "bed_mat", "presence", True))
        up = day + 26 * H  # 02:00 the next morning, to the kitchen and back
        out += [
            Activity(up, "kitchen", "pir", "motion"),
            Activity(up + 600, "bedroom", "pir", "motion"),
        ]
    return sorted(out, key=lambda a: a.t)


Kind = tuple[bool, bool]  # (bed mat, seat mat)
KINDS: list[Kind] = [(bed, seat) for bed in (False, True) for seat in (False, True)]
NOW = DAY0 + timedelta(days=15, hours=-6, minutes=5)  # 02:05 local: up, in the kitchen


def at_local(hhmm: str) -> datetime:
    """Day 15 at ``hhmm`` local (UTC+8)."""
    h, m = (int(x) for x in hhmm.split(":"))
    return DAY0 + timedelta(days=15, hours=h - 8, minutes=m)


def fitted(now: datetime = NOW) -> dict[Kind, tuple[list[Activity], Routine]]:
    """Each kind's recent events at ``now`` and its routine fitted on 14 days."""
    out = {}
    for bed, seat in KINDS:
        events = history(16, bed=bed, seat=seat)
        before = [a for a in events if a.t <= now.timestamp()]
        # as load_snapshots reads them: each device's last 6 events, and the last 6 h
        last: dict[tuple[str, str | None], list[Activity]] = {}
        for a in before:
            last.setdefault((a.device_kind, a.room_kind), []).append(a)
        recent = [a for a in before if a.t >= now.timestamp() - 6 * H]
        recent += [a for seen in last.values() for a in seen[-6:]]
        routine = fit_routine([events[: len(events) * 14 // 16]])
        out[(bed, seat)] = (sorted(dict.fromkeys(recent), key=lambda a: a.t), routine)
    return out


def snapshots(
    n: int, kinds: dict[Kind, tuple[list[Activity], Routine]], now: datetime = NOW
) -> list[ResidentSnapshot]:
    return [
        build_snapshot(
            resident={**RESIDENT, "resident_id": i + 1},
            activities=kinds[KINDS[i % len(KINDS)]][0],
            routine=kinds[KINDS[i % len(KINDS)]][1],
            now=now,
        )
        for i in range(n)
    ]


def rate(work: object, count: int, repeats: int) -> float:
    assert callable(work)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        work()
        times.append(time.perf_counter() - t)
    return count / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--residents", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--at", default="02:05", help="local time of the snapshots")
    args = parser.parse_args()
    now = at_local(args.at)
    kinds = fitted(now)
    snaps = snapshots(args.residents, kinds, now)
    specs = build_tick_registry()
    hours = [now + timedelta(minutes=5 * k) for k in range(24)]  # the next two hours

    def build() -> None:
        snapshots(args.residents, kinds, now)

    def judge() -> None:
        for at in hours:
            evaluate_snapshots(snaps, specs, at)

    built = rate(build, args.residents, args.repeats)
    judged = rate(judge, args.residents * len(hours), args.repeats)
    print(
        f"residents: {args.residents} (bed mat x seat mat, fitted routines), at {args.at} "
        f"local, 24 ticks over 2 h, median of {args.repeats}"
    )
    print(f"baseline: snapshots built, one core:   {built:>10,.0f} residents/s")
    print(f"tick detectors judged, one core:       {judged:>10,.0f} resident-ticks/s")
    print(f"ratio judged / built:                  {judged / built:>10.2f}")


if __name__ == "__main__":
    main()
