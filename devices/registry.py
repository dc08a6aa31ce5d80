"""The device registry: sites, rooms, residents, devices, and which device serves whom.

Keyword-only service functions over an open connection; the caller owns the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from devices.credentials import DeviceCredential, generate_secret, mosquitto_hash
from devices.domain import DEFAULT_TIMEZONE, CareProfile, DeviceKind, Placement, RoomKind, SiteKind

Conn = AsyncConnection[DictRow]

# NOTIFY channel of every change to ``devices`` (a trigger, migration 0013): ingest reloads its
# device cache on it, so a retired, moved or new device is known at once.
DEVICES_CHANNEL = "devices_changed"


@dataclass(frozen=True, slots=True)
class DeviceRef:
    """What ingest needs to know about a device, cached per process."""

    device_key: int
    device_id: str
    site_id: str
    kind: str
    retired: bool


@dataclass(frozen=True, slots=True)
class ProvisionedDevice:
    device_key: int
    device_id: str
    site_id: str
    secret: str  # the MQTT password, shown once


async def create_site(
    conn: Conn,
    *,
    site_id: str,
    name: str,
    kind: SiteKind,
    community: str = "",
    address: str = "",
    timezone: str = DEFAULT_TIMEZONE,
) -> str:
    await conn.execute(
        "INSERT INTO sites (site_id, name, kind, community, address, timezone) "
        "VALUES (%s, %s, %s, %s, %s, %s)",
        (site_id, name, kind.value, community, address, timezone),
    )
    return site_id


async def create_room(conn: Conn, *, site_id: str, name: str, kind: RoomKind) -> int:
    cur = await conn.execute(
        "INSERT INTO rooms (site_id, name, kind) VALUES (%s, %s, %s) RETURNING room_id",
        (site_id, name, kind.value),
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row["room_id"])


async def create_resident(
    conn: Conn,
    *,
    site_id: str,
    full_name: str,
    room_id: int | None = None,
    birth_year: int | None = None,
    care_profile: CareProfile = CareProfile.INDEPENDENT,
    care_plan: dict[str, object] | None = None,
    admitted_at: datetime | None = None,
    phone: str = "",
) -> int:
    """A new resident, admitted at ``admitted_at`` (default: the database's now)."""
    cur = await conn.execute(
        "INSERT INTO residents (site_id, room_id, full_name, birth_year, care_profile, care_plan,"
        " admitted_at, phone) VALUES (%s, %s, %s, %s, %s, %s, coalesce(%s, now()), %s) "
        "RETURNING resident_id",
        (
            site_id,
            room_id,
            full_name,
            birth_year,
            care_profile.value,
            Jsonb(care_plan or {}),
            admitted_at,
            phone,
        ),
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row["resident_id"])


async def provision_device(
    conn: Conn,
    *,
    device_id: str,
    site_id: str,
    kind: DeviceKind,
    now: datetime,
    room_id: int | None = None,
    resident_id: int | None = None,
    secret: str | None = None,
    placement: Placement = Placement.UNKNOWN,
) -> ProvisionedDevice:
    """Register a device with a fresh MQTT password; the broker files must then be re-synced.
    ``placement`` is where a wearable sits on the body (the fall model is chosen by it)."""
    secret = secret or generate_secret()
    cur = await conn.execute(
        "INSERT INTO devices (device_id, site_id, room_id, kind, mqtt_password_hash, registered_at,"
        " placement) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING device_key",
        (device_id, site_id, room_id, kind.value, mosquitto_hash(secret), now, placement.value),
    )
    row = await cur.fetchone()
    assert row is not None
    key = int(row["device_key"])
    if resident_id is not None:
        await assign_device(conn, device_key=key, resident_id=resident_id, at=now)
    return ProvisionedDevice(key, device_id, site_id, secret)


async def assign_device(conn: Conn, *, device_key: int, resident_id: int, at: datetime) -> None:
    """Let the device serve ``resident_id`` from ``at`` on, closing any current assignment."""
    await conn.execute(
        "UPDATE device_assignments SET during = tstzrange(lower(during), %s) "
        "WHERE device_key = %s AND upper_inf(during)",
        (at, device_key),
    )
    await conn.execute(
        "INSERT INTO device_assignments (device_key, resident_id, during) "
        "VALUES (%s, %s, tstzrange(%s, NULL))",
        (device_key, resident_id, at),
    )


class RetireError(LookupError):
    """The device cannot be retired: see the two kinds below."""


class UnknownDevice(RetireError):
    pass


class AlreadyRetired(RetireError):
    pass


@dataclass(frozen=True, slots=True)
class RetiredDevice:
    device_key: int
    device_id: str
    site_id: str
    retired_at: datetime


async def retire_device(conn: Conn, *, device_id: str, at: datetime) -> RetiredDevice:
    """Retire a device from ``at`` on: its MQTT password hash is dropped (the broker account
    goes at the next ``broker-sync``, or at once through :mod:`devices.broker_admin`), its
    resident assignment ends, and ingest refuses what it still sends as ``device_retired``.
    Raises :class:`UnknownDevice` or :class:`AlreadyRetired`. The caller
    commits."""
    cur = await conn.execute(
        "UPDATE devices SET retired_at = %s, mqtt_password_hash = NULL "
        "WHERE device_id = %s AND retired_at IS NULL RETURNING device_key, site_id",
        (at, device_id),
    )
    row = await cur.fetchone()
    if row is None:
        cur = await conn.execute(
            "SELECT retired_at FROM devices WHERE device_id = %s", (device_id,)
        )
        known = await cur.fetchone()
        if known is None:
            raise UnknownDevice(f"no device {device_id!r}")
        raise AlreadyRetired(
            f"device {device_id!r} was retired at {known['retired_at']:%Y-%m-%d %H:%M}"
        )
    await conn.execute(
        "UPDATE device_assignments SET during = tstzrange(lower(during), %s) "
        "WHERE device_key = %s AND upper_inf(during)",
        (at, row["device_key"]),
    )
    return RetiredDevice(int(row["device_key"]), device_id, str(row["site_id"]), at)


async def device_refs(conn: Conn) -> dict[str, DeviceRef]:
    cur = await conn.execute(
        "SELECT device_key, device_id, site_id, kind, retired_at IS NOT NULL AS retired FROM devices"
    )
    return {
        r["device_id"]: DeviceRef(
            r["device_key"], r["device_id"], r["site_id"], r["kind"], r["retired"]
        )
        for r in await cur.fetchall()
    }


async def device_credentials(conn: Conn) -> list[DeviceCredential]:
    cur = await conn.execute(
        "SELECT site_id, device_id, mqtt_password_hash FROM devices "
        "WHERE retired_at IS NULL AND mqtt_password_hash IS NOT NULL ORDER BY device_id"
    )
    return [
        DeviceCredential(r["site_id"], r["device_id"], r["mqtt_password_hash"])
        for r in await cur.fetchall()
    ]
