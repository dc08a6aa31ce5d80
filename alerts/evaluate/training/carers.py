"""Learning from carers (issue 13 item 5): the false alarms carers labelled become hard
negatives, and a retrained model is adopted only if it catches as many falls.

    python -m alerts.evaluate.training.train --with-carer-examples DATABASE_URL
        [--placement wrist] [--out alerts/detection/fall/model] [--export FILE]

1. **Export**: every ``fall_examples`` row (kept by ``alerts.dispatch.examples`` when an order
   is resolved as a false alarm: the device's samples 10 s either side of the alert, who
   labelled it, the model that judged it) becomes a recording of its own (data set
   ``carer``, subject = the resident, activity ``false_alarm``), for the placement of the
   model that judged it (a pendant's for the chest model, an unknown device's for the wrist).
2. **Retrain** each placement that has examples: the reference evaluation
   (``alerts.evaluate.falls.cross_validate``: the same subject-wise and leave-one-data-set-out
   schemes, through the live path) with the examples added to the training data of every
   fold (never tested: they are not reference data).
3. **Adopt or refuse** (``adoption``): every scheme of the current model's card is compared;
   a candidate that catches fewer falls in any one of them is refused: both figures are
   printed, nothing is written, the exit status is 1. Otherwise the model is trained on all
   reference data plus the examples and written over ``<out>/<placement>/`` with the next
   version, the candidate's figures and the examples it used in its card; the alerts worker
   loads it at its next start (and checks its hash against the card, ``model.load``).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg.rows import dict_row

from alerts.detection.fall import features as F
from alerts.detection.fall.model import CARD_FILE, model_id
from alerts.evaluate import falls
from alerts.evaluate.training import train
from alerts.evaluate.training.corpus import Rec

F64 = npt.NDArray[np.float64]
COMMAND = "python -m alerts.evaluate.training.train --with-carer-examples"

EXPORT_SQL = """
SELECT e.example_id, e.alert_id, e.order_id, e.site_id, e.resident_id, e.device_key,
       d.device_id, e.placement, e.model_placement, e.model_id, e.impact_at, e.t,
       e.acc_x, e.acc_y, e.acc_z, e.labelled_by, e.labelled_at
FROM fall_examples e JOIN devices d USING (device_key)
ORDER BY e.example_id
"""


@dataclass(frozen=True, slots=True, eq=False)
class Example:
    """One false alarm a carer labelled: the device's samples around the alert (seconds from
    the alert's moment, m/s2) and where they came from."""

    example_id: int
    alert_id: int
    order_id: int
    site_id: str
    resident_id: int | None
    device_key: int
    device_id: str
    placement: str
    model_placement: str
    model_id: str
    impact_at: datetime
    labelled_by: str
    labelled_at: datetime
    times: F64
    samples: F64  # (n, 3)

    @property
    def subject(self) -> str:
        return f"r{self.resident_id}" if self.resident_id is not None else f"d{self.device_key}"

    @property
    def duration_s(self) -> float:
        return float(self.times[-1] - self.times[0]) if len(self.times) > 1 else 0.0

    def rec(self) -> Rec:
        return Rec(
            "carer",
            self.subject,
            "false_alarm",
            self.example_id,
            False,
            None,
            self.model_placement,
            self.times,
            self.samples,
        )


def export(database_url: str) -> list[Example]:
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        rows = conn.execute(EXPORT_SQL).fetchall()
    return [
        Example(
            int(r["example_id"]),
            int(r["alert_id"]),
            int(r["order_id"]),
            str(r["site_id"]),
            None if r["resident_id"] is None else int(r["resident_id"]),
            int(r["device_key"]),
            str(r["device_id"]),
            str(r["placement"]),
            str(r["model_placement"]),
            str(r["model_id"]),
            r["impact_at"],
            str(r["labelled_by"]),
            r["labelled_at"],
            np.asarray(r["t"], dtype=np.float64),
            np.column_stack([r["acc_x"], r["acc_y"], r["acc_z"]]).astype(np.float64)
            if r["t"]
            else np.zeros((0, 3)),
        )
        for r in rows
    ]


def to_json(e: Example) -> str:
    return json.dumps(
        {
            "example_id": e.example_id,
            "alert_id": e.alert_id,
            "order_id": e.order_id,
            "site_id": e.site_id,
            "resident_id": e.resident_id,
            "device_id": e.device_id,
            "placement": e.placement,
            "model_placement": e.model_placement,
            "model_id": e.model_id,
            "impact_at": e.impact_at.isoformat(),
            "labelled_by": e.labelled_by,
            "labelled_at": e.labelled_at.isoformat(),
            "t": [round(float(v), 4) for v in e.times],
            "xyz": [[round(float(v), 3) for v in row] for row in e.samples],
        }
    )


def summary(examples: Sequence[Example]) -> dict[str, Any]:
    """What a model card says of the examples it was trained with."""
    return {
        "label": "false_alarm (orders resolved as a false alarm)",
        "count": len(examples),
        "example_ids": [e.example_id for e in examples],
        "residents": len({e.subject for e in examples}),
        "devices": sorted({e.device_id for e in examples}),
        "judged_by": dict(Counter(e.model_id for e in examples)),
        "labelled": [
            min(e.labelled_at for e in examples).isoformat(),
            max(e.labelled_at for e in examples).isoformat(),
        ]
        if examples
        else [],
        "used_as": "hard negatives in every training fold and in the final fit; never tested",
    }


