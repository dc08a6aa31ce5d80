"""The plan of a chaos run (docs/simulators.md, "Chaos conformance"): a living population's
scenario plus a ``[chaos]`` table of faults, hostile attacks and incidents drawn at random.

Pure and seeded: the same file and seed give the same moments, residents and attackers.
Fault moments are drawn inside evenly spaced slots (so two faults never overlap), attacks in
slots of their own between them, and every attack has a *witness*: an SOS from another
resident while the attack is under way, which must still reach a responder.
"""

from __future__ import annotations

import random
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Final

import msgspec

from devices.domain import Colour, DeviceKind
from simulators.population import Resident
from simulators.scenario import BUNDLED, Incident, Scenario, What

FOLD_GAP_S: Final = 150.0  # the backend folds SOS/falls per resident for 2 min: keep apart
SMOKE_GAP_S: Final = 660.0  # ... and smoke per site for 10 min
WITNESS_AFTER_S: Final = 2.0  # the witness SOS, seconds after its attack starts
FLOOD_SOS_AFTER_S: Final = 1.0  # the flooding device's own SOS: 2/3 into its flood


class FaultWhat(StrEnum):
    KILL_INGEST = "kill_ingest"  # kill -9 of the ingest process
    KILL_ALERTS = "kill_alerts"  # kill -9 of one alerts worker (of those running)
    KILL_INGEST_LANE = "kill_ingest_lane"  # kill -9 of python -m ingest lane
    KILL_ALERTS_LANE = "kill_alerts_lane"  # kill -9 of python -m alerts lane (the main
    # workers then wait ELDERCARE_ALERTS_LANE_HOLD_S for each SOS until its beat is stale)
    KILL_API = "kill_api"  # kill -9 of the API process
    RESTART_BROKER = "restart_broker"  # Mosquitto stopped and started again
    RESTART_DATABASE = "restart_database"  # PostgreSQL stopped and started again (fast)


class AttackWhat(StrEnum):
    POISON = "poison"  # deeply nested JSON, a huge payload, odd bytes
    FLOOD = "flood"  # one device floods telemetry, with its own SOS in the middle
    IMPLAUSIBLE = "implausible"  # hr -1e308, spo2 1000, temperature 1e308
    OLD_SOS = "old_sos"  # an SOS stamped in 2005
    SUBSCRIBE = "subscribe"  # $share/ingest/... and eldercare/v1/# from device accounts
    CLIENT_ID = "client_id"  # another device's and the ingest worker's client id
    BACKLOG = "backlog"  # large messages left queued on the broker


