"""Turn one MQTT message into typed rows, or a rejection with a reason. Pure: no I/O."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import repeat
from typing import NamedTuple

from devices.domain import LIFE_SAFETY
from devices.registry import DeviceRef
from devices.wire import (
    ACC_NAMES,
    AccWindow,
    Channel,
    DeviceTopic,
    NumericPack,
    Pack,
    Reason,
    Record,
    WireError,
    parse_acc_window,
    parse_numeric_pack,
    parse_senml,
    parse_status,
)

DOOR_STATES = frozenset({"open", "closed"})
BOOL_EVENTS = frozenset(
    {"motion", "presence", "sos", "fall", "smoke", "flush", "appliance", "selftest"}
)
# Never rate-limited, never dropped (docs/ingest.md).


# The per-message and per-row types are NamedTuples: immutable like frozen dataclasses, about
# three times cheaper to build, and a row is already the tuple COPY writes.


class RawMessage(NamedTuple):
    topic: str
    payload: bytes
    received_at: float  # server clock, seconds since the epoch
    mid: int = 0
    qos: int = 0
    generation: int = 0  # which broker connection delivered it (acks never cross connections)


@dataclass(frozen=True, slots=True)
class Limits:
    max_payload_bytes: int = 256 * 1024
    max_future_skew_s: float = 300.0
    late_after_s: float = 60.0  # older than this on arrival: counted as late, still stored


class TelemetryRow(NamedTuple):
    time: float
    device_key: int
    metric: str
    value: float


class EventRow(NamedTuple):
    time: float
    device_key: int
    name: str
    value_bool: bool | None
    value_num: float | None
    value_text: str | None


class AccWindowRow(NamedTuple):
    time: float  # first sample
    device_key: int
    t_offset: tuple[float, ...]
    acc_x: tuple[float, ...]
    acc_y: tuple[float, ...]
    acc_z: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class StatusRow:
    device_key: int
    online: bool
    battery: float | None
    fw: str | None
    reported_at: float


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    payload: bytes
    reason: Reason
    detail: str
    device_key: int | None = None  # known for rate-limited messages (counted per device)

    @property
    def digest(self) -> bytes:
        return hashlib.sha256(self.topic.encode() + b"\0" + self.payload).digest()


def is_life_safety(item: Decoded) -> bool:
    return any(e.name in LIFE_SAFETY for e in item.events)


class Decoded(NamedTuple):
    device_key: int
    telemetry: tuple[TelemetryRow, ...] = ()
    events: tuple[EventRow, ...] = ()
    windows: tuple[AccWindowRow, ...] = ()
    status: StatusRow | None = None
    last_time: float = 0.0
    first_time: float = 0.0  # the pack's earliest reading (its publish time, for a live device)


def decode(
    msg: RawMessage, devices: Mapping[str, DeviceRef], limits: Limits
) -> Decoded | DeadLetter:
    """Never raises: every failure, expected or not, is a dead letter with the raw bytes."""
    try:
        return _decode(msg, devices, limits)
    except WireError as exc:
        return DeadLetter(msg.topic, msg.payload, exc.reason, exc.detail)
    except RecursionError:
        # msgspec recurses per nesting level; SenML is a flat array of flat objects (depth 2).
        return DeadLetter(msg.topic, msg.payload, Reason.BAD_JSON, "JSON nested too deeply")
    except MemoryError:
        return DeadLetter(msg.topic, msg.payload, Reason.TOO_LARGE, "out of memory decoding it")
    except Exception as exc:  # noqa: BLE001  (a decoder bug must cost one message, not the worker)
        detail = f"unexpected {type(exc).__name__} while decoding: {exc}"[:500]
        return DeadLetter(msg.topic, msg.payload, Reason.BAD_RECORD, detail)


def _decode(msg: RawMessage, devices: Mapping[str, DeviceRef], limits: Limits) -> Decoded:
    topic = DeviceTopic.parse(msg.topic)
    ref = devices.get(topic.device_id)
    if ref is None:
        raise WireError(Reason.UNKNOWN_DEVICE, f"device {topic.device_id!r} is not registered")
    if ref.site_id != topic.site_id:
        raise WireError(
            Reason.SITE_MISMATCH,
            f"device {ref.device_id!r} belongs to site {ref.site_id!r}, not {topic.site_id!r}",
        )
    if ref.retired:
        raise WireError(Reason.DEVICE_RETIRED, f"device {ref.device_id!r} is retired")
    if topic.channel is Channel.STATUS:
        st = parse_status(
            msg.payload, now=msg.received_at, max_future_skew=limits.max_future_skew_s
        )
        at = st.ts if st.ts is not None else msg.received_at
        row = StatusRow(ref.device_key, st.online, st.battery, st.fw, at)
        return Decoded(ref.device_key, status=row, last_time=at if st.online else 0.0)
    if topic.channel is Channel.CMD:
        raise WireError(Reason.BAD_TOPIC, "cmd topics are backend -> device only")
    if b'"acc_' not in msg.payload:
        num = parse_numeric_pack(
            msg.payload,
            now=msg.received_at,
            max_bytes=limits.max_payload_bytes,
            max_future_skew=limits.max_future_skew_s,
        )
        if num is not None:
            return _numeric(num, topic.device_id, ref.device_key)
    elif topic.channel is Channel.TELEMETRY:
        win = parse_acc_window(
            msg.payload,
            now=msg.received_at,
            max_bytes=limits.max_payload_bytes,
            max_future_skew=limits.max_future_skew_s,
        )
        if win is not None:
            return _acc_only(win, topic.device_id, ref.device_key)
    pack = parse_senml(
        msg.payload,
        now=msg.received_at,
        max_bytes=limits.max_payload_bytes,
        max_future_skew=limits.max_future_skew_s,
    )
    decoded = _route(pack, ref.device_key)  # value errors first: they say more
    if pack.relative_time:
        raise WireError(
            Reason.RELATIVE_TIME,
            "a record time is relative (no bt): a redelivered copy could not be told from a new"
            " reading; send absolute times (bt)",
        )
    others = pack.name_prefixes - {topic.device_id}
    if others:
        raise WireError(
            Reason.NAME_MISMATCH,
            f"names are prefixed with {sorted(others)!r}, not the topic's {topic.device_id!r}",
        )
    return decoded


# Physiological / physical bounds per reading name (inclusive); outside them a reading is a
# faulty sensor or a hostile device, refused as ``bad_value`` (the whole pack: a device whose
# pack holds one absurd reading cannot be trusted for the others of the same pack).
VALUE_BOUNDS: dict[str, tuple[float, float]] = {
    "hr": (0.0, 300.0),  # beat/min (0: no pulse is a reading the detectors must see)
    "spo2": (0.0, 100.0),  # %
    "rr": (0.0, 100.0),  # 1/min
    "temp": (-40.0, 85.0),  # Cel: a room sensor's range (covers a body temperature too)
    "battery": (0.0, 100.0),  # %EL
    "activity": (0.0, 100.0),  # % of the minute the wearer moved (wristband, per minute)
    "steps": (0.0, 300.0),  # steps in the minute (wristband)
}


def _check_bounds(names: Iterable[str], values: Iterable[float]) -> None:
    bounds = VALUE_BOUNDS
    for name, value in zip(names, values, strict=True):
        b = bounds.get(name)
        if b is not None and not b[0] <= value <= b[1]:
            raise WireError(Reason.BAD_VALUE, f"{name} {value} outside {b[0]:g}..{b[1]:g}")


# A wearable accelerometer reads up to 16 g (157 m/s2); beyond 160 a sample is no measurement.
ACC_LIMIT = 160.0  # m/s2


def _check_acc(*axes: Iterable[float]) -> None:
    for axis in axes:
        if min(axis) < -ACC_LIMIT or max(axis) > ACC_LIMIT:
            raise WireError(Reason.BAD_VALUE, f"acceleration outside +-{ACC_LIMIT:.0f} m/s2")


def _check_text(name: str, value: str) -> str:
    """Text PostgreSQL can store: valid UTF-8 (no lone surrogates), no NUL."""
    if "\x00" in value:
        raise WireError(Reason.BAD_VALUE, f"{name}: text with a NUL character")
    try:
        value.encode()
    except UnicodeEncodeError as exc:
        raise WireError(Reason.BAD_VALUE, f"{name}: text is not valid Unicode") from exc
    return value


def _numeric(num: NumericPack, device_id: str, key: int) -> Decoded:
    if num.device_prefix is not None and num.device_prefix != device_id:
        raise WireError(
            Reason.NAME_MISMATCH,
            f"names are prefixed with {[num.device_prefix]!r}, not the topic's {device_id!r}",
        )
    _check_bounds(num.names, num.values)
    rows = tuple(map(TelemetryRow, num.times, repeat(key), num.names, num.values))
    return Decoded(key, telemetry=rows, last_time=max(num.times), first_time=min(num.times))


def _acc_only(win: AccWindow, device_id: str, key: int) -> Decoded:
    if ":" in win.base_name and win.base_name.split(":", 1)[0] != device_id:
        raise WireError(
            Reason.NAME_MISMATCH, f"base name {win.base_name!r} is not the topic's {device_id!r}"
        )
    _check_acc(win.acc_x, win.acc_y, win.acc_z)
    row = AccWindowRow(
        win.start, key, tuple(win.t_offset), tuple(win.acc_x), tuple(win.acc_y), tuple(win.acc_z)
    )
    return Decoded(
        key, windows=(row,), last_time=win.start + win.t_offset[-1], first_time=win.start
    )


def _route(pack: Pack, key: int) -> Decoded:
    telemetry: list[TelemetryRow] = []
    events: list[EventRow] = []
    acc: list[Record] = []
    for rec in pack.records:
        if rec.name in ACC_NAMES:
            acc.append(rec)
        elif rec.name in BOOL_EVENTS:
            if not isinstance(rec.value, bool):
                raise WireError(Reason.BAD_VALUE, f"{rec.name} needs a boolean vb")
            if rec.num is not None and not 0.0 <= rec.num <= 1.0:
                raise WireError(Reason.BAD_VALUE, f"{rec.name} confidence {rec.num} outside 0..1")
            events.append(EventRow(rec.time, key, rec.name, rec.value, rec.num, None))
        elif rec.name == "door":
            if rec.value not in DOOR_STATES:
                raise WireError(
                    Reason.BAD_VALUE, f"door needs vs 'open' or 'closed', not {rec.value!r}"
                )
            events.append(EventRow(rec.time, key, rec.name, None, None, str(rec.value)))
        elif isinstance(rec.value, bool):
            events.append(EventRow(rec.time, key, rec.name, rec.value, rec.num, None))
        elif isinstance(rec.value, float | int):
            _check_bounds((rec.name,), (float(rec.value),))
            telemetry.append(TelemetryRow(rec.time, key, rec.name, float(rec.value)))
        else:
            text = _check_text(rec.name, rec.value)
            events.append(EventRow(rec.time, key, rec.name, None, None, text))
    windows = (_window(acc, key),) if acc else ()
    times = [r.time for r in pack.records]
    return Decoded(key, tuple(telemetry), tuple(events), windows, None, max(times), min(times))


def _window(records: list[Record], key: int) -> AccWindowRow:
    axes: dict[str, dict[float, float]] = {"acc_x": {}, "acc_y": {}, "acc_z": {}}
    for rec in records:
        if isinstance(rec.value, bool) or not isinstance(rec.value, float | int):
            raise WireError(Reason.BAD_VALUE, f"{rec.name} needs a numeric v")
        if rec.time in axes[rec.name]:
            raise WireError(Reason.BAD_RECORD, f"two {rec.name} samples at t={rec.time}")
        axes[rec.name][rec.time] = float(rec.value)
    times = sorted(axes["acc_x"])
    for name in ("acc_y", "acc_z"):
        if sorted(axes[name]) != times:
            raise WireError(Reason.BAD_RECORD, "acc_x, acc_y and acc_z must share sample times")
    start = times[0]
    _check_acc(*(axes[name].values() for name in ("acc_x", "acc_y", "acc_z")))
    return AccWindowRow(
        start,
        key,
        tuple(t - start for t in times),
        tuple(axes["acc_x"][t] for t in times),
        tuple(axes["acc_y"][t] for t in times),
        tuple(axes["acc_z"][t] for t in times),
    )
