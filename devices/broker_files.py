"""Write the broker's password file and ACL from the registry (run after provisioning)."""

from __future__ import annotations

import os
from pathlib import Path

from devices.credentials import ServiceUser, render_acl, render_password_file
from devices.registry import Conn, device_credentials


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.chmod(tmp, 0o600)
    tmp.replace(path)


async def write_broker_files(conn: Conn, *, conf_dir: Path, services: list[ServiceUser]) -> int:
    """Render ``passwd`` and ``acl`` for Mosquitto; returns the number of devices written."""
    devices = await device_credentials(conn)
    conf_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - a few small local files
    _write_atomic(conf_dir / "passwd", render_password_file(devices, services))
    _write_atomic(conf_dir / "acl", render_acl(devices, services))
    return len(devices)
