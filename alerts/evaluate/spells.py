"""``python -m alerts.evaluate.spells``: how often the real homes are quiet for hours by day.

For each home: the quiet spells the detector reads as "at home and awake" (same state rules as
the live detector: :func:`alerts.detection.routine.gaps`) that begin between 08:00 and 20:00, counted
by length per resident-day, and what the activity labels say the person was doing meanwhile.

Why it matters: a detector that sees only silence (time since the last sign of life, the hour,
the room it happened in) gets exactly the same input during the first ``L`` hours of a natural
spell as from an injected silence of length ``L`` begun at the same time in the same room. If
natural spells of two hours or more begin by day more often than 0.1 times per day, no such
detector can alert on (nearly) every 2-h injected silence and stay under 0.1 false alarms per
resident-day.
"""

from __future__ import annotations

from collections import Counter

import typer

from alerts.detection.routine import Gap, gaps, segments
from alerts.evaluate.datasets.kasteren import HOMES, Home, load_home
from alerts.evaluate.external import local_days as labelled_days

HOUR = 3600.0
LENGTHS_H = (1.5, 2.0, 2.5, 3.0)


def day_spells(home: Home) -> list[Gap]:
    days = labelled_days(home)
    lo, hi = days[0], days[-1] + 24 * HOUR
    return [
        g
        for seg in segments(list(home.events), 16 * HOUR)
        for g in gaps(seg)
        if g.state == "active" and lo <= g.start < hi and 8 <= (g.start % (24 * HOUR)) / HOUR < 20
    ]


def what_labels_say(home: Home, g: Gap) -> str:
    said: Counter[str] = Counter()
    t = g.start
    while t < g.end:
        said[home.label_at(t) or "unlabelled"] += 1
        t += 300
    return said.most_common(1)[0][0]


def main(homes: str = typer.Option("".join(HOMES), help="which homes, e.g. ABC")) -> None:
    """Quiet spells of 1.5-3 h that begin by day, per resident-day, on houses A-E."""
    typer.echo(
        "Quiet spells read as 'at home and awake' that begin 08-20 h (van Kasteren A-C, "
        "MIT/Tapia D-E)"
    )
    typer.echo(
        "home  days  " + "  ".join(f">={x:g} h/day" for x in LENGTHS_H) + "  labels over the >=2 h"
    )
    for name in homes:
        home = load_home(name)
        days = len(labelled_days(home))
        spells = day_spells(home)
        counts = [sum(1 for g in spells if g.end - g.start >= x * HOUR) for x in LENGTHS_H]
        labels = Counter(what_labels_say(home, g) for g in spells if g.end - g.start >= 2 * HOUR)
        said = ", ".join(f"{k} {v}" for k, v in labels.most_common(4))
        typer.echo(
            f"{name:<5} {days:>4}  "
            + "  ".join(f"{c / days:>5.2f} ({c:>2})" for c in counts)
            + f"  {said}"
        )


if __name__ == "__main__":
    typer.run(main)
