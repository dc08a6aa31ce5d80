"""The device wire protocol v1 (docs/device-protocol.md): topics, SenML packs, status, commands.

Everything a device sends is parsed here once, into small frozen value objects that refuse
bad input with a :class:`WireError` carrying a machine-readable ``reason``. Nothing past
this module sees raw bytes.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Literal, NamedTuple

import msgspec

ID_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9:./_-]{0,127}")
TOPIC_ROOT: Final = "eldercare/v1"
# RFC 8428 section 4.5.3: a time below 2**28 is relative to the time the pack was received.
RELATIVE_TIME_LIMIT: Final = 2.0**28
# Earliest plausible absolute time (2000-01-01): anything before is a device without a clock.
EARLIEST_TIME: Final = 946_684_800.0

EVENT_NAMES: Final = frozenset(
    {"motion", "presence", "door", "sos", "fall", "smoke", "flush", "appliance", "selftest"}
)
ACC_NAMES: Final = frozenset({"acc_x", "acc_y", "acc_z"})


class Reason(StrEnum):
    """Why a message was refused; stored with the raw payload in the dead-letter table."""

    BAD_TOPIC = "bad_topic"
    TOO_LARGE = "too_large"
    BAD_JSON = "bad_json"
    BAD_SHAPE = "bad_shape"
    BAD_RECORD = "bad_record"
    BAD_VALUE = "bad_value"
    BAD_TIME = "bad_time"
    TIME_IN_FUTURE = "time_in_future"
    UNKNOWN_DEVICE = "unknown_device"
    SITE_MISMATCH = "site_mismatch"
    DEVICE_RETIRED = "device_retired"
    # Ingest-side checks (docs/ingest.md): a name prefixed with another device's id, a relative
    # time (RFC 8428 resolves it against the receive time, so a redelivered copy could not be
    # recognised as the same reading), and messages dropped by the per-device rate limit.
    NAME_MISMATCH = "name_mismatch"
    RELATIVE_TIME = "relative_time"
    RATE_LIMITED = "rate_limited"


class WireError(ValueError):
    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class Channel(StrEnum):
    TELEMETRY = "telemetry"
    EVENT = "event"
    STATUS = "status"
    CMD = "cmd"


@dataclass(frozen=True, slots=True)
class DeviceTopic:
    site_id: str
    device_id: str
    channel: Channel

    def __post_init__(self) -> None:
        for label, value in (("site_id", self.site_id), ("device_id", self.device_id)):
            if not ID_RE.fullmatch(value):
                raise WireError(
                    Reason.BAD_TOPIC, f"{label} {value!r} must match [A-Za-z0-9_-]{{1,64}}"
                )

    @classmethod
    def parse(cls, topic: str) -> DeviceTopic:
        """Parse ``topic``; valid topics are memoised (a device repeats its few topics)."""
        try:
            return _TOPICS[topic]
        except KeyError:
            pass
        parsed = cls._parse(topic)
        if len(_TOPICS) >= 100_000:
            _TOPICS.clear()
        _TOPICS[topic] = parsed
        return parsed

    @classmethod
    def _parse(cls, topic: str) -> DeviceTopic:
        parts = topic.split("/")
        if len(parts) != 5 or f"{parts[0]}/{parts[1]}" != TOPIC_ROOT:
            raise WireError(Reason.BAD_TOPIC, f"expected {TOPIC_ROOT}/<site>/<device>/<channel>")
        try:
            channel = Channel(parts[4])
        except ValueError:
            raise WireError(Reason.BAD_TOPIC, f"unknown channel {parts[4]!r}") from None
        return cls(parts[2], parts[3], channel)

    def __str__(self) -> str:
        return f"{TOPIC_ROOT}/{self.site_id}/{self.device_id}/{self.channel}"


_TOPICS: dict[str, DeviceTopic] = {}


class _SenMLRecord(msgspec.Struct, forbid_unknown_fields=False, omit_defaults=True):
    bn: str | None = None
    bt: float | None = None
    bu: str | None = None
    bver: int | None = None
    n: str | None = None
    u: str | None = None
    v: float | None = None
    vb: bool | None = None
    vs: str | None = None
    vd: str | None = None
    s: float | None = None
    t: float | None = None
    ut: float | None = None


_pack_decoder: Final = msgspec.json.Decoder(list[_SenMLRecord])

Value = float | bool | str


class Record(NamedTuple):
    """One resolved SenML record: full name split into base name and local name.

    A NamedTuple rather than a frozen dataclass: as immutable, and three times cheaper to build
    on the ingest hot path (several per message)."""

    name: str  # the local name, e.g. "hr" (resolved name minus the base name)
    time: float  # seconds since the Unix epoch, UTC
    value: Value
    unit: str | None = None
    # A numeric companion of a boolean record (protocol extension: ``fall`` with ``vb`` and a
    # confidence in ``v``).
    num: float | None = None


@dataclass(frozen=True, slots=True)
class Pack:
    base_name: str
    records: tuple[Record, ...]
    relative_time: bool = False  # some record's time was relative (resolved against ``now``)
    # Device ids named by resolved record names ("wb-1:hr" -> "wb-1"); empty if unprefixed.
    name_prefixes: frozenset[str] = frozenset()


def _check_time(when: float, *, now: float, max_future_skew: float) -> float:
    if not math.isfinite(when):
        raise WireError(Reason.BAD_TIME, "time is not a finite number")
    if when < EARLIEST_TIME:
        raise WireError(Reason.BAD_TIME, f"time {when} is before 2000-01-01")
    if when > now + max_future_skew:
        raise WireError(
            Reason.TIME_IN_FUTURE, f"time {when} is {when - now:.0f} s ahead of the server"
        )
    return when


def _require_json(payload: bytes) -> None:
    """On the error path only: tell malformed JSON apart from JSON of the wrong shape."""
    try:
        msgspec.json.decode(payload)
    except msgspec.DecodeError as exc:
        raise WireError(Reason.BAD_JSON, str(exc)) from exc


_LOCAL_NAMES: dict[str, str | None] = {}


def _local_name(n: str) -> str | None:
    """The measurement part of ``n`` if valid, else None (memoised: devices repeat names)."""
    try:
        return _LOCAL_NAMES[n]
    except KeyError:
        pass
    local: str | None = n.rsplit(":", 1)[-1]
    if not local or not NAME_RE.fullmatch(local):
        local = None
    if len(_LOCAL_NAMES) > 10_000:
        _LOCAL_NAMES.clear()
    _LOCAL_NAMES[n] = local
    return local


def _decode_pack(payload: bytes, max_bytes: int) -> list[_SenMLRecord]:
    if len(payload) > max_bytes:
        raise WireError(Reason.TOO_LARGE, f"{len(payload)} bytes > limit {max_bytes}")
    try:
        raw = _pack_decoder.decode(payload)
    except msgspec.ValidationError as exc:
        _require_json(payload)
        raise WireError(Reason.BAD_SHAPE, f"not a SenML pack: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise WireError(Reason.BAD_JSON, str(exc)) from exc
    if not raw:
        raise WireError(Reason.BAD_SHAPE, "empty pack")
    return raw


@dataclass(frozen=True, slots=True)
class AccWindow:
    """One raw accelerometer window: ``start`` + ``t_offset[i]`` is sample ``i``'s time."""

    base_name: str
    start: float
    t_offset: list[float]
    acc_x: list[float]
    acc_y: list[float]
    acc_z: list[float]


