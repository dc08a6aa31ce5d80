"""Real services for the test suite: one PostgreSQL+TimescaleDB cluster and one Mosquitto per
test session (devtools.local_services, the stack the main job and the benchmarks use too), a
fresh database per test, and the test-only broker accounts and helpers."""

from __future__ import annotations

import time
import uuid
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from psycopg.rows import dict_row

from devices.credentials import ADMIN_USERNAME, ServiceUser, mosquitto_hash
from devtools import local_services
from devtools.local_services import (
    ROOT,
    add_devices,
    can_connect,
    fresh_database,
    running,
    seed,
    wait_until,
)
from devtools.local_services import LocalServices as Services
from devtools.seed import DemoPopulation

__all__ = [
    "JANITOR_PASSWORD",
    "LOAD_USER",
    "ROOT",
    "Services",
    "add_devices",
    "can_connect",
    "clear_retained",
    "device",
    "fresh_database",
    "janitor_user",
    "load_user",
    "publish",
    "query",
    "running",
    "seed",
    "start_services",
    "wait_until",
    "worker_env",
]

LOAD_USER = ("loadgen", "load-test-pw")
JANITOR_PASSWORD = "janitor-test-pw"
PASSWORDS = {
    "ingest": "ingest-test-pw",
    "backend": "backend-test-pw",
    ADMIN_USERNAME: "broker-admin-test-pw",
}
# the workers poll fast; the tests' webhook sinks are on loopback (see tests/conftest.py)
WORKER_SETTINGS = {
    "ELDERCARE_ALERTS_POLL_INTERVAL_S": "0.2",
    "ELDERCARE_WEBHOOK_ALLOW_HOSTS": '["127.0.0.1"]',
}


def load_user() -> ServiceUser:
    """The load publisher's account (tests only): it speaks for every load-fleet device."""
    return ServiceUser(LOAD_USER[0], mosquitto_hash(LOAD_USER[1]), write=("eldercare/v1/#",))


def janitor_user() -> ServiceUser:
    """A test-only broker account that may clear retained messages between tests (the demo
    devices have the same ids in every test, so a retained status would leak into the next)."""
    return ServiceUser(
        "janitor", mosquitto_hash(JANITOR_PASSWORD), read=("eldercare/#",), write=("eldercare/#",)
    )


def start_services() -> Services:
    s = local_services.start(
        db_password="test-pw",
        passwords=PASSWORDS,
        extra_users=(janitor_user(), load_user()),
        fast=True,
    )
    local_services.make_template(s)
    return s


def worker_env(s: Services, database_url: str, *, username: str = "ingest") -> dict[str, str]:
    return s.worker_env(
        database_url,
        username=username,
        client_id=f"ingest-{uuid.uuid4().hex[:8]}",
        share_group=f"g{uuid.uuid4().hex[:8]}",
        extra=WORKER_SETTINGS,
    )


def clear_retained(s: Services) -> int:
    """Remove every retained message under ``eldercare/``; returns how many there were."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"janitor-{uuid.uuid4().hex[:8]}",
        protocol=mqtt.MQTTv5,
    )
    client.username_pw_set("janitor", JANITOR_PASSWORD)
    topics: set[str] = set()
    subscribed: list[bool] = []
    client.on_message = lambda _c, _u, msg: topics.add(msg.topic) if msg.retain else None
    client.on_subscribe = lambda *_a: subscribed.append(True)
    client.connect("127.0.0.1", s.broker.port)
    client.loop_start()
    try:
        client.subscribe("eldercare/#", qos=1)
        wait_until(lambda: bool(subscribed), timeout=10, what="janitor SUBACK")
        time.sleep(0.1)  # retained messages follow the SUBACK at once; loopback is fast
        for topic in sorted(topics):
            client.publish(topic, b"", qos=1, retain=True).wait_for_publish(timeout=10)
        return len(topics)
    finally:
        client.disconnect()
        client.loop_stop()


def query(database_url: str, sql: str, params: tuple[object, ...] = ()) -> list[dict[str, Any]]:
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        return list(conn.execute(sql, params).fetchall())


def device(population: DemoPopulation, device_id: str) -> Any:
    return next(d for d in population.devices if d.device_id == device_id)


def publish(
    s: Services,
    *,
    username: str,
    password: str,
    topic: str,
    payload: bytes | str,
    qos: int = 1,
    retain: bool = False,
    client_id: str | None = None,
) -> int:
    """Publish as a device over a real connection (client id: the username, as the broker
    requires of a device); returns the PUBACK reason code value."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id or username, protocol=mqtt.MQTTv5
    )
    client.username_pw_set(username, password)
    acks: list[int] = []
    client.on_publish = lambda _c, _u, _mid, reason, _p: acks.append(int(reason.value))
    client.connect("127.0.0.1", s.broker.port)
    client.loop_start()
    try:
        info = client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(timeout=10)
        if qos > 0:
            wait_until(lambda: bool(acks), timeout=10, what="PUBACK")
            return acks[0]
        return int(info.rc)
    finally:
        client.disconnect()
        client.loop_stop()


def wait_for_beat(database_url: str, proc: Any, *, timeout: float = 60.0) -> None:
    """Until the worker process ``proc`` (from ``running``) has written its first heartbeat:
    it has started its loops. Tests that time a path from a device event wait for this, so
    that the figure is the path's and not the worker's start-up on a busy machine."""
    wait_until(
        lambda: bool(
            query(database_url, "SELECT 1 FROM worker_heartbeats WHERE pid = %s", (proc.pid,))
        ),
        timeout=timeout,
        what=f"a heartbeat from pid {proc.pid}",
    )
