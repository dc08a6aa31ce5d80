"""``python -m alerts.evaluate.falls_proxy --placement P [--scheme TEXT] [--variant V]``: a quick
proxy of ``python -m alerts.evaluate.falls`` for trying a training recipe before a full run.

The same folds and schemes (``falls.splits``) and the same per-fold training and nested
threshold (``pools.train``), but the tested recordings are scored offline: every 6-s window of
the recording as recorded (the cached copy 0 of ``corpus.training_windows``), and a recording
fires if any window reaches its fold's threshold. No live path, no 6-s lead-in, no folding:
it agrees with the live table to within a few recordings (sessions 8 and 9), so use it to rank
recipes, and the live evaluation for the figures.

``--variant`` is ``base`` or parts joined by ``+`` that change the recipe for this run only:
``iterN`` (trees), ``leafN`` (leaves per tree), ``mslN`` (min samples per leaf), ``lrX``
(learning rate), ``mfX`` (share of features per split; these five for every placement, over
its own ``learn.PLACEMENT_PARAMS``), ``specX`` (the threshold's
recording-level specificity inside the training folds), ``jerkX`` (the trunk's jerk gate in
g/s, ``jerk0`` for none), ``copiesN`` (augmented copies).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Sequence

import numpy as np
from threadpoolctl import threadpool_limits

from alerts.evaluate import falls
from alerts.evaluate.training import corpus, learn, pools

PARAM_PARTS = {
    "iter": ("max_iter", int),
    "leaf": ("max_leaf_nodes", int),
    "msl": ("min_samples_leaf", int),
    "lr": ("learning_rate", float),
    "mf": ("max_features", float),
}


def apply(variant: str) -> None:
    """Change the training recipe (module constants) as ``variant`` says."""
    for part in variant.split("+"):
        if part == "base":
            continue
        prefix = part.rstrip("0123456789.")
        value = part[len(prefix) :]
        if prefix in PARAM_PARTS:
            name, kind = PARAM_PARTS[prefix]
            for params in (learn.PARAMS, *learn.PLACEMENT_PARAMS.values()):
                params[name] = kind(value)
        elif prefix == "spec":
            learn.SPEC_TARGET = float(value)
        elif prefix == "jerk":  # the trunk's jerk gate, g/s (jerk0: none)
            for where in ("waist", "chest"):
                learn.JERK_GATE_GPS[where] = float(value)
        elif prefix == "copies":
            corpus.AUG_COPIES = int(value)
        else:
            raise ValueError(f"unknown variant part {part!r}")


def run(placement: str, scheme: str | None) -> list[str]:
    """One line per scheme: caught falls, quiet activity recordings, the worst activities."""
    by: dict[str, list[tuple[bool, bool, str]]] = {}
    for name, keep, test in falls.splits(placement, scheme):
        trained = pools.train(placement, keep)
        threshold = trained.threshold
        pool = corpus.load(test[0].dataset, test[0].placement)
        keys = {r.key for r in test}
        idx = np.array([i for i, r in enumerate(pool) if r.key in keys], dtype=np.int64)
        w = corpus.training_windows(pool)
        m = (w.copy == 0) & np.isin(w.rec, idx)
        best = learn.recording_max(
            learn.score(
                trained.estimator,
                w.X[m],
                jerk_gate=learn.jerk_gate_for(placement),
                aftermath_gate=trained.aftermath_gate_g,
            ),
            w.rec[m],
            len(pool),
        )
        by.setdefault(name, []).extend(
            (pool[i].is_fall, bool(best[i] >= threshold), pool[i].activity) for i in idx
        )
    lines = []
    for name, out in by.items():
        caught = sum(fired for is_fall, fired, _ in out if is_fall)
        n_falls = sum(is_fall for is_fall, _, _ in out)
        fired_adl = Counter(a for is_fall, fired, a in out if fired and not is_fall)
        n_adl = len(out) - n_falls
        quiet = n_adl - sum(fired_adl.values())
        worst = ", ".join(f"{a} {k}" for a, k in fired_adl.most_common(4)) or "none"
        lines.append(
            f"{placement} | {name} | sensitivity {caught}/{n_falls} | "
            f"specificity {quiet}/{n_adl} | {worst}"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--placement", required=True, choices=list(falls.TESTED))
    parser.add_argument("--scheme", help="only the schemes whose name contains this text")
    parser.add_argument("--variant", default="base")
    opts = parser.parse_args(argv)
    apply(opts.variant)
    threadpool_limits(1)
    started = time.monotonic()
    for line in run(opts.placement, opts.scheme):
        print(f"{opts.variant} | {line}", flush=True)
    print(f"{time.monotonic() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
