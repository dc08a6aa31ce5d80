"""Ingest against the real broker and database: stored once, refused with a reason, never lost."""

from __future__ import annotations

import json
import time
import uuid

from devtools.seed import DemoPopulation
from tests.services import (
    Services,
    device,
    publish,
    query,
    running,
    seed,
    wait_for_beat,
    wait_until,
    worker_env,
)


def _pub(
    s: Services, pop: DemoPopulation, device_id: str, channel: str, payload: object, **kw: object
) -> int:
    d = device(pop, device_id)
    body = payload if isinstance(payload, bytes | str) else json.dumps(payload)
    return publish(
        s,
        username=d.device_id,
        password=d.password,
        topic=f"eldercare/v1/{d.site_id}/{d.device_id}/{channel}",
        payload=body,
        **kw,
    )  # type: ignore[arg-type]


def wait_for_ingest(s: Services, url: str, pop: DemoPopulation) -> None:
    """Publish probe readings until one is committed: the worker is then subscribed."""

    def probe() -> bool:
        _pub(
            s,
            pop,
            "wb-0042",
            "telemetry",
            [{"bn": "wb-0042:", "n": "probe", "v": 1.0, "bt": time.time()}],
        )
        return bool(query(url, "SELECT 1 FROM telemetry WHERE metric = 'probe' LIMIT 1"))

    wait_until(probe, timeout=30, what="ingest worker subscribed")


def test_messages_are_stored_once_and_bad_ones_are_dead_lettered(
    services: Services, database_url: str
) -> None:
    pop = seed(services, database_url)
    with running("ingest", worker_env(services, database_url)):
        wait_for_ingest(services, database_url, pop)
        t0 = time.time() - 60
        vitals = [
            {"bn": "wb-0042:", "bt": t0, "n": "hr", "u": "beat/min", "v": 71},
            {"n": "spo2", "u": "%", "v": 97},
            {"n": "battery", "u": "%EL", "v": 80},
        ]
        window = [
            {"bn": "wb-0042:", "bt": t0, "n": "acc_x", "v": 0.1, "t": 0},
            {"n": "acc_y", "v": 0.2, "t": 0},
            {"n": "acc_z", "v": 9.8, "t": 0},
            {"n": "acc_x", "v": 0.3, "t": 0.02},
            {"n": "acc_y", "v": 0.1, "t": 0.02},
            {"n": "acc_z", "v": 9.7, "t": 0.02},
        ]
        door = [{"bn": "door-0042:", "bt": t0, "n": "door", "vs": "open"}]
        for _ in range(2):  # every message twice: a device resend must be stored once
            _pub(services, pop, "wb-0042", "telemetry", vitals)
            _pub(services, pop, "wb-0042", "telemetry", window)
            _pub(services, pop, "door-0042", "event", door)
        _pub(services, pop, "wb-0042", "telemetry", b"{not json")
        _pub(
            services, pop, "wb-0042", "telemetry", [{"n": "hr", "v": 70, "bt": time.time() + 3600}]
        )
        _pub(services, pop, "door-0042", "event", [{"n": "door", "vs": "ajar", "bt": t0}])
        _pub(
            services,
            pop,
            "wb-0042",
            "status",
            {"online": True, "battery": 79, "fw": "1.2", "ts": t0},
        )
        wait_until(
            lambda: len(query(database_url, "SELECT 1 FROM dead_letters")) == 3,
            what="three dead letters",
        )
        wait_until(
            lambda: bool(query(database_url, "SELECT 1 FROM device_status WHERE fw = '1.2'")),
            what="status stored",
        )
        # Ingest carries on after bad input: a later good message is stored.
        _pub(
            services,
            pop,
            "wb-0042",
            "telemetry",
            [{"bn": "wb-0042:", "bt": t0 + 1, "n": "hr", "v": 72}],
        )
        wait_until(
            lambda: len(query(database_url, "SELECT 1 FROM telemetry WHERE metric = 'hr'")) == 2,
            what="second hr reading",
        )

    metrics = query(
        database_url,
        "SELECT metric, value FROM telemetry WHERE metric <> 'probe' ORDER BY metric, time",
    )
    assert metrics == [
        {"metric": "battery", "value": 80.0},
        {"metric": "hr", "value": 71.0},
        {"metric": "hr", "value": 72.0},
        {"metric": "spo2", "value": 97.0},
    ]
    windows = query(database_url, "SELECT t_offset, acc_z FROM acc_windows")
    assert len(windows) == 1
    assert windows[0]["acc_z"] == [9.8, 9.7] or [round(v, 3) for v in windows[0]["acc_z"]] == [
        9.8,
        9.7,
    ]
    assert query(database_url, "SELECT name, value_text FROM events") == [
        {"name": "door", "value_text": "open"}
    ]
    dead = {
        r["reason"]: r
        for r in query(database_url, "SELECT reason, detail, payload FROM dead_letters")
    }
    assert set(dead) == {"bad_json", "time_in_future", "bad_value"}
    assert bytes(dead["bad_json"]["payload"]) == b"{not json"
    assert "ajar" in dead["bad_value"]["detail"]


