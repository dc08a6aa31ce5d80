"""Hostile and messy input: every case gets a reason (dead letter or metric), never a crash.

Pure properties first (hypothesis over the decoder), then the same cases through the real
broker, worker and database.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.ingest import counts
from bench.stack import provision
from devices.registry import DeviceRef
from devices.wire import Reason
from devtools.servers import free_port
from ingest.decode import DeadLetter, Decoded, Limits, RawMessage, decode
from ingest.ratelimit import TokenBuckets
from simulators.load import device_ids, payload
from simulators.load_run import LoadSpec, run_load
from tests.services import LOAD_USER, Services, query, running, wait_until, worker_env

NOW = 1_795_000_000.0
REFS = {"wb-1": DeviceRef(7, "wb-1", "home-1", "wristband", False)}
TOPIC = "eldercare/v1/home-1/wb-1/telemetry"

json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=8),
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=4), kids, max_size=4)
    ),
    max_leaves=20,
)
senml_keys = st.sampled_from(["bn", "bt", "n", "v", "vb", "vs", "t", "u", "bu", "s"])
records = st.dictionaries(senml_keys, json_values, max_size=5)


def _decode(payload: bytes, topic: str = TOPIC) -> Decoded | DeadLetter:
    return decode(RawMessage(topic, payload, NOW), REFS, Limits())


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    out = _decode(data)
    assert isinstance(out, Decoded | DeadLetter)


@given(st.lists(records, max_size=6) | json_values)
@settings(max_examples=300)
def test_wrong_types_and_shapes_get_a_reason(value: object) -> None:
    out = _decode(json.dumps(value).encode())
    if isinstance(out, DeadLetter):
        assert out.reason in set(Reason)
        assert out.detail


@given(st.sampled_from(["wb-2", "other", "wb-1x"]), st.sampled_from(["bn", "n"]))
def test_names_of_another_device_are_refused(other: str, where: str) -> None:
    rec = (
        {"bn": f"{other}:", "bt": NOW, "n": "hr", "v": 70}
        if where == "bn"
        else {"bt": NOW, "n": f"{other}:hr", "v": 70}
    )
    out = _decode(json.dumps([rec]).encode())
    assert isinstance(out, DeadLetter)
    assert out.reason is Reason.NAME_MISMATCH
    own = _decode(json.dumps([{**rec, "bn": "wb-1:", "n": "hr"}]).encode())
    assert isinstance(own, Decoded)


def test_acc_window_of_another_device_is_refused_on_the_fast_path_too() -> None:
    _, body, _ = payload("acc", "wb-2", NOW - 5, 1)
    out = _decode(body)
    assert isinstance(out, DeadLetter)
    assert out.reason is Reason.NAME_MISMATCH


def test_relative_times_are_refused_so_redelivery_stays_idempotent() -> None:
    out = _decode(b'[{"n":"hr","v":70,"t":-5}]')
    assert isinstance(out, DeadLetter)
    assert out.reason is Reason.RELATIVE_TIME


@given(st.floats(min_value=0, max_value=300))
def test_clock_ahead_within_tolerance_is_stored(ahead: float) -> None:
    assert isinstance(
        _decode(json.dumps([{"n": "hr", "v": 1, "bt": NOW + ahead}]).encode()), Decoded
    )


@given(st.floats(min_value=300.001, max_value=1e7))
def test_clock_ahead_beyond_tolerance_is_dead_lettered(ahead: float) -> None:
    out = _decode(json.dumps([{"n": "hr", "v": 1, "bt": NOW + ahead}]).encode())
    assert isinstance(out, DeadLetter)
    assert out.reason is Reason.TIME_IN_FUTURE


def test_huge_payload_is_refused_before_parsing() -> None:
    out = _decode(b"[" + b'{"n":"hr","v":1},' * 20_000 + b'{"n":"hr","v":1}]')
    assert isinstance(out, DeadLetter)
    assert out.reason is Reason.TOO_LARGE


def test_token_bucket_limits_the_flooder_not_the_others() -> None:
    buckets = TokenBuckets(rate=10, burst=20)
    flood = sum(buckets.allow("flood", 100.0 + i / 1000) for i in range(1000))  # 1,000 in 1 s
    assert flood == 20 + 9  # the burst, then 10/s for the ~0.999 s that passed (rounded down)
    assert all(buckets.allow(f"quiet-{i}", 101.0) for i in range(100))
    assert buckets.allow("flood", 103.0)  # refilled


# --- through the broker, worker and database ---------------------------------------------


DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize(
    "payload",
    [DEEP, b'[{"n":"hr","v":' + DEEP + b"}]", b'[{"n":"hr","bt":1795000000,"v":1,"x":' + DEEP + b"}]",
     b"{" * 50_000 + b"}" * 50_000, b'[{"a":' * 30_000 + b"1" + b"}]" * 30_000],
)  # fmt: skip
def test_deep_nesting_is_a_dead_letter_not_a_crash(payload: bytes) -> None:
    out = _decode(payload)
    assert isinstance(out, DeadLetter)
    assert out.payload == payload
    assert out.reason in {Reason.BAD_JSON, Reason.BAD_SHAPE}


@given(st.integers(1, 200_000), st.sampled_from([b"[", b"{", b'[{"v":', b'{"a":[']))
@settings(max_examples=30, deadline=None)
def test_any_nesting_depth_is_decoded_or_dead_lettered(depth: int, opener: bytes) -> None:
    closer = b"".join({b"[": b"]", b"{": b"}"}.get(bytes([c]), b"") for c in reversed(opener))
    out = _decode(opener * depth + b"1" + closer * depth)
    assert isinstance(out, DeadLetter)


def test_an_unexpected_decoder_exception_is_a_dead_letter(monkeypatch: pytest.MonkeyPatch) -> None:
    import ingest.decode as mod

    def boom(*_: object, **__: object) -> None:
        raise ZeroDivisionError("decoder bug")

    monkeypatch.setattr(mod, "parse_numeric_pack", boom)
    out = _decode(b'[{"n":"hr","v":70,"bt":1795000000}]')
    assert isinstance(out, DeadLetter)
    assert "ZeroDivisionError" in out.detail


@pytest.mark.parametrize(
    ("name", "value"),
    [("hr", -1e308), ("hr", -1), ("hr", 301), ("spo2", 101), ("spo2", -0.5), ("rr", -3),
     ("rr", 1e9), ("temp", 1e308), ("temp", -100), ("battery", 140), ("battery", -1)],
)  # fmt: skip
@pytest.mark.parametrize("with_event", [False, True])  # fast path, general path
def test_implausible_values_are_refused(name: str, value: float, with_event: bool) -> None:
    recs: list[dict[str, object]] = [{"bn": "wb-1:", "bt": NOW, "n": name, "v": value}]
    if with_event:
        recs.append({"n": "motion", "vb": True})
    out = _decode(json.dumps(recs).encode())
    assert isinstance(out, DeadLetter), out
    assert out.reason is Reason.BAD_VALUE, out


@pytest.mark.parametrize(("good", "bad"), [(-159.0, -161.0), (159.0, 161.0), (0.0, 1e30)])
def test_acceleration_bounds_are_16_g(good: float, bad: float) -> None:
    ok = [{"bt": NOW, "n": "acc_x", "v": good}, {"n": "acc_y", "v": 0}, {"n": "acc_z", "v": 0}]
    assert isinstance(_decode(json.dumps(ok).encode()), Decoded)
    ok[0]["v"] = bad
    out = _decode(json.dumps(ok).encode())
    assert isinstance(out, DeadLetter)
    assert out.reason is Reason.BAD_VALUE


def _pub(s: Services, topic: str, body: bytes) -> None:
    subprocess.run(
        ["mosquitto_pub", "-p", str(s.broker.port), "-u", LOAD_USER[0], "-P", LOAD_USER[1],
         "-q", "1", "-t", topic, "-s"],
        input=body, check=True,
    )  # fmt: skip


def _metric(port: int, name: str, reason: str | None = None) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        lines = resp.read().decode().splitlines()
    label = f'{{reason="{reason}"}}' if reason else ""
    return sum(float(line.split()[-1]) for line in lines if line.startswith(f"{name}{label} "))


@pytest.mark.integration
def test_messy_input_through_the_real_pipeline(services: Services, database_url: str) -> None:
    provision(database_url, devices=4, sites=1)
    (site, dev), (_, other), (_, probe) = device_ids(4, 1)[:3]
    base = f"eldercare/v1/{site}/{dev}"
    port = free_port()
    with running("ingest", worker_env(services, database_url), "--metrics-port", str(port)):
        _wait_ready(services, database_url, site, probe)
        now = time.time()
        cases = {
            "bad_json": (f"{base}/telemetry", b"[{nope"),
            "bad_shape": (f"{base}/telemetry", b'[{"n":"hr","v":"seventy","bt":1}]'),
            "too_large": (f"{base}/telemetry", b"[" + b'{"n":"hr","v":1},' * 20_000 + b"1]"),
            "unknown_device": ("eldercare/v1/ghosts/ghost-1/telemetry", b"[]"),
            "name_mismatch": (f"{base}/event", json.dumps([{"bn": f"{other}:", "bt": now, "n": "sos", "vb": True}]).encode()),
            "time_in_future": (f"{base}/telemetry", json.dumps([{"n": "hr", "v": 70, "bt": now + 900}]).encode()),
            "relative_time": (f"{base}/telemetry", b'[{"n":"hr","v":70,"t":-1}]'),
            "bad_value": (f"{base}/telemetry", json.dumps([{"n": "hr", "v": -1e308, "bt": now}]).encode()),
        }  # fmt: skip
        for topic, body in cases.values():
            _pub(services, topic, body)
        late = [{"bn": f"{dev}:", "bt": now - 3 * 3600, "n": "sos", "vb": True}]
        ahead = [{"bn": f"{dev}:", "bt": now + 120, "n": "hr", "v": 71}]
        _pub(services, f"{base}/event", json.dumps(late).encode())
        _pub(services, f"{base}/telemetry", json.dumps(ahead).encode())
        wait_until(
            lambda: (
                len(query(database_url, "SELECT 1 FROM dead_letters")) == len(cases)
                and len(query(database_url, "SELECT 1 FROM telemetry WHERE metric = 'hr'")) == 1
                and counts(database_url)["events"] == 1
            ),
            what="every case handled",
        )
        assert _metric(port, "ingest_late_messages_total") == 1
        for reason in cases:
            assert _metric(port, "ingest_messages_rejected_total", reason) == 1, reason
    reasons = {r["reason"] for r in query(database_url, "SELECT reason FROM dead_letters")}
    assert reasons == set(cases)
    # The late SOS is stored with its own time and still reaches the detectors, which judge it.
    outbox = query(database_url, "SELECT kind, name, time FROM stream_outbox")
    assert [(r["kind"], r["name"]) for r in outbox] == [("event", "sos")]
    assert abs(outbox[0]["time"].timestamp() - (now - 3 * 3600)) < 0.001


@pytest.mark.integration
def test_a_flooding_device_is_limited_and_the_others_are_not(
    services: Services, database_url: str
) -> None:
    provision(database_url, devices=20, sites=2)
    flooder = device_ids(1, 1, "fl")
    with psycopg_conn(database_url) as conn:
        conn.execute(
            "INSERT INTO sites (site_id, name, kind) VALUES (%s, 'f', 'nursing_home')",
            (flooder[0][0],),
        )
        conn.execute("INSERT INTO devices (device_id, site_id, kind) VALUES (%s, %s, 'radar')", (flooder[0][1], flooder[0][0]))  # fmt: skip
    port = free_port()
    env = worker_env(services, database_url)
    env.update({"ELDERCARE_INGEST_DEVICE_RATE": "20", "ELDERCARE_INGEST_DEVICE_BURST": "50"})
    spec = dict(host="127.0.0.1", port=services.broker.port, username=LOAD_USER[0], password=LOAD_USER[1], processes=1, status=0.0, event=0.0, acc=0.0)  # fmt: skip
    with running("ingest", env, "--metrics-port", str(port)):
        _wait_ready(services, database_url, *device_ids(20, 2)[0])
        started = time.monotonic()
        flood = run_load(
            LoadSpec(devices=1, sites=1, prefix="fl", messages=3000, **spec), live=False
        )  # type: ignore[arg-type]
        quiet = run_load(LoadSpec(devices=20, sites=2, messages=200, rate=100, **spec), live=False)  # type: ignore[arg-type]
        elapsed = time.monotonic() - started
        wait_until(
            lambda: _metric(port, "ingest_messages_received_total") >= flood.sent + quiet.sent,
            what="all taken from the broker",
        )
        # An SOS during its own device's flood (the bucket is empty): it passes and is stored.
        sos = [{"bn": f"{flooder[0][1]}:", "bt": time.time(), "n": "sos", "vb": True}]
        _pub(
            services,
            f"eldercare/v1/{flooder[0][0]}/{flooder[0][1]}/event",
            json.dumps(sos).encode(),
        )
        wait_until(lambda: counts(database_url)["events"] == 1, what="the SOS stored")
        time.sleep(1.0)
        dropped = _metric(port, "ingest_messages_rejected_total", "rate_limited")
    health = query(database_url, "SELECT dropped_messages FROM device_status s JOIN devices d USING (device_key) WHERE d.device_id = %s", (flooder[0][1],))  # fmt: skip
    assert health[0]["dropped_messages"] == dropped > 0  # device health shows the count
    assert query(database_url, "SELECT count(*) AS n FROM dead_letters WHERE reason = 'rate_limited'")[0]["n"] >= 1  # fmt: skip
    rows = {
        r["device_id"]: r["n"]
        for r in query(database_url, "SELECT d.device_id, count(*) AS n FROM telemetry t JOIN devices d USING (device_key) WHERE metric <> 'probe' GROUP BY 1")
    }  # fmt: skip
    assert all(rows[d] == 3 * 10 for _, d in device_ids(20, 2))  # 200 msgs / 20 devices, 3 rows
    stored = rows[flooder[0][1]] // 3
    assert stored + dropped == flood.sent  # every flooded message is stored or counted
    assert stored <= 50 + 20 * (elapsed + 1)


@pytest.mark.integration
def test_a_poison_message_is_dead_lettered_once_and_ingest_keeps_storing(
    services: Services, database_url: str
) -> None:
    """100,000 ``[`` then ``]`` (finding 1): a dead letter acknowledged once, never a crash
    loop; the worker stores every other device's message afterwards (exact counts)."""
    provision(database_url, devices=4, sites=1)
    (site, dev), (_, probe), *others = device_ids(4, 1)
    with running("ingest", worker_env(services, database_url)) as proc:
        _wait_ready(services, database_url, site, probe)
        _pub(services, f"eldercare/v1/{site}/{dev}/telemetry", DEEP)
        _pub(services, f"eldercare/v1/{site}/{dev}/event", b'[{"n":"sos","vb":' + DEEP + b"}]")
        now = time.time()
        for i in range(20):
            for _, other in others:
                body = [{"bn": f"{other}:", "bt": now + i * 0.01, "n": "hr", "v": 60 + i}]
                _pub(services, f"eldercare/v1/{site}/{other}/telemetry", json.dumps(body).encode())
        wait_until(
            lambda: len(query(database_url, "SELECT 1 FROM telemetry WHERE metric = 'hr'")) == 40,
            what="the other devices' readings stored",
        )
        time.sleep(1.5)  # a redelivery loop would count the poison up meanwhile
        assert proc.poll() is None  # still running
    dead = query(database_url, "SELECT reason, times_seen, length(payload) AS n FROM dead_letters ORDER BY n")  # fmt: skip
    assert [(d["reason"], d["times_seen"]) for d in dead] == [("bad_json", 1)] * 2
    assert dead[0]["n"] == len(DEEP)
    # Restarted on the same persistent session: nothing is redelivered.
    with running("ingest", worker_env(services, database_url)):
        _wait_ready(services, database_url, site, probe)
        time.sleep(1.0)
    assert [
        d["times_seen"] for d in query(database_url, "SELECT times_seen FROM dead_letters")
    ] == [1, 1]