_ACC_AXES: Final = ("acc_x", "acc_y", "acc_z")
_INTERLEAVED: Final = list(_ACC_AXES) * 2000  # x, y, z of one sample, then the next sample


class _AccRecord(msgspec.Struct, forbid_unknown_fields=True):
    """Only what an accelerometer record may carry; anything else takes the general path."""

    n: Literal["acc_x", "acc_y", "acc_z"]
    v: float
    t: float = 0.0
    bn: str | None = None
    bt: float | None = None
    u: str | None = None


_acc_decoder: Final = msgspec.json.Decoder(list[_AccRecord])


def _base_fields_first_only(raw: list[_AccRecord] | list[_NumRecord]) -> bool:
    """``bt`` on the first record (checked by the caller) and on no other; ``bn`` at most there."""
    count = len(raw)
    return [r.bt for r in raw].count(None) == count - 1 and [r.bn for r in raw].count(
        None
    ) == count - (raw[0].bn is not None)


def parse_acc_window(
    payload: bytes, *, now: float, max_bytes: int = 256 * 1024, max_future_skew: float = 300.0
) -> AccWindow | None:
    """Fast path for the commonest large pack: one window of ``acc_x/y/z`` samples with an
    absolute ``bt`` on the first record and only ``n``, ``v``, ``t`` (and ``u``) after it.
    Returns None for anything else (including every malformed pack), which then takes
    :func:`parse_senml`, so the refusal reasons stay the same. The shape is checked by msgspec
    (in C); samples sent interleaved (x, y, z of one time, then the next) are split by slicing,
    other orders by time."""
    if len(payload) > max_bytes:
        return None
    try:
        raw = _acc_decoder.decode(payload)
    except msgspec.DecodeError:  # also ValidationError: not an acc-only pack
        return None
    if not raw:
        return None
    first = raw[0]
    bt = first.bt
    if bt is None or abs(bt) < RELATIVE_TIME_LIMIT:
        return None
    if not _base_fields_first_only(raw):
        return None
    axes = _split_interleaved(raw) or _split_by_time(raw)
    if axes is None:
        return None
    times, x, y, z = axes
    start = bt + times[0]
    _check_time(start, now=now, max_future_skew=max_future_skew)
    _check_time(bt + times[-1], now=now, max_future_skew=max_future_skew)
    t0 = times[0]
    return AccWindow(first.bn or "", start, [t - t0 for t in times], x, y, z)


