"""Real services for the test suite: one PostgreSQL+TimescaleDB cluster and one Mosquitto per
test session (the project's own, on free ports), a fresh database per test."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from psycopg.rows import dict_row

from devices import migrate
from devices.broker_admin import NewDevice, broker_admin
from devices.broker_files import write_broker_config
from devices.credentials import (
    ServiceUser,
    admin_user,
    backend_user,
    ingest_user,
    mosquitto_hash,
)
from devices.local_services import LocalBroker, LocalPostgres, start_mosquitto, start_postgres
from devices.seed import DemoPopulation, seed_demo

ROOT = Path(__file__).resolve().parent.parent
LOAD_USER = ("loadgen", "load-test-pw")


def load_user() -> ServiceUser:
    """The load publisher's account (tests only): it speaks for every load-fleet device."""
    return ServiceUser(LOAD_USER[0], mosquitto_hash(LOAD_USER[1]), write=("eldercare/v1/#",))


TEMPLATE = "eldercare_template"


@dataclass
class Services:
    base: Path
    pg: LocalPostgres
    broker: LocalBroker
    ingest_password: str = "ingest-test-pw"
    backend_password: str = "backend-test-pw"
    admin_password: str = "broker-admin-test-pw"

    def service_users(self) -> list[Any]:
        return [
            ingest_user(mosquitto_hash(self.ingest_password)),
            backend_user(mosquitto_hash(self.backend_password)),
            admin_user(mosquitto_hash(self.admin_password)),
            janitor_user(),
            load_user(),
        ]


JANITOR_PASSWORD = "janitor-test-pw"


def janitor_user() -> ServiceUser:
    """A test-only broker account that may clear retained messages between tests (the demo
    devices have the same ids in every test, so a retained status would leak into the next)."""
    return ServiceUser(
        "janitor", mosquitto_hash(JANITOR_PASSWORD), read=("eldercare/#",), write=("eldercare/#",)
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


def start_services() -> Services:
    base = Path(tempfile.mkdtemp(prefix="eldercare-test-"))
    base.chmod(0o755)  # the postgres system user runs the cluster when tests run as root
    pg = start_postgres(base, password="test-pw", fast=True)
    broker_dir = base / "mosquitto"
    broker_dir.mkdir()
    services = Services(base, pg, LocalBroker(broker_dir, 0, 0))
    write_broker_config(broker_dir, [], services.service_users())
    services.broker = start_mosquitto(broker_dir)
    _make_template(services)
    return services


def _make_template(s: Services) -> None:
    with psycopg.connect(s.pg.url("postgres"), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {TEMPLATE}")
    migrate.upgrade(s.pg.url(TEMPLATE))
    with psycopg.connect(s.pg.url("postgres"), autocommit=True) as conn:
        # TimescaleDB's scheduler must not hold the template open, or copies fail.
        conn.execute(f"ALTER DATABASE {TEMPLATE} WITH ALLOW_CONNECTIONS false IS_TEMPLATE true")
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (TEMPLATE,)
        )


@contextmanager
def fresh_database(s: Services) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(s.pg.url("postgres"), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    try:
        yield s.pg.url(name)
    finally:
        with psycopg.connect(s.pg.url("postgres"), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def seed(s: Services, database_url: str) -> DemoPopulation:
    """Seed the demo population and let the broker know its devices."""

    async def go() -> DemoPopulation:
        async with await psycopg.AsyncConnection.connect(
            database_url, row_factory=dict_row
        ) as conn:
            from datetime import UTC, datetime

            population = await seed_demo(conn, now=datetime.now(UTC))
            await conn.commit()
            return population

    population = asyncio.run(go())
    add_devices(s, [NewDevice(d.site_id, d.device_id, d.password) for d in population.devices])
    dev = population.devices[0]
    wait_until(lambda: can_connect(s, dev.device_id, dev.password), what="broker reload")
    return population


def add_devices(s: Services, devices: list[NewDevice]) -> None:
    """Tell the running broker about newly provisioned devices (as provisioning does)."""
    with broker_admin("127.0.0.1", s.broker.port, s.admin_password) as admin:
        errors = admin.add_devices(devices)
    assert not errors, errors


def can_connect(s: Services, username: str, password: str, *, client_id: str | None = None) -> bool:
    """Devices must connect with their own id as client id (the broker binds them)."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id or username, protocol=mqtt.MQTTv5
    )
    client.username_pw_set(username, password)
    try:
        rc = client.connect("127.0.0.1", s.broker.port)
        if rc != 0:
            return False
        client.loop(timeout=1.0)
        return bool(client.is_connected())
    finally:
        client.disconnect()


def wait_until(
    check: Callable[[], bool], *, timeout: float = 20.0, what: str = "condition"
) -> None:
    """Poll a condition (not a fixed sleep): returns as soon as it holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def worker_env(s: Services, database_url: str, *, username: str = "ingest") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELDERCARE_")}
    env.update(
        {
            "ELDERCARE_DATABASE_URL": database_url,
            "ELDERCARE_MQTT_HOST": "127.0.0.1",
            "ELDERCARE_MQTT_PORT": str(s.broker.port),
            "ELDERCARE_MQTT_USERNAME": username,
            "ELDERCARE_MQTT_PASSWORD": s.ingest_password
            if username == "ingest"
            else s.backend_password,
            "ELDERCARE_MQTT_CLIENT_ID": f"ingest-{uuid.uuid4().hex[:8]}",
            "ELDERCARE_MQTT_SHARE_GROUP": f"g{uuid.uuid4().hex[:8]}",
            "ELDERCARE_ALERTS_POLL_INTERVAL_S": "0.2",
            # the tests' webhook sinks are on loopback (see tests/conftest.py)
            "ELDERCARE_WEBHOOK_ALLOW_HOSTS": '["127.0.0.1"]',
        }
    )
    return env


@contextmanager
def running(module: str, env: dict[str, str], *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``python -m <module> run`` as a real process; stop it with SIGTERM."""
    log = tempfile.NamedTemporaryFile(prefix=f"{module}-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "run", *args],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        if proc.returncode not in (0, -15) or os.environ.get("SHOW_WORKER_LOG"):
            print(Path(log.name).read_text()[-4000:])


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
