"""``python -m alerts.fall.train``: train the fall model on every SisFall subject and write it,
with its model card, to ``alerts/fall/model/``. Reproducible: fixed seed, deterministic folds.

The card records the subject-wise cross-validated figures (the same as ``python -m
alerts.evaluate.falls`` prints); the shipped model is then fitted on all subjects, with its
threshold chosen by the same nested procedure over all of them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import joblib
import numpy as np
import sklearn
from threadpoolctl import threadpool_limits

from alerts.evaluate.falls import print_report, report
from alerts.fall import features as F
from alerts.fall import learn, sisfall
from alerts.fall.model import CARD_FILE, MODEL_DIR, MODEL_FILE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--archive", type=Path, default=sisfall.DEFAULT_ARCHIVE)
    parser.add_argument("--out", type=Path, default=MODEL_DIR)
    args = parser.parse_args()
    threadpool_limits(1)  # one thread: OpenMP spinning on a shared machine is far slower

    ds = learn.build(args.archive)
    cv = learn.cross_validate(ds)
    rows = report(ds, cv)
    print_report(ds, cv, rows)

    model, threshold = learn.fit_with_threshold(ds, np.arange(len(ds.X), dtype=np.int64))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / MODEL_FILE
    joblib.dump(model, path, compress=3)
    card = {
        "name": "acc_fall",
        "estimator": type(model).__name__,
        "params": learn.PARAMS,
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
        "threshold": threshold,
        "threshold_rule": f"nested subject-wise CV, recording-level specificity >= {learn.SPEC_TARGET}",
        "data": {
            "source": "SisFall (Sucerquia, Lopez, Vargas-Bonilla, Sensors 17(1):198, 2017)",
            "file": args.archive.name,
            "sha256": sisfall.sha256_of(args.archive),
            "sensor": "ADXL345 x,y,z, 200 Hz resampled to 50 Hz, m/s2",
            "subjects": len(set(ds.subject)),
            "recordings": len(ds.subject),
            "windows": len(ds.X),
        },
        "cv": {
            "scheme": f"GroupKFold({learn.OUTER_FOLDS}) by subject, recording level",
            "fold_thresholds": cv.thresholds,
            **{name: asdict(f) for name, f in rows.items()},
        },
        "model_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "model_bytes": path.stat().st_size,
    }
    (args.out / CARD_FILE).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    print(f"wrote {path} ({card['model_bytes']} bytes), threshold {threshold:.3f}")


if __name__ == "__main__":
    main()