class Chaos(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    seed: int = 18
    faults: list[FaultWhat] = msgspec.field(default_factory=lambda: list(FaultWhat))
    attacks: list[AttackWhat] = msgspec.field(default_factory=lambda: list(AttackWhat))
    lead_s: float = 8.0  # quiet start: devices settle before the first fault or attack
    tail_s: float = 8.0  # nothing new in the last seconds (the last incident must be judged)
    incident_every_s: float = 10.0  # mean gap between injected incidents (SOS, fall, smoke)
    incident_kinds: list[What] = msgspec.field(
        default_factory=lambda: [What.SOS, What.FALL, What.SMOKE]
    )
    offer_p99_s: float = 5.0  # sensor event -> order offered, p99 across incidents
    offer_within_s: float = 60.0  # an incident not offered by then is missed
    restart_within_s: float = 60.0  # a killed component must be back by then
    flood_messages: int = 1500  # in 1.5 s: past the per-device burst (500) before its SOS
    backlog_messages: int = 40
    backlog_bytes: int = 512 * 1024
    attackers: list[str] = msgspec.field(default_factory=list)  # device ids (not played)


@dataclass(frozen=True, slots=True)
class FaultAt:
    at_s: float  # seconds after the start of play (wall = simulated at speed 1)
    what: FaultWhat


@dataclass(frozen=True, slots=True)
class AttackAt:
    at_s: float
    what: AttackWhat


@dataclass(frozen=True, slots=True)
class Plan:
    scenario: Scenario  # with the drawn incidents added
    chaos: Chaos
    faults: list[FaultAt]
    attacks: list[AttackAt]
    witnesses: dict[int, AttackWhat]  # incident index (1-based) -> the attack it witnesses
    flood_sos: int | None  # incident index of the flooding device's own SOS


CHAOS_BUNDLED: Final = BUNDLED / "chaos"  # apart: plain scenario files have no [chaos] table


def load(path: Path) -> tuple[Scenario, Chaos]:
    """Read a chaos scenario; a bare name means a bundled one (``chaos-short``)."""
    if not path.exists() and (CHAOS_BUNDLED / f"{path}.toml").exists():
        path = CHAOS_BUNDLED / f"{path}.toml"
    with path.open("rb") as fh:
        raw = tomllib.load(fh)
    chaos = msgspec.convert(raw.pop("chaos", {}), type=Chaos)
    scenario = msgspec.convert(raw, type=Scenario)
    if scenario.speed != 1.0 or scenario.start_local is not None:
        raise ValueError(f"{path}: a chaos run plays in real time (speed 1, no start_local)")
    return scenario, chaos


def schedule(
    duration_s: float, chaos: Chaos, rng: random.Random
) -> tuple[list[FaultAt], list[AttackAt]]:
    """Faults and attacks at random moments: the play time between lead and tail is cut into
    one slot per fault or attack, alternating, each placed at random inside its slot."""
    kinds: list[FaultWhat | AttackWhat] = []
    faults, attacks = list(chaos.faults), list(chaos.attacks)
    rng.shuffle(faults)
    rng.shuffle(attacks)
    while faults or attacks:
        if faults:
            kinds.append(faults.pop())
        if attacks:
            kinds.append(attacks.pop())
    span = duration_s - chaos.lead_s - chaos.tail_s
    if not kinds:
        return [], []
    if span <= 0:
        raise ValueError("the run is too short for its faults and attacks")
    slot = span / len(kinds)
    faults_at: list[FaultAt] = []
    attacks_at: list[AttackAt] = []
    for i, k in enumerate(kinds):
        at = round(chaos.lead_s + i * slot + rng.uniform(0.1, 0.6) * slot, 1)
        if isinstance(k, FaultWhat):
            faults_at.append(FaultAt(at, k))
        else:
            attacks_at.append(AttackAt(at, k))
    return faults_at, attacks_at


class _Spacing:
    """Who may have an incident when: the backend folds repeats per resident and room (SOS,
    falls) and per site (smoke), so incidents of one are kept apart."""

    def __init__(self) -> None:
        self.last: dict[tuple[str, str], float] = {}

    def free(self, key: tuple[str, str], at: float, gap: float) -> bool:
        return at - self.last.get(key, -1e9) >= gap

    def take(self, key: tuple[str, str], at: float) -> None:
        self.last[key] = at


def _sos_device(r: Resident) -> str | None:
    dev = r.device(DeviceKind.SOS_BUTTON) or r.device(DeviceKind.WRISTBAND)
    return dev.device_id if dev else None


def _person(r: Resident) -> tuple[str, str]:
    return (r.site_id, f"room:{r.room}" if r.room else f"who:{r.name}")


def _incident(what: What, at: float, r: Resident, device: str | None = None) -> Incident:
    kinds = {What.SOS: ["sos"], What.FALL: ["fall"], What.SMOKE: ["smoke"]}[what]
    return Incident(
        at_s=round(at, 1),
        what=what,
        resident=None if what is What.SMOKE else r.name,
        device=device,
        expect_colour=Colour.RED,
        expect_kind=kinds,
        max_delay_s=60.0,
        needs=what.value,
    )


def _pick(
    what: What, at: float, residents: Sequence[Resident], gaps: _Spacing, rng: random.Random
) -> Incident | None:
    order = list(residents)
    rng.shuffle(order)
    for r in order:
        person = _person(r)
        if what is What.SMOKE:
            smoke = r.device(DeviceKind.SMOKE)
            site = (r.site_id, "smoke")
            if smoke and gaps.free(site, at, SMOKE_GAP_S):
                gaps.take(site, at)
                return _incident(what, at, r, smoke.device_id)
            continue
        if what is What.FALL and r.device(DeviceKind.WRISTBAND) is None:
            continue
        if what is What.SOS and _sos_device(r) is None:
            continue
        if gaps.free(person, at, FOLD_GAP_S):
            gaps.take(person, at)
            return _incident(what, at, r)
    return None


def plan(scenario: Scenario, chaos: Chaos, residents: Sequence[Resident]) -> Plan:
    """Draw the faults', attacks' and incidents' moments and who is involved."""
    rng = random.Random(chaos.seed)
    faults, attacks = schedule(scenario.duration_s, chaos, rng)
    gaps = _Spacing()
    incidents: list[tuple[float, Incident, AttackWhat | None, bool]] = []
    for a in attacks:  # witnesses (and the flood's own SOS) first: they must find a resident
        if a.what is AttackWhat.FLOOD:
            at = a.at_s + FLOOD_SOS_AFTER_S
            for r in residents:
                button = r.device(DeviceKind.SOS_BUTTON)
                if button is not None and gaps.free(_person(r), at, FOLD_GAP_S):
                    gaps.take(_person(r), at)
                    inc = _incident(What.SOS, at, r, button.device_id)
                    incidents.append((inc.at_s, inc, None, True))
                    break
        witness = _pick(What.SOS, a.at_s + WITNESS_AFTER_S, residents, gaps, rng)
        if witness is not None:
            incidents.append((witness.at_s, witness, a.what, False))
    t = chaos.lead_s / 2
    end = scenario.duration_s - chaos.tail_s
    while True:
        t += rng.uniform(0.5, 1.5) * chaos.incident_every_s
        if t >= end:
            break
        what = rng.choice(chaos.incident_kinds)
        drawn = _pick(what, t, residents, gaps, rng) or _pick(What.SOS, t, residents, gaps, rng)
        if drawn is not None:
            incidents.append((t, drawn, None, False))
    incidents.sort(key=lambda x: x[0])
    base = list(scenario.incident)
    witnesses: dict[int, AttackWhat] = {}
    flood_sos: int | None = None
    for i, (_, _inc, attack, own) in enumerate(incidents, start=len(base) + 1):
        if attack is not None:
            witnesses[i] = attack
        if own:
            flood_sos = i
    full = msgspec.structs.replace(scenario, incident=base + [x[1] for x in incidents])
    return Plan(full, chaos, faults, attacks, witnesses, flood_sos)
