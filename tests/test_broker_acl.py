"""What each kind of broker account can and cannot do, against the real Mosquitto as the project
configures it (dynamic-security: deny by default, device client ids bound to their accounts).

Issue 18 findings 2, 3 and 11: a device could join ingest's shared subscription and swallow
other residents' SOS, take over another client's id, and fill the broker through its own
persistent session.
"""

from __future__ import annotations

import stat
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from devices.broker_admin import broker_admin
from devices.broker_files import write_broker_config, write_secret
from devices.credentials import DYNSEC_FILE
from devtools.seed import DemoDevice, DemoPopulation
from tests.services import JANITOR_PASSWORD, Services, can_connect, seed, wait_until

pytestmark = pytest.mark.integration


class Session:
    """One MQTT connection; records CONNACK, SUBACKs, messages and whether it was kicked."""

    def __init__(self, s: Services, username: str, password: str | None, client_id: str) -> None:
        self.connack: ReasonCode | None = None
        self.subacks: list[str] = []
        self.messages: list[mqtt.MQTTMessage] = []
        self.disconnects = 0
        self._acked = threading.Event()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        if password is not None:
            c.username_pw_set(username, password)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_subscribe = self._on_subscribe
        c.on_message = lambda _c, _u, m: self.messages.append(m)
        c.connect("127.0.0.1", s.broker.port)
        c.loop_start()
        self.client = c
        wait_until(lambda: self.connack is not None, what=f"CONNACK for {client_id}")

    def _on_connect(self, _c: object, _u: object, _f: object, rc: ReasonCode, _p: object) -> None:
        self.connack = rc

    def _on_disconnect(self, *_a: object) -> None:
        self.disconnects += 1

    def _on_subscribe(
        self, _c: object, _u: object, _mid: int, rcs: list[ReasonCode], _p: object
    ) -> None:
        self.subacks += [str(r) for r in rcs]
        self._acked.set()

    @property
    def accepted(self) -> bool:
        return self.connack is not None and not self.connack.is_failure

    def subscribe(self, topic_filter: str) -> str:
        self._acked.clear()
        self.client.subscribe(topic_filter, qos=1)
        assert self._acked.wait(10), f"no SUBACK for {topic_filter}"
        return self.subacks[-1]

    def publish(self, topic: str, payload: bytes) -> ReasonCode:
        acks: list[ReasonCode] = []
        self.client.on_publish = lambda _c, _u, _mid, rc, _p: acks.append(rc)
        self.client.publish(topic, payload, qos=1).wait_for_publish(timeout=10)
        wait_until(lambda: bool(acks), what=f"PUBACK for {topic}")
        return acks[0]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _dev(pop: DemoPopulation, kind: str, n: int = 0) -> DemoDevice:
    return [d for d in pop.devices if d.kind == kind][n]


def _cmd(d: DemoDevice) -> str:
    return f"eldercare/v1/{d.site_id}/{d.device_id}/cmd"


GRANTED = "Granted QoS 1"


def test_a_device_may_subscribe_only_to_its_own_cmd(services: Services, database_url: str) -> None:
    pop = seed(services, database_url)
    me, other = _dev(pop, "sos_button", 0), _dev(pop, "sos_button", 1)
    s = Session(services, me.device_id, me.password, me.device_id)
    try:
        assert s.subscribe(_cmd(me)) == GRANTED
        for refused in (
            "$share/ingest/eldercare/v1/+/+/event",
            "$share/x/" + _cmd(me),
            "eldercare/v1/+/+/event",
            f"eldercare/v1/{me.site_id}/+/cmd",
            _cmd(other),
            "eldercare/#",
            "#",
            "$SYS/#",
            "$CONTROL/dynamic-security/v1/response",
            f"eldercare/v1/{me.site_id}/{me.device_id}/status",
        ):
            assert s.subscribe(refused) == "Not authorized", refused
    finally:
        s.close()


def test_devices_in_ingests_share_group_swallow_no_sos(
    services: Services, database_url: str
) -> None:
    """Finding 2: three curious devices ask to join ingest's shared subscription while another
    resident presses SOS 8 times: ingest receives all 8."""
    pop = seed(services, database_url)
    button = _dev(pop, "sos_button", 0)
    ingest = Session(services, "ingest", services.ingest_password, f"ingest-{uuid.uuid4().hex[:6]}")
    assert ingest.subscribe("$share/ingest/eldercare/v1/+/+/event") == GRANTED
    thieves = [Session(services, d.device_id, d.password, d.device_id) for d in pop.devices[-3:]]
    presser = Session(services, button.device_id, button.password, button.device_id)
    try:
        for t in thieves:
            assert t.subscribe("$share/ingest/eldercare/v1/+/+/event") == "Not authorized"
        topic = f"eldercare/v1/{button.site_id}/{button.device_id}/event"
        for i in range(8):
            payload = f'[{{"bt":{time.time()},"n":"sos","vb":true,"t":{i}}}]'.encode()
            assert not presser.publish(topic, payload).is_failure
        wait_until(lambda: len(ingest.messages) >= 8, what="ingest received every SOS")
        assert len(ingest.messages) == 8
        assert all(not t.messages for t in thieves)
    finally:
        for sess in (*thieves, presser, ingest):
            sess.close()