def _wait_ready(s: Services, url: str, site: str, dev: str) -> None:
    """Publish probe readings until one is stored: the worker is then subscribed."""

    def probe() -> bool:
        body = json.dumps([{"bn": f"{dev}:", "bt": time.time(), "n": "probe", "v": 1}])
        _pub(s, f"eldercare/v1/{site}/{dev}/telemetry", body.encode())
        time.sleep(0.2)
        return bool(query(url, "SELECT 1 FROM telemetry WHERE metric = 'probe'"))

    wait_until(probe, timeout=30, what="worker subscribed")


def psycopg_conn(url: str):  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(url, autocommit=True)


@pytest.mark.integration
def test_life_safety_outbox_rows_have_first_claim(services: Services, database_url: str) -> None:
    """The alerts worker claims sos/fall/smoke before older acc/motion rows (finding 13)."""
    import psycopg
    from psycopg.rows import dict_row

    from alerts.detection.worker import CLAIM_SQL, claim_params

    provision(database_url, devices=2, sites=1)
    key = query(database_url, "SELECT min(device_key) AS k FROM devices")[0]["k"]
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        for i in range(20):
            conn.execute("INSERT INTO stream_outbox (kind, device_key, time, name) VALUES ('acc', %s, to_timestamp(%s), 'acc')", (key, NOW + i))  # fmt: skip
        for name in ("sos", "fall", "smoke"):
            conn.execute("INSERT INTO stream_outbox (kind, device_key, time, name, value_bool) VALUES ('event', %s, to_timestamp(%s), %s, true)", (key, NOW + 30, name))  # fmt: skip
        conn.commit()
        claimed = conn.execute(CLAIM_SQL, claim_params(5)).fetchall()
        conn.commit()
    names = [r["name"] for r in claimed]
    assert sorted(names) == ["acc", "acc", "fall", "smoke", "sos"]
    assert len(query(database_url, "SELECT 1 FROM stream_outbox")) == 18  # only 5 taken


