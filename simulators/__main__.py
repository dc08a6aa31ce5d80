"""``python -m simulators demo``: run the seeded demo devices against an MQTT broker."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated

import msgspec
import typer

from simulators import calibration, sisfall
from simulators.demo import run_demo
from simulators.fleet import DeviceCreds, load_devices
from simulators.load_run import LoadSpec, result_json, run_load
from simulators.session import Broker

# The devices' TLS listener (8883): connect over TLS and verify the broker against this CA.
TlsCa = Annotated[
    Path | None,
    typer.Option(
        "--tls-ca",
        envvar="ELDERCARE_MQTT_TLS_CA_FILE",
        help="CA file of the broker's TLS listener; set, devices connect over TLS",
    ),
]


def _ca(path: Path | None) -> str | None:
    return str(path) if path is not None else None


app = typer.Typer(add_completion=False, no_args_is_help=True)


@app.callback()
def main() -> None:
    """Simulated eldercare devices speaking device protocol v1 over MQTT."""


@app.command()
def demo(
    devices: Annotated[
        Path, typer.Option(help="Credentials file written by the demo seed.")
    ] = Path(".run/demo-devices.json"),
    host: Annotated[str, typer.Option(envvar="ELDERCARE_MQTT_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="ELDERCARE_MQTT_PORT")] = 1883,
    tls_ca: TlsCa = None,
    duration: Annotated[float, typer.Option(min=0, help="Seconds to run; 0 = forever.")] = 0.0,
    interval: Annotated[float, typer.Option(min=0.1, help="Telemetry period (s).")] = 10.0,
    incident_every: Annotated[
        float, typer.Option(min=0, help="Seconds between random incidents; 0 = none.")
    ] = 300.0,
    seed: Annotated[int | None, typer.Option(help="Random seed, for a repeatable run.")] = None,
    log_level: Annotated[str, typer.Option()] = "INFO",
) -> None:
    """Connect every device of the file and publish telemetry, events and incidents."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    fleet = _fleet(devices)
    broker = Broker(host=host, port=port, tls_ca=_ca(tls_ca))
    asyncio.run(
        run_demo(
            fleet,
            broker=broker,
            interval=interval,
            incident_every=incident_every,
            duration=duration,
            seed=seed,
        )
    )


