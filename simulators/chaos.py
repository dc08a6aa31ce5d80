"""The chaos run (issue 18, item 7): a living population with incidents throughout, hostile
devices, and faults done to the main job at random moments, judged through the public API.

Concurrently: the player plays the population's timeline (with the payload attacks in it);
connection attacks run at their moments; the operator kills or restarts components; a reader
polls alerts and orders, retrying while the API or the database is down; a scraper reads
ingest's metrics (dead letters by reason), and a census notes ingest restarts no fault
explains. Then the scorecard (simulators/chaos_judge.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import http.client
import logging
import random
import re
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final, TypeVar

from devices.domain import DeviceKind
from devices.settings import Settings
from simulators import attacks as hostile
from simulators import chaos_judge as judge
from simulators import clock as run_clock
from simulators.api import Alert, Api, ApiError, Order
from simulators.attacks import Outcome
from simulators.chaos_plan import AttackWhat, Chaos, FaultWhat, Plan
from simulators.conform import build, cast, involved
from simulators.faults import Done, Operator, find_pids
from simulators.fleet import DeviceCreds
from simulators.incidents import TruthLog
from simulators.player import Player
from simulators.population import Resident
from simulators.session import Broker
from simulators.timeline import Msg, Truth

log = logging.getLogger("simulators.chaos")
POLL_S: Final = 1.0
PAYLOAD_WINDOW_S: Final = 12.0  # dead letters counted this long after a payload attack
CONNECTION_ATTACKS: Final = frozenset(
    {AttackWhat.SUBSCRIBE, AttackWhat.CLIENT_ID, AttackWhat.BACKLOG}
)
T = TypeVar("T")


class Reader:
    """The judge's view of the API: every call retried (the API, the database or the broker
    may be down for a while), re-signing in when a restart forgot the token."""

    def __init__(self, api: Api, user: str, password: str) -> None:
        self.api, self.user, self.password = api, user, password
        self.down_since: float | None = None
        self.outages: list[tuple[float, float]] = []

    def call(self, fn: Callable[[], T], *, patience_s: float = 120.0) -> T:
        deadline = time.monotonic() + patience_s
        while True:
            try:
                out = fn()
            except ApiError as exc:
                if self.down_since is None:
                    self.down_since = time.time()
                    log.warning("API unavailable, retrying: %s", exc)
                if "HTTP 401" in str(exc):
                    with contextlib.suppress(ApiError):
                        self.api.login(self.user, self.password)
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
                continue
            if self.down_since is not None:
                self.outages.append((self.down_since, time.time()))
                log.warning("API back after %.1f s", time.time() - self.down_since)
                self.down_since = None
            return out

    def orders(self) -> dict[int, Order]:
        out: dict[int, Order] = {}
        offset = 0
        while True:
            page = self.call(functools.partial(self.api.orders, offset=offset))
            out |= {o.order_id: o for o in page}
            if len(page) < 500:
                return out
            offset += len(page)


_SAMPLE = re.compile(
    r'^(ingest_messages_rejected_total|ingest_late_messages_total)(?:\{reason="([^"]*)"\})? (\S+)$'
)


@dataclass(slots=True)
class Metrics:
    """Ingest's counters, summed across its restarts (a counter that falls was reset)."""

    url: str | None
    last: dict[str, float] = field(default_factory=dict)
    total: dict[str, float] = field(default_factory=dict)
    series: list[tuple[float, dict[str, float]]] = field(default_factory=list)
    reads: int = 0

    def scrape(self) -> None:
        if not self.url:
            return
        try:
            with urllib.request.urlopen(self.url, timeout=2) as resp:  # noqa: S310
                text = resp.read().decode()
        except (OSError, ValueError, http.client.HTTPException):
            return
        self.feed(text)

    def feed(self, text: str) -> None:
        """Take one reading of the metrics page."""
        self.reads += 1
        for line in text.splitlines():
            m = _SAMPLE.match(line)
            if not m:
                continue
            key = "late" if m.group(1).startswith("ingest_late") else (m.group(2) or "")
            value = float(m.group(3))
            before = self.last.get(key, 0.0)
            self.total[key] = self.total.get(key, 0.0) + (
                value - before if value >= before else value
            )
            self.last[key] = value
        self.series.append((time.time(), dict(self.total)))

    def delta(self, start: float, end: float) -> dict[str, float] | None:
        """Counter increases between two wall times; None without readings around them."""
        before = [s for t, s in self.series if t <= start]
        after = [s for t, s in self.series if t >= end]
        if not before or not after:
            return None
        a, b = before[-1], after[0]
        return {k: b[k] - a.get(k, 0.0) for k in b if b[k] - a.get(k, 0.0) > 0}


