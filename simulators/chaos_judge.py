"""Judge a chaos run: pure functions of what was played (ground truth, faults done, attacks'
observations) and what the public API and ingest's metrics showed afterwards.

An incident passes when an order for it was offered to a responder within ``offer_within_s``
and only one order was opened for it. The latency is from the device's message (the SOS
press, the smoke report, the wristband's fall verdict) to the order's ``offered_at``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from simulators.api import Alert, Order
from simulators.attacks import ACCEPTED, DEAD_LETTER, REFUSED, Outcome
from simulators.chaos_plan import AttackWhat, Chaos
from simulators.faults import Done
from simulators.incidents import VERDICT_AFTER_S
from simulators.timeline import Truth

# What residents' incidents raise; device health is its own group; anything else an alert
# kind the backend raises about itself (a worker down, a queue lagging): "technical".
RESIDENT_KINDS: Final = frozenset(
    {"sos", "fall", "smoke", "inactivity", "wandering", "bed_exit", "no_vital_signs"}
)
DEVICE_KINDS: Final = frozenset({"device_offline", "low_battery", "device_stale"})
BEFORE_S: Final = 1.0  # an alert's event time may lie this far before the incident ...
AFTER_S: Final = 3.0  # ... and this far after it becomes detectable
FAULT_ALERT_WINDOW_S: Final = 180.0  # technical alerts raised this long after a fault are its
OLD_BEFORE: Final = datetime(2010, 1, 1, tzinfo=UTC)


def kind_group(kind: str) -> str:
    if kind in RESIDENT_KINDS or kind.startswith("vitals"):
        return "resident"
    return "device" if kind in DEVICE_KINDS else "technical"


def sent_at(t: Truth) -> float:
    """Wall time of the device message the incident is about."""
    return t.wall_at + (VERDICT_AFTER_S if t.what == "fall" else 0.0)


def matches(t: Truth, a: Alert, *, shared: frozenset[str] = frozenset()) -> bool:
    if a.site_id != t.site_id or a.kind not in t.expect_kind:
        return False
    named = t.resident and a.resident_name and t.device_id not in shared
    if named and a.resident_name != t.resident:
        return False
    when = a.occurred_at.timestamp()
    return t.sim_start - BEFORE_S <= when <= t.sim_at + VERDICT_AFTER_S + AFTER_S


@dataclass(slots=True)
class Verdict:
    truth: Truth
    alerts: list[Alert] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    offer_s: float | None = None
    problems: list[str] = field(default_factory=list)
    witness_of: AttackWhat | None = None


def _owners(
    truths: Sequence[Truth], alerts: Sequence[Alert], shared: frozenset[str]
) -> dict[int, int]:
    """Each alert to the one incident it is about: of those it matches, the one whose device
    message its event time is closest to (two SOS of one site a second apart stay apart)."""
    out: dict[int, int] = {}
    for a in alerts:
        found = [t for t in truths if matches(t, a, shared=shared)]
        if found:
            when = a.occurred_at.timestamp()
            out[a.alert_id] = min(found, key=lambda t: abs(when - _event_time(t))).id
    return out


def _event_time(t: Truth) -> float:
    return t.sim_at + VERDICT_AFTER_S if t.what == "fall" else t.sim_start


def p99(values: Sequence[float]) -> float | None:
    """Nearest-rank 99th percentile (the maximum below 100 values)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


def incidents(
    truths: Sequence[Truth],
    alerts: Sequence[Alert],
    orders: Mapping[int, Order],
    *,
    chaos: Chaos,
    shared: frozenset[str],
    witnesses: Mapping[int, AttackWhat],
) -> list[Verdict]:
    out: list[Verdict] = []
    owner = _owners(truths, alerts, shared)
    for t in truths:
        v = Verdict(t, witness_of=witnesses.get(t.id))
        v.alerts = [a for a in alerts if owner.get(a.alert_id) == t.id]
        ids = sorted({a.order_id for a in v.alerts if a.order_id is not None})
        v.orders = [orders[i] for i in ids if i in orders]
        offers = [o.offered_at for o in v.orders if o.offered_at is not None]
        if offers:
            v.offer_s = min(offers).timestamp() - sent_at(t)
        if not v.alerts:
            v.problems.append("no alert")
        elif not ids:
            v.problems.append(f"alert {v.alerts[0].alert_id} opened no order")
        elif v.offer_s is None:
            v.problems.append(f"order {ids[0]} never offered to a responder")
        elif v.offer_s > chaos.offer_within_s:
            v.problems.append(f"offered only after {v.offer_s:.1f} s")
        if len(ids) > 1:
            v.problems.append(f"doubled: {len(ids)} orders ({', '.join(map(str, ids))})")
        out.append(v)
    return out


