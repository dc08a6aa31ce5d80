"""The project's own local services, one module for all who start them: the main job
(``scripts/run.sh`` through ``python -m devtools services up|down``), the test suite
(tests/services.py, tests/conftest.py) and the benchmarks (bench/).

A stack is one PostgreSQL+TimescaleDB cluster and one Mosquitto (devtools.servers) with the
broker's service accounts, on 127.0.0.1. The main job keeps its stack in a run directory
(``up``/``down``: reused while it runs, its environment in ``<run_dir>/env``); the tests and
benchmarks start a throwaway one (``start``), migrate a template database once and copy it
per test (``fresh_database``), seed the demo population (``seed``) and run the real processes
(``running``) with a worker environment (``LocalServices.worker_env``).
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from psycopg.rows import dict_row

from devices import migrate
from devices.broker_admin import NewDevice, broker_admin
from devices.broker_files import write_broker_config, write_secret
from devices.credentials import (
    ADMIN_USERNAME,
    DYNSEC_FILE,
    ServiceUser,
    admin_user,
    backend_user,
    generate_secret,
    ingest_user,
    mosquitto_hash,
)
from devtools.seed import DemoPopulation, seed_demo
from devtools.servers import LocalBroker, LocalPostgres, start_mosquitto, start_postgres

if TYPE_CHECKING:
    from devices.tls import TlsFiles

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG_PORT = 55432
DEFAULT_MQTT_PORT = 18830
TEMPLATE = "eldercare_template"


def service_users(passwords: Mapping[str, str]) -> list[ServiceUser]:
    """The backend's broker accounts (``ingest``, ``backend``, ``broker-admin``) for those of
    them that ``passwords`` (broker username -> password) has."""
    make = {"ingest": ingest_user, "backend": backend_user, ADMIN_USERNAME: admin_user}
    return [make[name](mosquitto_hash(pw)) for name, pw in passwords.items() if name in make]


@dataclass
class LocalServices:
    base: Path
    pg: LocalPostgres
    broker: LocalBroker
    passwords: Mapping[str, str]  # broker username -> password
    users: list[ServiceUser] = field(default_factory=list)  # every account the broker has

    @property
    def ingest_password(self) -> str:
        return self.passwords["ingest"]

    @property
    def backend_password(self) -> str:
        return self.passwords["backend"]

    @property
    def admin_password(self) -> str:
        return self.passwords[ADMIN_USERNAME]

    def service_users(self) -> list[ServiceUser]:
        return list(self.users)

    def stop(self) -> None:
        self.broker.stop()
        self.pg.stop()

    def worker_env(
        self,
        database_url: str,
        *,
        username: str = "ingest",
        client_id: str | None = None,
        share_group: str | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """The environment of a real process (ingest, alerts, the API) against this stack: the
        caller's own minus every ``ELDERCARE_*``, then the database, the broker and the
        broker account ``username`` signs in with."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("ELDERCARE_")}
        env.update(
            {
                "ELDERCARE_DATABASE_URL": database_url,
                "ELDERCARE_MQTT_HOST": "127.0.0.1",
                "ELDERCARE_MQTT_PORT": str(self.broker.port),
                "ELDERCARE_MQTT_USERNAME": username,
                "ELDERCARE_MQTT_PASSWORD": self.passwords[username],
            }
        )
        if client_id is not None:
            env["ELDERCARE_MQTT_CLIENT_ID"] = client_id
        if share_group is not None:
            env["ELDERCARE_MQTT_SHARE_GROUP"] = share_group
        env.update(extra or {})
        return env


def start_broker(
    conf_dir: Path,
    users: Sequence[ServiceUser],
    *,
    port: int | None = None,
    tls: TlsFiles | None = None,
    keep_accounts: bool = False,
) -> LocalBroker:
    """Write the broker's accounts (no devices yet; with ``keep_accounts`` an existing file,
    which the plugin keeps up to date, is left alone) and start Mosquitto."""
    conf_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not (keep_accounts and (conf_dir / DYNSEC_FILE).exists()):
        write_broker_config(conf_dir, [], users)
    return start_mosquitto(conf_dir, port=port, tls=tls)