@app.command()
def load(
    username: Annotated[str, typer.Option(envvar="ELDERCARE_LOAD_USERNAME")],
    password: Annotated[str, typer.Option(envvar="ELDERCARE_LOAD_PASSWORD")],
    host: Annotated[str, typer.Option(envvar="ELDERCARE_MQTT_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="ELDERCARE_MQTT_PORT")] = 1883,
    devices: Annotated[int, typer.Option(min=1, help="Devices in the load fleet.")] = 2000,
    sites: Annotated[int, typer.Option(min=1)] = 50,
    prefix: Annotated[str, typer.Option(help="Device id prefix (ids: <prefix>000001...).")] = "ld",
    messages: Annotated[int, typer.Option(min=1, help="Messages in total.")] = 100_000,
    rate: Annotated[float, typer.Option(min=0, help="Messages/s in total; 0 = max.")] = 0.0,
    processes: Annotated[int, typer.Option(min=1)] = 2,
    status: Annotated[float, typer.Option(min=0, max=1, help="Share of status messages.")] = 0.05,
    event: Annotated[float, typer.Option(min=0, max=1, help="Share of event packs.")] = 0.05,
    acc: Annotated[
        float, typer.Option(min=0, max=1, help="Share of 1 s 50 Hz acc windows.")
    ] = 0.05,
) -> None:
    """Publish a realistic mix at QoS 1 from many devices; live rate on stderr, JSON on stdout.

    The account needs write access to every load device's topics (a bench/test account)."""
    spec = LoadSpec(
        host,
        port,
        username,
        password,
        devices,
        sites,
        prefix,
        messages,
        rate,
        processes,
        status,
        event,
        acc,
    )
    print(result_json(run_load(spec)))


class _User(msgspec.Struct):
    username: str
    password: str


class _UsersFile(msgspec.Struct):
    users: list[_User] = msgspec.field(default_factory=list)


def _fleet(devices: Path) -> list[DeviceCreds]:
    try:
        fleet = load_devices(devices)
    except (OSError, ValueError, msgspec.DecodeError) as exc:  # bad ids: WireError, a ValueError
        raise typer.BadParameter(f"{devices}: {exc}", param_hint="--devices") from exc
    if not fleet:
        raise typer.BadParameter(f"{devices} lists no devices", param_hint="--devices")
    return fleet


@app.command()
def conform(
    scenario: Annotated[Path, typer.Argument(help="Scenario TOML file, or a bundled name.")],
    api: Annotated[str, typer.Option(help="Base URL of the dashboard API.")] = (
        "http://127.0.0.1:8000"
    ),
    user: Annotated[str, typer.Option(help="API user (staff or admin) to read and accept as.")] = (
        "admin"
    ),
    password: Annotated[str | None, typer.Option(help="Default: from the --devices file.")] = None,
    devices: Annotated[Path, typer.Option()] = Path(".run/demo-devices.json"),
    host: Annotated[str, typer.Option(envvar="ELDERCARE_MQTT_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="ELDERCARE_MQTT_PORT")] = 1883,
    tls_ca: TlsCa = None,
    truth: Annotated[Path, typer.Option(help="Ground-truth JSONL written during the run.")] = (
        Path(".run/ground-truth.jsonl")
    ),
    speed: Annotated[float | None, typer.Option(help="Override the scenario's speed.")] = None,
    log_level: Annotated[str, typer.Option()] = "WARNING",
) -> None:
    """Play a scenario against a running backend and score it through the public API."""
    from simulators import scenario as scenarios
    from simulators.api import Api, ApiError
    from simulators.conform import run as run_conformance

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    try:
        plan = scenarios.load(scenario)
    except (OSError, ValueError, msgspec.ValidationError) as exc:
        raise typer.BadParameter(f"{scenario}: {exc}", param_hint="SCENARIO") from exc
    if speed is not None:
        plan = msgspec.structs.replace(plan, speed=speed)
    fleet = _fleet(devices)
    if password is None:
        users = msgspec.json.decode(devices.read_bytes(), type=_UsersFile).users
        password = next((u.password for u in users if u.username == user), "")
    client = Api(api)
    try:
        client.login(user, password)
        lines, ok, stats = asyncio.run(
            run_conformance(
                plan,
                fleet,
                broker=Broker(host=host, port=port, tls_ca=_ca(tls_ca)),
                api=client,
                truth_path=truth,
            )
        )
    except ApiError as exc:
        typer.echo(f"conform: API error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo("\n".join(lines))
    typer.echo(
        f"(sent {stats.sent} messages, {stats.buffered} buffered offline, "
        f"{stats.dropped} drop-outs, worst lag {stats.late_s:.2f} s, {stats.commands} commands "
        f"received; ground truth in {truth})"
    )
    raise typer.Exit(0 if ok else 1)


@app.command()
def chaos(
    scenario: Annotated[Path, typer.Argument(help="Chaos scenario TOML, or a bundled name.")],
    run_dir: Annotated[Path, typer.Option(help="The main job's run directory (faults).")],
    api: Annotated[str, typer.Option(help="Base URL of the dashboard API.")] = (
        "http://127.0.0.1:8000"
    ),
    user: Annotated[str, typer.Option(help="API user (staff or admin) to read as.")] = "admin",
    password: Annotated[str | None, typer.Option(help="Default: from the --devices file.")] = None,
    devices: Annotated[Path, typer.Option()] = Path(".run/demo-devices.json"),
    host: Annotated[str, typer.Option(envvar="ELDERCARE_MQTT_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="ELDERCARE_MQTT_PORT")] = 1883,
    tls_ca: TlsCa = None,
    metrics: Annotated[str | None, typer.Option(help="Ingest's /metrics URL.")] = None,
    truth: Annotated[Path, typer.Option(help="Ground-truth JSONL written during the run.")] = (
        Path(".run/chaos-ground-truth.jsonl")
    ),
    duration: Annotated[float | None, typer.Option(help="Override the run's length (s).")] = None,
    log_level: Annotated[str, typer.Option()] = "WARNING",
) -> None:
    """Play a living population with hostile devices and faults against the main job."""
    from simulators import chaos_plan
    from simulators.api import Api, ApiError
    from simulators.chaos import Reader
    from simulators.chaos import run as run_chaos
    from simulators.conform import cast

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    try:
        base, plan_chaos = chaos_plan.load(scenario)
    except (OSError, ValueError, msgspec.ValidationError) as exc:
        raise typer.BadParameter(f"{scenario}: {exc}", param_hint="SCENARIO") from exc
    if duration is not None:
        base = msgspec.structs.replace(base, duration_s=duration)
    fleet = _fleet(devices)
    plan = chaos_plan.plan(base, plan_chaos, cast(base, fleet))
    if password is None:
        users = msgspec.json.decode(devices.read_bytes(), type=_UsersFile).users
        password = next((u.password for u in users if u.username == user), "")
    client = Api(api)
    reader = Reader(client, user, password)
    try:
        reader.call(lambda: client.login(user, password), patience_s=60)
        lines, ok = asyncio.run(
            run_chaos(
                plan,
                fleet,
                broker=Broker(host=host, port=port, tls_ca=_ca(tls_ca)),
                reader=reader,
                run_dir=run_dir,
                metrics_url=metrics,
                truth_path=truth,
            )
        )
    except ApiError as exc:
        typer.echo(f"chaos: the API did not come back: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo("\n".join(lines))
    raise typer.Exit(0 if ok else 1)


@app.command("care-month")
def care_month(
    api: Annotated[str, typer.Option(help="the API's base URL")] = "http://127.0.0.1:8000",
    logins: Annotated[
        Path, typer.Option(help="demo-devices.json of the main job (its users)")
    ] = Path(".run/demo-devices.json"),
    seed: Annotated[int, typer.Option(help="random seed")] = 15,
) -> None:
    """A month of visits and weekly safety rounds, played through the API (issue 15)."""
    import json
    import random
    from datetime import UTC, datetime

    from simulators.care_month import play_care_month

    users = json.loads(logins.read_text())["users"]
    who = {
        u["username"]: u["password"] for u in users if u["role"] in ("visitor", "safety_officer")
    }
    out = play_care_month(api, who, now=datetime.now(UTC), rng=random.Random(seed))
    typer.echo(f"care month: {out}")


@app.command()
def population(
    devices: Annotated[Path, typer.Option()] = Path(".run/demo-devices.json"),
    scenario: Annotated[Path | None, typer.Option(help="Apply a scenario's profiles.")] = None,
) -> None:
    """Show the simulated residents: care profile and the devices each one has."""
    from simulators import scenario as scenarios
    from simulators.population import build_population

    profiles = scenarios.load(scenario).residents if scenario else {}
    for r in build_population(_fleet(devices), profiles=profiles):
        kit = ", ".join(f"{k}={d.device_id}" for k, d in sorted(r.devices.items()))
        typer.echo(f"{r.site_id:<8} {r.name:<12} {r.profile:<12} {r.room or '-':<9} {kit}")


@app.command()
def homes(
    out: Annotated[Path, typer.Argument(help="Directory to write the simulated homes into.")],
    residents: Annotated[int, typer.Option(min=1)] = 6,
    days: Annotated[int, typer.Option(min=1)] = 28,
    seed: Annotated[int, typer.Option()] = 20261203,
) -> None:
    """Simulated homes in the inactivity evaluation's format (docs/detection-inactivity.md)."""
    from simulators import calibration
    from simulators.homes import write_homes

    for path in write_homes(
        out, residents=residents, days=days, calib=calibration.load(), seed=seed
    ):
        typer.echo(path)


@app.command()
def calibrate(
    data: Annotated[Path, typer.Option(help="Directory of houseA..C .sensors/.activities.")] = (
        Path("../shared/data/smarthome-kasteren/tl_format_houses_A-E")
    ),
    out: Annotated[Path, typer.Option()] = calibration.DEFAULT_OUT,
) -> None:
    """Calibrate daily routines on the van Kasteren home logs (read in place)."""
    calibration.write(calibration.calibrate(data), out)
    typer.echo(f"wrote {out}")


@app.command()
def falls(
    archive: Annotated[Path, typer.Option(help="SisFall_dataset.tar.xz (read in place).")] = (
        Path("../shared/data/sisfall/SisFall_dataset.tar.xz")
    ),
    out: Annotated[Path, typer.Option()] = sisfall.DEFAULT_OUT,
) -> None:
    """Cut real fall traces (ADXL345, m/s2, 50 Hz) from SisFall into a small fixture."""
    traces = sisfall.extract(archive)
    sisfall.write(traces, out)
    typer.echo(f"wrote {len(traces.traces)} fall traces to {out}")


@app.command()
def plot(
    out: Annotated[Path, typer.Option()] = Path("docs/routine-statistics.png"),
    days: Annotated[int, typer.Option(min=1)] = 60,
    seed: Annotated[int, typer.Option()] = 1,
) -> None:
    """Plot simulated routine statistics beside the real logs' (needs matplotlib)."""
    from simulators.plot import plot_routines

    plot_routines(out, days=days, seed=seed)
    typer.echo(f"wrote {out}")


if __name__ == "__main__":
    app()
