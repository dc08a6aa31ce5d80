"""Judge a run: match the ground truth to the alerts and orders read through the public API,
and render the scorecard. Pure functions of their inputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from simulators.api import Alert, Order
from simulators.timeline import Truth

MATCH_SLACK_S = 120.0  # simulated seconds around an incident an alert's event time may lie


@dataclass(slots=True)
class Verdict:
    truth: Truth
    alert: Alert | None = None
    also: list[Alert] = field(default_factory=list)  # more expected alerts of the incident
    delay_s: float | None = None  # wall seconds from detectable to raised
    accepted: Order | None = None
    accept_error: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


def matches(truth: Truth, alert: Alert, *, speed: float) -> bool:
    if alert.site_id != truth.site_id or alert.kind not in truth.expect_kind:
        return False
    if truth.resident and alert.resident_name and alert.resident_name != truth.resident:
        return False
    when = alert.occurred_at.timestamp()
    latest = truth.sim_at + truth.max_delay_s * speed + MATCH_SLACK_S
    return truth.sim_start - MATCH_SLACK_S <= when <= latest


def find_alert(truth: Truth, alerts: list[Alert], *, speed: float) -> Alert | None:
    found = [a for a in alerts if matches(truth, a, speed=speed)]
    return min(found, key=lambda a: a.raised_at) if found else None


def settled(truth: Truth, alerts: list[Alert], *, speed: float, wall_now: float) -> bool:
    """Nothing more to wait for: the alert is in, or its deadline has passed."""
    if truth.wall_at == 0.0:
        return False
    if truth.expect_colour is not None and find_alert(truth, alerts, speed=speed) is not None:
        return True
    return wall_now > truth.wall_at + truth.max_delay_s


def judge(
    truths: list[Truth],
    alerts: list[Alert],
    *,
    speed: float,
    accepted: dict[int, Order],
    accept_errors: dict[int, str],
) -> tuple[list[Verdict], list[Alert]]:
    """Verdicts per incident and the false alarms (alerts no expected incident explains)."""
    verdicts: list[Verdict] = []
    explained: set[int] = set()
    for t in truths:
        v = Verdict(t)
        alert = find_alert(t, alerts, speed=speed)
        if t.expect_colour is None:
            verdicts.append(v)  # a control: any alert it draws stays a false alarm
            continue
        if alert is None:
            kinds = "/".join(t.expect_kind)
            v.problems.append(f"no {t.expect_colour} {kinds} alert within {t.max_delay_s:g} s")
            verdicts.append(v)
            continue
        explained.add(alert.alert_id)
        v.alert = alert
        v.delay_s = alert.raised_at.timestamp() - t.wall_at
        if alert.colour != t.expect_colour:
            v.problems.append(f"colour {alert.colour}, expected {t.expect_colour}")
        if v.delay_s > t.max_delay_s:
            v.problems.append(f"raised after {v.delay_s:.1f} s > {t.max_delay_s:g} s")
        if t.accept:
            order = accepted.get(t.id)
            if order is None:
                v.problems.append(accept_errors.get(t.id, "no order was offered to accept"))
            elif order.accepted_at is None or order.accepted_at > order.accept_deadline:
                v.problems.append("order not accepted by its deadline")
            v.accepted = order
        verdicts.append(v)
    # The same situation seen by another expected detector (a night wanderer's door and the
    # bed left behind): part of the incident, not a false alarm. After every incident has its
    # own first alert, so one incident's extra cannot take another's.
    for v in verdicts:
        if v.alert is not None:
            v.also = [
                a
                for a in alerts
                if a.alert_id not in explained and matches(v.truth, a, speed=speed)
            ]
            explained.update(a.alert_id for a in v.also)
    # Another detector's alert folded into an incident already explained (a wristband's own fall
    # report and the accelerometer model on the same fall) corroborates it; it is not a false alarm.
    incidents = {a.incident_id for a in alerts if a.alert_id in explained and a.incident_id}
    false_alarms = [
        a for a in alerts if a.alert_id not in explained and a.incident_id not in incidents
    ]
    return verdicts, false_alarms


def _who(t: Truth) -> str:
    return f"{t.resident or '-'} ({t.site_id}, {t.device_id})"


def _at(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def scorecard(
    name: str,
    verdicts: list[Verdict],
    false_alarms: list[Alert],
    *,
    max_false: int,
    tolerate: frozenset[str] = frozenset(),
) -> tuple[list[str], bool]:
    lines = [f"scenario {name}: {len(verdicts)} incidents"]
    for v in verdicts:
        t = v.truth
        label = f"#{t.id} {t.what:<15} {_who(t)}"
        if t.expect_colour is None:
            lines.append(f"  ctrl {label}: no alert expected")
            continue
        if v.passed and v.alert is not None:
            order = ""
            if v.accepted is not None and v.accepted.accepted_at is not None:
                margin = (v.accepted.accept_deadline - v.accepted.accepted_at).total_seconds()
                order = f"; order {v.accepted.order_id} accepted {margin:.0f} s before deadline"
            elif v.alert.order_id is not None:
                order = f"; order {v.alert.order_id} {v.alert.order_state}"
            lines.append(
                f"  PASS {label}: {v.alert.colour} {v.alert.kind} after {v.delay_s:.1f} s"
                f" (max {t.max_delay_s:g} s){order}"
            )
            lines.extend(
                f"       also alert {a.alert_id}: {a.colour} {a.kind}: {a.explanation}"
                for a in v.also
            )
        else:
            needs = f" [needs detector: {t.needs}]" if t.needs else ""
            lines.append(f"  MISSED {label} at {_at(t.sim_at)}: {'; '.join(v.problems)}{needs}")
    tolerated = [a for a in false_alarms if a.kind in tolerate]
    false_alarms = [a for a in false_alarms if a.kind not in tolerate]
    for a in tolerated:
        lines.append(
            f"  tolerated alert {a.alert_id}: {a.colour} {a.kind} at {a.site_id}: {a.explanation}"
        )
    for a in false_alarms:
        lines.append(
            f"  FALSE ALARM alert {a.alert_id}: {a.colour} {a.kind} at {a.site_id} "
            f"({a.resident_name or '-'}): {a.explanation}"
        )
    missed = sum(1 for v in verdicts if not v.passed)
    ok = missed == 0 and len(false_alarms) <= max_false
    lines.append(
        f"result: {'PASS' if ok else 'FAIL'}: {len(verdicts) - missed}/{len(verdicts)} incidents "
        f"ok, {missed} missed, {len(false_alarms)} false alarms (allowed {max_false})"
    )
    return lines, ok
