"""Per-device MQTT credentials and topic ACLs, rendered as Mosquitto's dynamic-security file.

The registry keeps only a Mosquitto-compatible PBKDF2-SHA512 hash of each device's password
(format ``$7$<iterations>$<salt b64>$<hash b64>``, what ``mosquitto_passwd`` writes); the
secret is shown once when the device is provisioned.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from devices.wire import ID_RE, TOPIC_ROOT

PBKDF2_ITERATIONS = 101  # Mosquitto 2.0's default for $7$ hashes


def generate_secret() -> str:
    return secrets.token_urlsafe(18)


def mosquitto_hash(
    password: str, *, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS
) -> str:
    salt = salt if salt is not None else secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


@dataclass(frozen=True, slots=True)
class DeviceCredential:
    site_id: str
    device_id: str
    password_hash: str


@dataclass(frozen=True, slots=True)
class ServiceUser:
    """A backend process's broker account; ``read`` and ``write`` are topic filters."""

    username: str
    password_hash: str
    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()


def ingest_user(password_hash: str) -> ServiceUser:
    return ServiceUser(
        "ingest",
        password_hash,
        read=tuple(f"{TOPIC_ROOT}/+/+/{c}" for c in ("telemetry", "event", "status")),
    )


def backend_user(password_hash: str) -> ServiceUser:
    return ServiceUser(
        "backend",
        password_hash,
        read=(f"{TOPIC_ROOT}/+/+/status",),
        write=(f"{TOPIC_ROOT}/+/+/cmd",),
    )


def admin_user(password_hash: str) -> ServiceUser:
    """The broker-admin account: it alone may use the dynamic-security control topic, to add a
    device the moment it is provisioned (the plaintext secret exists only then)."""
    control = "$CONTROL/dynamic-security/#"
    return ServiceUser(ADMIN_USERNAME, password_hash, read=(control,), write=(control,))


ADMIN_USERNAME = "broker-admin"
DYNSEC_FILE = "dynamic-security.json"


def _hash_fields(encoded: str) -> dict[str, object]:
    """Mosquitto's ``$7$`` hash as dynamic-security stores it (same PBKDF2-SHA512)."""
    _, kind, iterations, salt_b64, digest_b64 = encoded.split("$")
    if kind != "7":
        raise ValueError("only $7$ (PBKDF2-SHA512) hashes are supported")
    return {"password": digest_b64, "salt": salt_b64, "iterations": int(iterations)}


def _acl(kind: str, topic: str) -> dict[str, object]:
    return {"acltype": kind, "topic": topic, "priority": 0, "allow": True}


def service_role(s: ServiceUser) -> dict[str, object]:
    """Read filters may be subscribed (also as a shared subscription) and received; write
    filters published. Nothing else: the defaults deny."""
    acls: list[dict[str, object]] = []
    for f in s.read:
        acls += [
            _acl("subscribePattern", f),
            _acl("subscribePattern", f"$share/+/{f}"),
            _acl("publishClientReceive", f),
        ]
    acls += [_acl("publishClientSend", f) for f in s.write]
    return {"rolename": f"service:{s.username}", "acls": acls}


def device_role(site_id: str, device_id: str) -> dict[str, object]:
    """A device publishes only under its own topics and subscribes only to its own ``cmd``:
    literal topics, no wildcards, no ``$share``. Only the backend writes a device's ``cmd``
    (small commands), so nothing can pile up in a device's persistent session."""
    if not (ID_RE.fullmatch(site_id) and ID_RE.fullmatch(device_id)):
        raise ValueError(f"refusing to write an ACL for {site_id}/{device_id}")
    base = f"{TOPIC_ROOT}/{site_id}/{device_id}"
    acls = [_acl("publishClientSend", f"{base}/{c}") for c in ("telemetry", "event", "status")]
    acls += [_acl("subscribeLiteral", f"{base}/cmd"), _acl("publishClientReceive", f"{base}/cmd")]
    return {"rolename": f"device:{device_id}", "acls": acls}


def device_client(device_id: str) -> dict[str, object]:
    """A device's client is bound to its own client id: no device can take over another's
    session (or a service's) by connecting with its id."""
    return {
        "username": device_id,
        "clientid": device_id,
        "roles": [{"rolename": f"device:{device_id}"}],
    }


def render_dynsec(devices: Iterable[DeviceCredential], services: Iterable[ServiceUser]) -> str:
    """Mosquitto's dynamic-security configuration: every client, its role, deny by default
    (publish, receive and subscribe), so a subscription outside an account's own topics is
    refused at SUBSCRIBE time (the ACL file of Mosquitto 2.0 grants every subscription and
    filters only on delivery, which lets a device join ingest's shared subscription and
    swallow its share of other devices' messages)."""
    clients: list[dict[str, object]] = []
    roles: list[dict[str, object]] = []
    for s in services:
        roles.append(service_role(s))
        clients.append(
            {"username": s.username, "roles": [{"rolename": f"service:{s.username}"}]}
            | _hash_fields(s.password_hash)
        )
    for d in devices:
        roles.append(device_role(d.site_id, d.device_id))
        clients.append(device_client(d.device_id) | _hash_fields(d.password_hash))
    config = {
        "defaultACLAccess": {
            "publishClientSend": False,
            "publishClientReceive": False,
            "subscribe": False,
            "unsubscribe": True,
        },
        "clients": clients,
        "groups": [],
        "roles": roles,
    }
    return json.dumps(config, indent=1) + "\n"
