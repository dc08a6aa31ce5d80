"""``python -m alerts run``: the detectors, the escalation loop and the device-command
publisher of the dispatch queue."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import signal
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from datetime import datetime
from typing import Any

import typer
from threadpoolctl import threadpool_limits

from alerts.care.findings import findings_round
from alerts.care.reminders import enqueue_visit_reminders
from alerts.detection.checks import check_loop
from alerts.detection.detectors.base import EventDetector
from alerts.detection.detectors.devicehealth import DeviceHealthDetector
from alerts.detection.detectors.registry import (
    DetectorSpec,
    build_registry,
    build_tick_registry,
    build_window_registry,
    rechecks,
    route,
)
from alerts.detection.detectors.vitals import VitalsDetector
from alerts.detection.fall.model import ModelError
from alerts.detection.fall.model import load as load_fall_model
from alerts.detection.fall.model import load_all as load_fall_models
from alerts.detection.periodic import periodic_round
from alerts.detection.snapshots import site_defaults
from alerts.detection.ticks import tick_round
from alerts.detection.worker import OUTBOX_CHANNEL, LaneHold, detect_loop, listen
from alerts.dispatch.commands import command_publisher
from alerts.dispatch.escalation import escalation_loop, offer_opened
from alerts.dispatch.orders import COMMANDS_CHANNEL, DISPATCH_CHANNEL
from alerts.dispatch.policy import EscalationPolicy, policy_from_settings
from alerts.notify.resident_messages import resident_messages_loop
from alerts.notify.wiring import config_from, open_channels, open_check_in_sms
from alerts.notify.worker import notify_loop
from alerts.watchdog.loop import WatchConfig, watchdog_loop
from devices.db import AsyncPool, open_pool
from devices.heartbeat import WorkerIdentity, heartbeat_loop
from devices.logs import setup_logging
from devices.probe import probe_app, serve_probe
from devices.registry import Conn
from devices.settings import Settings
from devices.simclock import DetectorClock, Work, clocked_loop
from devices.supervise import Supervisor

# A supervised loop: called again (after a pause) when it stops with an error.
Loop = Callable[[], Awaitable[None]]

app = typer.Typer(add_completion=False, help="Detectors and dispatch worker")


async def _visit_reminders(conn: Conn, now: datetime) -> int:
    return await enqueue_visit_reminders(conn, now=now)


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def _event_specs(settings: Settings) -> tuple[tuple[DetectorSpec, ...], set[str]]:
    """The event detectors this installation runs, and the names it disabled."""
    specs = build_registry(
        fall_min_confidence=settings.fall_min_confidence,
        fall_confirm_confidence=settings.fall_confirm_confidence,
    )
    disabled = {n.strip() for n in settings.disabled_detectors.split(",") if n.strip()}
    return tuple(s for s in specs if s.detector.name not in disabled), disabled


async def _supervise(
    pool: AsyncPool,
    loops: dict[str, Loop],
    *,
    who: WorkerIdentity,
    supervisor: Supervisor,
    settings: Settings,
    stop: asyncio.Event,
    probe_port: int = 0,
) -> None:
    """Run every loop under the supervisor, the heartbeat, and (a port) the probe."""
    async with asyncio.TaskGroup() as tg:
        for name, factory in loops.items():
            tg.create_task(supervisor.run(name, factory), name=name)
        tg.create_task(
            heartbeat_loop(
                pool, who, supervisor=supervisor, every_s=settings.heartbeat_interval_s, stop=stop
            ),
            name="heartbeat",
        )
        if probe_port:
            tg.create_task(
                serve_probe(
                    probe_app(pool, supervisor, process=who.process),
                    host=settings.probe_host,
                    port=probe_port,
                    stop=stop,
                ),
                name="probe",
            )


def _detect(
    pool: AsyncPool,
    settings: Settings,
    *,
    routes: Mapping[str, tuple[EventDetector, ...]],
    policy: EscalationPolicy,
    stop: asyncio.Event,
    opened: asyncio.Event | None = None,
    lane_hold: LaneHold | None = None,
) -> functools.partial[Coroutine[Any, Any, None]]:
    """The event detectors' loop as a worker runs it (each lane adds its wake event and what
    it judges): every cycle that opens orders offers them in its own transaction."""
    return functools.partial(
        detect_loop,
        pool,
        routes=routes,
        policy=policy,
        limit=settings.alerts_batch_max,
        poll_s=settings.alerts_poll_interval_s,
        stop=stop,
        opened=opened,
        offer=offer_opened,
        lane_hold=lane_hold,
    )


async def serve_life_safety(settings: Settings) -> None:
    """``python -m alerts lane``: the life-safety lane's claims (sos, fall, smoke) and their
    first offer, alone in a process, beside the main workers (which leave it each row for
    ``ELDERCARE_ALERTS_LANE_HOLD_S`` while it beats, and take it then: the first to lock a
    row judges it). No batch of telemetry-driven rows, no model and no other loop
    shares this event loop, so a busy main worker never holds an SOS up; an order whose offer
    fails here is left due for the main workers' escalation loops."""
    pool = await open_pool(settings.database_url, name="alerts-lane", max_size=3)
    stop, wake = _stop_on_signals(), asyncio.Event()
    specs, _ = _event_specs(settings)
    routes, policy = route(specs), policy_from_settings(settings)
    loops: dict[str, Loop] = {
        "listen": lambda: listen(settings.database_url, {OUTBOX_CHANNEL: (wake,)}, stop),
        "detect_life_safety": lambda: _detect(
            pool, settings, routes=routes, policy=policy, stop=stop
        )(wake=wake, life_safety_only=True),
    }
    who = WorkerIdentity.current("alerts-lane")
    try:
        await _supervise(
            pool, loops, who=who, supervisor=Supervisor(stop=stop), settings=settings, stop=stop
        )
    finally:
        await pool.close()