def test_sos_over_mqtt_opens_a_red_dispatch_order(services: Services, database_url: str) -> None:
    pop = seed(services, database_url)
    env = worker_env(services, database_url)
    with running("ingest", env), running("alerts", env) as alerts:
        wait_for_ingest(services, database_url, pop)
        wait_for_beat(database_url, alerts)
        pressed = time.time()
        _pub(
            services,
            pop,
            "btn-0042",
            "event",
            [{"bn": "btn-0042:", "bt": pressed, "n": "sos", "vb": True}],
        )
        wait_until(
            lambda: bool(query(database_url, "SELECT 1 FROM dispatch_orders")),
            what="dispatch order",
        )
        # A second press a few seconds later is the same emergency: still one order.
        _pub(
            services,
            pop,
            "btn-0042",
            "event",
            [{"bn": "btn-0042:", "bt": pressed + 3, "n": "sos", "vb": True}],
        )
        wait_until(
            lambda: len(query(database_url, "SELECT 1 FROM events WHERE name = 'sos'")) == 2,
            what="second press stored",
        )
        wait_until(
            lambda: not query(database_url, "SELECT 1 FROM stream_outbox"), what="outbox drained"
        )
    orders = query(
        database_url,
        "SELECT o.state, o.colour, o.category, o.accept_deadline - o.opened_at AS window,"
        " o.opened_at, o.event_at, r.full_name, a.explanation FROM dispatch_orders o "
        "JOIN alerts a USING (alert_id) JOIN residents r ON r.resident_id = o.resident_id",
    )
    assert len(orders) == 1
    order = orders[0]
    assert (order["state"], order["colour"], order["category"]) == ("queued", "red", "sos")
    assert order["window"].total_seconds() == 60
    assert order["full_name"] == device(pop, "btn-0042").resident
    assert "SOS pressed by" in order["explanation"]
    assert (order["opened_at"].timestamp() - pressed) < 30
    transitions = query(database_url, "SELECT to_state, actor FROM order_transitions")
    assert transitions == [{"to_state": "queued", "actor": "system"}]


def test_messages_sent_while_ingest_is_down_are_stored_after_restart(
    services: Services, database_url: str
) -> None:
    pop = seed(services, database_url)
    env = worker_env(services, database_url)  # same client id across restarts: same session
    with running("ingest", env):
        wait_for_ingest(services, database_url, pop)
    t0 = time.time() - 30
    for i in range(50):
        _pub(
            services,
            pop,
            "bed-0042",
            "telemetry",
            [{"bn": "bed-0042:", "bt": t0 + i, "n": "rr", "v": 14 + i % 3}],
        )
    assert not query(database_url, "SELECT 1 FROM telemetry WHERE metric = 'rr'")
    with running("ingest", env):
        wait_until(
            lambda: len(query(database_url, "SELECT 1 FROM telemetry WHERE metric = 'rr'")) == 50,
            what="the 50 readings published while the worker was down",
        )


def test_a_device_cannot_publish_as_another(services: Services, database_url: str) -> None:
    pop = seed(services, database_url)
    with running("ingest", worker_env(services, database_url)):
        wait_for_ingest(services, database_url, pop)
        intruder = device(pop, "btn-0042")
        rc = publish(
            services,
            username=intruder.device_id,
            password=intruder.password,
            topic="eldercare/v1/home-18/btn-0043/event",
            payload=json.dumps([{"n": "sos", "vb": True, "bt": time.time()}]),
        )
        assert rc != 0  # the broker refuses the publish (MQTT v5 reason: not authorized)
        marker = f"m{uuid.uuid4().hex[:6]}"
        _pub(
            services,
            pop,
            "btn-0042",
            "event",
            [{"bn": "btn-0042:", "n": marker, "vb": True, "bt": time.time()}],
        )
        wait_until(
            lambda: bool(query(database_url, "SELECT 1 FROM events WHERE name = %s", (marker,))),
            what="the intruder's own event",
        )
    assert not query(database_url, "SELECT 1 FROM events WHERE name = 'sos'")
