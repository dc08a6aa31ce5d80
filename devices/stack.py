"""The project's own local services for the main job: start once, reuse, stop.

State lives in ``<run_dir>/``: ``env`` (ELDERCARE_* variables for every process, sourced by
the run script), ``services.json`` (ports and pids), ``pg/`` and ``mosquitto/``.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

from devices.broker_files import write_broker_config, write_secret
from devices.credentials import (
    DYNSEC_FILE,
    ServiceUser,
    admin_user,
    backend_user,
    generate_secret,
    ingest_user,
    mosquitto_hash,
)
from devices.local_services import LocalBroker, LocalPostgres, start_mosquitto, start_postgres

DEFAULT_PG_PORT = 55432
DEFAULT_MQTT_PORT = 18830


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
        return loaded
        if "admin" not in loaded:  # a run directory from before the broker-admin account
            loaded["admin"] = generate_secret()
            write_secret(path, json.dumps(loaded))
        return loaded
    values = {k: generate_secret() for k in ("db", "ingest", "backend", "admin")}
    write_secret(path, json.dumps(values))
    return values


def service_users(sec: dict[str, str]) -> list[ServiceUser]:
    return [
        ingest_user(mosquitto_hash(sec["ingest"])),
        backend_user(mosquitto_hash(sec["backend"])),
        admin_user(mosquitto_hash(sec["admin"])),
    ]


def up(run_dir: Path) -> dict[str, str]:
    """Start (or reuse) PostgreSQL and Mosquitto; return and write the environment."""
    run_dir = run_dir.resolve()
    # Not 0700: as root, PostgreSQL runs as the postgres user inside it. Each secret file in
    # it (env, secrets.json, demo-devices.json, mosquitto/) is its owner's only.
    run_dir.mkdir(parents=True, exist_ok=True)
    sec = _secrets(run_dir)
    state_path = run_dir / "services.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    pg_pid_file = run_dir / "pg" / "postmaster.pid"
    if pg_pid_file.exists() and _alive(int(pg_pid_file.read_text().split()[0])):
        pg = LocalPostgres(run_dir / "pg", int(state["pg_port"]), sec["db"])
    else:
        pg = start_postgres(run_dir, port=DEFAULT_PG_PORT, password=sec["db"])
    broker_dir = run_dir / "mosquitto"
    broker_dir.mkdir(mode=0o700, exist_ok=True)
    if "mqtt_pid" in state and _alive(int(state["mqtt_pid"])):
        broker = LocalBroker(broker_dir, int(state["mqtt_port"]), int(state["mqtt_pid"]))
    else:
        if not (broker_dir / DYNSEC_FILE).exists():
            # the devices follow from `devices broker-sync` / `seed` / `provision`; the plugin
            # saves every change to this file, so a restarted broker keeps them
            write_broker_config(broker_dir, [], service_users(sec))
        broker = start_mosquitto(broker_dir, port=DEFAULT_MQTT_PORT)
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
        "ELDERCARE_BROKER_PID": str(broker.pid),
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
