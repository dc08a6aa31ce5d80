"""Devices over TLS (issue 18 item 2): a TLS listener beside the plain one, the server
certificate signed by the local CA (devices.tls), devices signing in with their own
credentials. A device connects over TLS to the real Mosquitto, publishes, and ingest stores
it; plain MQTT on the TLS port, a client that does not trust the CA, and a wrong password
are all refused."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from psycopg.rows import dict_row

from devices.broker_files import write_broker_files
from devices.tls import TlsFiles, make_certs
from devtools.seed import DemoDevice
from devtools.servers import (
    DYNSEC_PLUGIN,
    LocalBroker,
    free_port,
    start_mosquitto,
    wait_for_port,
)
from tests.services import ROOT, Services, query, running, seed, wait_until, worker_env

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class World:
    url: str
    broker: LocalBroker
    certs: TlsFiles
    device: DemoDevice


@pytest.fixture
def world(services: Services, database_url: str, tmp_path: Path) -> Iterator[World]:
    pop = seed(services, database_url)
    conf = tmp_path / "broker"

    async def sync() -> None:
        async with await psycopg.AsyncConnection.connect(
            database_url, row_factory=dict_row
        ) as conn:
            await write_broker_files(conn, conf_dir=conf, services=services.service_users())

    asyncio.run(sync())
    certs = make_certs(tmp_path / "tls")
    broker = start_mosquitto(conf, tls=certs)
    try:
        dev = next(d for d in pop.devices if d.device_id == "wb-0042")
        yield World(database_url, broker, certs, dev)
    finally:
        broker.stop()


class Device:
    """A device's own connection; ``tls_ca`` None means plain MQTT."""

    def __init__(self, w: World, *, tls_ca: Path | None, password: str | None = None) -> None:
        self.connack: int | None = None
        self.closed = False
        self.acks: list[int] = []
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=w.device.device_id, protocol=mqtt.MQTTv5
        )
        c.username_pw_set(w.device.device_id, password or w.device.password)
        if tls_ca is not None:
            c.tls_set(ca_certs=str(tls_ca), tls_version=ssl.PROTOCOL_TLS_CLIENT)
        c.on_connect = lambda _c, _u, _f, rc, _p: setattr(self, "connack", int(rc.value))
        c.on_disconnect = lambda *_a: setattr(self, "closed", True)
        c.on_publish = lambda _c, _u, _m, rc, _p: self.acks.append(int(rc.value))
        self.client = c

    def connect(self, port: int) -> None:
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_a_device_publishes_over_tls_and_ingest_stores_it(services: Services, world: World) -> None:
    assert world.broker.tls_port is not None
    env = worker_env(services, world.url) | {"ELDERCARE_MQTT_PORT": str(world.broker.port)}
    dev = world.device
    topic = f"eldercare/v1/{dev.site_id}/{dev.device_id}/telemetry"
    d = Device(world, tls_ca=world.certs.ca_cert)
    d.connect(world.broker.tls_port)
    try:
        wait_until(lambda: d.connack is not None, what="CONNACK over TLS")
        assert d.connack == 0
        with running("ingest", env):

            def stored() -> bool:
                pack = [{"bn": f"{dev.device_id}:", "n": "hr", "v": 71.0, "bt": time.time()}]
                d.client.publish(topic, json.dumps(pack), qos=1)
                return bool(query(world.url, "SELECT 1 FROM telemetry WHERE metric = 'hr'"))

            wait_until(stored, timeout=30, what="the TLS device's reading stored by ingest")
        # PUBACK 16 "no matching subscribers" until ingest has subscribed, then 0; never a refusal
        assert set(d.acks) <= {0, 16}
        assert d.acks[-1] == 0
    finally:
        d.close()


def test_plain_mqtt_on_the_tls_port_is_refused(world: World) -> None:
    assert world.broker.tls_port is not None
    d = Device(world, tls_ca=None)
    d.connect(world.broker.tls_port)
    try:
        wait_until(lambda: d.closed, what="the broker closing a plain-text connection")
        assert d.connack is None  # never signed in
    finally:
        d.close()


