"""The boundary parser: property-based, since devices feed it anything."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.wire import (
    DeviceTopic,
    Reason,
    WireError,
    parse_acc_window,
    parse_numeric_pack,
    parse_senml,
    parse_status,
)

NOW = 1_795_000_000.0
ids = st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)
names = st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True)


@given(site=ids, dev=ids, channel=st.sampled_from(["telemetry", "event", "status", "cmd"]))
def test_topic_round_trips(site: str, dev: str, channel: str) -> None:
    topic = f"eldercare/v1/{site}/{dev}/{channel}"
    assert str(DeviceTopic.parse(topic)) == topic


@given(st.text(max_size=200))
def test_any_topic_parses_or_is_refused_with_a_reason(topic: str) -> None:
    try:
        parsed = DeviceTopic.parse(topic)
    except WireError as exc:
        assert exc.reason is Reason.BAD_TOPIC
    else:
        assert str(parsed) == topic


@given(st.binary(max_size=2000))
@settings(max_examples=300)
def test_any_bytes_parse_or_are_refused_with_a_reason(payload: bytes) -> None:
    try:
        pack = parse_senml(payload, now=NOW)
    except WireError as exc:
        assert isinstance(exc.reason, Reason)
        assert exc.detail
    else:
        assert pack.records


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["n", "v", "vb", "vs", "bn", "bt", "t", "u", "x"]), inner, max_size=5
        )
    ),
    max_leaves=20,
)


@given(json_values)
@settings(max_examples=300)
def test_any_json_parses_or_is_refused_with_a_reason(doc: object) -> None:
    try:
        pack = parse_senml(json.dumps(doc).encode(), now=NOW)
    except WireError as exc:
        assert isinstance(exc.reason, Reason)
    else:
        for rec in pack.records:
            assert math.isfinite(rec.time)
            assert rec.time <= NOW + 300


readings = st.lists(
    st.tuples(names, st.floats(-1e6, 1e6, allow_nan=False), st.floats(0, 100)),
    min_size=1,
    max_size=30,
)


@given(dev=ids, bt=st.floats(1e9, NOW - 200), recs=readings)
def test_valid_packs_resolve_names_times_and_values(
    dev: str, bt: float, recs: list[tuple[str, float, float]]
) -> None:
    pack_json = [{"bn": f"{dev}:", "bt": bt}] + [{"n": n, "v": v, "t": t} for n, v, t in recs]
    pack_json[0].update(pack_json.pop(1))
    pack = parse_senml(json.dumps(pack_json).encode(), now=NOW)
    assert [(r.name, r.value, r.time) for r in pack.records] == [(n, v, bt + t) for n, v, t in recs]
    assert pack.base_name == f"{dev}:"


def test_relative_times_resolve_against_receive_time() -> None:
    pack = parse_senml(b'[{"n":"hr","v":70,"t":-5}]', now=NOW)
    assert pack.records[0].time == NOW - 5


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{", Reason.BAD_JSON),
        (b'{"n":"hr"}', Reason.BAD_SHAPE),
        (b"[]", Reason.BAD_SHAPE),
        (b'[{"n":"hr","v":"70"}]', Reason.BAD_SHAPE),
        (b'[{"n":"hr"}]', Reason.BAD_RECORD),
        (b'[{"n":"hr","v":1,"vs":"x"}]', Reason.BAD_RECORD),
        (b'[{"v":1}]', Reason.BAD_RECORD),
        (b'[{"n":"h r","v":1}]', Reason.BAD_RECORD),
        (b'[{"n":"hr","v":1e999}]', Reason.BAD_JSON),
        (b'[{"n":"hr","v":1,"bt":1795009999}]', Reason.TIME_IN_FUTURE),
        (b'[{"n":"hr","v":1,"bt":600000000}]', Reason.BAD_TIME),
    ],
)
def test_bad_packs_get_a_clear_reason(payload: bytes, reason: Reason) -> None:
    with pytest.raises(WireError) as info:
        parse_senml(payload, now=NOW)
    assert info.value.reason is reason


def test_oversized_payload_is_refused_before_parsing() -> None:
    with pytest.raises(WireError) as info:
        parse_senml(b"[" + b" " * 300_000 + b"]", now=NOW)
    assert info.value.reason is Reason.TOO_LARGE


def test_fall_carries_a_confidence() -> None:
    rec = parse_senml(b'[{"n":"fall","vb":true,"v":0.9,"bt":1794999999}]', now=NOW).records[0]
    assert (rec.value, rec.num) == (True, 0.9)


def test_status_and_last_will() -> None:
    assert parse_status(b'{"online": false}', now=NOW).online is False
    st_ = parse_status(
        b'{"online": true, "battery": 87, "fw": "1.4.2", "ts": 1795000000.0}', now=NOW
    )
    assert (st_.battery, st_.fw) == (87, "1.4.2")
    for bad, reason in (
        (b'{"battery": 5}', Reason.BAD_SHAPE),
        (b'{"online": true, "battery": 140}', Reason.BAD_VALUE),
        (b"nope", Reason.BAD_JSON),
    ):
        with pytest.raises(WireError) as info:
            parse_status(bad, now=NOW)
        assert info.value.reason is reason


@st.composite
def acc_packs(draw: st.DrawFn) -> tuple[bytes, str]:
    # distinct sample times at least 1 ms apart (devices sample at up to a few hundred Hz)
    ms = draw(st.lists(st.integers(0, 5000), min_size=1, max_size=60, unique=True))
    offsets = sorted(m / 1000 for m in ms)
    value = st.floats(-160, 160, allow_nan=False, allow_infinity=False)
    recs: list[dict[str, object]] = [
        {"n": axis, "v": draw(value), "t": t, **({"u": "m/s2"} if draw(st.booleans()) else {})}
        for t in offsets
        for axis in ("acc_x", "acc_y", "acc_z")
    ]
    order = draw(st.sampled_from(["interleaved", "by_axis", "shuffled"]))
    if order == "by_axis":
        recs.sort(key=lambda r: str(r["n"]))
    elif order == "shuffled":
        recs = draw(st.permutations(recs))
    recs[0] = {"bn": "wb-1:", "bt": NOW - 10, **recs[0]}
    return json.dumps(recs).encode(), order


@given(acc_packs())
def test_acc_fast_path_agrees_with_the_general_parser(pack: tuple[bytes, str]) -> None:
    payload, _order = pack
    win = parse_acc_window(payload, now=NOW)
    assert win is not None
    general = parse_senml(payload, now=NOW)
    by_axis: dict[str, list[tuple[float, float]]] = {"acc_x": [], "acc_y": [], "acc_z": []}
    for rec in general.records:
        by_axis[rec.name].append((rec.time, float(rec.value)))
    for axis, got in zip(by_axis, (win.acc_x, win.acc_y, win.acc_z), strict=True):
        assert [v for _t, v in sorted(by_axis[axis])] == got
    times = [t for t, _v in sorted(by_axis["acc_x"])]
    assert [win.start + o for o in win.t_offset] == pytest.approx(times, abs=1e-6)
    assert win.base_name == "wb-1:"


@pytest.mark.parametrize(
    "extra",
    [{"n": "hr", "v": 70}, {"n": "acc_x", "vb": True}, {"n": "acc_x", "v": 1, "bt": NOW}],
    ids=["other-metric", "boolean", "second-base-time"],
)
def test_acc_fast_path_leaves_anything_else_to_the_general_parser(
    extra: dict[str, object],
) -> None:
    recs = [{"bn": "wb-1:", "bt": NOW - 10, "n": "acc_x", "v": 0.1, "t": 0}]
    recs += [{"n": "acc_y", "v": 0.2, "t": 0}, {"n": "acc_z", "v": 9.8, "t": 0}, extra]
    assert parse_acc_window(json.dumps(recs).encode(), now=NOW) is None


@st.composite
def numeric_packs(draw: st.DrawFn) -> bytes:
    recs: list[dict[str, object]] = [
        {
            "n": draw(st.sampled_from(["hr", "spo2", "rr", "battery", "temp", "x:y", "acc_x"])),
            "v": draw(st.floats(-1e6, 1e6, allow_nan=False) | st.integers(-1000, 1000)),
            **({"t": draw(st.floats(-10, 10, allow_nan=False))} if draw(st.booleans()) else {}),
            **({"u": "%"} if draw(st.booleans()) else {}),
        }
        for _ in range(draw(st.integers(1, 8)))
    ]
    base = {"bt": draw(st.sampled_from([NOW - 60, NOW + 10_000, 12.0]))}
    base_name = draw(st.sampled_from([None, "wb-1:", "wb-1", "a:b:"]))
    if base_name is not None:
        base["bn"] = base_name
    recs[0] = {**base, **recs[0]}
    if draw(st.booleans()):  # sometimes something the fast path leaves alone
        recs.append(draw(st.sampled_from([{"n": "sos", "vb": True}, {"n": "x", "vs": "a"}])))
    return json.dumps(recs).encode()


@given(numeric_packs())
def test_numeric_fast_path_agrees_with_the_general_parser(payload: bytes) -> None:
    fast = parse_numeric_pack(payload, now=NOW)
    try:
        general = parse_senml(payload, now=NOW)
    except WireError:
        assert fast is None  # whatever the general path refuses, the fast path leaves to it
        return
    if fast is None:
        return  # a valid pack outside the fast path's shape: the general path handles it
    assert not general.relative_time
    assert [(r.name, r.time, r.value) for r in general.records] == list(
        zip(fast.names, fast.times, fast.values, strict=True)
    )
    assert general.name_prefixes == (
        frozenset({fast.device_prefix}) if fast.device_prefix else frozenset()
    )


def test_the_commonest_packs_take_the_fast_path() -> None:
    from simulators.load import payload

    for seq in range(3):
        _channel, body, _retain = payload("vitals", "wb-1", NOW - 1, seq)
        fast = parse_numeric_pack(body, now=NOW)
        assert fast is not None
        assert fast.device_prefix == "wb-1"
        assert fast.names == ["hr", "spo2", "battery"]
    bare = b'[{"bt":1794999990,"n":"hr","v":70},{"n":"rr","v":14,"t":1}]'
    assert parse_numeric_pack(bare, now=NOW) == (
        None,
        ["hr", "rr"],
        [1794999990, 1794999991],
        [70, 14],
    )
