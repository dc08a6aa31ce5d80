"""``python -m alerts run``: the detectors and the dispatch queue's worker."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import typer

from alerts.detectors.registry import build_registry, build_tick_registry, route
from alerts.dispatch import DispatchPolicy
from alerts.routine import SiteDefaults
from alerts.ticks import tick_loop
from alerts.worker import detect_loop, listen
from devices.db import open_pool
from devices.domain import Colour
from devices.logs import setup_logging
from devices.settings import Settings

app = typer.Typer(add_completion=False, help="Detectors and dispatch worker")


def policy_from(settings: Settings) -> DispatchPolicy:
    return DispatchPolicy(
        {
            Colour.RED: settings.accept_within_red_s,
            Colour.YELLOW: settings.accept_within_yellow_s,
            Colour.GREEN: settings.accept_within_green_s,
        }
    )


def site_defaults(settings: Settings) -> SiteDefaults:
    return SiteDefaults(
        day_max_s=settings.inactivity_default_day_max_s,
        night_max_s=settings.inactivity_default_night_max_s,
        bathroom_max_s=settings.inactivity_default_bathroom_max_s,
        margin_s=settings.inactivity_margin_s,
    )


async def serve(settings: Settings) -> None:
    pool = await open_pool(settings.database_url, name="alerts", max_size=4)
    stop, wake = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    routes = route(build_registry(fall_min_confidence=settings.fall_min_confidence))
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(listen(settings.database_url, wake, stop), name="listen")
            tg.create_task(
                detect_loop(
                    pool,
                    routes=routes,
                    policy=policy_from(settings),
                    limit=settings.alerts_batch_max,
                    poll_s=settings.alerts_poll_interval_s,
                    wake=wake,
                    stop=stop,
                ),
                name="detect",
            )
            tg.create_task(
                tick_loop(
                    pool,
                    specs=build_tick_registry(),
                    policy=policy_from(settings),
                    defaults=site_defaults(settings),
                    interval_s=settings.tick_interval_s,
                    refit_interval_s=settings.routine_refit_interval_s,
                    history_days=settings.routine_history_days,
                    stop=stop,
                ),
                name="ticks",
            )
    finally:
        await pool.close()


@app.callback()
def _group() -> None:
    """Subcommands of this worker."""


@app.command()
def run() -> None:
    """Run the detectors on the live stream and open dispatch orders."""
    settings = Settings()
    setup_logging(process="alerts")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(settings))


if __name__ == "__main__":
    app()
