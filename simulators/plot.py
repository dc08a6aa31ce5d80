"""Routine statistics of simulated residents beside those of the real home logs.

The real side comes from simulators/calibration.json (measured on the van Kasteren logs); the
simulated side from ``days`` simulated days of one resident per care profile, with events
counted the same way (all device events, thinned to one per 60 s as a PIR's hold time).
"""

from __future__ import annotations

import itertools
import random
from pathlib import Path

from devices.domain import CareProfile
from simulators import calibration
from simulators.routine import DAY, day_events

T0 = 1_790_000_000.0  # an arbitrary simulated local midnight base (shifted below)
LOCAL_OFFSET_S = 8 * 3600  # the simulated homes are in Asia/Shanghai (UTC+8, no DST)


def simulated(profile: CareProfile, *, days: int, seed: int) -> tuple[list[float], list[float]]:
    calib = calibration.load()
    rng = random.Random(seed)
    start = T0 - T0 % DAY - LOCAL_OFFSET_S  # local midnight
    times: list[float] = []
    for d in range(days):
        times += [
            e.at + LOCAL_OFFSET_S
            for e in day_events(profile, day_start=start + d * DAY, calib=calib, rng=rng)
        ]
    kept = calibration.thin(times)
    gaps = [b - a for a, b in itertools.pairwise(kept)]
    return calibration.hour_share(kept), calibration.spell_histogram(gaps)


def plot_routines(out: Path, *, days: int = 60, seed: int = 1) -> None:
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt

    calib = calibration.load()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
    hours = list(range(24))
    left.plot(hours, calib.real_hour_share, "k-o", lw=2.5, ms=4, label="real (Kasteren A-C)")
    labels = [f"{e}" for e in calibration.SPELL_EDGES_MIN[:-1]] + [
        f">={calibration.SPELL_EDGES_MIN[-1]}"
    ]
    x = list(range(len(calib.real_spell_share)))
    width = 0.16
    right.bar([i - 2 * width for i in x], calib.real_spell_share, width, color="k", label="real")
    for k, profile in enumerate(CareProfile):
        share, spells = simulated(profile, days=days, seed=seed + k)
        left.plot(hours, share, "-", lw=1.2, label=f"sim {profile}")
        right.bar([i + (k - 1) * width for i in x], spells, width, label=f"sim {profile}")
    left.set(
        xlabel="hour of day (local)",
        ylabel="share of the day's events",
        title="Events per hour of day",
        xticks=range(0, 24, 3),
    )
    right.set(
        xlabel="quiet spell (minutes, bin starts at)",
        ylabel="share of quiet spells",
        title="Length of quiet spells (gaps >= 1 min)",
    )
    right.set_xticks(x, labels)
    left.legend(fontsize=7)
    right.legend(fontsize=7)
    fig.suptitle(f"Simulated residents ({days} days each) vs. real homes ({calib.days:g} days)")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
