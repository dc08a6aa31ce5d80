"""The processes' database roles (migration 0023, docs/deployment.md) against their code: every
table a process's code names (in its own modules and everything they import) is granted to
its role for what the statement does, and nothing the code never names is granted. The
production-shaped run (tests/test_production_shape.py) then runs the processes as these roles."""

from __future__ import annotations

import importlib
import re
from functools import cache
from pathlib import Path

import grimp
import pytest

from devices.migrate import PROCESS_ROLES
from tests.migration_sql import modules, ran

ROOT = Path(__file__).resolve().parent.parent
ROLES = importlib.import_module("devices.migrations.versions.0023_process_roles")
# later migrations grant their own new tables (a ``GRANTS`` of the same shape)
LATER = [
    importlib.import_module(f"devices.migrations.versions.{p.stem}")
    for p in sorted((ROOT / "devices/migrations/versions").glob("0*.py"))
    if p.stem > "0023"
]
ENTRIES = {
    "ingest": ("ingest.__main__",),
    "alerts": ("alerts.__main__",),
    # the monthly report runs as the API's role (the main job starts it beside the API)
    "api": ("dashboard_api.__main__", "dashboard_api.report.__main__"),
}
# Modules a process imports for a few functions, whose other statements it never runs.
ONLY_READS = {"ingest": {"devices.registry": "device_refs: the device cache, read-only"}}
STATEMENTS = {
    "INSERT": r"INSERT\s+INTO\s+{t}\b|\bCOPY\s+{t}\b",
    "UPDATE": r"\bUPDATE\s+{t}\b",
    "DELETE": r"DELETE\s+FROM\s+{t}\b",
    "SELECT": r"(?:FROM|JOIN)\s+{t}\b",
}
TABLES = sorted(
    set(
        re.findall(
            r"CREATE TABLE (?:IF NOT EXISTS )?([a-z_]+)",
            "\n".join(sql for module in modules() for sql in ran(module)),
        )
    )
)


@cache
def _graph() -> grimp.ImportGraph:
    return grimp.build_graph("devices", "ingest", "alerts", "dashboard_api")


def _source(module: str) -> str:
    base = ROOT / Path(*module.split("."))
    path = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
    return path.read_text() if path.exists() else ""


def needed(process: str) -> dict[str, set[str]]:
    """table -> the privileges the process's statements on it need."""
    modules: set[str] = set()
    for entry in ENTRIES[process]:
        modules |= {entry} | _graph().find_upstream_modules(entry)
    need: dict[str, set[str]] = {}
    for module in sorted(m for m in modules if not m.startswith("devices.migrations")):
        text = _source(module)
        kinds = ("SELECT",) if module in ONLY_READS.get(process, {}) else tuple(STATEMENTS)
        for table in TABLES:
            for kind in kinds:
                if re.search(STATEMENTS[kind].format(t=table), text):
                    need.setdefault(table, set()).add(kind)
    return need


def granted(process: str) -> dict[str, set[str]]:
    role = PROCESS_ROLES[process]
    out: dict[str, set[str]] = {}
    for grants in [ROLES.GRANTS[role], *(getattr(m, "GRANTS", {}).get(role, {}) for m in LATER)]:
        for table, what in grants.items():
            out.setdefault(table, set()).update(p.split("(")[0].strip() for p in what.split(", "))
    return out


def test_the_migration_grants_the_roles_of_the_three_long_running_processes() -> None:
    assert set(ROLES.GRANTS) == set(PROCESS_ROLES.values()) == set(ROLES.ROLES)
    assert set(ENTRIES) == set(PROCESS_ROLES)
    for grants in ROLES.GRANTS.values():
        assert set(grants) <= set(TABLES)


@pytest.mark.parametrize("process", sorted(PROCESS_ROLES))
def test_every_table_a_process_names_is_granted_for_what_it_does(process: str) -> None:
    have = granted(process)
    missing = {
        table: sorted(kinds - have.get(table, set()))
        for table, kinds in needed(process).items()
        if kinds - have.get(table, set())
    }
    assert not missing, f"{PROCESS_ROLES[process]} lacks {missing}"


@pytest.mark.parametrize("process", sorted(PROCESS_ROLES))
def test_no_role_gets_a_table_its_process_never_names(process: str) -> None:
    unused = set(granted(process)) - set(needed(process))
    assert not unused, f"{PROCESS_ROLES[process]} is granted {sorted(unused)} it never uses"


def test_ingest_may_not_read_the_device_password_hashes() -> None:
    devices = ROLES.GRANTS["eldercare_ingest"]["devices"]
    assert devices.startswith("SELECT (")
    assert "mqtt_password_hash" not in devices
    assert "users" not in ROLES.GRANTS["eldercare_ingest"]


def test_the_scan_sees_statements_and_their_absence() -> None:
    assert needed("ingest")["telemetry"] == {"INSERT"}
    assert "users" not in needed("ingest")
    assert "DELETE" in needed("alerts")["stream_outbox"]
    assert needed("api")["telemetry"] == {"SELECT"}