def start(
    base: Path | None = None,
    *,
    db_password: str,
    passwords: Mapping[str, str],
    extra_users: Sequence[ServiceUser] = (),
    fast: bool = False,
    tls: TlsFiles | None = None,
) -> LocalServices:
    """A throwaway stack in ``base`` (default: a new temporary directory) on free ports;
    ``fast`` trades the database's durability for speed (tests)."""
    if base is None:
        base = Path(tempfile.mkdtemp(prefix="eldercare-test-"))
        base.chmod(0o755)  # the postgres system user runs the cluster when run as root
    pg = start_postgres(base, password=db_password, fast=fast)
    users = [*service_users(passwords), *extra_users]
    try:
        broker = start_broker(base / "mosquitto", users, tls=tls)
    except BaseException:
        pg.stop()
        raise
    return LocalServices(base, pg, broker, dict(passwords), users)


# --- the main job's stack, kept in a run directory -----------------------------------------


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _secrets(run_dir: Path) -> dict[str, str]:
    path = run_dir / "secrets.json"
    if path.exists():
        loaded: dict[str, str] = json.loads(path.read_text())
        if "admin" not in loaded:  # a run directory from before the broker-admin account
            loaded["admin"] = generate_secret()
            write_secret(path, json.dumps(loaded))
        return loaded
    values = {k: generate_secret() for k in ("db", "ingest", "backend", "admin")}
    write_secret(path, json.dumps(values))
    return values


