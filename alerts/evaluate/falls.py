"""``python -m alerts.evaluate.falls``: the fall detector judged per placement on people it
has never seen, through the live path (1-s packs assembled as the worker assembles them).

    python -m alerts.evaluate.falls [cv] [--placement wrist] [--scheme leave] [--write-doc]
                                    [--write-cards] [--dump FILE]
    python -m alerts.evaluate.falls bands FILE [--write-doc]
    python -m alerts.evaluate.falls external DIR --out FILE

``cv`` (the default): for every placement with data, subject-wise 5-fold cross-validation
within each data set (no test person in training; other data sets' recordings may train, as
the shipped recipe does) and leave-one-data-set-out (every recording of the tested data set
left out of training). Each fold trains its own model and threshold (nested, inside the
training folds only), then every test recording is replayed through ``alerts.detection.fall.live``.
``--scheme TEXT`` runs only the schemes whose name contains TEXT (``leave``: the
leave-one-data-set-out rows; ``CV``: the subject-wise ones), a quicker path while iterating
(not with ``--write-doc``: the doc's table holds every scheme).
``--dump FILE`` keeps every firing window per recording for ``bands`` (the "did you fall?"
check's figures, ``alerts.evaluate.falls_check``).
Recording level: a fall recording counts as caught if the worker would raise an alert, an
activity recording is a false alarm if it would. ``--write-doc`` puts the tables into
``docs/detection-falls.md`` and the figures into the model cards; ``--write-cards`` only the
cards of the placements evaluated (after retraining some of them: the doc's table is then
spliced by hand). ``external``: see ``alerts.evaluate.falls_external``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sklearn.model_selection import GroupKFold
from threadpoolctl import threadpool_limits

from alerts.detection.fall import live
from alerts.detection.fall.detector import AccFallDetector
from alerts.detection.fall.model import CARD_FILE, MODEL_ROOT, FallModel
from alerts.evaluate.falls_check import Dumped, dump_line
from alerts.evaluate.training import corpus, learn, pools
from alerts.evaluate.training.corpus import Rec

FOLDS = 5
DOC = Path(__file__).resolve().parents[2] / "docs" / "detection-falls.md"
BEGIN, END = "<!-- falls-eval:begin -->", "<!-- falls-eval:end -->"
# What each placement is tested on: (data set, its placement) pairs.
TESTED: dict[str, tuple[tuple[str, str], ...]] = {
    "wrist": (("umafall", "wrist"),),
    "waist": (("sisfall", "waist"), ("umafall", "waist")),
    "chest": (("umafall", "chest"),),
}
# An unknown placement gets the wrist model (the most conservative): what that costs on
# trunk-worn recordings it never saw (SisFall, a data set the wrist model never trains on).
STAND_IN: dict[str, tuple[str, str, str]] = {"unknown": ("wrist", "sisfall", "waist")}
NO_DATA = {
    "neck": "no neck/pendant recordings in either data set; a pendant is judged by the chest model"
}


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score 95% interval of the proportion k/n."""
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True, slots=True)
class Judged:
    rec: Rec
    outcome: live.Outcome


@dataclass(frozen=True, slots=True)
class Row:
    placement: str
    scheme: str
    falls: int
    caught: int
    adl: int
    false_alarms: int
    adl_hours: float
    missed_by_activity: tuple[tuple[str, int, int], ...]  # (activity, missed, of)
    worst_adl: tuple[tuple[str, int, int], ...]  # (activity, fired, of), worst first

    @property
    def sensitivity(self) -> float:
        return self.caught / self.falls if self.falls else float("nan")

    @property
    def specificity(self) -> float:
        return (self.adl - self.false_alarms) / self.adl if self.adl else float("nan")

    @property
    def per_hour(self) -> float:
        return self.false_alarms / self.adl_hours if self.adl_hours else float("nan")


def fold_model(placement: str, keep: pools.Keep, extra: Sequence[Rec] = ()) -> AccFallDetector:
    trained = pools.train(placement, keep, extra)
    print(f"  {placement} aftermath gate {trained.aftermath_gate_g:.3f} g", file=sys.stderr)
    model = FallModel(
        trained.estimator,
        trained.threshold,
        learn.GATE_G,
        {"placement": placement, "data": trained.data},
        jerk_gate_gps=learn.jerk_gate_for(placement),
        aftermath_gate_g=trained.aftermath_gate_g,
    )
    return AccFallDetector(model=model, models={placement: model})


