"""The conformance run: build a scenario's timeline, play it over the real broker, watch the
public API (accepting orders as a responder where the scenario says so), print a scorecard."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from devices.domain import DeviceKind, SimClock
from simulators import calibration, sisfall
from simulators import clock as run_clock
from simulators.api import Alert, Api, ApiError, Order, ResidentInfo
from simulators.fleet import DeviceCreds
from simulators.hostile import apply_faults, register_effects
from simulators.incidents import Ctx, TruthLog, incident_msgs
from simulators.judge import find_alert, judge, scorecard, settled
from simulators.player import Player, PlayStats
from simulators.population import Resident, build_population
from simulators.scenario import Scenario
from simulators.session import Broker
from simulators.timeline import Effects, Msg, Truth, assign_seq, routine_msgs, telemetry_msgs

log = logging.getLogger("simulators.conform")
POLL_S = 0.5
FOLD_LOOKBACK_S = 900.0  # longer than any detector's fold window (smoke: 600 s)


def cast(scenario: Scenario, creds: list[DeviceCreds]) -> list[Resident]:
    """The residents of the run (of the scenario's sites, or only those it names)."""
    sites = set(scenario.sites)
    pool = [d for d in creds if not sites or d.site_id in sites]
    return build_population(pool, profiles=scenario.residents, only=scenario.only_residents)


def involved(scenario: Scenario, residents: list[Resident]) -> list[str]:
    ids = {d.device_id for r in residents for d in r.devices.values()}
    ids |= {x.device for x in scenario.incident if x.device}
    ids |= {f.device for f in scenario.fault if f.device} | {
        f.victim for f in scenario.fault if f.victim
    }
    return sorted(ids)


def build(
    scenario: Scenario,
    residents: list[Resident],
    creds: dict[str, DeviceCreds],
    *,
    start: float,
) -> list[Msg]:
    """Every message of the run, in simulated time from ``start``."""
    rng = random.Random(scenario.seed)
    end = start + scenario.duration_s
    effects = Effects()
    register_effects(scenario.fault, effects, start=start)
    ctx = Ctx(
        start=start,
        creds=creds,
        residents={r.name: r for r in residents},
        falls=sisfall.load(),
        effects=effects,
        rng=random.Random(rng.random()),
    )
    msgs: list[Msg] = []
    for i, inc in enumerate(scenario.incident, start=1):
        msgs += incident_msgs(i, inc, ctx)
    calib = calibration.load()
    routine, nights = routine_msgs(
        residents, start=start, end=end, calib=calib, effects=effects, rng=rng
    )
    if scenario.routine:
        msgs += routine
    msgs += telemetry_msgs(
        residents,
        start=start,
        end=end,
        every=scenario.telemetry_every_s,
        nights=nights,
        effects=effects,
        rng=rng,
        acc_all=scenario.acc_streaming == "all",
    )
    msgs = [m for m in msgs if m.at <= end]  # incidents may outlast the run: cut them off
    assign_seq(msgs)
    devices = involved(scenario, residents)
    return apply_faults(msgs, scenario.fault, devices=devices, start=start, rng=rng)


@dataclass(slots=True)
class Watch:
    """What the watcher saw: alerts, orders it accepted, accept failures."""

    alerts: list[Alert]
    accepted: dict[int, Order]
    accept_errors: dict[int, str]
    earlier: list[Alert]  # raised before the run: may have absorbed (folded) an incident


async def _watch(
    api: Api,
    truths: list[Truth],
    *,
    since: datetime,
    speed: float,
    sites: set[str],
    played: asyncio.Event,
    settle_s: float,
) -> Watch:
    seen = Watch([], {}, {}, [])
    settled_at: float | None = None
    lookback = since - timedelta(seconds=FOLD_LOOKBACK_S)
    while True:
        alerts = await asyncio.to_thread(api.alerts, since=lookback)
        alerts = [a for a in alerts if not sites or a.site_id in sites]
        seen.alerts = [a for a in alerts if a.raised_at >= since]
        seen.earlier = [a for a in alerts if a.raised_at < since]
        for t in truths:
            if not t.accept or t.id in seen.accepted or t.id in seen.accept_errors:
                continue
            alert = find_alert(t, seen.alerts, speed=speed)
            if alert is None or alert.order_id is None:
                continue
            try:
                seen.accepted[t.id] = await asyncio.to_thread(api.accept, alert.order_id)
            except ApiError as exc:
                seen.accept_errors[t.id] = f"accepting order {alert.order_id} failed: {exc}"
        now = time.time()
        done = all(settled(t, seen.alerts, speed=speed, wall_now=now) for t in truths)
        accepts_done = all(
            t.id in seen.accepted
            or t.id in seen.accept_errors
            or t.expect_colour is None
            or find_alert(t, seen.alerts, speed=speed) is None
            for t in truths
            if t.accept
        )
        if played.is_set() and done and accepts_done:
            settled_at = settled_at or now
            if now - settled_at >= settle_s:
                return seen
        await asyncio.sleep(POLL_S)


def _absorbed_by(t: Truth, earlier: list[Alert]) -> Alert | None:
    """An alert raised before the run that the backend may have folded this incident into."""
    for a in earlier:
        same_who = not (t.resident and a.resident_name and a.resident_name != t.resident)
        near = abs(a.occurred_at.timestamp() - t.sim_start) <= FOLD_LOOKBACK_S
        if a.site_id == t.site_id and a.kind in t.expect_kind and same_who and near:
            return a
    return None


async def run(
    scenario: Scenario,
    creds_list: list[DeviceCreds],
    *,
    broker: Broker,
    api: Api,
    truth_path: Path,
) -> tuple[list[str], bool, PlayStats]:
    creds = {d.device_id: d for d in creds_list}
    residents = cast(scenario, creds_list)
    devices = involved(scenario, residents)
    truths: list[Truth] = []
    truth_log = TruthLog(truth_path)

    def on_truth(t: Truth) -> None:
        truths.append(t)
        truth_log.append(t)
        log.info("incident #%d %s %s (%s) now true", t.id, t.what, t.resident or "", t.device_id)

    answers = {
        band.device_id: r.answers_fall_check
        for r in residents
        if (band := r.device(DeviceKind.WRISTBAND)) is not None
    }
    player = Player(
        {d: creds[d] for d in devices}, broker=broker, on_truth=on_truth, answers=answers
    )
    since = datetime.now(UTC)
    log.info("connecting %d devices of %d residents", len(devices), len(residents))
    await player.connect(devices, None)
    clock = run_clock.begin(
        duration=scenario.duration_s, speed=scenario.speed, start_local=scenario.start_local
    )
    msgs = build(scenario, residents, creds, start=clock.start)
    planned = [m.truth for m in msgs if m.truth is not None]
    log.info("playing %d messages, %d incidents, speed %gx", len(msgs), len(planned), clock.speed)
    played = asyncio.Event()
    shared, clock_note = await _share_clock(api, clock)
    notes = [
        n
        for n in (clock_note, *_profile_notes(residents, await asyncio.to_thread(api.residents)))
        if n
    ]
    try:
        async with asyncio.TaskGroup() as tg:
            watcher = tg.create_task(
                _watch(
                    api,
                    planned,
                    since=since,
                    speed=scenario.speed,
                    sites={r.site_id for r in residents} | {t.site_id for t in planned},
                    played=played,
                    settle_s=scenario.settle_s,
                )
            )
            stats = await player.play(msgs, clock)
            played.set()
            log.info("played; watching the API until every incident is settled")
    finally:
        player.close()
        log.info("devices disconnected")
        if shared:
            await asyncio.to_thread(api.clear_sim_clock)
    seen = watcher.result()
    verdicts, false_alarms = judge(
        planned,
        seen.alerts,
        speed=scenario.speed,
        accepted=seen.accepted,
        accept_errors=seen.accept_errors,
    )
    for v in verdicts:
        missed = v.alert is None and v.truth.expect_colour is not None
        if missed and (prior := _absorbed_by(v.truth, seen.earlier)):
            v.problems.append(
                f"alert {prior.alert_id} of this kind, raised before the run, may have "
                "absorbed it in its fold window: use a fresh database or wait"
            )
    lines, ok = scorecard(
        scenario.name,
        verdicts,
        false_alarms,
        max_false=scenario.max_false_alarms,
        tolerate=frozenset(scenario.tolerate_kinds),
    )
    lines[1:1] = [f"  note: {note}" for note in notes]
    return lines, ok, stats


def _profile_notes(residents: list[Resident], known: list[ResidentInfo]) -> list[str]:
    """Residents the scenario plays with another care profile than the backend's: the backend
    watches them by its own (a wandering watch, a bed-exit watch), which may not fit."""
    backend = {(r.site_id, r.full_name): r.care_profile for r in known}
    return [
        f"{r.name} ({r.site_id}) is played as {r.profile.value} but is "
        f"{backend[r.site_id, r.name]} on the backend, which watches her or him as such"
        for r in residents
        if backend.get((r.site_id, r.name), r.profile.value) != r.profile.value
    ]


async def _share_clock(api: Api, clock: SimClock) -> tuple[bool, str | None]:
    """Tell the backend the run's simulated clock, so that what needs time to pass (silence,
    a bed not returned to, vital-sign windows) is judged in the simulated world. Whether it
    took it (to be cleared at the end), and why not when it refused."""
    if clock.speed == 1.0 and abs(clock.start - clock.wall0) < 1.0:
        return False, None  # real time: the wall clock is the run's clock
    try:
        await asyncio.to_thread(
            api.set_sim_clock,
            sim_origin=clock.sim_origin,
            wall_origin=clock.wall_origin,
            speed=clock.speed,
        )
    except ApiError as exc:
        log.warning("the backend keeps its wall clock: %s", exc)
        return False, (
            "the backend refused the simulated clock, so checks that need time to pass "
            f"(inactivity, bed exit without return, vital signs) run on its wall clock ({exc})"
        )
    log.info("backend detectors now evaluate at the simulated clock (%gx)", clock.speed)
    return True, None
