"""``python -m alerts.evaluate.training.train [--placement P]``: train each placement's fall model on all
of its data (``corpus.TRAINING``: both data sets where they have that placement, each
recording also once augmented as another device would record it) and write it with its
model card to ``alerts/detection/fall/model/<placement>/``. Reproducible: fixed seeds, deterministic
folds and augmentation, so two runs give the same file (same sha256).

The card records the data, the threshold rule, the hash and a version (``version``, and
``model_id`` = ``<placement>-v<version>-<sha256 prefix>``, which every alert it raises names);
``python -m alerts.evaluate.falls --write-doc`` adds the evaluated figures (subject-wise and
leave-one-data-set-out) to it.

``python -m alerts.evaluate.training.train --with-carer-examples DATABASE_URL``: retrain with
the false alarms carers labelled (``carers.py``), adopted only if it catches as many falls.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn
from threadpoolctl import threadpool_limits

from alerts.detection.fall import features as F
from alerts.detection.fall.model import CARD_FILE, MODEL_FILE, MODEL_ROOT, PLACEMENTS, model_id
from alerts.evaluate.training import corpus, learn, pools, sisfall, umafall
from alerts.evaluate.training.corpus import Rec

SOURCES = {
    "sisfall": (
        "SisFall (Sucerquia, Lopez, Vargas-Bonilla, Sensors 17(1):198, 2017)",
        sisfall.DEFAULT_ARCHIVE,
    ),
    "umafall": (
        "UMAFall (Casilari, Santoyo-Ramon, Cano-Garcia, Procedia Comput. Sci. 110:32-39, 2017; "
        "CC BY 4.0)",
        umafall.DEFAULT_ARCHIVE,
    ),
}


def write(
    placement: str,
    root: Path,
    *,
    extra: Sequence[Rec] = (),
    evaluation: Mapping[str, Any] | None = None,
    carer_examples: Mapping[str, Any] | None = None,
) -> dict[str, object]:
    """Train ``placement``'s model (with ``extra``: carers' examples) and write it with its
    card; a model whose hash or gates differ from the one it replaces gets the next version
    (the gates change what it pages on as much as its trees do)."""
    trained = pools.train(placement, extra=extra)
    model, threshold, data = trained.estimator, trained.threshold, trained.data
    gates = {
        "jerk_gate_gps": learn.jerk_gate_for(placement),
        "aftermath_gate_g": (
            None if math.isinf(trained.aftermath_gate_g) else trained.aftermath_gate_g
        ),
    }
    out = root / placement
    out.mkdir(parents=True, exist_ok=True)
    path = out / MODEL_FILE
    old = out / CARD_FILE
    before: dict[str, Any] = json.loads(old.read_text()) if old.exists() else {}
    joblib.dump(model, path, compress=3)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    version = int(before.get("version", 1)) if before else 1
    changed = bool(before) and (
        before.get("model_sha256") != sha or any(before.get(k) != v for k, v in gates.items())
    )
    if changed:
        version += 1
    if evaluation is None:
        evaluation = before.get("evaluation")
    datasets = {d for d, _ in corpus.TRAINING[placement]}
    card: dict[str, object] = {
        "version": version,
        "name": "acc_fall",
        "placement": placement,
        "estimator": type(model).__name__,
        "params": learn.params_for(placement),
        "seed": learn.SEED,
        "sklearn_version": sklearn.__version__,
        "numpy_version": np.__version__,
        "features": list(F.FEATURES),
        "rate_hz": F.RATE_HZ,
        "window_s": F.WINDOW_S,
        "step_s": F.STEP_S,
        "pre_s": F.PRE_S,
        "post_s": F.POST_S,
        "gate_g": learn.GATE_G,
        **gates,
        "aftermath_gate_rule": (
            f"quantile {learn.AFTERMATH_QUANTILE} (an observed value) of the training fall "
            "recordings' calmest labelled window's post_sma_g (each augmented copy a "
            "recording); windows above it score 0"
            if gates["aftermath_gate_g"] is not None
            else None
        ),
        "threshold": threshold,
        "threshold_rule": (
            f"subject-wise {learn.INNER_FOLDS}-fold out-of-fold scores on the training data, "
            f"recording-level specificity >= {learn.SPEC_TARGET}"
        ),
        "data": {
            "sources": {
                d: {
                    "cite": SOURCES[d][0],
                    "file": SOURCES[d][1].name,
                    "sha256": sisfall.sha256_of(SOURCES[d][1]),
                }
                for d in sorted(datasets)
            },
            "used": data,
            "augmentation": {
                "copies": 1,
                "rotation": "uniformly random",
                "rates_hz": list(corpus.AUG_RATES),
                "clip_g": [c for c in corpus.AUG_CLIPS_G if c is not None],
                "noise_g": corpus.NOISE_G,
            },
            "labels": f"fall: windows whose impact is within {corpus.LABEL_TOL_S} s of the "
            "recording's largest magnitude; activity: every window",
        },
        "splits": "evaluation: python -m alerts.evaluate.falls (subject-wise 5-fold CV within "
        "each data set, leave-one-data-set-out across them, through alerts.detection.fall.live)",
        "evaluation": evaluation,
        "carer_examples": carer_examples,
        "replaces": model_id(before) if changed else None,
        "model_sha256": sha,
        "model_bytes": path.stat().st_size,
    }
    card["model_id"] = model_id(card)
    (out / CARD_FILE).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    print(
        f"{placement}: wrote {path} ({card['model_bytes']} bytes), threshold {threshold:.3f}, "
        f"model {card['model_id']}"
    )
    return card


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--placement", action="append", choices=PLACEMENTS)
    parser.add_argument("--out", type=Path, default=MODEL_ROOT)
    parser.add_argument(
        "--with-carer-examples",
        metavar="DATABASE_URL",
        help="retrain with the false alarms carers labelled; adopted only if no fewer falls "
        "are caught on the reference data (exit 1 if refused)",
    )
    parser.add_argument(
        "--export",
        type=Path,
        help="with --with-carer-examples: also write the examples to this JSON-lines file",
    )
    args = parser.parse_args()
    threadpool_limits(1)  # one thread: OpenMP spinning on a shared machine is far slower
    if args.with_carer_examples:
        from alerts.evaluate.training import carers

        sys.exit(
            carers.retrain(
                args.with_carer_examples,
                placements=args.placement or PLACEMENTS,
                root=args.out,
                export_to=args.export,
            )
        )
    for placement in args.placement or PLACEMENTS:
        write(placement, args.out)


if __name__ == "__main__":
    main()