def judge(detector: AccFallDetector, recs: Sequence[Rec], placement: str) -> list[Judged]:
    return [Judged(r, live.run(r.times, r.samples, detector, placement=placement)) for r in recs]


def _without(dataset: str, subjects: frozenset[str] | None) -> pools.Keep:
    """Keep every recording but those of ``subjects`` (all of them if None) of ``dataset``."""

    def keep(r: Rec) -> bool:
        return r.dataset != dataset or (subjects is not None and r.subject not in subjects)

    return keep


def splits(
    placement: str, scheme: str | None = None
) -> Iterator[tuple[str, pools.Keep, list[Rec]]]:
    """(scheme, which recordings may train, the recordings tested); only the schemes whose
    name contains ``scheme`` if given."""
    for dataset, where in TESTED[placement]:
        recs = corpus.load(dataset, where)
        subjects = np.array([r.subject for r in recs])
        cv = f"subject-wise CV {dataset}"
        folds = (
            []
            if scheme is not None and scheme not in cv
            else list(GroupKFold(n_splits=FOLDS).split(np.zeros(len(recs)), groups=subjects))
        )
        for k, (_, te) in enumerate(folds):
            out = {str(s) for s in subjects[te]}
            yield (
                cv,
                _without(dataset, frozenset(out)),
                [recs[i] for i in te],
            )
            print(f"  {placement} CV {dataset} fold {k + 1}/{FOLDS}", file=sys.stderr, flush=True)
        others = {d for d, _ in corpus.TRAINING[placement]} - {dataset}
        lodo = f"leave-{dataset}-out (trained on {', '.join(sorted(others))})"
        if others and (scheme is None or scheme in lodo):
            yield lodo, _without(dataset, None), recs


def summarise(placement: str, scheme: str, judged: Sequence[Judged]) -> Row:
    falls = [j for j in judged if j.rec.is_fall]
    adl = [j for j in judged if not j.rec.is_fall]
    missed = Counter(j.rec.activity for j in falls if not j.outcome.fired)
    fall_n = Counter(j.rec.activity for j in falls)
    fired = Counter(j.rec.activity for j in adl if j.outcome.fired)
    adl_n = Counter(j.rec.activity for j in adl)
    worst = sorted(
        ((a, fired[a], n) for a, n in adl_n.items() if fired[a]),
        key=lambda t: (-t[1] / t[2], t[0]),
    )
    return Row(
        placement,
        scheme,
        len(falls),
        sum(j.outcome.fired for j in falls),
        len(adl),
        sum(j.outcome.fired for j in adl),
        sum(j.rec.duration_s for j in adl) / 3600.0,
        tuple(sorted(((a, missed[a], fall_n[a]) for a in missed), key=lambda t: -t[1])),
        tuple(worst),
    )


def pct(k: int, n: int) -> str:
    if n == 0:
        return "-"
    lo, hi = wilson(k, n)
    return f"{k / n:.1%} ({k}/{n}; {lo:.1%}-{hi:.1%})"


