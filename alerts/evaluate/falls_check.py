"""The "did you fall?" check on the cross-validation replays: how many activity recordings
page staff with and without it, how many ask the wearer, and how soon falls page.

    python -m alerts.evaluate.falls --dump FILE       # the CV, keeping every firing window
    python -m alerts.evaluate.falls bands FILE [--write-doc]

The dump holds, per tested recording and scheme, every window that fired (confidence, impact
time, whether the wearer lay still after it). ``bands`` replays the check
(``alerts.detection.fall.live.checked``, the worker's rules) on it for a range of certain bands and for
the shipped ones (``alerts.detection.fall.check.CERTAIN``). Falls count as paged when the wearer does
not answer (a fallen person); activities as paged only when they would be even though the
wearer answers "I'm OK" (a certain window, or lying still first).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from alerts.detection.fall import check as C
from alerts.detection.fall import live

BEGIN, END = "<!-- falls-check:begin -->", "<!-- falls-check:end -->"
SWEEP = (0.0, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 1.01)  # 0: no check, 1.01: always ask


@dataclass(frozen=True, slots=True)
class Dumped:
    placement: str  # the placement tested
    model_placement: str
    scheme: str
    recording: str
    activity: str
    is_fall: bool
    duration_s: float
    scored: tuple[live.Scored, ...]


def dump_line(d: Dumped) -> str:
    return json.dumps({**asdict(d), "scored": [asdict(s) for s in d.scored]})


def read_dump(path: Path) -> list[Dumped]:
    out = []
    for line in path.read_text().splitlines():
        raw = json.loads(line)
        raw["scored"] = tuple(live.Scored(**s) for s in raw["scored"])
        out.append(Dumped(**raw))
    return out


@dataclass(frozen=True, slots=True)
class BandRow:
    placement: str
    scheme: str
    certain: float
    falls: int
    caught: int  # paged if nobody answers: unchanged by the check
    at_once: int  # falls paged at once (the rest wait for the window or lying still)
    slowest_page_s: float  # impact to page, the slowest caught fall (nobody answering)
    adl: int
    adl_hours: float
    pages_without: int  # activity recordings that page with no check (any window fired)
    pages_with: int  # ... that page although the wearer answers "I'm OK"
    checks: int  # questions put to wearers during activities


def band_row(rows: Sequence[Dumped], certain: float) -> BandRow:
    falls = [r for r in rows if r.is_fall]
    adl = [r for r in rows if not r.is_fall]
    fc = [(r, live.checked(r.scored, certain=certain)) for r in falls if r.scored]
    ac = [live.checked(r.scored, certain=certain) for r in adl if r.scored]
    slowest = max(((c.page_t or 0.0) - r.scored[0].impact_t for r, c in fc), default=float("nan"))
    return BandRow(
        rows[0].placement,
        rows[0].scheme,
        certain,
        len(falls),
        len(fc),
        sum(c.paged_at_once for _, c in fc),
        slowest,
        len(adl),
        sum(r.duration_s for r in adl) / 3600.0,
        len(ac),
        sum(c.paged_if_answered for c in ac),
        sum(c.checks for c in ac),
    )


def by_scheme(dumped: Iterable[Dumped]) -> dict[tuple[str, str], list[Dumped]]:
    out: dict[tuple[str, str], list[Dumped]] = {}
    for d in dumped:
        out.setdefault((d.placement, d.scheme), []).append(d)
    return out


def shipped(rows: Sequence[Dumped]) -> float:
    return C.CERTAIN.get(rows[0].model_placement, 1.0)


def _band(c: float) -> str:
    return "no check" if c <= 0 else "always ask" if c > 1 else f"{c:g}"


def sweep_table(groups: dict[tuple[str, str], list[Dumped]]) -> str:
    lines = [
        "| placement | scheme | certain from | falls paged at once | ADL recordings paged "
        "(wearer answers) | checks per ADL recording |",
        "|---|---|---|---|---|---|",
    ]
    for (p, scheme), rows in groups.items():
        for c in SWEEP:
            b = band_row(rows, c)
            lines.append(
                f"| {p} | {scheme} | {_band(c)} | {b.at_once}/{b.caught} | "
                f"{b.pages_with}/{b.adl} | {b.checks / max(1, b.adl):.3f} |"
            )
    return "\n".join(lines)


def figures_table(groups: dict[tuple[str, str], list[Dumped]]) -> str:
    lines = [
        "| placement | scheme | certain band | falls paged (nobody answers) | of them at once | "
        "slowest impact to page | ADL pages without check | ADL pages with check (wearer "
        "answers) | checks on ADL recordings | checks per hour of activity |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (p, scheme), rows in groups.items():
        b = band_row(rows, shipped(rows))
        lines.append(
            f"| {p} | {scheme} | >= {b.certain:g} | {b.caught}/{b.falls} | {b.at_once} | "
            f"{b.slowest_page_s:.1f} s | {b.pages_without}/{b.adl} "
            f"({b.pages_without / max(1, b.adl):.2%}) | {b.pages_with}/{b.adl} "
            f"({b.pages_with / max(1, b.adl):.2%}) | {b.checks} | "
            f"{b.checks / b.adl_hours if b.adl_hours else float('nan'):.2f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str]) -> None:
    from alerts.evaluate.falls import DOC, write_doc

    parser = argparse.ArgumentParser(prog="python -m alerts.evaluate.falls bands")
    parser.add_argument("dump", type=Path)
    parser.add_argument("--write-doc", action="store_true")
    args = parser.parse_args(argv)
    groups = by_scheme(read_dump(args.dump))
    sweep, figures = sweep_table(groups), figures_table(groups)
    out = "\n".join(
        [
            f"`python -m alerts.evaluate.falls bands` on the dump of the run above; "
            f"window {C.DETECT_LAG_S} + 30 s, lying still = {C.STILL_S:g} s within "
            f"{C.STILL_RANGE_G:g} g",
            "",
            figures,
            "",
            "<details><summary>band sweep</summary>",
            "",
            sweep,
            "",
            "</details>",
        ]
    )
    print(out)
    if args.write_doc:
        write_doc(out, DOC, begin=BEGIN, end=END)