def test_no_device_can_take_over_another_clients_id(services: Services, database_url: str) -> None:
    """Finding 3: a device connecting with the ingest worker's or another device's client id
    is refused, and the client holding that id stays connected."""
    pop = seed(services, database_url)
    victim, attacker = _dev(pop, "wristband", 0), _dev(pop, "wristband", 1)
    ingest = Session(services, "ingest", services.ingest_password, "eldercare-ingest-1")
    # the life-safety lane's own connection (ingest/__main__.py: "<client id>-ls")
    lane = Session(services, "ingest", services.ingest_password, "eldercare-ingest-1-ls")
    wrist = Session(services, victim.device_id, victim.password, victim.device_id)
    try:
        for stolen in (
            "eldercare-ingest-1",
            "eldercare-ingest-1-ls",
            victim.device_id,
            "eldercare-alerts-1",
        ):
            thief = Session(services, attacker.device_id, attacker.password, stolen)
            assert not thief.accepted, stolen
            thief.close()
        assert ingest.accepted
        assert lane.accepted
        assert lane.subscribe("$share/ingest/eldercare/v1/+/+/event") == GRANTED
        assert wrist.accepted
        assert ingest.disconnects == lane.disconnects == 0
        assert wrist.disconnects == 0
        assert can_connect(services, attacker.device_id, attacker.password)
    finally:
        ingest.close()
        lane.close()
        wrist.close()


def test_service_accounts_do_only_their_job(services: Services, database_url: str) -> None:
    pop = seed(services, database_url)
    d = _dev(pop, "sos_button", 0)
    ingest = Session(services, "ingest", services.ingest_password, f"ingest-{uuid.uuid4().hex[:6]}")
    backend = Session(services, "backend", services.backend_password, "eldercare-alerts-x")
    try:
        assert ingest.subscribe("$share/ingest/eldercare/v1/+/+/telemetry") == GRANTED
        assert ingest.subscribe("eldercare/v1/+/+/status") == GRANTED
        assert ingest.subscribe("eldercare/v1/+/+/cmd") == "Not authorized"
        assert ingest.publish(_cmd(d), b"{}").is_failure
        assert backend.subscribe("eldercare/v1/+/+/event") == "Not authorized"
        assert not backend.publish(_cmd(d), b'{"type":"help_coming"}').is_failure
        assert backend.publish(f"eldercare/v1/{d.site_id}/{d.device_id}/event", b"[]").is_failure
        assert backend.subscribe("$CONTROL/dynamic-security/#") == "Not authorized"
    finally:
        ingest.close()
        backend.close()


def test_anonymous_and_wrong_passwords_are_refused(services: Services, database_url: str) -> None:
    pop = seed(services, database_url)
    d = pop.devices[0]
    assert not Session(services, "", None, "anon").accepted
    assert not can_connect(services, d.device_id, "wrong")
    assert not can_connect(services, "ingest", JANITOR_PASSWORD, client_id="x")
    assert not can_connect(services, "no-such-device", "x")


def test_a_removed_device_is_disconnected_and_cannot_come_back(
    services: Services, database_url: str
) -> None:
    pop = seed(services, database_url)
    d = pop.devices[0]
    s = Session(services, d.device_id, d.password, d.device_id)
    try:
        with broker_admin("127.0.0.1", services.broker.port, services.admin_password) as admin:
            admin.remove([d.device_id])
            assert d.device_id not in admin.clients()
        wait_until(lambda: s.disconnects > 0, what="the retired device disconnected")
        assert not can_connect(services, d.device_id, d.password)
    finally:
        s.close()


def test_a_device_cannot_fill_the_broker_through_its_session(
    services: Services, database_url: str
) -> None:
    """Finding 11: a device's persistent session could be made to queue 300 x 1 MB. Now a
    device receives only its own cmd (written by the backend alone) and packets are capped."""
    pop = seed(services, database_url)
    d = _dev(pop, "wristband", 0)
    s = Session(services, d.device_id, d.password, d.device_id)
    try:
        big = b"x" * 1_100_000
        status = f"eldercare/v1/{d.site_id}/{d.device_id}/status"
        assert s.subscribe(status) == "Not authorized"
        s.client.publish(status, big, qos=1)
        wait_until(lambda: s.disconnects > 0, what="oversized packet refused")
    finally:
        s.close()


def test_broker_config_and_secret_files_are_the_owners_only(tmp_path: Path) -> None:
    write_broker_config(tmp_path / "mq", [], [])
    write_secret(tmp_path / "env", "export ELDERCARE_DB_PASSWORD=x\n")
    for path in (tmp_path / "mq" / DYNSEC_FILE, tmp_path / "env"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE((tmp_path / "mq").stat().st_mode) == 0o700
