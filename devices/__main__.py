"""``python -m devices``: migrations, device provisioning and retirement, sites, residents and
sign-in accounts (:mod:`devices.people_cli`), broker files, TLS certificates. The demo seed
and the local services are dev tooling: ``python -m devtools``."""

from __future__ import annotations

import asyncio
import json
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import psycopg
import typer
from psycopg.rows import dict_row

from devices import migrate as migrations
from devices import people_cli, roster_cli
from devices.broker_admin import BrokerAdmin, NewDevice, broker_admin, remove_devices
from devices.broker_files import write_broker_files
from devices.credentials import ServiceUser, admin_user, backend_user, ingest_user, mosquitto_hash
from devices.domain import DeviceKind, Placement
from devices.registry import Conn, RetireError, device_credentials, provision_device, retire_device
from devices.settings import Settings

app = typer.Typer(add_completion=False, help="Device registry, broker files and migrations")
app.add_typer(people_cli.sites, name="site")
app.add_typer(people_cli.residents, name="resident")
app.add_typer(people_cli.users, name="user")
app.add_typer(people_cli.visitors, name="visitor")
app.add_typer(roster_cli.responders, name="responder")


async def _with_conn(settings: Settings) -> Conn:
    return await psycopg.AsyncConnection.connect(settings.database_url, row_factory=dict_row)


@app.command()
def migrate() -> None:
    """Bring the database schema to the newest version."""
    settings = Settings()
    migrations.upgrade(settings.database_url)
    with psycopg.connect(settings.database_url) as conn:
        features = migrations.detect_features(conn)
        dropped = migrations.apply_retention(
            conn,
            features,
            retention_days=settings.telemetry_retention_days,
            now=datetime.now(UTC),
        )
        given = {
            "ingest": settings.database_ingest_password,
            "alerts": settings.database_alerts_password,
            "api": settings.database_api_password,
        }
        passwords = {
            migrations.PROCESS_ROLES[process]: secret.get_secret_value()
            for process, secret in given.items()
            if secret.get_secret_value()
        }
        migrations.set_role_passwords(conn, passwords)
    typer.echo(f"schema at head; TimescaleDB {features.version} ({features.license} licence)")
    if passwords:
        typer.echo(f"database roles that may sign in: {', '.join(sorted(passwords))}")
    typer.echo(
        f"retention {settings.telemetry_retention_days} days "
        f"({'TimescaleDB policies' if features.policies else 'drop_chunks'}); "
        f"{dropped} chunks dropped now"
    )


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
    """Register a device; prints its MQTT password once, and adds it to the running broker
    (with ELDERCARE_BROKER_ADMIN_PASSWORD; otherwise run broker-sync before the broker starts)."""
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
    if settings.broker_admin_password.get_secret_value():
        with _admin(settings) as admin:
            errors = admin.add_devices([NewDevice(site, device_id, secret)])
        if errors:
            raise typer.Exit(_fail("; ".join(errors)))
        typer.echo("added to the running broker")


@app.command()
def retire(device_id: Annotated[str, typer.Option()]) -> None:
    """Retire a device: it may no longer sign in (removed from the running broker with
    ELDERCARE_BROKER_ADMIN_PASSWORD), its assignment ends, ingest refuses what it still sends."""
    settings = Settings()

    async def go() -> str:
        async with await _with_conn(settings) as conn:
            try:
                done = await retire_device(conn, device_id=device_id, at=datetime.now(UTC))
            except RetireError as exc:
                raise typer.Exit(_fail(str(exc))) from None
            await conn.commit()
            return done.site_id

    site = asyncio.run(go())
    typer.echo(f"device {device_id} of site {site} retired")
    problem = remove_devices(
        settings.mqtt_host,
        settings.mqtt_port,
        settings.broker_admin_password.get_secret_value(),
        [device_id],
        tls_ca=settings.mqtt_tls_ca_file,
    )
    if problem:
        raise typer.Exit(_fail(f"still known to the running broker: {problem}"))
    typer.echo("removed from the running broker (disconnected)")


def _fail(message: str) -> int:
    typer.echo(message, err=True)
    return 1


def _admin(settings: Settings) -> AbstractContextManager[BrokerAdmin]:
    return broker_admin(
        settings.mqtt_host,
        settings.mqtt_port,
        settings.broker_admin_password.get_secret_value(),
        tls_ca=settings.mqtt_tls_ca_file,
    )


def _service_users(settings: Settings) -> list[ServiceUser]:
    users = [
        ingest_user(mosquitto_hash(settings.broker_ingest_password.get_secret_value())),
        backend_user(mosquitto_hash(settings.broker_backend_password.get_secret_value())),
    ]
    if settings.broker_admin_password.get_secret_value():
        users.append(admin_user(mosquitto_hash(settings.broker_admin_password.get_secret_value())))
    return users


@app.command("broker-sync")
def broker_sync(
    conf_dir: Annotated[Path, typer.Option()],
    reload: Annotated[
        bool,
        typer.Option(help="also apply it to the running broker (ELDERCARE_BROKER_ADMIN_PASSWORD)"),
    ] = False,
    secrets_file: Annotated[
        Path | None,
        typer.Option("--secrets", help="devices' plaintext secrets (seed --out) to add them live"),
    ] = None,
) -> None:
    """Write the broker's accounts from the registry (read when the broker starts); with
    --reload, remove retired devices from the running broker and add those whose secrets are
    given."""
    settings = Settings()
    services = _service_users(settings)

    async def go() -> dict[str, str]:
        async with await _with_conn(settings) as conn:
            await write_broker_files(conn, conf_dir=conf_dir, services=services)
            return {d.device_id: d.site_id for d in await device_credentials(conn)}

    registered = asyncio.run(go())
    typer.echo(f"broker accounts written for {len(registered)} devices in {conf_dir}")
    if not reload:
        return
    given: list[NewDevice] = []
    if secrets_file is not None:
        raw = json.loads(secrets_file.read_text())
        given = [
            NewDevice(registered[d["device_id"]], d["device_id"], d["password"])
            for d in raw["devices"]
            if d["device_id"] in registered
        ]
    with _admin(settings) as admin:
        known = set(admin.clients())
        stale = known - set(registered) - {s.username for s in services}
        admin.remove(sorted(stale))
        errors = admin.add_devices(given)
        unknown = set(registered) - known - {d.device_id for d in given}
    # the plugin saved its own state on those changes; the registry's file wins at a restart
    asyncio.run(go())
    typer.echo(f"running broker: {len(given)} added, {len(stale)} removed")
    if unknown:
        typer.echo(
            f"{len(unknown)} registered devices are unknown to the running broker (their "
            "secrets exist only as hashes): they can connect after a broker restart",
            err=True,
        )
    if errors:
        raise typer.Exit(_fail("; ".join(errors)))


@app.command("tls-certs")
def tls_certs(
    out: Annotated[Path, typer.Option(help="directory for ca.crt, server.crt, server.key")],
    host: Annotated[
        list[str] | None,
        typer.Option(help="name or address devices use for the broker (repeat); the first is CN"),
    ] = None,
) -> None:
    """Create a local CA and the broker's TLS server certificate (kept if they exist)."""
    from devices.tls import make_certs

    files = make_certs(out, hosts=tuple(host or ("localhost", "127.0.0.1")))
    typer.echo(f"CA {files.ca_cert} (give it to the devices), server {files.server_cert}")


if __name__ == "__main__":
    app()