def up(run_dir: Path) -> dict[str, str]:
    """Start (or reuse) PostgreSQL and Mosquitto; return and write the environment."""
    run_dir = run_dir.resolve()
    # Not 0700: as root, PostgreSQL runs as the postgres user inside it. Each secret file in
    # it (env, secrets.json, demo-devices.json, mosquitto/) is its owner's only.
    run_dir.mkdir(parents=True, exist_ok=True)
    sec = _secrets(run_dir)
    passwords = {"ingest": sec["ingest"], "backend": sec["backend"], ADMIN_USERNAME: sec["admin"]}
    state_path = run_dir / "services.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    pg_pid_file = run_dir / "pg" / "postmaster.pid"
    if pg_pid_file.exists() and _alive(int(pg_pid_file.read_text().split()[0])):
        pg = LocalPostgres(run_dir / "pg", int(state["pg_port"]), sec["db"])
    else:
        pg = start_postgres(run_dir, port=DEFAULT_PG_PORT, password=sec["db"])
    broker_dir = run_dir / "mosquitto"
    if "mqtt_pid" in state and _alive(int(state["mqtt_pid"])):
        broker = LocalBroker(broker_dir, int(state["mqtt_port"]), int(state["mqtt_pid"]))
    else:
        # the devices follow from `devices broker-sync` / `seed` / `provision`; the plugin
        # saves every change to its file, so a restarted broker keeps them
        broker = start_broker(
            broker_dir, service_users(passwords), port=DEFAULT_MQTT_PORT, keep_accounts=True
        )
    state = {"pg_port": pg.port, "mqtt_port": broker.port, "mqtt_pid": broker.pid}
    state_path.write_text(json.dumps(state))
    env = {
        "ELDERCARE_DATABASE_URL": pg.url(),
        "ELDERCARE_MQTT_HOST": "127.0.0.1",
        "ELDERCARE_MQTT_PORT": str(broker.port),
        "ELDERCARE_MQTT_USERNAME": "ingest",
        "ELDERCARE_MQTT_PASSWORD": sec["ingest"],
        "ELDERCARE_BROKER_INGEST_PASSWORD": sec["ingest"],
        "ELDERCARE_BROKER_BACKEND_PASSWORD": sec["backend"],
        "ELDERCARE_BROKER_ADMIN_PASSWORD": sec["admin"],
        "ELDERCARE_RUN_DIR": str(run_dir),
    }
    write_secret(run_dir / "env", "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items()))
    return env


def down(run_dir: Path) -> None:
    run_dir = run_dir.resolve()
    state_path = run_dir / "services.json"
    if not state_path.exists():
        return
    state = json.loads(state_path.read_text())
    if "mqtt_pid" in state and _alive(int(state["mqtt_pid"])):
        LocalBroker(run_dir / "mosquitto", int(state["mqtt_port"]), int(state["mqtt_pid"])).stop()
    LocalPostgres(run_dir / "pg", int(state.get("pg_port", 0)), "").stop()
    state_path.unlink()


# --- databases, the demo population and real processes for tests and benchmarks ------------


def make_template(s: LocalServices) -> None:
    """Migrate a template database once; ``fresh_database`` copies it."""
    with psycopg.connect(s.pg.url("postgres"), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {TEMPLATE}")
    migrate.upgrade(s.pg.url(TEMPLATE))
    with psycopg.connect(s.pg.url("postgres"), autocommit=True) as conn:
        # TimescaleDB's scheduler must not hold the template open, or copies fail.
        conn.execute(f"ALTER DATABASE {TEMPLATE} WITH ALLOW_CONNECTIONS false IS_TEMPLATE true")
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (TEMPLATE,)
        )


@contextmanager
def fresh_database(s: LocalServices, template: str | None = TEMPLATE) -> Iterator[str]:
    """A database of its own, dropped afterwards: a copy of the migrated template, or with
    ``template=None`` an empty one (PostgreSQL's default template)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    create = f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else "")
    with psycopg.connect(s.pg.url("postgres"), autocommit=True) as conn:
        conn.execute(create)
    try:
        yield s.pg.url(name)
    finally:
        with psycopg.connect(s.pg.url("postgres"), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def seed(s: LocalServices, database_url: str) -> DemoPopulation:
    """Seed the demo population and let the broker know its devices."""

    async def go() -> DemoPopulation:
        async with await psycopg.AsyncConnection.connect(
            database_url, row_factory=dict_row
        ) as conn:
            population = await seed_demo(conn, now=datetime.now(UTC))
            await conn.commit()
            return population

    population = asyncio.run(go())
    add_devices(s, [NewDevice(d.site_id, d.device_id, d.password) for d in population.devices])
    dev = population.devices[0]
    wait_until(lambda: can_connect(s, dev.device_id, dev.password), what="broker reload")
    return population


def add_devices(s: LocalServices, devices: list[NewDevice]) -> None:
    """Tell the running broker about newly provisioned devices (as provisioning does)."""
    with broker_admin("127.0.0.1", s.broker.port, s.admin_password) as admin:
        errors = admin.add_devices(devices)
    assert not errors, errors


def can_connect(
    s: LocalServices, username: str, password: str, *, client_id: str | None = None
) -> bool:
    """Devices must connect with their own id as client id (the broker binds them)."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id or username, protocol=mqtt.MQTTv5
    )
    client.username_pw_set(username, password)
    try:
        rc = client.connect("127.0.0.1", s.broker.port)
        if rc != 0:
            return False
        client.loop(timeout=1.0)
        return bool(client.is_connected())
    finally:
        client.disconnect()


def wait_until(
    check: Callable[[], bool], *, timeout: float = 20.0, what: str = "condition"
) -> None:
    """Poll a condition (not a fixed sleep): returns as soon as it holds. Every 50 ms at first,
    then less often (up to every 200 ms): most checks open a database connection, and a suite
    of waiting tests polling at 20 Hz kept two cores busy with connection start-ups."""
    deadline = time.monotonic() + timeout
    pause = 0.05
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(pause)
        pause = min(pause * 1.25, 0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@contextmanager
def running(
    module: str, env: dict[str, str], *args: str, command: str = "run", nice: int = 0
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``python -m <module> <command>`` as a real process (at ``nice``, as ``nice -n``
    would); stop it with SIGTERM."""
    log = tempfile.NamedTemporaryFile(prefix=f"{module}-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(
        [
            *(["nice", "-n", str(nice)] if nice else []),
            sys.executable,
            "-m",
            module,
            command,
            *args,
        ],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        if proc.returncode not in (0, -15) or os.environ.get("SHOW_WORKER_LOG"):
            print(Path(log.name).read_text()[-4000:])
