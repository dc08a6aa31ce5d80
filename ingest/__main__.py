"""``python -m ingest``: run an ingest worker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Annotated

import psycopg
import typer
from prometheus_client import start_http_server

from devices.db import AsyncPool, open_pool
from devices.heartbeat import WorkerIdentity, heartbeat_loop
from devices.logs import setup_logging
from devices.migrate import apply_policies, detect_features, owns_hypertables
from devices.settings import Settings
from ingest.devicecache import DeviceCache, watch_devices
from ingest.mqtt_source import (
    LANE_CHANNELS,
    TELEMETRY_CHANNELS,
    MqttSource,
    SourceConfig,
)
from ingest.worker import Path, consume, retention

app = typer.Typer(add_completion=False, help="MQTT -> TimescaleDB ingest worker")
log = logging.getLogger("ingest")


# A process that runs the life-safety lane alone (``python -m ingest lane``) subscribes in a share
# group of its own: it receives every event beside the main workers' lanes, and the first to
# commit an event stores it (the second finds its unique keys taken: a duplicate, dropped).
LANE_ONLY_SUFFIX = "-lane"


def source_config(
    settings: Settings, client_id: str | None, *, lane: bool = False, lane_only: bool = False
) -> SourceConfig:
    """The telemetry path's connection, or (``lane``) the life-safety lane's: its own client
    id (``<client id>-ls``) and session, subscribed to the event topics only. ``lane_only``:
    the lane of a process that runs nothing else, in its own share group."""
    base = client_id or settings.mqtt_client_id
    group = settings.mqtt_share_group or None
    if lane_only:
        lane, base = True, f"{base}{LANE_ONLY_SUFFIX}"
        group = f"{group}{LANE_ONLY_SUFFIX}" if group else None
    return SourceConfig(
        host=settings.mqtt_host,
        port=settings.mqtt_port,
        username=settings.mqtt_username,
        password=settings.mqtt_password.get_secret_value(),
        client_id=f"{base}-ls" if lane else base,
        tls_ca_file=str(settings.mqtt_tls_ca_file) if settings.mqtt_tls_ca_file else None,
        share_group=group,
        session_expiry_s=settings.mqtt_session_expiry_s,
        receive_maximum=settings.mqtt_receive_maximum,
        queue_max=max(settings.ingest_queue_max, settings.mqtt_receive_maximum),
        channels=LANE_CHANNELS if lane else TELEMETRY_CHANNELS,
        drop_channels=() if lane else LANE_CHANNELS,
    )


async def serve(settings: Settings, source: MqttSource | None, lane: MqttSource) -> None:
    """Run the telemetry path (``source``) and the life-safety lane; with no ``source``, the
    lane alone (``python -m ingest lane``: a process whose event loop no telemetry batch can hold
    up, beside the main workers)."""
    features = None
    if source is not None:
        with psycopg.connect(settings.database_url) as conn:
            features = detect_features(conn)
            if owns_hypertables(conn):
                apply_policies(conn, features, retention_days=settings.telemetry_retention_days)
            else:  # its own role (docs/deployment.md): `devices migrate` applied them as owner
                log.info("the hypertables' policies are left to migrate (not their owner)")
    # one connection per write in flight, one for the device cache, one for retention, one
    # for the heartbeat
    pool = await open_pool(
        settings.database_url,
        name="ingest" if source is not None else "ingest-lane-beat",
        max_size=settings.ingest_writes_in_flight + 3 if source is not None else 1,
    )
    # The life-safety lane's own connections: a busy telemetry pool never keeps an SOS waiting.
    # One connection per write in flight (2), one for the device cache.
    lane_pool = await open_pool(settings.database_url, name="ingest-ls", max_size=3)
    cache = DeviceCache()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async def consume_then_disconnect(
        src: MqttSource, db: AsyncPool, path: Path, disconnect: asyncio.Event
    ) -> None:
        # The connection outlives the consumer by a moment: the last committed batch is
        # acknowledged before the worker says goodbye to the broker.
        try:
            await consume(settings, db, src, stop, cache=cache, path=path)
        finally:
            disconnect.set()

    paths = [("-ls", lane, lane_pool, Path.life_safety(settings))]
    if source is not None:
        paths.insert(0, ("", source, pool, Path.telemetry(settings)))
    try:
        async with asyncio.TaskGroup() as tg:
            for name, src, db, path in paths:
                disconnect = asyncio.Event()
                tg.create_task(src.run(disconnect), name=f"mqtt{name}")
                tg.create_task(
                    consume_then_disconnect(src, db, path, disconnect), name=f"consume{name}"
                )
            tg.create_task(watch_devices(settings.database_url, cache, stop), name="devices")
            if features is not None:
                tg.create_task(
                    retention(settings, pool, policies=features.policies, stop=stop),
                    name="retention",
                )
            # the dead-man's switch: a watcher raises a technical alert when these stop
            tg.create_task(
                heartbeat_loop(
                    pool,
                    WorkerIdentity.current("ingest" if source is not None else "ingest-lane"),
                    supervisor=None,
                    every_s=settings.heartbeat_interval_s,
                    stop=stop,
                ),
                name="heartbeat",
            )
    finally:
        await lane_pool.close()
        await pool.close()


@app.callback()
def _group() -> None:
    """Subcommands of this worker."""


ClientId = Annotated[str | None, typer.Option(help="MQTT client id (one per worker)")]


@app.command()
def run(
    client_id: ClientId = None,
    metrics_port: Annotated[int, typer.Option(help="Prometheus port, 0 = off")] = 0,
) -> None:
    """Consume device messages and store them."""
    settings = Settings()
    setup_logging(process="ingest")
    if metrics_port:
        start_http_server(metrics_port, addr="127.0.0.1")
    with contextlib.suppress(KeyboardInterrupt):
        telemetry = MqttSource(source_config(settings, client_id))
        lane = MqttSource(source_config(settings, client_id, lane=True))
        asyncio.run(serve(settings, telemetry, lane))


@app.command()
def lane(client_id: ClientId = None) -> None:
    """Store the life-safety lane's events (sos, fall, smoke, doors) alone, beside the main
    workers: no telemetry batch shares this process's event loop."""
    settings = Settings()
    setup_logging(process="ingest-lane")
    with contextlib.suppress(KeyboardInterrupt):
        lane = MqttSource(source_config(settings, client_id, lane_only=True))
        asyncio.run(serve(settings, None, lane))


if __name__ == "__main__":
    app()