def table(rows: Sequence[Row]) -> str:
    lines = [
        "| placement | scheme | sensitivity (95% CI) | specificity (95% CI) | false alarms "
        "per hour of activity | worst activities (fired/recordings) | missed falls |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        worst = ", ".join(f"{a} {k}/{n}" for a, k, n in r.worst_adl[:4]) or "none"
        missed = ", ".join(f"{a} {k}/{n}" for a, k, n in r.missed_by_activity[:4]) or "none"
        lines.append(
            f"| {r.placement} | {r.scheme} | {pct(r.caught, r.falls)} | "
            f"{pct(r.adl - r.false_alarms, r.adl)} | {r.per_hour:.2f} ({r.adl_hours:.2f} h) | "
            f"{worst} | {missed} |"
        )
    return "\n".join(lines)


def dumped(placement: str, model_of: str, scheme: str, judged: Sequence[Judged]) -> list[Dumped]:
    return [
        Dumped(
            placement,
            model_of,
            scheme,
            j.rec.key,
            j.rec.activity,
            j.rec.is_fall,
            j.rec.duration_s,
            j.outcome.scored,
        )
        for j in judged
    ]


def cross_validate(
    placements: Sequence[str],
    sink: list[Dumped] | None = None,
    extra: Mapping[str, Sequence[Rec]] | None = None,
    scheme: str | None = None,
) -> list[Row]:
    """Every scheme's row per placement; ``extra[placement]`` (carers' examples) trains in
    every fold of that placement and is never tested (it is not reference data)."""
    rows: list[Row] = []
    sink = [] if sink is None else sink
    extra = extra or {}
    for placement in placements:
        if placement not in TESTED:
            continue
        by_scheme: dict[str, list[Judged]] = {}
        for name, keep, test in splits(placement, scheme):
            detector = fold_model(placement, keep, extra.get(placement, ()))
            by_scheme.setdefault(name, []).extend(judge(detector, test, placement))
        rows += [summarise(placement, s, j) for s, j in by_scheme.items()]
        for s, j in by_scheme.items():
            sink += dumped(placement, placement, s, j)
    for placement, (model_of, dataset, where) in STAND_IN.items():
        if placement not in placements or scheme is not None:
            continue
        detector = fold_model(model_of, lambda r: True, extra.get(model_of, ()))
        judged = judge(detector, corpus.load(dataset, where), placement)
        name = f"{model_of} model on {dataset} {where} (held out)"
        rows.append(summarise(placement, name, judged))
        sink += dumped(placement, model_of, name, judged)
    return rows


def evaluation(rows: Sequence[Row], stamp: str) -> dict[str, object]:
    """The evaluated figures as a model card keeps them (``card["evaluation"]``)."""
    return {
        "run": stamp,
        "rows": [
            {
                "scheme": r.scheme,
                "falls": r.falls,
                "caught": r.caught,
                "sensitivity_ci95": list(wilson(r.caught, r.falls)),
                "adl": r.adl,
                "false_alarms": r.false_alarms,
                "specificity_ci95": list(wilson(r.adl - r.false_alarms, r.adl)),
                "false_alarms_per_adl_hour": round(r.per_hour, 3),
                "worst_adl": [list(w) for w in r.worst_adl[:5]],
                "missed_falls": [list(m) for m in r.missed_by_activity[:5]],
            }
            for r in rows
        ],
    }


def write_cards(rows: Sequence[Row], stamp: str, root: Path = MODEL_ROOT) -> None:
    """The evaluated figures into each placement's model card (the model's hash is unchanged:
    the card records it, not the other way round)."""
    for placement in {r.placement for r in rows}:
        path = root / placement / CARD_FILE
        if not path.exists():
            continue
        card = json.loads(path.read_text())
        card["evaluation"] = evaluation([r for r in rows if r.placement == placement], stamp)
        path.write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")


def write_doc(text: str, doc: Path = DOC, *, begin: str = BEGIN, end: str = END) -> None:
    body = doc.read_text()
    start, stop = body.index(begin) + len(begin), body.index(end)
    doc.write_text(body[:start] + "\n" + text + "\n" + body[stop:])


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "external":
        from alerts.evaluate.falls_external import main as external

        external(args[1:])
        return
    if args and args[0] == "bands":
        from alerts.evaluate.falls_check import main as bands

        bands(args[1:])
        return
    if args and args[0] == "cv":
        args = args[1:]
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--placement", action="append", choices=[*TESTED, *STAND_IN, *NO_DATA])
    parser.add_argument("--scheme", help="only the schemes whose name contains this text")
    parser.add_argument("--write-doc", action="store_true")
    parser.add_argument(
        "--write-cards",
        action="store_true",
        help="only the evaluated placements' model cards (--write-doc writes them too)",
    )
    parser.add_argument("--dump", type=Path, help="every firing window, for the bands command")
    opts = parser.parse_args(args)
    if opts.scheme is not None and (opts.write_doc or opts.write_cards):
        parser.error("--write-doc and --write-cards need every scheme (no --scheme)")
    threadpool_limits(1)  # one thread: OpenMP spinning on a shared machine is far slower
    started = time.monotonic()
    placements = opts.placement or [*TESTED, *STAND_IN, *NO_DATA]
    sink: list[Dumped] = []
    rows = cross_validate(placements, sink, scheme=opts.scheme)
    if opts.dump:
        opts.dump.write_text("".join(dump_line(d) + "\n" for d in sink))
    text = table(rows)
    notes = [f"- {p}: {why}" for p, why in NO_DATA.items() if p in placements]
    stamp = (
        f"`python -m alerts.evaluate.falls` on {datetime.now(UTC):%Y-%m-%d} "
        f"({time.monotonic() - started:.0f} s); recording level through the live path"
    )
    out = "\n".join([stamp, "", text, "", *notes])
    print(out)
    if opts.write_doc:
        write_doc(out)
    if opts.write_doc or opts.write_cards:
        write_cards(rows, stamp)


if __name__ == "__main__":
    main()
