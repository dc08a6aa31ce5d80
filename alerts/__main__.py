"""``python -m alerts run``: the detectors, the escalation loop and the device-command
publisher of the dispatch queue."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import typer

from alerts.commands import command_publisher
from alerts.detectors.registry import build_registry, route
from alerts.dispatch import COMMANDS_CHANNEL, DISPATCH_CHANNEL
from alerts.escalation import escalation_loop
from alerts.policy import EscalationPolicy, policy_from_settings
from alerts.worker import OUTBOX_CHANNEL, detect_loop, listen
from devices.db import open_pool
from devices.logs import setup_logging
from devices.settings import Settings

app = typer.Typer(add_completion=False, help="Detectors and dispatch worker")


def policy_from(settings: Settings) -> EscalationPolicy:
    """The policy of sites without their own (``escalation_policies``)."""
    return policy_from_settings(settings)


async def serve(settings: Settings) -> None:
    pool = await open_pool(settings.database_url, name="alerts", max_size=6)
    stop = asyncio.Event()
    wake, escalate, commands = asyncio.Event(), asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    routes = route(build_registry(fall_min_confidence=settings.fall_min_confidence))
    wakes = {OUTBOX_CHANNEL: wake, DISPATCH_CHANNEL: escalate, COMMANDS_CHANNEL: commands}
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(listen(settings.database_url, wakes, stop), name="listen")
            tg.create_task(
                detect_loop(
                    pool,
                    routes=routes,
                    policy=policy_from(settings),
                    limit=settings.alerts_batch_max,
                    poll_s=settings.alerts_poll_interval_s,
                    wake=wake,
                    stop=stop,
                    opened=escalate,
                ),
                name="detect",
            )
            tg.create_task(
                escalation_loop(
                    pool, wake=escalate, stop=stop, poll_s=settings.alerts_poll_interval_s
                ),
                name="escalation_loop",
            )
            tg.create_task(
                command_publisher(
                    pool,
                    host=settings.mqtt_host,
                    port=settings.mqtt_port,
                    username="backend",
                    password=settings.broker_backend_password.get_secret_value(),
                    wake=commands,
                    stop=stop,
                    poll_s=settings.alerts_poll_interval_s,
                ),
                name="command_publisher",
            )
    finally:
        await pool.close()


@app.callback()
def _group() -> None:
    """Subcommands of this worker."""


@app.command()
def run() -> None:
    """Run the detectors on the live stream, escalate dispatch orders, publish commands."""
    settings = Settings()
    setup_logging(process="alerts")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(settings))


if __name__ == "__main__":
    app()