def test_a_client_that_does_not_trust_the_ca_refuses_the_broker(
    world: World, tmp_path: Path
) -> None:
    assert world.broker.tls_port is not None
    other = make_certs(tmp_path / "other-ca")
    ctx = ssl.create_default_context(cafile=str(other.ca_cert))
    with (
        socket.create_connection(("127.0.0.1", world.broker.tls_port), timeout=10) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    # and the right CA verifies the broker by its address (the certificate's IP SAN)
    ctx = ssl.create_default_context(cafile=str(world.certs.ca_cert))
    with (
        socket.create_connection(("127.0.0.1", world.broker.tls_port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        assert tls.version() in {"TLSv1.2", "TLSv1.3"}


def test_over_tls_a_wrong_password_is_still_refused(world: World) -> None:
    assert world.broker.tls_port is not None
    d = Device(world, tls_ca=world.certs.ca_cert, password="not-its-password")
    d.connect(world.broker.tls_port)
    try:
        wait_until(lambda: d.connack is not None, what="CONNACK")
        assert d.connack in {134, 135}  # bad user name or password, not authorized
    finally:
        d.close()


def test_keys_are_their_owners_only_and_certificates_public(world: World) -> None:
    tls_dir = world.certs.ca_cert.parent
    assert (tls_dir / "ca.key").stat().st_mode & 0o777 == 0o600
    assert world.certs.server_key.stat().st_mode & 0o777 == 0o600
    assert world.certs.ca_cert.stat().st_mode & 0o777 == 0o644
    again = make_certs(tls_dir)  # kept: devices go on trusting the same CA
    assert again.ca_cert.read_bytes() == world.certs.ca_cert.read_bytes()


def test_the_deploy_config_starts_with_both_listeners(
    services: Services, world: World, tmp_path: Path
) -> None:
    """deploy/mosquitto/mosquitto.conf itself (compose's broker), its container paths moved
    into a temporary directory and its ports to free ones: plain 1883 for the backend
    accounts, TLS 8883 for devices."""
    base = tmp_path / "deploy"
    (base / "data").mkdir(parents=True)
    plain, secure = free_port(), free_port()
    text = (ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
    for old, new in {
        "listener 1883\n": f"listener {plain} 127.0.0.1\n",
        "listener 8883\n": f"listener {secure} 127.0.0.1\n",
        "/usr/lib/mosquitto_dynamic_security.so": DYNSEC_PLUGIN,
        "/mosquitto/config/": f"{world.broker.conf_dir}/",
        "/mosquitto/certs/": f"{world.certs.ca_cert.parent}/",
        "/mosquitto/data/": f"{base / 'data'}/",
        "log_dest stdout": f"log_dest file {base / 'mosquitto.log'}",
    }.items():
        assert old in text, old
        text = text.replace(old, new)
    conf = base / "mosquitto.conf"
    root = "user root\n" if os.geteuid() == 0 else ""
    conf.write_text(f"{text}pid_file {base / 'pid'}\n{root}")
    world.broker.stop()  # it holds the same dynamic-security file
    started = subprocess.run(
        ["mosquitto", "-c", str(conf), "-d"], capture_output=True, text=True, check=False
    )
    assert started.returncode == 0, started.stderr
    wait_for_port(plain)
    wait_for_port(secure)
    deployed = LocalBroker(base, plain, int((base / "pid").read_text().split()[0]), secure)
    try:
        d = Device(world, tls_ca=world.certs.ca_cert)
        d.connect(secure)
        wait_until(lambda: d.connack is not None, what="CONNACK over TLS")
        assert d.connack == 0
        d.close()
        ingest = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="cfg-ingest", protocol=mqtt.MQTTv5
        )
        ingest.username_pw_set("ingest", services.ingest_password)
        got: list[int] = []
        ingest.on_connect = lambda _c, _u, _f, rc, _p: got.append(int(rc.value))
        ingest.connect("127.0.0.1", plain)
        ingest.loop_start()
        wait_until(lambda: bool(got), what="CONNACK on the plain listener")
        ingest.disconnect()
        ingest.loop_stop()
        assert got == [0]
    finally:
        deployed.stop()
