"""SenML packs (RFC 8428) and status payloads for every simulated device kind.

Every builder is a pure function of its arguments: the time ``now`` (seconds since the Unix
epoch, UTC), an injected ``random.Random`` and the device's own state (message counter,
battery, presence). A pack is a list of record dicts; :func:`encode` turns it into bytes.
The first record carries ``bn`` = ``"<device_id>:"`` and ``bt``; ``seq`` comes last.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Final

import msgspec

from devices.domain import DeviceKind
from devices.wire import CHECK_IN_ANSWER, FALL_CHECK_ANSWER
from simulators.clock import UTC_OFFSET_H

Rec = dict[str, object]
Pack = list[Rec]
Sample = tuple[float, float, float]  # one accelerometer reading (x, y, z) in m/s2

FIRMWARE: Final = "sim-1.0"
GRAVITY: Final = 9.81
BATTERY_KINDS: Final = frozenset(
    {
        DeviceKind.WRISTBAND,
        DeviceKind.PIR,
        DeviceKind.DOOR,
        DeviceKind.SMOKE,
        DeviceKind.SOS_BUTTON,
        DeviceKind.SEAT_MAT,
        DeviceKind.FLUSH,
        DeviceKind.APPLIANCE,
    }
)
LAST_WILL: Final = msgspec.json.encode({"online": False})


def encode(pack: Pack) -> bytes:
    return msgspec.json.encode(pack)


def status_payload(*, now: float, battery: float | None) -> bytes:
    status: Rec = {"online": True, "fw": FIRMWARE, "ts": now}
    if battery is not None:
        status["battery"] = round(battery, 1)
    return msgspec.json.encode(status)


def _pack(device_id: str, bt: float, records: Sequence[Rec], seq: int | None) -> Pack:
    head: Rec = {"bn": f"{device_id}:", "bt": bt}
    out = [head | records[0], *records[1:]]
    if seq is not None:
        out.append({"n": "seq", "v": seq})
    return out


def make_pack(device_id: str, bt: float, records: Sequence[Rec], seq: int | None = None) -> Pack:
    """A pack of the given records at base time ``bt`` (the public form of ``_pack``)."""
    return _pack(device_id, bt, records, seq)


def _daily(now: float, *, mean: float, amplitude: float, peak_hour: float) -> float:
    hour = (now / 3600.0 + UTC_OFFSET_H) % 24.0
    return mean + amplitude * math.cos(2 * math.pi * (hour - peak_hour) / 24.0)


def _heart_rate(now: float, rng: random.Random) -> int:
    """60-90 beat/min, lowest around 04:00 and highest around 16:00 local time."""
    hr = _daily(now, mean=74.0, amplitude=8.0, peak_hour=16.0) + rng.gauss(0.0, 2.0)
    return round(min(90.0, max(60.0, hr)))


def _vitals(now: float, rng: random.Random) -> list[Rec]:
    return [
        {"n": "hr", "u": "beat/min", "v": _heart_rate(now, rng)},
        {"n": "rr", "u": "1/min", "v": round(rng.uniform(12.0, 20.0), 1)},
    ]


def _battery(battery: float) -> Rec:
    return {"n": "battery", "u": "%EL", "v": round(battery, 1)}


def wristband_pack(
    *, device_id: str, now: float, rng: random.Random, battery: float, seq: int | None = None
) -> Pack:
    records = [
        {"n": "hr", "u": "beat/min", "v": _heart_rate(now, rng)},
        {"n": "spo2", "u": "%", "v": rng.randint(95, 99)},
        _battery(battery),
    ]
    return _pack(device_id, now, records, seq)


def vitals_pack(*, device_id: str, now: float, rng: random.Random, seq: int | None = None) -> Pack:
    """Heart and respiration rate, as a bed mat or radar measures them contact-free."""
    return _pack(device_id, now, _vitals(now, rng), seq)


def room_pack(*, device_id: str, now: float, rng: random.Random, seq: int | None = None) -> Pack:
    temp = _daily(now, mean=23.5, amplitude=1.5, peak_hour=15.0) + rng.gauss(0.0, 0.2)
    return _pack(device_id, now, [{"n": "temp", "u": "Cel", "v": round(temp, 1)}], seq)


def battery_pack(*, device_id: str, now: float, battery: float, seq: int | None = None) -> Pack:
    return _pack(device_id, now, [_battery(battery)], seq)


def telemetry_pack(
    kind: DeviceKind,
    *,
    device_id: str,
    now: float,
    rng: random.Random,
    battery: float,
    present: bool,
    seq: int | None = None,
) -> Pack | None:
    """The periodic telemetry of a device; None when it has nothing to measure (empty bed)."""
    match kind:
        case DeviceKind.WRISTBAND:
            return wristband_pack(device_id=device_id, now=now, rng=rng, battery=battery, seq=seq)
        case DeviceKind.BED_MAT | DeviceKind.RADAR:
            return vitals_pack(device_id=device_id, now=now, rng=rng, seq=seq) if present else None
        case DeviceKind.ROOM_SENSOR:
            return room_pack(device_id=device_id, now=now, rng=rng, seq=seq)
        case _:
            return battery_pack(device_id=device_id, now=now, battery=battery, seq=seq)


def motion_pack(*, device_id: str, now: float, seq: int | None = None) -> Pack:
    return _pack(device_id, now, [{"n": "motion", "vb": True}], seq)


def presence_pack(*, device_id: str, now: float, present: bool, seq: int | None = None) -> Pack:
    return _pack(device_id, now, [{"n": "presence", "vb": present}], seq)


def door_pack(*, device_id: str, now: float, is_open: bool, seq: int | None = None) -> Pack:
    state = "open" if is_open else "closed"
    return _pack(device_id, now, [{"n": "door", "vs": state}], seq)


def smoke_pack(*, device_id: str, now: float, detected: bool, seq: int | None = None) -> Pack:
    return _pack(device_id, now, [{"n": "smoke", "vb": detected}], seq)


def selftest_pack(*, device_id: str, now: float, passed: bool, seq: int | None = None) -> Pack:
    """A smoke detector's self-test result (monthly; docs/device-protocol.md)."""
    return _pack(device_id, now, [{"n": "selftest", "vb": passed}], seq)


