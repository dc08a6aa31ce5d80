"""The SQL the migrations run, read without a database: each migration's ``upgrade`` or
``downgrade`` with alembic's ``op.execute`` captured (every migration runs its SQL through it,
``devices/migrations/steps.py``)."""

from __future__ import annotations

import importlib
from pathlib import Path
from unittest import mock

from alembic import op

import devices.migrations.versions as versions


def modules() -> list[str]:
    """The migrations' module names, oldest first."""
    return sorted(p.stem for p in Path(versions.__file__).parent.glob("0*.py"))


def ran(module: str, step: str = "upgrade") -> list[str]:
    """The statements ``module``'s ``step`` runs, in order."""
    out: list[str] = []
    migration = importlib.import_module(f"devices.migrations.versions.{module}")
    with mock.patch.object(
        op, "execute", side_effect=lambda sql: out.append(str(sql)), create=True
    ):
        getattr(migration, step)()
    return out
