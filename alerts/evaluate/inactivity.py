"""``python -m alerts.evaluate.inactivity external DIR... --json FILE``: the live inactivity
detector on any home's logs (format: :mod:`alerts.evaluate.datasets.external`), learning from past
days only, as it runs live. Prints figures (a)-(e) per home and for all homes together;
``--json`` writes them too. Fixed seed: the same command prints the same figures. Each home
draws its onsets from its own generator, seeded from the seed and the home's name
(:func:`home_rng`): one home's labels, or which homes are listed, cannot move another's.

The shared homes in that format: ``python -m alerts.evaluate.datasets.convert_kasteren /tmp/homes``.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from alerts.detection.detectors.inactivity import InactivityDetector
from alerts.evaluate.datasets.external import load_external
from alerts.evaluate.external import evaluate_home, figures, merge, table
from devices.careplan import DEFAULT_CHECK_IN_S

app = typer.Typer(add_completion=False, no_args_is_help=True)


def home_rng(seed: int, name: str) -> np.random.Generator:
    """The onsets' and lengths' generator of home ``name`` (its directory's name)."""
    return np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])


@app.callback()
def _root() -> None:
    """Evaluations of the inactivity detector."""


@app.command()
def external(
    dirs: Annotated[list[Path], typer.Argument(help="one directory per home")],
    json_out: Annotated[Path | None, typer.Option("--json", help="write the figures")] = None,
    seed: Annotated[int, typer.Option(help="seed for the onsets and lengths")] = 20261203,
    per_day: Annotated[int, typer.Option(help="onsets per day (08-20 h local)")] = 3,
    tick_s: Annotated[float, typer.Option(help="replay tick (the live tick)")] = 60.0,
    history_days: Annotated[int, typer.Option(help="past days fitted on")] = 28,
    check_in_s: Annotated[
        float, typer.Option(help="check-in window (care plan check_in_s); 0: none asked")
    ] = float(DEFAULT_CHECK_IN_S),
    away_labels: Annotated[
        bool, typer.Option(help="labelled absences count as evidence of having left")
    ] = False,
) -> None:
    """Past-days-only evaluation on homes in the external format."""
    detector = InactivityDetector()
    homes = [load_external(d) for d in dirs]
    runs = [
        evaluate_home(
            home,
            detector,
            rng=home_rng(seed, home.name),
            per_day=per_day,
            tick_s=tick_s,
            history_days=history_days,
            check_in_s=check_in_s,
            away_marks=away_labels,
            night_rng=home_rng(seed, f"{home.name}/night"),
        )
        for home in homes
    ]
    rows = [figures(r) for r in runs] + ([figures(merge(runs))] if len(runs) > 1 else [])
    typer.echo(
        f"Inactivity, past days only ({history_days} d), seed {seed}, {per_day} onsets/day at "
        f"08-20 h, tick {tick_s:.0f} s; never moves again after each onset; check-in window "
        f"{check_in_s:.0f} s; away labels as evidence: {'yes' if away_labels else 'no'}"
    )
    typer.echo(table(rows))
    if json_out is not None:
        json_out.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    app()
