"""Write the broker's accounts and ACLs (``dynamic-security.json``) from the registry.

Mosquitto reads the file when it starts; while it runs, the dynamic-security plugin owns the
file and saves its own state there, so changes to a running broker go through
:mod:`devices.broker_admin` instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from devices.credentials import DYNSEC_FILE, DeviceCredential, ServiceUser, render_dynsec
from devices.registry import Conn, device_credentials


def write_secret(path: Path, text: str) -> None:
    """Write a file readable by its owner only, atomically (no moment of wider permissions)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def write_broker_config(
    conf_dir: Path, devices: Iterable[DeviceCredential], services: Iterable[ServiceUser]
) -> None:
    conf_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_secret(conf_dir / DYNSEC_FILE, render_dynsec(devices, services))


async def write_broker_files(conn: Conn, *, conf_dir: Path, services: list[ServiceUser]) -> int:
    """Render the broker's configuration from the registry; returns the number of devices."""
    devices = await device_credentials(conn)
    write_broker_config(conf_dir, devices, services)
    return len(devices)
