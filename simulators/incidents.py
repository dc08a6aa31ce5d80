"""Incidents with ground truth: each scenario incident becomes device messages, routine changes
and one ``Truth`` marker the player appends to the ground-truth JSONL file as it happens."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from pathlib import Path

import msgspec

from devices.domain import DeviceKind
from simulators import devices as packs
from simulators.fleet import DeviceCreds
from simulators.population import Resident
from simulators.scenario import Incident, What
from simulators.sisfall import FallTraces
from simulators.timeline import Effects, Msg, Op, Truth, acc_stream

ALL_ROUTINE = frozenset(
    {DeviceKind.PIR, DeviceKind.DOOR, DeviceKind.BED_MAT, DeviceKind.SEAT_MAT, DeviceKind.WRISTBAND}
)
PRE_S = 3.0  # resting accelerometer windows before a fall trace
POST_S = 5.0  # lying still after it
VERDICT_AFTER_S = 1.0  # a wristband reports its fall verdict this long after the impact


class IncidentError(ValueError):
    pass


def _event(device_id: str, at: float, records: list[packs.Rec]) -> Msg:
    return Msg(at, device_id, pack=packs.make_pack(device_id, at, records))


def _needs(r: Resident | None, kind: DeviceKind, what: What) -> DeviceCreds:
    dev = r.device(kind) if r else None
    if dev is None:
        who = r.name if r else "nobody"
        raise IncidentError(f"{what}: {who} has no {kind} for this incident")
    return dev


class Ctx:
    def __init__(
        self,
        *,
        start: float,
        creds: Mapping[str, DeviceCreds],
        residents: Mapping[str, Resident],
        falls: FallTraces,
        effects: Effects,
        rng: random.Random,
    ) -> None:
        self.start, self.creds, self.residents = start, creds, residents
        self.falls, self.effects, self.rng = falls, effects, rng


Built = tuple[list[Msg], DeviceCreds, float]  # messages, the device, when it is detectable


def _sos(inc: Incident, r: Resident | None, t: float, ctx: Ctx) -> Built:
    dev = ctx.creds.get(inc.device or "") or (r.device(DeviceKind.SOS_BUTTON) if r else None)
    dev = dev or _needs(r, DeviceKind.WRISTBAND, inc.what)
    return [_event(dev.device_id, t, [{"n": "sos", "vb": True}])], dev, t


def _fall(inc: Incident, r: Resident | None, t: float, ctx: Ctx) -> Built:
    band = r.device(DeviceKind.WRISTBAND) if r else None
    if band is None and inc.what is What.FALL and r and (radar := r.device(DeviceKind.RADAR)):
        msgs = [_event(radar.device_id, t, [{"n": "fall", "vb": True, "v": inc.confidence}])]
        return msgs, radar, t
    band = _needs(r, DeviceKind.WRISTBAND, inc.what)
    trace = ctx.rng.choice(ctx.falls.traces).samples
    samples = [(s[0], s[1], s[2]) for s in trace]
    lying = samples[-1]
    samples += [(lying[0], lying[1], lying[2])] * int(POST_S * 50)
    pre = acc_stream(band.device_id, start=t - PRE_S, end=t, rng=ctx.rng)
    fall = acc_stream(
        band.device_id, start=t, end=t + len(samples) / 50, rng=ctx.rng, samples=samples
    )
    impact = t + len(trace) / 100  # the peak is in the middle of the trace
    msgs = pre + fall
    if inc.what is What.FALL:
        verdict = [{"n": "fall", "vb": True, "v": inc.confidence}]
        msgs.append(_event(band.device_id, impact + VERDICT_AFTER_S, verdict))
    if r:  # lying on the floor: no routine movement for a while
        ctx.effects.suppress.append((r.name, ALL_ROUTINE, t, t + 600.0))
    return msgs, band, impact


def _smoke(inc: Incident, r: Resident | None, t: float, ctx: Ctx) -> Built:
    dev = ctx.creds.get(inc.device or "") or _needs(r, DeviceKind.SMOKE, inc.what)
    msgs = [_event(dev.device_id, t, [{"n": "smoke", "vb": True}])]
    if inc.duration_s > 0:  # the smoke clears
        clear = t + inc.duration_s
        msgs.append(_event(dev.device_id, clear, [{"n": "smoke", "vb": False}]))
    return msgs, dev, t


def _inactivity(inc: Incident, r: Resident | None, t: float, ctx: Ctx) -> Built:
    """A collapse: the last sign of life at ``t``, then nothing. ``where`` picks the resting
    place: up and about (PIR), seated (the seat mat pressed, never released), or right after
    coming home (the door, an hour after leaving through it)."""
    dev = _needs(r, DeviceKind.PIR, inc.what)
    assert r is not None
    msgs: list[Msg] = []
    quiet_from = t - 61.0
    if bed := r.device(DeviceKind.BED_MAT):  # up and about first: in bed is not inactivity
        msgs.append(_event(bed.device_id, t - 60.0, [{"n": "presence", "vb": False}]))
    seat = r.device(DeviceKind.SEAT_MAT)
    if inc.where == "seated":
        dev = _needs(r, DeviceKind.SEAT_MAT, inc.what)
        msgs.append(_event(dev.device_id, t, [{"n": "presence", "vb": True}]))
    elif inc.where == "after_home":
        dev = _needs(r, DeviceKind.DOOR, inc.what)
        quiet_from = t - 3600.0 - 61.0
        for at, state in ((-3600.0, "open"), (-3580.0, "closed"), (-20.0, "open"), (0.0, "closed")):
            msgs.append(_event(dev.device_id, t + at, [{"n": "door", "vs": state}]))
    elif inc.where:
        raise IncidentError(f"inactivity: where={inc.where!r} is not '', 'seated' or 'after_home'")
    else:
        msgs.append(_event(dev.device_id, t, [{"n": "motion", "vb": True}]))  # last sign of life
    if seat and inc.where != "seated":  # not in the armchair
        msgs.insert(0, _event(seat.device_id, quiet_from - 1.0, [{"n": "presence", "vb": False}]))
    ctx.effects.suppress.append((r.name, ALL_ROUTINE, quiet_from, t + inc.duration_s))
    return msgs, dev, t + inc.detect_after_s


def _wandering(inc: Incident, r: Resident | None, t: float, ctx: Ctx) -> Built:
    door = _needs(r, DeviceKind.DOOR, inc.what)
    assert r is not None
    msgs: list[Msg] = []
    if bed := r.device(DeviceKind.BED_MAT):
        msgs.append(_event(bed.device_id, t, [{"n": "presence", "vb": False}]))
    msgs.append(_event(door.device_id, t + 60.0, [{"n": "door", "vs": "open"}]))
    msgs.append(_event(door.device_id, t + 80.0, [{"n": "door", "vs": "closed"}]))
    ctx.effects.suppress.append((r.name, ALL_ROUTINE, t, t + max(inc.duration_s, 900.0)))
    return msgs, door, t + 60.0 + inc.detect_after_s


def _bed_exit(inc: Incident, r: Resident | None, t: float, ctx: Ctx) -> Built:
    bed = _needs(r, DeviceKind.BED_MAT, inc.what)
    assert r is not None
    msgs = [_event(bed.device_id, t, [{"n": "presence", "vb": False}])]
    ctx.effects.suppress.append(
        (r.name, frozenset({DeviceKind.BED_MAT}), t, t + max(inc.duration_s, 1800.0))
    )
    return msgs, bed, t + inc.detect_after_s


def _vitals(inc: Incident, r: Resident | None, t: float, ctx: Ctx) -> Built:
    dev = (r.device(DeviceKind.WRISTBAND) or r.device(DeviceKind.BED_MAT)) if r else None
    dev = dev or _needs(r, DeviceKind.BED_MAT, inc.what)
    assert r is not None
    ctx.effects.ramps.append((r.name, t, t + max(60.0, inc.duration_s)))
    return [], dev, t + inc.detect_after_s


BUILDERS: dict[What, Callable[[Incident, Resident | None, float, Ctx], Built]] = {
    What.SOS: _sos,
    What.FALL: _fall,
    What.FALL_ACCEL: _fall,
    What.SMOKE: _smoke,
    What.INACTIVITY: _inactivity,
    What.NIGHT_WANDERING: _wandering,
    What.BED_EXIT: _bed_exit,
    What.VITALS: _vitals,
}


def incident_msgs(index: int, inc: Incident, ctx: Ctx) -> list[Msg]:
    """The messages of one incident plus its ground-truth marker (sent when detectable)."""
    r = ctx.residents.get(inc.resident) if inc.resident else None
    if inc.resident and r is None:
        raise IncidentError(f"{inc.what}: no resident {inc.resident!r} in this run")
    t = ctx.start + inc.at_s
    msgs, dev, detectable = BUILDERS[inc.what](inc, r, t, ctx)
    truth = Truth(
        id=index,
        what=inc.what.value,
        site_id=dev.site_id,
        resident=r.name if r else None,
        device_id=dev.device_id,
        sim_start=t,
        sim_at=detectable,
        expect_colour=inc.expect_colour.value if inc.expect_colour else None,
        expect_kind=list(inc.expect_kind),
        max_delay_s=inc.max_delay_s,
        accept=inc.accept,
        needs=inc.needs,
    )
    return [*msgs, Msg(detectable, dev.device_id, op=Op.TRUTH, truth=truth)]


class TruthLog:
    """The ground-truth JSONL file: one line per incident, appended as it happens."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")

    def append(self, truth: Truth) -> None:
        line = msgspec.json.encode(
            {
                **msgspec.structs.asdict(truth),
                "deadline_wall": truth.wall_at + truth.max_delay_s,
            }
        )
        with self.path.open("ab") as fh:
            fh.write(line + b"\n")