@dataclass(slots=True)
class Census:
    """Ingest's pids over time: a restart that no fault of ours explains is a crash."""

    run_dir: Path
    changes: list[float] = field(default_factory=list)
    _pids: set[int] | None = None

    def sample(self) -> None:
        now = set(find_pids(self.run_dir, FaultWhat.KILL_INGEST))
        if self._pids is not None and now and now - self._pids:
            self.changes.append(time.time())
        if now:
            self._pids = now


def _attackers(plan: Plan, creds: Sequence[DeviceCreds], played: set[str]) -> list[DeviceCreds]:
    """Devices that are not played (their connection would kick the player's), of sites the
    scenario does not play where there are any."""
    named = [d for d in creds if d.device_id in plan.chaos.attackers]
    idle = [d for d in creds if d.device_id not in played]
    away = [d for d in idle if d.site_id not in plan.scenario.sites]
    return named or away or idle


def _payload_msgs(
    plan: Plan, residents: Sequence[Resident], creds: dict[str, DeviceCreds], start: float
) -> tuple[list[Msg], dict[AttackWhat, tuple[str, int]]]:
    """The payload attacks' messages, and per attack the device and the number of messages."""
    rng = random.Random(plan.chaos.seed + 1)
    msgs: list[Msg] = []
    used: dict[AttackWhat, tuple[str, int]] = {}
    bands = [r.devices[DeviceKind.WRISTBAND] for r in residents if r.wears_band]
    anyone = [d for r in residents for d in r.devices.values()]
    for a in plan.attacks:
        t = start + a.at_s
        built: list[Msg] = []
        match a.what:
            case AttackWhat.POISON:
                built = hostile.poison(rng.choice(anyone), t)
            case AttackWhat.FLOOD if plan.flood_sos is not None:
                dev = creds[plan.scenario.incident[plan.flood_sos - 1].device or ""]
                built = hostile.flood(dev, t, plan.chaos.flood_messages)
            case AttackWhat.IMPLAUSIBLE if bands:
                built = hostile.implausible(rng.choice(bands), t)
            case AttackWhat.OLD_SOS:
                buttons = [
                    r.devices[DeviceKind.SOS_BUTTON]
                    for r in residents
                    if DeviceKind.SOS_BUTTON in r.devices
                ]
                built = hostile.old_sos(rng.choice(buttons or anyone), t)
            case _:
                continue
        msgs += built
        used[a.what] = (built[0].device_id if built else "-", len(built))
    return msgs, used


def _resident_of(device_id: str, residents: Sequence[Resident]) -> Resident | None:
    return next(
        (r for r in residents if any(d.device_id == device_id for d in r.devices.values())), None
    )


async def _at(wall0: float, at_s: float) -> None:
    await asyncio.sleep(max(0.0, wall0 + at_s - time.time()))


