"""``python -m devices``: migrations, demo seed, device provisioning, broker files, local services."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import psycopg
import typer
from psycopg.rows import dict_row

from devices import migrate as migrations
from devices import stack
from devices.broker_files import write_broker_files
from devices.credentials import backend_user, ingest_user, mosquitto_hash
from devices.domain import DeviceKind, Placement
from devices.registry import Conn, provision_device
from devices.seed import seed_demo, seed_demo_roster
from devices.settings import Settings

app = typer.Typer(add_completion=False, help="Device registry and local services")


async def _with_conn(settings: Settings) -> Conn:
    return await psycopg.AsyncConnection.connect(settings.database_url, row_factory=dict_row)


@app.command()
def migrate() -> None:
    """Bring the database schema to the newest version."""
    settings = Settings()
    migrations.upgrade(settings.database_url)
    with psycopg.connect(settings.database_url) as conn:
        features = migrations.detect_features(conn)
    typer.echo(f"schema at head; TimescaleDB {features.version} ({features.license} licence)")


@app.command()
def seed(
    out: Annotated[Path, typer.Option(help="where to write demo credentials")] = Path(
        ".run/demo-devices.json"
    ),
) -> None:
    """Create the demo population once (skipped if it exists) and write its credentials."""
    settings = Settings()

    async def go() -> None:
        async with await _with_conn(settings) as conn:
            cur = await conn.execute("SELECT 1 FROM sites WHERE site_id = 'sunrise'")
            if await cur.fetchone() is not None and out.exists():
                typer.echo(f"demo population exists; credentials in {out}")
                return
            population = await seed_demo(conn, now=datetime.now(UTC))
            await seed_demo_roster(conn, now=datetime.now(UTC))
            await conn.commit()
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(population.as_json(), indent=1))
        out.chmod(0o600)
        typer.echo(f"seeded {len(population.devices)} devices; credentials in {out}")

    asyncio.run(go())


@app.command()
def provision(
    site: Annotated[str, typer.Option()],
    device_id: Annotated[str, typer.Option()],
    kind: Annotated[DeviceKind, typer.Option()],
    resident_id: Annotated[int | None, typer.Option()] = None,
    placement: Annotated[
        Placement,
        typer.Option(help="where a wearable sits on the body; its fall model is chosen by it"),
    ] = Placement.UNKNOWN,
) -> None:
    """Register a device; prints its MQTT password once. Run broker-sync afterwards."""
    settings = Settings()

    async def go() -> str:
        async with await _with_conn(settings) as conn:
            p = await provision_device(
                conn,
                device_id=device_id,
                site_id=site,
                kind=kind,
                now=datetime.now(UTC),
                resident_id=resident_id,
                placement=placement,
            )
            await conn.commit()
            return p.secret

    secret = asyncio.run(go())
    typer.echo(f"device {device_id} registered; MQTT username {device_id}, password {secret}")


@app.command("broker-sync")
def broker_sync(
    conf_dir: Annotated[Path, typer.Option()],
    reload: Annotated[bool, typer.Option(help="SIGHUP $ELDERCARE_BROKER_PID")] = False,
) -> None:
    """Write the broker's password file and ACL from the registry."""
    settings = Settings()
    services = [
        ingest_user(mosquitto_hash(settings.broker_ingest_password.get_secret_value())),
        backend_user(mosquitto_hash(settings.broker_backend_password.get_secret_value())),
    ]

    async def go() -> int:
        async with await _with_conn(settings) as conn:
            return await write_broker_files(conn, conf_dir=conf_dir, services=services)

    n = asyncio.run(go())
    if reload:
        os.kill(int(os.environ["ELDERCARE_BROKER_PID"]), signal.SIGHUP)
    typer.echo(f"broker files written for {n} devices in {conf_dir}")


services_app = typer.Typer(add_completion=False, help="The project's own PostgreSQL and Mosquitto")
app.add_typer(services_app, name="services")


@services_app.command("up")
def services_up(run_dir: Annotated[Path, typer.Option()] = Path(".run")) -> None:
    """Start (or reuse) local PostgreSQL+TimescaleDB and Mosquitto; writes RUN_DIR/env."""
    env = stack.up(run_dir)
    typer.echo(
        f"PostgreSQL on 127.0.0.1 ({env['ELDERCARE_DATABASE_URL'].rsplit('@', 1)[1]}), "
        f"Mosquitto on 127.0.0.1:{env['ELDERCARE_MQTT_PORT']}; env in {run_dir}/env"
    )


@services_app.command("down")
def services_down(run_dir: Annotated[Path, typer.Option()] = Path(".run")) -> None:
    """Stop the local services."""
    stack.down(run_dir)
    typer.echo("local services stopped")


if __name__ == "__main__":
    app()
