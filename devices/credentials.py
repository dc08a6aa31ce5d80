"""Per-device MQTT credentials and topic ACLs, rendered as Mosquitto's own files.

The registry keeps only a Mosquitto-compatible PBKDF2-SHA512 hash of each device's password
(format ``$7$<iterations>$<salt b64>$<hash b64>``, what ``mosquitto_passwd`` writes); the
secret is shown once when the device is provisioned.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
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


def verify_mosquitto_hash(password: str, encoded: str) -> bool:
    _, kind, iterations, salt_b64, digest_b64 = encoded.split("$")
    if kind != "7":
        raise ValueError("only $7$ (PBKDF2-SHA512) hashes are supported")
    digest = hashlib.pbkdf2_hmac(
        "sha512", password.encode(), base64.b64decode(salt_b64), int(iterations)
    )
    return hmac.compare_digest(digest, base64.b64decode(digest_b64))


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


def render_password_file(
    devices: Iterable[DeviceCredential], services: Iterable[ServiceUser]
) -> str:
    lines = [f"{s.username}:{s.password_hash}" for s in services]
    lines += [f"{d.device_id}:{d.password_hash}" for d in devices]
    return "\n".join(lines) + "\n"


def render_acl(devices: Iterable[DeviceCredential], services: Iterable[ServiceUser]) -> str:
    """A device may publish only under its own topics and read only its own ``cmd``."""
    out: list[str] = []
    for s in services:
        out.append(f"user {s.username}")
        out += [f"topic read {t}" for t in s.read]
        out += [f"topic write {t}" for t in s.write]
        out.append("")
    for d in devices:
        if not (ID_RE.fullmatch(d.site_id) and ID_RE.fullmatch(d.device_id)):
            raise ValueError(f"refusing to write an ACL for {d.site_id}/{d.device_id}")
        base = f"{TOPIC_ROOT}/{d.site_id}/{d.device_id}"
        out += [
            f"user {d.device_id}",
            f"topic write {base}/telemetry",
            f"topic write {base}/event",
            f"topic readwrite {base}/status",
            f"topic read {base}/cmd",
            "",
        ]
    return "\n".join(out)
