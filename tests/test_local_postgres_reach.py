"""The project's own PostgreSQL starts in a checkout PostgreSQL's user could not reach (as
root, a clone in /root or in a ``mktemp -d`` directory: 0700), as the main job and the
chaos run start it."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

import psycopg
import pytest

from devtools.servers import start_postgres
from tests.notify_servers import free_port


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs PostgreSQL as another user")
def test_postgres_starts_below_a_private_directory() -> None:
    private = Path(tempfile.mkdtemp(prefix="eldercare-private-"))
    assert stat.S_IMODE(private.stat().st_mode) == 0o700
    pg = None
    try:
        pg = start_postgres(
            private / "checkout" / ".run", port=free_port(), password="pw", fast=True
        )
        with psycopg.connect(pg.url("postgres")) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        mode = stat.S_IMODE(private.stat().st_mode)
        assert mode & stat.S_IXOTH  # search, so the postgres user passes through ...
        assert not mode & stat.S_IROTH  # ... but may not list it
    finally:
        if pg is not None:
            pg.stop()
        shutil.rmtree(private, ignore_errors=True)