@dataclass(frozen=True, slots=True)
class Figure:
    """One evaluation scheme's recording-level counts."""

    scheme: str
    falls: int
    caught: int
    adl: int = 0
    false_alarms: int = 0

    def sensitivity(self) -> str:
        return f"{self.caught / self.falls:.1%} ({self.caught}/{self.falls})" if self.falls else "-"

    def specificity(self) -> str:
        ok = self.adl - self.false_alarms
        return f"{ok / self.adl:.1%} ({ok}/{self.adl})" if self.adl else "-"


def figures_of_card(card: Mapping[str, Any]) -> tuple[Figure, ...]:
    evaluation = card.get("evaluation") or {}
    return tuple(
        Figure(
            str(r["scheme"]),
            int(r["falls"]),
            int(r["caught"]),
            int(r.get("adl", 0)),
            int(r.get("false_alarms", 0)),
        )
        for r in evaluation.get("rows", ())
    )


def figures_of_rows(rows: Sequence[falls.Row]) -> tuple[Figure, ...]:
    return tuple(Figure(r.scheme, r.falls, r.caught, r.adl, r.false_alarms) for r in rows)


@dataclass(frozen=True, slots=True)
class Decision:
    adopt: bool
    lines: tuple[str, ...]  # per scheme: both models' sensitivity and specificity


def adoption(current: Sequence[Figure], candidate: Sequence[Figure]) -> Decision:
    """Never adopt a model that catches fewer falls: in every scheme the current model was
    evaluated on, the candidate's sensitivity must be at least the current one (compared
    exactly, as fractions); a scheme the candidate was not evaluated on, or a current model
    with no evaluated figures, refuses too. Specificity is shown, not judged."""
    if not current:
        return Decision(
            False,
            (
                "the current model's card has no evaluated figures to compare with "
                "(python -m alerts.evaluate.falls --write-doc)",
            ),
        )
    by_scheme = {f.scheme: f for f in candidate}
    adopt = True
    lines: list[str] = []
    for cur in current:
        new = by_scheme.get(cur.scheme)
        if new is None or new.falls == 0 or cur.falls == 0:
            adopt = False
            lines.append(f"{cur.scheme}: not evaluated for both models: refused")
            continue
        fewer = new.caught * cur.falls < cur.caught * new.falls
        adopt = adopt and not fewer
        lines.append(
            f"{cur.scheme}: sensitivity current {cur.sensitivity()}, candidate "
            f"{new.sensitivity()}; specificity current {cur.specificity()}, candidate "
            f"{new.specificity()}" + ("  <- FEWER FALLS CAUGHT" if fewer else "")
        )
    return Decision(adopt, tuple(lines))


def retrain_placement(placement: str, examples: Sequence[Example], root: Path) -> int:
    """0 if a new version was written, 1 if refused (nothing written)."""
    path = root / placement / CARD_FILE
    card: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    current = model_id(card) if card else "(none)"
    started = time.monotonic()
    recs = [e.rec() for e in examples]
    print(
        f"{placement}: re-checking {current} against a candidate with {len(recs)} carer "
        "examples on the reference data ...",
        flush=True,
    )
    rows = [
        r
        for r in falls.cross_validate([placement], extra={placement: recs})
        if r.placement == placement
    ]
    decision = adoption(figures_of_card(card), figures_of_rows(rows))
    for line in decision.lines:
        print(f"  {line}")
    if not decision.adopt:
        print(
            f"{placement}: REFUSED: the candidate would catch fewer falls; nothing written, "
            f"{current} stays"
        )
        return 1
    stamp = (
        f"`{COMMAND}` on {datetime.now(UTC):%Y-%m-%d} ({time.monotonic() - started:.0f} s); "
        "recording level through the live path"
    )
    written = train.write(
        placement,
        root,
        extra=recs,
        evaluation=falls.evaluation(rows, stamp),
        carer_examples=summary(examples),
    )
    print(
        f"{placement}: adopted {written['model_id']} (replaces {current}); the alerts worker "
        "loads it at its next start"
    )
    return 0


def retrain(
    database_url: str, *, placements: Sequence[str], root: Path, export_to: Path | None = None
) -> int:
    """The command: 0 if every placement with examples was retrained (or had none), 1 if a
    candidate was refused."""
    examples = export(database_url)
    if export_to is not None:
        export_to.write_text("".join(to_json(e) + "\n" for e in examples))
        print(f"wrote {len(examples)} examples to {export_to}")
    usable = [e for e in examples if e.duration_s >= F.WINDOW_S]
    print(
        f"{len(examples)} carer examples in the database, {len(usable)} with at least "
        f"{F.WINDOW_S:.0f} s of samples"
    )
    status = 0
    for placement in placements:
        mine = [e for e in usable if e.model_placement == placement]
        if not mine:
            print(f"{placement}: no carer examples; model kept")
            continue
        status = max(status, retrain_placement(placement, mine, root))
    return status