@pytest.mark.integration
def test_the_life_safety_lane_claims_only_sos_fall_and_smoke(
    services: Services, database_url: str
) -> None:
    """The alerts worker's life-safety loop (its own claim) takes sos/fall/smoke and leaves every
    other row to the main loop, however many wait; the main loop may still take them too."""
    import psycopg
    from psycopg.rows import dict_row

    from alerts.detection.worker import CLAIM_LIFE_SAFETY_SQL, claim_params

    provision(database_url, devices=2, sites=1)
    key = query(database_url, "SELECT min(device_key) AS k FROM devices")[0]["k"]
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        for i in range(20):
            conn.execute("INSERT INTO stream_outbox (kind, device_key, time, name) VALUES ('acc', %s, to_timestamp(%s), 'acc')", (key, NOW + i))  # fmt: skip
        conn.execute("INSERT INTO stream_outbox (kind, device_key, time, name, value_bool) VALUES ('event', %s, to_timestamp(%s), 'motion', true)", (key, NOW + 25))  # fmt: skip
        for name in ("sos", "fall", "smoke"):
            conn.execute("INSERT INTO stream_outbox (kind, device_key, time, name, value_bool) VALUES ('event', %s, to_timestamp(%s), %s, true)", (key, NOW + 30, name))  # fmt: skip
        conn.commit()
        claimed = conn.execute(CLAIM_LIFE_SAFETY_SQL, claim_params(50)).fetchall()
        conn.commit()
        again = conn.execute(CLAIM_LIFE_SAFETY_SQL, claim_params(50)).fetchall()
        conn.commit()
    assert sorted(r["name"] for r in claimed) == ["fall", "smoke", "sos"]
    assert again == []
    left = query(database_url, "SELECT name FROM stream_outbox")
    assert sorted({r["name"] for r in left}) == ["acc", "motion"]
    assert len(left) == 21