async def serve(settings: Settings) -> None:
    # once, before anything runs: a bad model refuses to start
    fall_model, fall_models = load_fall_model(), load_fall_models()
    # the fall features' resampling, imported now and not on the event loop at the first
    # window (the lane, which judges no window, never imports it)
    importlib.import_module("scipy.signal")
    # One thread for the models: a window is one row, and OpenMP threads spinning on a
    # shared machine made each call 4-5x slower (bench.detectors).
    threadpool_limits(1)
    # one connection more for the life-safety lane's claims
    pool = await open_pool(settings.database_url, name="alerts", max_size=9)
    stop = _stop_on_signals()
    wake, escalate, commands = asyncio.Event(), asyncio.Event(), asyncio.Event()
    wake_life_safety = asyncio.Event()
    order_changed = asyncio.Event()
    specs, disabled = _event_specs(settings)
    routes = route(specs)
    clock = DetectorClock(allowed=settings.sim_clock_allowed)
    policy = policy_from_settings(settings)
    wakes = {
        OUTBOX_CHANNEL: (wake, wake_life_safety),
        DISPATCH_CHANNEL: (escalate, order_changed),
        COMMANDS_CHANNEL: (commands,),
    }
    supervisor = Supervisor(stop=stop)

    def clocked(name: str, every_s: float, work: Callable[[], Work]) -> Loop:
        """The supervised loop of ``work()``'s rounds, every ``every_s`` of detector time."""
        return lambda: clocked_loop(name, pool, work(), clock=clock, every_s=every_s, stop=stop)

    who = WorkerIdentity.current("alerts")
    try:
        async with open_channels(settings) as channels, open_check_in_sms(settings) as texts:
            loops: dict[str, Loop] = {}
            loops["listen"] = lambda: listen(settings.database_url, wakes, stop)
            # the event detectors as this worker runs them, in two lanes
            # a live lane process (python -m alerts lane) offers an SOS first
            hold = LaneHold(settings.alerts_lane_hold_s, 3 * settings.heartbeat_interval_s)
            detect = _detect(
                pool,
                settings,
                routes=routes,
                policy=policy,
                stop=stop,
                opened=escalate,
                lane_hold=hold,
            )
            loops["detect"] = lambda: detect(
                wake=wake,
                window_detectors=build_window_registry(
                    fall_model=fall_model, fall_models=fall_models
                ),
            )
            # sos, fall and smoke in a lane of their own: never behind a batch being judged
            loops["detect_life_safety"] = lambda: detect(
                wake=wake_life_safety, life_safety_only=True
            )
            loops["escalation_loop"] = lambda: escalation_loop(
                pool, wake=escalate, stop=stop, poll_s=settings.alerts_poll_interval_s
            )
            loops["command_publisher"] = lambda: command_publisher(
                pool,
                host=settings.mqtt_host,
                port=settings.mqtt_port,
                username=settings.mqtt_username,
                password=settings.mqtt_password.get_secret_value(),
                wake=commands,
                stop=stop,
                poll_s=settings.alerts_poll_interval_s,
                tls_ca_file=settings.mqtt_tls_ca_file,
            )
            loops["checks"] = lambda: check_loop(
                pool,
                rechecks=rechecks(specs),
                policy=policy,
                limit=settings.alerts_batch_max,
                poll_s=settings.checks_poll_interval_s,
                clock=clock,
                stop=stop,
            )
            loops["periodic"] = clocked(
                "periodic",
                settings.periodic_interval_s,
                lambda: periodic_round(
                    pool,
                    vitals=VitalsDetector(),
                    health=DeviceHealthDetector(low_battery=settings.low_battery_percent),
                    policy=policy,
                ),
            )
            loops["care_findings"] = clocked(
                "care_findings", settings.periodic_interval_s, lambda: findings_round(pool)
            )
            loops["notify"] = lambda: notify_loop(
                pool,
                channels=channels,
                config=config_from(settings),
                poll_s=settings.notify_poll_interval_s,
                wake=order_changed,
                stop=stop,
                extra=(_visit_reminders,),
            )
            loops["resident_messages"] = lambda: resident_messages_loop(
                pool, channel=texts, poll_s=settings.notify_poll_interval_s, stop=stop
            )
            loops["ticks"] = clocked(
                "ticks",
                settings.tick_interval_s,
                lambda: tick_round(
                    pool,
                    specs=tuple(
                        t for t in build_tick_registry() if t.detector.name not in disabled
                    ),
                    policy=policy,
                    defaults=site_defaults(settings),
                    refit_interval_s=settings.routine_refit_interval_s,
                    history_days=settings.routine_history_days,
                ),
            )
            config = WatchConfig.from_settings(settings)
            loops["watchdog"] = lambda: watchdog_loop(
                pool, config=config, channels=channels, watcher=who.worker_id, stop=stop
            )
            await _supervise(
                pool,
                loops,
                who=who,
                supervisor=supervisor,
                settings=settings,
                stop=stop,
                probe_port=settings.alerts_probe_port,
            )
    finally:
        await pool.close()


@app.callback()
def _group() -> None:
    """Subcommands of this worker."""


@app.command()
def run() -> None:
    """Run the detectors on the live stream, escalate dispatch orders, publish commands."""
    _main("alerts", serve)


@app.command()
def lane() -> None:
    """Claim and offer sos, fall and smoke only, beside the main workers: no telemetry-driven
    batch or other loop shares this process's event loop."""
    _main("alerts-lane", serve_life_safety)


def _main(process: str, body: Callable[[Settings], Coroutine[Any, Any, None]]) -> None:
    settings = Settings()
    setup_logging(process=process)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(body(settings))
    except ModelError as exc:  # refuse to start on a model that does not match its card
        typer.echo(f"alerts: {exc}", err=True)
        raise typer.Exit(2) from exc


if __name__ == "__main__":
    app()
