"""Hostile and faulty devices: faults bend a built timeline (after ``seq`` is numbered, so a
duplicate repeats its number and a swap shows up out of order)."""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Sequence

import msgspec

from devices.wire import Channel
from simulators import devices as packs
from simulators.scenario import Fault, FaultKind
from simulators.timeline import Effects, Msg, Op

MALFORMED: tuple[bytes, ...] = (
    b"{not json",
    b'{"bn": "x"}',  # an object, not a pack
    b"[]",
    b'[{"n": "hr", "v": "fast"}]',
    b'[{"n": "sos", "v": 1}]',  # an event without a boolean
    b'[{"n": "door", "vs": "ajar"}]',
    b'[{"n": "hr", "v": 70, "vb": true}]',  # two values
    b'[{"n": "hr", "bt": 4102444800, "v": 70}]',  # far in the future
    b"\xff\xfe\x00garbage",
)

Apply = Callable[[list[Msg], Fault, Sequence[str], float, random.Random], list[Msg]]


def _window(m: Msg, f: Fault, start: float, device: str | None) -> bool:
    t0 = start + f.at_s
    return m.op is Op.SEND and t0 <= m.at < t0 + f.for_s and device in (None, m.device_id)


def _target(f: Fault, devices: Sequence[str], rng: random.Random) -> str:
    return f.device or rng.choice(list(devices))


def _dropout(
    msgs: list[Msg], f: Fault, devices: Sequence[str], start: float, rng: random.Random
) -> list[Msg]:
    dev = _target(f, devices, rng)
    t0 = start + f.at_s
    return [*msgs, Msg(t0, dev, op=Op.DROP), Msg(t0 + f.for_s, dev, op=Op.CONNECT)]


def _flood(
    msgs: list[Msg], f: Fault, devices: Sequence[str], start: float, rng: random.Random
) -> list[Msg]:
    t0 = start + f.at_s
    out = list(msgs)
    for dev in devices:
        out.append(Msg(t0 + rng.uniform(0.0, 1.0), dev, op=Op.DROP))
        out.append(Msg(t0 + f.for_s, dev, op=Op.CONNECT))  # all at once: the flood
    return out


def _battery(
    msgs: list[Msg], f: Fault, devices: Sequence[str], start: float, rng: random.Random
) -> list[Msg]:
    # The telemetry's battery values are drained by Effects; here the device finally dies.
    dev = _target(f, devices, rng)
    return [*msgs, Msg(start + f.at_s + f.for_s, dev, op=Op.DROP)]


def _drift(
    msgs: list[Msg], f: Fault, devices: Sequence[str], start: float, rng: random.Random
) -> list[Msg]:
    dev = _target(f, devices, rng)
    t0 = start + f.at_s
    for m in msgs:
        if m.device_id == dev and m.pack is not None and m.at >= t0:
            head = m.pack[0]
            bt = head.get("bt")
            if isinstance(bt, float | int):
                head["bt"] = bt + f.drift_s_per_h * (m.at - t0) / 3600.0
    return msgs


def _duplicate(
    msgs: list[Msg], f: Fault, devices: Sequence[str], start: float, rng: random.Random
) -> list[Msg]:
    extra = [copy.deepcopy(m) for m in msgs if _window(m, f, start, f.device)]
    for m in extra:
        m.at += rng.uniform(0.05, 2.0)
    return msgs + extra


def _out_of_order(
    msgs: list[Msg], f: Fault, devices: Sequence[str], start: float, rng: random.Random
) -> list[Msg]:
    chosen = sorted((m for m in msgs if _window(m, f, start, f.device)), key=lambda m: m.at)
    by_device: dict[str, list[Msg]] = {}
    for m in chosen:
        by_device.setdefault(m.device_id, []).append(m)
    for seq in by_device.values():
        for a, b in zip(seq[::2], seq[1::2], strict=False):
            a.at, b.at = b.at, a.at  # the later pack leaves first
    return msgs


def _malformed(
    msgs: list[Msg], f: Fault, devices: Sequence[str], start: float, rng: random.Random
) -> list[Msg]:
    dev = _target(f, devices, rng)
    t0 = start + f.at_s
    out = list(msgs)
    for i in range(f.count):
        payload = MALFORMED[i % len(MALFORMED)]
        channel = Channel.STATUS if i % 4 == 3 else Channel.TELEMETRY
        out.append(Msg(t0 + i * 0.2, dev, channel=channel, raw=payload))
    return out


def _impersonate(
    msgs: list[Msg], f: Fault, devices: Sequence[str], start: float, rng: random.Random
) -> list[Msg]:
    """Publish an SOS naming the victim: once on the victim's topic (the ACL must drop it) and
    once on its own topic with the victim's base name (the topic decides, not ``bn``)."""
    dev = _target(f, devices, rng)
    victim = f.victim or rng.choice([d for d in devices if d != dev])
    t = start + f.at_s
    sos: packs.Rec = {"n": "sos", "vb": True}
    fake = packs.make_pack(victim, t, [sos])
    return [
        *msgs,
        Msg(t, dev, channel=Channel.EVENT, raw=msgspec.json.encode(fake), topic_device=victim),
        Msg(
            t + 0.5,
            dev,
            channel=Channel.TELEMETRY,
            raw=msgspec.json.encode(
                packs.make_pack(victim, t, [{"n": "hr", "u": "beat/min", "v": 71}])
            ),
        ),
    ]


FAULTS: dict[FaultKind, Apply] = {
    FaultKind.DROPOUT: _dropout,
    FaultKind.RECONNECT_FLOOD: _flood,
    FaultKind.BATTERY_DRAIN: _battery,
    FaultKind.CLOCK_DRIFT: _drift,
    FaultKind.DUPLICATE: _duplicate,
    FaultKind.OUT_OF_ORDER: _out_of_order,
    FaultKind.MALFORMED: _malformed,
    FaultKind.IMPERSONATE: _impersonate,
}


def register_effects(faults: Sequence[Fault], effects: Effects, *, start: float) -> None:
    """Faults that change telemetry values (battery drain) before the timeline is built."""
    for f in faults:
        if f.what is FaultKind.BATTERY_DRAIN and f.device:
            effects.battery[f.device] = (start + f.at_s, start + f.at_s + f.for_s)


def apply_faults(
    msgs: list[Msg],
    faults: Sequence[Fault],
    *,
    devices: Sequence[str],
    start: float,
    rng: random.Random,
) -> list[Msg]:
    for f in faults:
        msgs = FAULTS[f.what](msgs, f, devices, start, rng)
    return msgs
