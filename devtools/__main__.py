"""``python -m devtools``: the main job's own services and its demo population (dev tooling;
the runtime packages never import it and the image does not ship it)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import psycopg
import typer
from psycopg.rows import dict_row

from devices.broker_files import write_secret
from devices.settings import Settings
from devtools import local_services
from devtools.seed import seed_demo, seed_demo_roster

app = typer.Typer(add_completion=False, help="Dev tooling: local services and the demo seed")


@app.command()
def seed(
    out: Annotated[Path, typer.Option(help="where to write demo credentials")] = Path(
        ".run/demo-devices.json"
    ),
) -> None:
    """Create the demo population once (skipped if it exists) and write its credentials."""
    settings = Settings()

    async def go() -> None:
        async with await psycopg.AsyncConnection.connect(
            settings.database_url, row_factory=dict_row
        ) as conn:
            cur = await conn.execute("SELECT 1 FROM sites WHERE site_id = 'sunrise'")
            if await cur.fetchone() is not None and out.exists():
                typer.echo(f"demo population exists; credentials in {out}")
                return
            population = await seed_demo(conn, now=datetime.now(UTC))
            await seed_demo_roster(conn, now=datetime.now(UTC))
            await conn.commit()
        out.parent.mkdir(parents=True, exist_ok=True)
        write_secret(out, json.dumps(population.as_json(), indent=1))
        typer.echo(f"seeded {len(population.devices)} devices; credentials in {out}")

    asyncio.run(go())


services_app = typer.Typer(add_completion=False, help="The project's own PostgreSQL and Mosquitto")
app.add_typer(services_app, name="services")


@services_app.command("up")
def services_up(run_dir: Annotated[Path, typer.Option()] = Path(".run")) -> None:
    """Start (or reuse) local PostgreSQL+TimescaleDB and Mosquitto; writes RUN_DIR/env."""
    env = local_services.up(run_dir)
    typer.echo(
        f"PostgreSQL on 127.0.0.1 ({env['ELDERCARE_DATABASE_URL'].rsplit('@', 1)[1]}), "
        f"Mosquitto on 127.0.0.1:{env['ELDERCARE_MQTT_PORT']}; env in {run_dir}/env"
    )


@services_app.command("down")
def services_down(run_dir: Annotated[Path, typer.Option()] = Path(".run")) -> None:
    """Stop the local services."""
    local_services.down(run_dir)
    typer.echo("local services stopped")


if __name__ == "__main__":
    app()