Axes = tuple[list[float], list[float], list[float], list[float]]


def _split_interleaved(raw: list[_AccRecord]) -> Axes | None:
    count = len(raw)
    if count % 3 or count > len(_INTERLEAVED) or [r.n for r in raw] != _INTERLEAVED[:count]:
        return None
    ts = [r.t for r in raw]
    times = ts[0::3]
    if ts[1::3] != times or ts[2::3] != times:
        return None
    if any(a >= b for a, b in itertools.pairwise(times)):
        return None
    vs = [r.v for r in raw]
    return times, vs[0::3], vs[1::3], vs[2::3]


def _split_by_time(raw: list[_AccRecord]) -> Axes | None:
    axes: dict[str, dict[float, float]] = {"acc_x": {}, "acc_y": {}, "acc_z": {}}
    for rec in raw:
        axis = axes[rec.n]
        if rec.t in axis:
            return None
        axis[rec.t] = rec.v
    times = sorted(axes["acc_x"])
    if not times or any(
        len(axes[a]) != len(times) or sorted(axes[a]) != times for a in _ACC_AXES[1:]
    ):
        return None
    x, y, z = (axes[a] for a in _ACC_AXES)
    return times, [x[t] for t in times], [y[t] for t in times], [z[t] for t in times]


class _NumRecord(msgspec.Struct, forbid_unknown_fields=True):
    """Only what a plain numeric reading carries; anything else takes the general path."""

    n: str
    v: float
    t: float = 0.0
    u: str | None = None
    bn: str | None = None
    bt: float | None = None


_num_decoder: Final = msgspec.json.Decoder(list[_NumRecord])
_NOT_TELEMETRY: Final = ACC_NAMES | EVENT_NAMES


class NumericPack(NamedTuple):
    device_prefix: str | None  # "wb-1" from a base name "wb-1:"; None without a base name
    names: list[str]
    times: list[float]
    values: list[float]


def parse_numeric_pack(
    payload: bytes, *, now: float, max_bytes: int = 256 * 1024, max_future_skew: float = 300.0
) -> NumericPack | None:
    """Fast path for the commonest pack: numeric readings (``n``, ``v``, optional ``t`` and
    ``u``) with an absolute ``bt`` and an optional ``bn`` ("device:") on the first record.
    Returns None for anything else, including anything :func:`parse_senml` would refuse, so
    the general path decides with its own reasons. The shape is checked by msgspec, in C."""
    if len(payload) > max_bytes:
        return None
    try:
        raw = _num_decoder.decode(payload)
    except msgspec.DecodeError:  # also ValidationError: not a plain numeric pack
        return None
    if not raw:
        return None
    first = raw[0]
    bt, bn = first.bt, first.bn
    if bt is None or abs(bt) < RELATIVE_TIME_LIMIT:
        return None
    if not _base_fields_first_only(raw):
        return None
    prefix = None
    if bn is not None:
        if not bn.endswith(":") or bn.count(":") != 1:
            return None
        prefix = bn[:-1]
    names = [r.n for r in raw]
    for n in names:
        if _local_name(n) != n or n in _NOT_TELEMETRY:  # no ":" in n, a valid name
            return None
    times = [bt + r.t for r in raw]
    if min(times) < EARLIEST_TIME or max(times) > now + max_future_skew:
        return None
    return NumericPack(prefix, names, times, [r.v for r in raw])


