"""The demo runner: every device of the seed file online at once, plus scripted incidents.

At +20 s an SOS from the first SOS button of "home-17", at +40 s a device-reported fall from
the first wristband or radar of "sunrise", then an SOS or fall from a random resident's device
every ``incident_every`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
from collections.abc import Mapping, Sequence
from typing import Final

from simulators.fleet import DeviceCreds, random_incident, scripted_incidents
from simulators.population import answers_fall_check, seed_profiles
from simulators.session import Broker, SimDevice, Stats

log = logging.getLogger("simulators.demo")

SUMMARY_EVERY_S: Final = 30.0
STOP_GRACE_S: Final = 5.0


async def run_demo(
    devices: Sequence[DeviceCreds],
    *,
    broker: Broker,
    interval: float = 10.0,
    incident_every: float = 300.0,
    duration: float = 0.0,
    seed: int | None = None,
) -> Stats:
    """Run until SIGINT/SIGTERM or ``duration`` seconds (0: forever); returns the counters."""
    rng = random.Random(seed)
    stats = Stats()
    profiles = seed_profiles(devices)
    sims = {
        d.device_id: SimDevice(
            d,
            rng=random.Random(rng.random()),
            interval=interval,
            stats=stats,
            answers_checks=d.resident is not None
            and d.resident in profiles
            and answers_fall_check(d.resident, profiles[d.resident]),
        )
        for d in devices
    }
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("demo: %d devices, broker %s:%d", len(sims), broker.host, broker.port)
    try:
        async with asyncio.TaskGroup() as tg:
            device_tasks = [
                tg.create_task(sim.run(broker), name=f"device:{sim.name}") for sim in sims.values()
            ]
            helpers = [
                tg.create_task(
                    _incidents(sims, devices, rng=rng, every=incident_every), name="incidents"
                ),
                tg.create_task(_summaries(stats, total=len(sims)), name="summary"),
            ]
            await _until_stopped(stop, duration)
            log.info("demo: stopping")
            for helper in helpers:
                helper.cancel()
            for sim in sims.values():
                sim.inbox.put_nowait(None)
            _, late = await asyncio.wait(device_tasks, timeout=STOP_GRACE_S)
            for task in late:
                task.cancel()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    log.info("demo: done; %s", _summary(stats, total=len(sims)))
    return stats


async def _until_stopped(stop: asyncio.Event, duration: float) -> None:
    if duration <= 0:
        await stop.wait()
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=duration)


async def _incidents(
    sims: Mapping[str, SimDevice],
    devices: Sequence[DeviceCreds],
    *,
    rng: random.Random,
    every: float,
) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    script = scripted_incidents(devices)
    if not script:
        log.warning("demo: no home-17 SOS button and no sunrise wristband/radar to script")
    for at, incident in script:
        await asyncio.sleep(max(0.0, start + at - loop.time()))
        sims[incident.device_id].inbox.put_nowait(incident)
    if every <= 0:
        return
    while True:
        await asyncio.sleep(every)
        if (extra := random_incident(devices, rng)) is not None:
            sims[extra.device_id].inbox.put_nowait(extra)


async def _summaries(stats: Stats, *, total: int) -> None:
    while True:
        await asyncio.sleep(SUMMARY_EVERY_S)
        log.info("demo: %s", _summary(stats, total=total))


def _summary(stats: Stats, *, total: int) -> str:
    return (
        f"sent={stats.sent} incidents={stats.incidents} commands={stats.commands} "
        f"connected={stats.connected}/{total} reconnects={stats.reconnects}"
    )
