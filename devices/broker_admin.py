"""Change the running broker's accounts through Mosquitto's dynamic-security control topic.

The registry keeps only hashes, and the control API takes a plaintext password, so a device is
added the moment it is provisioned (when its secret exists); at start-up the broker reads the
whole registry from ``dynamic-security.json`` (``devices broker-sync``). Deleting a client also
disconnects it.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from devices.credentials import ADMIN_USERNAME, device_client, device_role

CONTROL = "$CONTROL/dynamic-security/v1"


# Devices per control message: 4 commands each, about 1 KiB; the broker takes up to 1 MiB.
BATCH = 100


def _add_commands(d: NewDevice) -> list[dict[str, object]]:
    return [
        {"command": "deleteClient", "username": d.device_id},
        {"command": "deleteRole", "rolename": f"device:{d.device_id}"},
        {"command": "createRole"} | device_role(d.site_id, d.device_id),
        {"command": "createClient"} | device_client(d.device_id) | {"password": d.password},
    ]


class BrokerAdminError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class NewDevice:
    site_id: str
    device_id: str
    password: str


class BrokerAdmin:
    """One connection as ``broker-admin``; :meth:`run` sends commands and waits for answers."""

    def __init__(self, client: mqtt.Client, timeout_s: float) -> None:
        self._client = client
        self._timeout = timeout_s
        self._lock = threading.Lock()
        self._answer: list[dict[str, object]] | None = None
        self._got = threading.Event()
        client.on_message = self._on_message

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        self._answer = json.loads(msg.payload).get("responses", [])
        self._got.set()

    def run(self, commands: list[dict[str, object]]) -> list[dict[str, object]]:
        with self._lock:
            self._got.clear()
            self._client.publish(CONTROL, json.dumps({"commands": commands}), qos=1)
            if not self._got.wait(self._timeout):
                raise BrokerAdminError("the broker did not answer its control topic")
            return self._answer or []

    def add_devices(self, devices: Iterable[NewDevice]) -> list[str]:
        """Create (or re-create with the new secret) each device's role and client; returns
        the errors the broker gave, one per failing command. Up to ``BATCH`` devices go in one
        control message (a site's whole roll-out in a round trip or two, not one per device)."""
        errors: list[str] = []
        pending = list(devices)
        for i in range(0, len(pending), BATCH):
            batch = pending[i : i + BATCH]
            commands = [c for d in batch for c in _add_commands(d)]
            answers = self.run(commands)
            if len(answers) != len(commands):
                raise BrokerAdminError(f"{len(answers)} answers to {len(commands)} commands")
            for j, d in enumerate(batch):
                mine = answers[4 * j + 2 : 4 * j + 4]  # deleting what is not there is no error
                errors += [
                    f"{d.device_id}: {a['command']}: {a['error']}" for a in mine if "error" in a
                ]
        return errors

    def remove(self, usernames: Iterable[str]) -> None:
        for u in usernames:
            self.run(
                [
                    {"command": "deleteClient", "username": u},
                    {"command": "deleteRole", "rolename": f"device:{u}"},
                ]
            )

    def clients(self) -> list[str]:
        [answer] = self.run([{"command": "listClients"}])
        data = answer.get("data")
        if not isinstance(data, dict):
            raise BrokerAdminError(f"listClients: {answer.get('error')}")
        return [str(c) for c in data.get("clients", [])]


@contextmanager
def broker_admin(
    host: str, port: int, password: str, *, timeout_s: float = 10.0, tls_ca: Path | None = None
) -> Iterator[BrokerAdmin]:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"{ADMIN_USERNAME}-{uuid.uuid4().hex[:8]}",
        protocol=mqtt.MQTTv5,
    )
    client.username_pw_set(ADMIN_USERNAME, password)
    if tls_ca is not None:
        client.tls_set(ca_certs=str(tls_ca))
    subscribed = threading.Event()
    client.on_subscribe = lambda *_a: subscribed.set()
    client.connect(host, port)
    client.loop_start()
    try:
        client.subscribe(f"{CONTROL}/response", qos=1)
        if not subscribed.wait(timeout_s):
            raise BrokerAdminError("could not subscribe to the broker's control responses")
        yield BrokerAdmin(client, timeout_s)
    finally:
        client.disconnect()
        client.loop_stop()


def remove_devices(
    host: str, port: int, password: str, device_ids: list[str], *, tls_ca: Path | None = None
) -> str | None:
    """Delete retired devices' accounts from the running broker, which disconnects them.
    Returns None when done, else why not (the registry has retired them all the same, and
    ``broker-sync --reload`` removes them later)."""
    if not password:
        return "no ELDERCARE_BROKER_ADMIN_PASSWORD: run `devices broker-sync --reload`"
    try:
        with broker_admin(host, port, password, tls_ca=tls_ca) as admin:
            admin.remove(device_ids)
    except (BrokerAdminError, OSError) as exc:
        return f"the broker was not reached ({exc}): run `devices broker-sync --reload`"
    return None