def sos_pack(*, device_id: str, now: float, seq: int | None = None) -> Pack:
    return _pack(device_id, now, [{"n": "sos", "vb": True}], seq)


def fall_pack(*, device_id: str, now: float, confidence: float, seq: int | None = None) -> Pack:
    if not 0.0 <= confidence <= 1.0:
        raise ValueError(f"fall confidence {confidence} outside 0..1")
    return _pack(device_id, now, [{"n": "fall", "vb": True, "v": confidence}], seq)


def acc_window_pack(
    *,
    device_id: str,
    now: float,
    samples: Sequence[Sample],
    rate_hz: float = 50.0,
    seq: int | None = None,
) -> Pack:
    """One window of raw accelerometer samples ending at ``now``; ``bt`` is the window start."""
    if not samples:
        raise ValueError("an accelerometer window needs at least one sample")
    start = now - len(samples) / rate_hz
    records: list[Rec] = []
    for i, sample in enumerate(samples):
        offset = round(i / rate_hz, 4)
        for axis, value in zip(("acc_x", "acc_y", "acc_z"), sample, strict=True):
            records.append({"n": axis, "u": "m/s2", "t": offset, "v": round(value, 3)})
    return _pack(device_id, start, records, seq)


def resting_samples(rng: random.Random, count: int) -> list[Sample]:
    """A wrist at rest: gravity on z plus sensor noise."""
    return [
        (rng.gauss(0.0, 0.05), rng.gauss(0.0, 0.05), GRAVITY + rng.gauss(0.0, 0.05))
        for _ in range(count)
    ]


def fall_samples(rng: random.Random, count: int) -> list[Sample]:
    """Upright, a short free fall, an impact spike of about 3.5 g, then lying on the side."""
    free_fall, impact = int(count * 0.4), int(count * 0.6)
    samples: list[Sample] = []
    for i, (x, y, z) in enumerate(resting_samples(rng, count)):
        if free_fall <= i < impact - 2:
            samples.append((x, y, 0.2 * GRAVITY + z - GRAVITY))
        elif impact - 2 <= i < impact + 1:
            samples.append((1.5 * GRAVITY + x, 0.8 * GRAVITY + y, 3.0 * GRAVITY + z - GRAVITY))
        elif i >= impact + 1:
            samples.append((GRAVITY + x, y, z - GRAVITY))
        else:
            samples.append((x, y, z))
    return samples


def fall_check_answer(
    command: dict[str, object], *, device_id: str, now: float, can_answer: bool
) -> Pack | None:
    """A wristband's answer to a ``fall_check`` command (docs/device-protocol.md section 6):
    "I'm OK" pressed at ``now``, as an event record ``fall_check_ok`` carrying the check id.
    None when there is nothing to answer: another command, a check already expired, or a
    wearer who cannot answer (asleep, confused, or really on the floor)."""
    if command.get("type") != "fall_check":
        return None
    return check_answer(command, device_id=device_id, now=now, can_answer=can_answer)


# The commands a wearer or a button's owner answers, and the event name of each answer.
ANSWERS: Final = {"fall_check": FALL_CHECK_ANSWER, "check_in": CHECK_IN_ANSWER}


def check_answer(
    command: dict[str, object], *, device_id: str, now: float, can_answer: bool
) -> Pack | None:
    """The answer to a ``fall_check`` ("I'm OK") or a ``check_in`` ("I'm fine", pressed on a
    wristband or an SOS button) command: an event record carrying the check id, stamped
    ``now``. None when there is nothing to answer (another command, a check already expired)
    or the person cannot (asleep, confused, really on the floor)."""
    name = ANSWERS.get(str(command.get("type")))
    if name is None or not can_answer:
        return None
    check_id, until = command.get("check_id"), command.get("until_ts")
    if not isinstance(check_id, str) or not isinstance(until, int | float) or now > until:
        return None
    return _pack(device_id, now, [{"n": name, "vs": check_id}], None)