async def run(
    plan: Plan,
    creds_list: list[DeviceCreds],
    *,
    broker: Broker,
    reader: Reader,
    run_dir: Path,
    metrics_url: str | None,
    truth_path: Path,
) -> tuple[list[str], bool]:
    scenario, chaos = plan.scenario, plan.chaos
    creds = {d.device_id: d for d in creds_list}
    residents = cast(scenario, creds_list)
    devices = involved(scenario, residents)
    holders: dict[str, int] = {}
    for r in residents:
        for d in r.devices.values():
            holders[d.device_id] = holders.get(d.device_id, 0) + 1
    shared = frozenset(k for k, n in holders.items() if n > 1)
    attackers = _attackers(plan, creds_list, set(devices))
    truths: list[Truth] = []
    truth_log = TruthLog(truth_path)

    def on_truth(t: Truth) -> None:
        truths.append(t)
        truth_log.append(t)
        log.info("incident #%d %s %s (%s)", t.id, t.what, t.resident or "", t.device_id)

    player = Player({d: creds[d] for d in devices}, broker=broker, on_truth=on_truth)
    since = datetime.now(UTC) - timedelta(seconds=5)
    log.info("connecting %d devices of %d residents", len(devices), len(residents))
    await player.connect(devices, None)
    clock = run_clock.begin(duration=scenario.duration_s)
    msgs = build(scenario, residents, creds, start=clock.start)
    extra, used = _payload_msgs(plan, residents, creds, clock.start)
    msgs += extra
    answers = {FaultWhat.KILL_API: f"{reader.api.base}/healthz"}
    if metrics_url:
        answers[FaultWhat.KILL_INGEST] = metrics_url
    operator = Operator(
        run_dir,
        rng=random.Random(chaos.seed + 2),
        restart_within_s=chaos.restart_within_s,
        answers=answers,
    )
    metrics = Metrics(metrics_url)
    census = Census(run_dir)
    done: list[Done] = []
    outcomes: list[Outcome] = []
    played = asyncio.Event()
    seen: dict[str, list[Alert]] = {"alerts": []}
    ingest_id = str(Settings.model_fields["mqtt_client_id"].default)

    def broker_pid() -> int:
        return int((run_dir / "mosquitto" / "mosquitto.pid").read_text().split()[0])

    async def faults() -> None:
        for m in plan.faults:
            await _at(clock.wall0, m.at_s)
            log.warning("fault: %s", m.what)
            d = await asyncio.to_thread(operator.do, m.what)
            log.warning("fault %s: %s, back after %s s", m.what, d.target, d.down_s)
            done.append(d)

    async def connection_attacks() -> None:
        for m in plan.attacks:
            if m.what not in CONNECTION_ATTACKS:
                continue
            await _at(clock.wall0, m.at_s)
            log.warning("attack: %s", m.what)
            now = time.time()
            if not attackers:
                outcomes.append(Outcome(m.what, now, detail="no unplayed device to attack from"))
                continue
            match m.what:
                case AttackWhat.SUBSCRIBE:
                    o = await asyncio.to_thread(hostile.subscribe, attackers, broker, now)
                case AttackWhat.CLIENT_ID:
                    victims = [devices[len(devices) // 2], ingest_id]
                    o = await asyncio.to_thread(
                        hostile.client_id, attackers[0], broker, now, victims=victims
                    )
                case _:
                    o = await asyncio.to_thread(
                        hostile.backlog,
                        attackers[-1],
                        broker,
                        now,
                        count=chaos.backlog_messages,
                        size=chaos.backlog_bytes,
                        broker_pid=broker_pid,
                    )
            outcomes.append(o)

    async def watch() -> None:
        while not played.is_set():
            metrics.scrape()
            await asyncio.to_thread(census.sample)
            await asyncio.sleep(POLL_S)
        # settle: every incident offered, or past its limit
        while True:
            metrics.scrape()
            try:
                alerts = await asyncio.to_thread(
                    reader.call, lambda: reader.api.alerts(since=since)
                )
                orders = await asyncio.to_thread(reader.orders)
            except ApiError:
                return  # the final read says so
            verdicts = judge.incidents(
                truths, alerts, orders, chaos=chaos, shared=shared, witnesses=plan.witnesses
            )
            waiting = [
                v
                for v in verdicts
                if v.problems and time.time() < v.truth.wall_at + chaos.offer_within_s
            ]
            seen["alerts"] = alerts
            if not waiting:
                return
            await asyncio.sleep(POLL_S)

    log.info(
        "playing %d messages, %d incidents, %d faults, %d attacks",
        len(msgs),
        len(scenario.incident),
        len(plan.faults),
        len(plan.attacks),
    )
    try:
        async with asyncio.TaskGroup() as tg:
            watcher = tg.create_task(watch())
            tg.create_task(faults())
            tg.create_task(connection_attacks())
            await player.play(msgs, clock)
            played.set()
            await watcher
    finally:
        player.close()
    await asyncio.sleep(scenario.settle_s)
    metrics.scrape()
    gone: str | None = None
    try:
        alerts = await asyncio.to_thread(reader.call, lambda: reader.api.alerts(since=since))
        alerts += await asyncio.to_thread(reader.call, reader.api.technical_alerts)
        orders = await asyncio.to_thread(reader.orders)
    except ApiError as exc:  # judged on nothing: every incident missed
        gone, alerts, orders = str(exc), [], {}
    verdicts = judge.incidents(
        truths, alerts, orders, chaos=chaos, shared=shared, witnesses=plan.witnesses
    )
    flood_v = next((v for v in verdicts if v.truth.id == plan.flood_sos), None)
    for m in plan.attacks:
        if m.what in CONNECTION_ATTACKS or m.what not in used:
            continue
        start = clock.wall0 + m.at_s
        dev, n = used[m.what]
        o = Outcome(m.what, start, facts={"sent": n, "device": dev})
        status = None
        owner = _resident_of(dev, residents)
        if m.what is AttackWhat.IMPLAUSIBLE and owner is not None and gone is None:
            status = await asyncio.to_thread(_timeline_status, reader, owner)
        restarts = sum(
            1
            for t in census.changes
            if start - 1 <= t <= start + PAYLOAD_WINDOW_S and not _ours(t, done, chaos)
        )
        outcomes.append(
            judge.payload_outcome(
                o,
                rejected=metrics.delta(start - 0.5, start + PAYLOAD_WINDOW_S),
                late=(metrics.delta(start - 0.5, start + PAYLOAD_WINDOW_S) or {}).get("late"),
                ingest_restarts=restarts,
                alerts=alerts,
                flood_sos=flood_v,
                timeline_status=status,
            )
        )
    for o in outcomes:  # what ingest made of a backlog that got through
        if o.attack is AttackWhat.BACKLOG and o.verdict == "bounded":
            delta = metrics.delta(o.at - 0.5, o.at + PAYLOAD_WINDOW_S + 20) or {}
            o.verdict = hostile.DEAD_LETTER if delta.get("too_large") else o.verdict
            o.detail += f"; dead letters: {judge._rejected(delta)}"
    explained = {a.alert_id for v in verdicts for a in v.alerts}
    outcomes.sort(key=lambda o: o.at)
    lines, ok = judge.scorecard(
        scenario.name,
        verdicts,
        outcomes,
        done,
        alerts,
        chaos=chaos,
        explained=explained,
        api_outages=reader.outages,
    )
    if metrics_url and not metrics.reads:
        lines.insert(1, f"  note: ingest metrics at {metrics_url} never answered")
    lines.insert(1, "  note: dead letters are read from ingest's metrics (no dead-letter API)")
    if gone:
        lines.insert(1, f"  API DID NOT COME BACK: {gone}")
    return lines, ok and gone is None


def _ours(t: float, done: Sequence[Done], chaos: Chaos) -> bool:
    """An ingest restart at ``t`` that follows one of our kills (until it was back)."""
    return any(
        d.what is FaultWhat.KILL_INGEST
        and d.at - 1 <= t <= (d.back_at or d.at + chaos.restart_within_s) + 2
        for d in done
    )


def _timeline_status(reader: Reader, r: Resident) -> int | None:
    known = reader.call(reader.api.residents)
    rid = next(
        (x.resident_id for x in known if x.full_name == r.name and x.site_id == r.site_id), None
    )
    if rid is None:
        return None
    return reader.api.status_of(f"/api/residents/{rid}/timeline")


__all__ = ["Reader", "run"]