def _int(x: object) -> int:
    return x if isinstance(x, int) else 0


def _rejected(delta: Mapping[str, float]) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in sorted(delta.items()) if v) or "none"


def payload_outcome(
    o: Outcome,
    *,
    rejected: Mapping[str, float] | None,
    late: float | None,
    ingest_restarts: int,
    alerts: Sequence[Alert],
    flood_sos: Verdict | None,
    timeline_status: int | None,
) -> Outcome:
    """What became of a payload attack: from ingest's metrics over its window (``None``: no
    metrics could be read), ingest restarts no fault explains, and the API."""
    seen = "not observed (no ingest metrics)" if rejected is None else None
    delta = dict(rejected or {})
    o.facts |= {"rejected": delta, "ingest_restarts": ingest_restarts}
    if ingest_restarts:
        o.verdict, o.harmful = ACCEPTED, True
        o.detail = f"ingest restarted {ingest_restarts}x after it; dead letters: {_rejected(delta)}"
        return o
    match o.attack:
        case AttackWhat.POISON:
            n = _int(o.facts.get("sent"))
            got = sum(delta.values())
            o.verdict = seen or (DEAD_LETTER if got >= n else "partly recorded")
            o.harmful = seen is None and got < n
            o.detail = f"{n} payloads, ingest alive; dead letters: {_rejected(delta)}"
        case AttackWhat.FLOOD:
            n = _int(o.facts.get("sent"))
            limited = delta.get("rate_limited", 0)
            offered = flood_sos is not None and not flood_sos.problems
            sos = "its SOS " + (
                f"offered after {flood_sos.offer_s:.1f} s"
                if offered and flood_sos and flood_sos.offer_s is not None
                else "NOT offered"
            )
            o.verdict = "rate-limited, SOS kept" if offered else ACCEPTED
            o.harmful = not offered
            o.detail = f"{n} packs in 1.5 s, {limited:g} rate-limited; {sos}"
        case AttackWhat.IMPLAUSIBLE:
            bad = delta.get("bad_value", 0)
            broken = timeline_status is not None and timeline_status >= 500
            o.verdict = ACCEPTED if broken else (seen or (DEAD_LETTER if bad else ACCEPTED))
            o.harmful = broken or (seen is None and not bad)
            o.detail = (
                f"hr -1e308, spo2 1000, battery 1e308: bad_value {bad:g}; the resident's "
                f"timeline answers {timeline_status or 'nothing'}"
            )
        case AttackWhat.OLD_SOS:
            old = [a for a in alerts if a.kind == "sos" and a.occurred_at < OLD_BEFORE]
            sent_out = [a for a in old if a.order_state not in (None, "queued", "cancelled")]
            if sent_out:
                o.verdict, o.harmful = ACCEPTED, True
                first = sent_out[0]
                o.detail = (
                    f"dispatched as a new emergency: alert {first.alert_id}, "
                    f"order {first.order_state}"
                )
            elif old:
                o.verdict = "stored, not dispatched"
                o.detail = f"alert {old[0].alert_id} dated {old[0].occurred_at:%Y-%m-%d}, no offer"
            elif late:
                o.verdict, o.detail = "stored, flagged late", f"late {late:g}"
            elif delta:
                o.verdict, o.detail = DEAD_LETTER, f"dead letters: {_rejected(delta)}"
            else:
                o.verdict = seen or "not observed"
                o.detail = "no alert, no late mark, no dead letter seen"
        case _:
            pass
    return o