def parse_senml(
    payload: bytes, *, now: float, max_bytes: int = 256 * 1024, max_future_skew: float = 300.0
) -> Pack:
    """Parse and resolve a SenML JSON pack (RFC 8428).

    ``now`` is the server's receive time: relative record times are resolved against it, and
    times further ahead of it than ``max_future_skew`` seconds are refused.
    """
    raw = _decode_pack(payload, max_bytes)
    base_name = ""
    base_time = 0.0
    base_unit: str | None = None
    first_base_name: str | None = None
    records: list[Record] = []
    relative = False
    prefixes: set[str] = set()
    latest = now + max_future_skew
    for i, rec in enumerate(raw):
        if rec.bn is not None:
            base_name = rec.bn
            if first_base_name is None:
                first_base_name = rec.bn
        if rec.bt is not None:
            base_time = rec.bt
        if rec.bu is not None:
            base_unit = rec.bu
        n = rec.n or ""
        if not n and not base_name:
            raise WireError(Reason.BAD_RECORD, f"record {i} has no name")
        # The measurement name is ``n``; a device without ``bn`` may prefix it ("dev-1:hr").
        local = _local_name(n)
        if local is None or ":" in base_name or ":" in n:
            full = base_name + n
            if local is None:
                raise WireError(Reason.BAD_RECORD, f"record {i}: bad name {full!r}")
            prefixes.add(full.split(":", 1)[0])
        value: Value
        num = None
        if rec.vb is None and rec.vs is None and rec.vd is None and rec.v is not None:
            value = rec.v
        else:
            num = rec.v if rec.vb is not None else None
            values: list[Value] = [x for x in (rec.vb, rec.vs, rec.vd) if x is not None]
            if rec.v is not None and rec.vb is None:
                values.append(rec.v)
            if rec.s is not None and not values:
                values = [rec.s]
            if len(values) != 1:
                raise WireError(Reason.BAD_RECORD, f"record {i} ({local}) needs exactly one value")
            value = values[0]
        for x in (value, num):
            if isinstance(x, float) and not math.isfinite(x):
                raise WireError(Reason.BAD_VALUE, f"record {i} ({local}) value is not finite")
        when = base_time + (rec.t or 0.0)
        if abs(when) < RELATIVE_TIME_LIMIT:
            when = now + when
            relative = True
        if not EARLIEST_TIME <= when <= latest:  # also catches NaN
            _check_time(when, now=now, max_future_skew=max_future_skew)
        records.append(Record(local, when, value, rec.u or base_unit, num))
    return Pack(first_base_name or "", tuple(records), relative, frozenset(prefixes))


class DeviceStatus(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """A device's retained status, also its Last Will (``{"online": false}``)."""

    online: bool
    battery: float | None = None
    fw: str | None = None
    ts: float | None = None


_status_decoder: Final = msgspec.json.Decoder(DeviceStatus)


def parse_status(payload: bytes, *, now: float, max_future_skew: float = 300.0) -> DeviceStatus:
    if len(payload) > 4096:
        raise WireError(Reason.TOO_LARGE, f"status of {len(payload)} bytes > 4096")
    try:
        status = _status_decoder.decode(payload)
    except msgspec.ValidationError as exc:
        _require_json(payload)
        raise WireError(Reason.BAD_SHAPE, f"not a status object: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise WireError(Reason.BAD_JSON, str(exc)) from exc
    if status.battery is not None and not (0.0 <= status.battery <= 100.0):
        raise WireError(Reason.BAD_VALUE, f"battery {status.battery} outside 0..100")
    if status.ts is not None:
        _check_time(status.ts, now=now, max_future_skew=max_future_skew)
    return status


class Command(msgspec.Struct, frozen=True, tag_field="type", tag=str.lower, omit_defaults=True):
    """Base of backend -> device commands; the ``type`` field names the command."""


class HelpComing(Command, frozen=True, tag="help_coming"):
    alert_id: str
    eta_s: int | None = None


class AlertCancelled(Command, frozen=True, tag="alert_cancelled"):
    alert_id: str


# The wearer's "I'm OK" to a fall check: an event record named this, ``vs`` the check id.
FALL_CHECK_ANSWER: Final = "fall_check_ok"


class FallCheck(Command, frozen=True, tag="fall_check"):
    """Ask the wearer "did you fall?": vibrate and offer "I'm OK" until ``until_ts``; an
    answer is an event ``fall_check_ok`` with ``vs`` = ``check_id``. A check received after
    ``until_ts`` (a device that was offline) is stale: the device ignores it."""

    check_id: str
    window_s: int
    impact_ts: float
    until_ts: float


# The resident's "I'm fine" to a check-in: an event record named this, ``vs`` the check id.
CHECK_IN_ANSWER: Final = "check_in_ok"


class CheckIn(Command, frozen=True, tag="check_in"):
    """Ask a quiet resident "press if you are fine" (a quiet spell past their normal):
    chime or vibrate and offer one button until ``until_ts``; an answer is an event
    ``check_in_ok`` with ``vs`` = ``check_id``. ``quiet_since_ts`` is the last sign of life.
    Received after ``until_ts`` (a device that was offline): stale, ignored."""

    check_id: str
    window_s: int
    quiet_since_ts: float
    until_ts: float


def encode_command(cmd: Command) -> bytes:
    return msgspec.json.encode(cmd)
