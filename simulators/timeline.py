"""The timeline of a run: every message each device sends, in simulated time, before playing.

Built purely from the scenario, the population, the calibration and a seeded RNG, so the same
scenario and seed give the same messages. Incidents add messages and ground-truth markers
(simulators/incidents.py); faults then bend the timeline (simulators/hostile.py).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import StrEnum

import msgspec

from devices.domain import CareProfile, DeviceKind
from devices.wire import Channel
from simulators import devices as packs
from simulators.calibration import Calibration
from simulators.population import Resident, vitals
from simulators.routine import DAY, Night, asleep_at, day_plan, local_midnight

WINDOW_S = 1.0  # one accelerometer window: 1 s at 50 Hz
RATE_HZ = 50


class Op(StrEnum):
    SEND = "send"
    DROP = "drop"  # disconnect so that the broker publishes the Last Will
    CONNECT = "connect"  # (re)connect, announce status, flush the backlog in a burst
    TRUTH = "truth"  # an incident becomes true: append it to the ground-truth file


class Truth(msgspec.Struct):
    """One incident as it happens: what, who, device, when, what must follow."""

    id: int
    what: str
    site_id: str
    resident: str | None
    device_id: str
    sim_start: float  # when the incident begins (simulated epoch seconds)
    sim_at: float  # when it becomes detectable
    expect_colour: str | None
    expect_kind: list[str]
    max_delay_s: float
    accept: bool
    needs: str = ""
    wall_at: float = 0.0  # wall clock when it was played (set by the player)


@dataclass(slots=True)
class Msg:
    at: float  # simulated time of sending
    device_id: str
    op: Op = Op.SEND
    channel: Channel = Channel.EVENT
    pack: packs.Pack | None = None
    raw: bytes | None = None  # a payload sent as is (malformed on purpose)
    topic_device: str | None = None  # publish on another device's topic (impersonation)
    retain: bool = False
    truth: Truth | None = None


@dataclass(slots=True)
class Effects:
    """What incidents change about the routine and the telemetry of a resident."""

    suppress: list[tuple[str, frozenset[DeviceKind], float, float]] = field(default_factory=list)
    ramps: list[tuple[str, float, float]] = field(default_factory=list)  # vitals deterioration
    battery: dict[str, tuple[float, float]] = field(default_factory=dict)  # device: drain span

    def suppressed(self, resident: str, kind: DeviceKind, at: float) -> bool:
        return any(
            r == resident and kind in kinds and a <= at < b for r, kinds, a, b in self.suppress
        )

    def deterioration(self, resident: str, at: float) -> float:
        levels = [min(1.0, (at - a) / max(1.0, b - a)) for r, a, b in self.ramps if r == resident]
        return max([lv for lv in levels if lv > 0] or [0.0])

    def battery_level(self, device_id: str, at: float, normal: float) -> float:
        span = self.battery.get(device_id)
        if span is None or at < span[0]:
            return normal
        return max(0.0, normal * (1 - (at - span[0]) / max(1.0, span[1] - span[0])))


def routine_msgs(
    residents: list[Resident],
    *,
    start: float,
    end: float,
    calib: Calibration,
    effects: Effects,
    rng: random.Random,
) -> tuple[list[Msg], dict[str, list[Night]]]:
    out: list[Msg] = []
    nights: dict[str, list[Night]] = {}
    for r in residents:
        day = local_midnight(start)
        r_rng = random.Random(rng.random())
        while day < end:
            plan = day_plan(r.profile, day_start=day, calib=calib, rng=r_rng)
            nights.setdefault(r.name, []).extend(
                plan.nights[1:] if r.name in nights else plan.nights
            )
            for ev in plan.events:
                dev = r.device(ev.device)
                if (
                    dev is None
                    or not start <= ev.at < end
                    or effects.suppressed(r.name, ev.device, ev.at)
                ):
                    continue
                key = "vs" if ev.name == "door" else "v" if ev.name == "activity" else "vb"
                records: list[packs.Rec] = [{"n": ev.name, key: ev.value}]
                out.append(
                    Msg(ev.at, dev.device_id, pack=packs.make_pack(dev.device_id, ev.at, records))
                )
            day += DAY
    return out, nights


def _vitals_records(
    r: Resident, kind: DeviceKind, at: float, asleep: bool, level: float, rng: random.Random
) -> list[packs.Rec]:
    v = vitals(r.profile, now=at, asleep=asleep, rng=rng, deterioration=level)
    if kind is DeviceKind.WRISTBAND:
        return [{"n": "hr", "u": "beat/min", "v": v.hr}, {"n": "spo2", "u": "%", "v": v.spo2}]
    return [{"n": "hr", "u": "beat/min", "v": v.hr}, {"n": "rr", "u": "1/min", "v": v.rr}]


def telemetry_msgs(
    residents: list[Resident],
    *,
    start: float,
    end: float,
    every: float,
    nights: dict[str, list[Night]],
    effects: Effects,
    rng: random.Random,
    acc_all: bool,
) -> list[Msg]:
    """Periodic telemetry of every device (once per device), vitals from its resident."""
    out: list[Msg] = []
    owner: dict[str, tuple[Resident, DeviceKind]] = {}
    for r in residents:
        for kind, dev in r.devices.items():
            owner.setdefault(dev.device_id, (r, kind))
    for device_id, (r, kind) in owner.items():
        d_rng = random.Random(rng.random())
        normal = d_rng.uniform(60.0, 100.0)
        t = start + d_rng.uniform(0.0, every)
        while t < end:
            asleep = r.profile is CareProfile.BED_BOUND or asleep_at(t, nights.get(r.name, []))
            level = effects.deterioration(r.name, t)
            battery = effects.battery_level(device_id, t, normal)
            records: list[packs.Rec]
            if kind is DeviceKind.WRISTBAND:
                records = _vitals_records(r, kind, t, asleep, level, d_rng)
                records.append({"n": "battery", "u": "%EL", "v": round(battery, 1)})
            elif kind in (DeviceKind.BED_MAT, DeviceKind.RADAR):
                records = _vitals_records(r, kind, t, asleep, level, d_rng) if asleep else []
            else:
                records = [{"n": "battery", "u": "%EL", "v": round(battery, 1)}]
            if records:
                msg = Msg(t, device_id, channel=Channel.TELEMETRY)
                msg.pack = packs.make_pack(device_id, t, records)
                out.append(msg)
            t += every * d_rng.uniform(0.9, 1.1)
        if acc_all and kind is DeviceKind.WRISTBAND:
            out += acc_stream(device_id, start=start, end=end, rng=d_rng)
    return out


def acc_stream(
    device_id: str,
    *,
    start: float,
    end: float,
    rng: random.Random,
    samples: list[packs.Sample] | None = None,
) -> list[Msg]:
    """1-s windows of 50 Hz samples from ``start``; ``samples`` (if given) are played first,
    then the wrist rests."""
    out: list[Msg] = []
    queue = list(samples or [])
    t = start
    while t < end:
        n = int(WINDOW_S * RATE_HZ)
        chunk, queue = queue[:n], queue[n:]
        if len(chunk) < n:
            chunk += packs.resting_samples(rng, n - len(chunk))
        pack = packs.acc_window_pack(device_id=device_id, now=t + WINDOW_S, samples=chunk)
        out.append(Msg(t + WINDOW_S, device_id, channel=Channel.TELEMETRY, pack=pack))
        t += WINDOW_S
    return out


def assign_seq(msgs: list[Msg]) -> None:
    """Number each device's packs in sending order (``seq`` is the last record)."""
    counters: dict[str, int] = {}
    for m in sorted(msgs, key=lambda m: m.at):
        if m.op is Op.SEND and m.pack is not None:
            counters[m.device_id] = counters.get(m.device_id, 0) + 1
            m.pack.append({"n": "seq", "v": counters[m.device_id]})