def fault_lines(
    done: Sequence[Done], alerts: Sequence[Alert], chaos: Chaos
) -> tuple[list[str], bool]:
    lines: list[str] = []
    ok = True
    technical = [a for a in alerts if kind_group(a.kind) == "technical"]
    for d in sorted(done, key=lambda d: d.at):
        raised = [
            a for a in technical if d.at <= a.raised_at.timestamp() <= d.at + FAULT_ALERT_WINDOW_S
        ]
        tech = ", ".join(f"{a.colour} {a.kind}" for a in raised) or "none"
        if d.error:
            ok = False
            lines.append(f"  FAULT FAILED {d.what}: {d.error}")
        elif d.down_s is None:
            ok = False
            lines.append(
                f"  NOT BACK {d.what} {d.target}: not back within {chaos.restart_within_s:g} s"
                f"; technical alerts: {tech}"
            )
        else:
            lines.append(
                f"  fault {d.what:<16} {d.target}: back after {d.down_s:.1f} s as {d.back_as}"
                f"; technical alerts: {tech}"
            )
    return lines, ok


def scorecard(
    name: str,
    verdicts: Sequence[Verdict],
    outcomes: Sequence[Outcome],
    done: Sequence[Done],
    alerts: Sequence[Alert],
    *,
    chaos: Chaos,
    explained: set[int],
    api_outages: Sequence[tuple[float, float]],
) -> tuple[list[str], bool]:
    lines = [
        f"chaos {name}: {len(verdicts)} incidents, {len(done)} faults, {len(outcomes)} attacks"
    ]
    for v in verdicts:
        t = v.truth
        who = f"{t.resident or '-'} ({t.site_id}, {t.device_id})"
        tag = f" [witness of {v.witness_of}]" if v.witness_of else ""
        label = f"#{t.id} {t.what:<6} {who}{tag}"
        if v.problems:
            lines.append(f"  MISSED {label}: {'; '.join(v.problems)}")
        else:
            o = v.orders[0]
            lines.append(f"  PASS {label}: order {o.order_id} offered after {v.offer_s:.2f} s")
    flines, faults_ok = fault_lines(done, alerts, chaos)
    lines += flines
    for out in outcomes:
        mark = "ATTACK" if out.harmful else "attack"
        lines.append(f"  {mark} {out.attack:<12} {out.verdict}: {out.detail}")
    for start, end in api_outages:
        lines.append(f"  API unreachable for {end - start:.1f} s (the judge retried)")
    groups: dict[str, dict[str, int]] = {}
    for a in alerts:
        if a.alert_id in explained:
            continue
        g = groups.setdefault(kind_group(a.kind), {})
        g[a.kind] = g.get(a.kind, 0) + 1
    technical = sum(groups.get("technical", {}).values())
    for group, kinds in sorted(groups.items()):
        seen = ", ".join(f"{k} x{n}" for k, n in sorted(kinds.items()))
        lines.append(f"  other alerts ({group}): {seen}")
    latencies = [v.offer_s for v in verdicts if v.offer_s is not None]
    worst = p99(latencies)
    missed = sum(1 for v in verdicts if v.problems)
    doubled = sum(1 for v in verdicts if len(v.orders) > 1)
    harmful = [o for o in outcomes if o.harmful]
    slow = worst is not None and worst > chaos.offer_p99_s
    ok = not missed and not harmful and faults_ok and not slow and bool(verdicts)
    p = "-" if worst is None else f"{worst:.2f} s"
    lines.append(
        f"result: {'PASS' if ok else 'FAIL'}: {len(verdicts) - missed}/{len(verdicts)} incidents"
        f" offered, {doubled} doubled, event->offer p99 {p} (max {chaos.offer_p99_s:g} s), "
        f"{technical} technical alerts for {len(done)} faults, "
        f"{len(harmful)} of {len(outcomes)} attacks got through, "
        f"{'all faults recovered' if faults_ok else 'a fault did not recover'}"
    )
    return lines, ok


__all__ = ["ACCEPTED", "DEAD_LETTER", "REFUSED", "incidents", "payload_outcome", "scorecard"]
