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

from devices.db import open_pool
from devices.logs import setup_logging
from devices.migrate import apply_policies, detect_features
from devices.settings import Settings
from ingest.mqtt_source import MqttSource, SourceConfig
from ingest.worker import consume, retention

app = typer.Typer(add_completion=False, help="MQTT -> TimescaleDB ingest worker")
log = logging.getLogger("ingest")


def source_config(settings: Settings, client_id: str | None) -> SourceConfig:
    return SourceConfig(
        host=settings.mqtt_host,
        port=settings.mqtt_port,
        username=settings.mqtt_username,
        password=settings.mqtt_password.get_secret_value(),
        client_id=client_id or settings.mqtt_client_id,
        tls_ca_file=str(settings.mqtt_tls_ca_file) if settings.mqtt_tls_ca_file else None,
        share_group=settings.mqtt_share_group or None,
        session_expiry_s=settings.mqtt_session_expiry_s,
        receive_maximum=settings.mqtt_receive_maximum,
        queue_max=max(settings.ingest_queue_max, settings.mqtt_receive_maximum),
    )


async def serve(settings: Settings, source: MqttSource) -> None:
    with psycopg.connect(settings.database_url) as conn:
        features = detect_features(conn)
        apply_policies(conn, features, retention_days=settings.telemetry_retention_days)
    # one connection per write in flight, one for the device cache, one for retention
    pool = await open_pool(
        settings.database_url, name="ingest", max_size=settings.ingest_writes_in_flight + 2
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # The connection outlives the consumer by a moment: the last committed batch is
    # acknowledged before the worker says goodbye to the broker.
    disconnect = asyncio.Event()

    async def consume_then_disconnect() -> None:
        try:
            await consume(settings, pool, source, stop)
        finally:
            disconnect.set()

    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(source.run(disconnect), name="mqtt")
            tg.create_task(consume_then_disconnect(), name="consume")
            tg.create_task(
                retention(settings, pool, policies=features.policies, stop=stop), name="retention"
            )
    finally:
        await pool.close()


@app.callback()
def _group() -> None:
    """Subcommands of this worker."""


@app.command()
def run(
    client_id: Annotated[str | None, typer.Option(help="MQTT client id (one per worker)")] = None,
    metrics_port: Annotated[int, typer.Option(help="Prometheus port, 0 = off")] = 0,
) -> None:
    """Consume device messages and store them."""
    settings = Settings()
    setup_logging(process="ingest")
    if metrics_port:
        start_http_server(metrics_port, addr="127.0.0.1")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(settings, MqttSource(source_config(settings, client_id))))


if __name__ == "__main__":
    app()
