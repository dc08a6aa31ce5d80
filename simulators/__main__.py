"""``python -m simulators demo``: run the seeded demo devices against an MQTT broker."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated

import msgspec
import typer

from simulators.demo import run_demo
from simulators.fleet import load_devices
from simulators.load_run import LoadSpec, result_json, run_load
from simulators.session import Broker

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
    try:
        fleet = load_devices(devices)
    except (
        OSError,
        ValueError,
        msgspec.DecodeError,
    ) as exc:  # bad ids raise WireError, a ValueError
        raise typer.BadParameter(f"{devices}: {exc}", param_hint="--devices") from exc
    if not fleet:
        raise typer.BadParameter(f"{devices} lists no devices", param_hint="--devices")
    broker = Broker(host=host, port=port)
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


if __name__ == "__main__":
    app()
