"""End to end, over the real broker and database, "did you fall?": real UMAFall wrist
traces streamed by a demo wristband as 1-s SenML packs through ingest; the detector cycle,
the check loop, the command publisher and the escalation run in the test with an explicit
``now`` (seconds of a check pass without waiting). The simulated wristband answers over MQTT.

Traces (UMAFall, CC BY 4.0, read in place): an activity the wrist model takes for a likely
fall, a forward fall it is unsure of, and a fall it is certain of; each trace's band is
asserted before it is streamed, so a retrained model fails here loudly. The activity is a
chest trace (bending): since session 8 the wrist model, which trains on every UMAFall wrist
recording, fires on none of their activities, and it never trains on a chest.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiomqtt
import numpy as np
import psycopg
import pytest

from alerts.detection.checks import run_fall_checks
from alerts.detection.detectors.base import Verdict
from alerts.detection.detectors.registry import build_registry, build_window_registry, route
from alerts.detection.fall import check as C
from alerts.detection.fall import live
from alerts.detection.fall.detector import AccFallDetector
from alerts.detection.fall.model import load, load_all
from alerts.detection.fall_checks import ask_first
from alerts.detection.worker import run_cycle
from alerts.dispatch.commands import publish_pending
from alerts.dispatch.escalation import run_due
from alerts.dispatch.policy import policy_from_settings as policy_from
from alerts.evaluate.training import corpus, umafall
from devices.db import open_pool
from devices.domain import Colour
from devices.settings import Settings
from devtools.seed import DemoPopulation
from simulators import devices as packs
from tests.dispatch_world import add_responder
from tests.services import Services, device, publish, query, running, seed, wait_until, worker_env
from tests.test_dispatch_worker import Inbox
from tests.test_ingest_integration import wait_for_ingest

FALSE_ALARM = "umafall:chest:U04:Bending:1"  # bending: a likely fall to the wrist model
UNSURE_FALL = "umafall:wrist:U14:forwardFall:1"  # a real fall the model is not certain of
POLICY = policy_from(Settings())
SPECS = build_registry(fall_min_confidence=0.2, fall_confirm_confidence=0.7)


@pytest.fixture(scope="module")
def traces() -> dict[str, corpus.Rec]:
    if not umafall.DEFAULT_ARCHIVE.exists():
        pytest.skip(f"UMAFall archive not found at {umafall.DEFAULT_ARCHIVE} (shared data)")
    return {r.key: r for where in ("wrist", "chest") for r in corpus.load("umafall", where)}


@pytest.fixture(scope="module")
def detector() -> AccFallDetector:
    return AccFallDetector(load(), load_all())


def certain_fall(traces: dict[str, corpus.Rec], detector: AccFallDetector) -> str:
    """The first wrist fall (by name) the model is certain of."""
    for key in sorted(traces):
        r = traces[key]
        if (
            r.is_fall
            and r.placement == "wrist"
            and live.run(r.times, r.samples, detector, placement="wrist").paged_at_once
        ):
            return key
    raise AssertionError("no certain wrist fall")


class Stream:
    """A trace as the wristband streams it, starting ``ago`` seconds before the wall clock."""

    def __init__(self, rec: corpus.Rec, detector: AccFallDetector, ago: float = 200.0) -> None:
        self.start = datetime.fromtimestamp(float(int(time.time() - ago)), UTC)
        self.outcome = live.run(
            rec.times, rec.samples, detector, placement="wrist", start=self.start
        )
        t, x = live.with_lead_in(rec.times, rec.samples, live.LEAD_IN_S)
        self.packs = live.packs(t, x, start=self.start)
        assert self.outcome.verdicts, "the trace must fire"
        self.impact = self.outcome.verdicts[0].occurred_at
        self.judged = self.start + timedelta(seconds=self.outcome.first_alert_t or 0.0)

    def at(self, seconds: float) -> datetime:
        """``seconds`` after the impact."""
        return self.impact + timedelta(seconds=seconds)

    def publish(self, s: Services, pop: DemoPopulation, device_id: str) -> None:
        d = device(pop, device_id)
        for p in self.packs:
            records: list[packs.Rec] = []
            for dt, x, y, z in zip(p["t_offset"], p["acc_x"], p["acc_y"], p["acc_z"], strict=True):  # type: ignore[call-overload]
                records += [
                    {"n": "acc_x", "u": "m/s2", "t": dt, "v": x},
                    {"n": "acc_y", "t": dt, "v": y},
                    {"n": "acc_z", "t": dt, "v": z},
                ]
            pack = packs.make_pack(device_id, float(p["t0"]), records)  # type: ignore[arg-type]
            topic = f"eldercare/v1/{d.site_id}/{device_id}/telemetry"
            assert publish(s, username=device_id, password=d.password, topic=topic,
                           payload=packs.encode(pack)) == 0  # fmt: skip


async def _drive(url: str, *, cycle: datetime | None = None, checks: datetime | None = None) -> None:  # fmt: skip
    """One detector cycle and/or one check-loop pass at the given moments (a fresh pool each
    time: nothing of a check lives in the worker's memory), then the escalation at that time."""
    pool = await open_pool(url, name="test", max_size=2)
    try:
        if cycle is not None:
            await run_cycle(pool, routes=route(SPECS), policy=POLICY, limit=1000, now=cycle,
                            window_detectors=build_window_registry(fall_model=load(), fall_models=load_all()))  # fmt: skip
        if checks is not None:
            await run_fall_checks(pool, policy=POLICY, limit=100, now=checks, wall=checks)
        async with pool.connection() as conn:
            await run_due(conn, now=checks or cycle or datetime.now(UTC))
    finally:
        await pool.close()


def drive(url: str, *, cycle: datetime | None = None, checks: datetime | None = None) -> None:
    asyncio.run(_drive(url, cycle=cycle, checks=checks))


async def _publish_commands(s: Services, url: str) -> int:
    pool = await open_pool(url, name="test-cmd", max_size=1)
    try:
        async with (
            aiomqtt.Client(
                "127.0.0.1",
                s.broker.port,
                username="backend",
                password=s.backend_password,
                identifier=None,
            ) as client,  # fmt: skip
            pool.connection() as conn,
        ):
            return await publish_pending(conn, client, now=datetime.now(UTC))
    finally:
        await pool.close()


def streamed(s: Services, url: str, pop: DemoPopulation, stream: Stream, device_id: str) -> None:
    stream.publish(s, pop, device_id)
    wait_until(
        lambda: len(query(url, "SELECT 1 FROM acc_windows")) == len(stream.packs),
        what="every pack stored",
    )


@pytest.fixture
def world(services: Services, database_url: str) -> Iterator[DemoPopulation]:
    pop = seed(services, database_url)
    now = datetime.now(UTC)
    for site in ("home-17", "home-18"):  # a carer on duty for each home: orders are offered
        add_responder(database_url, f"carer-{site}", site_id=site,
                      on_duty=(now - timedelta(hours=1), now + timedelta(hours=1)))  # fmt: skip
    with running("ingest", worker_env(services, database_url)):
        wait_for_ingest(services, database_url, pop)
        yield pop


def orders(url: str) -> list[dict[str, Any]]:
    return query(
        url,
        "SELECT o.colour, o.category, o.state, o.opened_at, o.offered_at, a.kind, a.details,"
        " a.explanation FROM dispatch_orders o JOIN alerts a USING (alert_id)",
    )


def checks(url: str) -> list[dict[str, Any]]:
    return query(url, "SELECT * FROM detector_checks WHERE detector = 'fall_check'")


def test_a_wrist_false_alarm_cancelled_on_the_device_never_opens_an_order(
    services: Services, database_url: str, world: DemoPopulation, traces: dict[str, corpus.Rec],
    detector: AccFallDetector,
) -> None:  # fmt: skip
    activity = Stream(traces[FALSE_ALARM], detector)
    assert not activity.outcome.paged_at_once
    assert activity.outcome.checks == 1
    streamed(services, database_url, world, activity, "wb-0043")
    drive(database_url, cycle=activity.judged)
    [check] = checks(database_url)
    assert check["done_at"] is None
    assert orders(database_url) == []
    band = device(world, "wb-0043")
    inbox = Inbox(services, band.device_id, band.password,
                  f"eldercare/v1/{band.site_id}/{band.device_id}/cmd")  # fmt: skip
    try:
        assert asyncio.run(_publish_commands(services, database_url)) == 1
        wait_until(lambda: bool(inbox.messages), what="fall_check on the wristband")
        [cmd] = inbox.messages
        assert cmd == {
            "type": "fall_check",
            "check_id": str(check["check_id"]),
            "window_s": 30,
            "impact_ts": round(activity.impact.timestamp(), 3),
            "until_ts": round(check["due_at"].timestamp(), 3),
        }
        # the wearer presses "I'm OK" 8 s after the impact (the simulated wristband's answer)
        answer = packs.fall_check_answer(cmd, device_id=band.device_id,
                                         now=activity.at(8).timestamp(), can_answer=True)  # fmt: skip
        assert answer is not None
        topic = f"eldercare/v1/{band.site_id}/{band.device_id}/event"
        inbox.client.publish(topic, packs.encode(answer), qos=1).wait_for_publish(5)
        wait_until(
            lambda: bool(query(database_url, "SELECT 1 FROM events WHERE name = %s", (C.ANSWER,))),
            what="the answer stored",
        )
    finally:
        inbox.close()
    drive(database_url, checks=activity.at(9))
    drive(database_url, checks=activity.at(60))  # long after the window: still nothing
    [check] = checks(database_url)
    assert check["outcome"].startswith("cancelled: cancelled on the wearable")
    assert check["verdict"]["details"]["checks_24h"] == 1
    assert query(database_url, "SELECT 1 FROM alerts") == []
    assert query(database_url, "SELECT 1 FROM dispatch_orders") == []


def test_an_unanswered_real_fall_opens_a_red_order_within_60_s(
    services: Services, database_url: str, world: DemoPopulation, traces: dict[str, corpus.Rec],
    detector: AccFallDetector,
) -> None:  # fmt: skip
    fall = Stream(traces[UNSURE_FALL], detector)
    assert not fall.outcome.paged_at_once
    assert fall.outcome.checks == 1
    assert fall.outcome.page_t is not None
    streamed(services, database_url, world, fall, "wb-0042")
    # The wristband is offline (nobody reads its commands): the timer runs in the database.
    drive(database_url, cycle=fall.judged)
    [check] = checks(database_url)
    assert check["due_at"] == C.due_at(fall.impact, 30)
    drive(database_url, checks=fall.at(20))
    assert orders(database_url) == []  # still within the wearer's window
    drive(database_url, checks=check["due_at"])
    [order] = orders(database_url)
    assert (order["colour"], order["category"], order["kind"]) == ("red", "fall", "fall")
    assert order["state"] == "offered"
    assert (order["offered_at"] - fall.impact).total_seconds() < 60
    assert order["details"]["check_outcome"] == "no_answer"
    assert "no answer within 30 s" in order["explanation"]
    [check] = checks(database_url)
    assert check["outcome"] == "raised: no_answer"


def test_an_sos_during_the_check_pages_at_once(
    services: Services, database_url: str, world: DemoPopulation, traces: dict[str, corpus.Rec],
    detector: AccFallDetector,
) -> None:  # fmt: skip
    fall = Stream(traces[UNSURE_FALL], detector)
    streamed(services, database_url, world, fall, "wb-0042")
    drive(database_url, cycle=fall.judged)
    assert len(checks(database_url)) == 1
    band = device(world, "wb-0042")
    sos = packs.sos_pack(device_id=band.device_id, now=fall.at(10).timestamp())
    assert publish(services, username=band.device_id, password=band.password,
                   topic=f"eldercare/v1/{band.site_id}/{band.device_id}/event",
                   payload=packs.encode(sos)) == 0  # fmt: skip
    wait_until(lambda: bool(query(database_url, "SELECT 1 FROM events WHERE name = 'sos'")),
               what="the SOS stored")  # fmt: skip
    drive(database_url, cycle=fall.at(11), checks=fall.at(11))
    [order] = query(database_url, "SELECT colour, category, state, opened_at FROM dispatch_orders")
    assert (order["colour"], order["state"]) == ("red", "offered")
    assert order["opened_at"] == fall.at(11)  # long before the window's end
    kinds = query(database_url, "SELECT kind, details, incident_id FROM alerts ORDER BY kind")
    assert [a["kind"] for a in kinds] == ["fall", "sos"]
    assert kinds[0]["details"]["check_outcome"] == "sos"
    assert kinds[0]["incident_id"] == kinds[1]["incident_id"]  # one situation, one order
    [check] = checks(database_url)
    assert check["done_at"] is not None


def test_a_certain_fall_pages_at_once(
    services: Services, database_url: str, world: DemoPopulation, traces: dict[str, corpus.Rec],
    detector: AccFallDetector,
) -> None:  # fmt: skip
    fall = Stream(traces[certain_fall(traces, detector)], detector)
    assert fall.outcome.paged_at_once
    streamed(services, database_url, world, fall, "wb-0042")
    drive(database_url, cycle=fall.judged)
    [order] = orders(database_url)
    assert (order["colour"], order["state"], order["details"]["band"]) == (
        "red",
        "offered",
        "certain",
    )
    assert (order["offered_at"] - fall.impact).total_seconds() < 5
    # its first window was only likely: the question it opened is closed at the next pass
    drive(database_url, checks=fall.judged + timedelta(seconds=1))
    assert [c["outcome"] for c in checks(database_url)] in (
        [],
        ["superseded: paged at once by a later window"],
    )
    assert len(orders(database_url)) == 1


def test_a_resident_with_dementia_is_not_asked(
    services: Services, database_url: str, world: DemoPopulation, traces: dict[str, corpus.Rec],
    detector: AccFallDetector,
) -> None:  # fmt: skip
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE residents SET care_profile = 'dementia' WHERE resident_id = (SELECT"
            " resident_id FROM device_assignments a JOIN devices d USING (device_key)"
            " WHERE d.device_id = 'wb-0042' AND upper_inf(a.during))"
        )
    fall = Stream(traces[UNSURE_FALL], detector)
    assert not fall.outcome.paged_at_once  # a wearer who could answer would be asked
    streamed(services, database_url, world, fall, "wb-0042")
    drive(database_url, cycle=fall.judged)
    [order] = orders(database_url)
    assert (order["colour"], order["state"], order["details"]["band"]) == (
        "red",
        "offered",
        "likely",
    )
    assert "check" not in order["details"]
    assert (order["offered_at"] - fall.impact).total_seconds() < 5
    assert checks(database_url) == []


def test_lying_still_after_the_impact_pages_before_the_window_ends(
    services: Services, database_url: str
) -> None:
    """The acc windows after the impact (here written straight to the database: one band
    lying motionless on the floor) raise the check before its window ends."""
    seed(services, database_url)
    [band] = query(
        database_url,
        "SELECT d.device_key, d.site_id, a.resident_id FROM devices d JOIN device_assignments a"
        " USING (device_key) WHERE d.device_id = 'wb-0042' AND upper_inf(a.during)",
    )
    impact = datetime.fromtimestamp(float(int(time.time() - 100)), UTC)
    rng = np.random.default_rng(3)
    with psycopg.connect(database_url) as conn:
        for s in range(-1, 20):  # 1-s packs at 50 Hz, resting on the floor (sensor noise)
            x = rng.normal(0.0, 0.03, (50, 3)) + np.array([0.0, 9.81, 0.0])
            conn.execute(
                "INSERT INTO acc_windows (time, device_key, t_offset, acc_x, acc_y, acc_z)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (impact + timedelta(seconds=s), band["device_key"], [i / 50 for i in range(50)],
                 x[:, 0].tolist(), x[:, 1].tolist(), x[:, 2].tolist()),
            )  # fmt: skip
    verdict = Verdict("acc_fall", "fall", Colour.RED, impact, band["site_id"],
                      f"acc_fall:{band['device_key']}:{impact.timestamp():.1f}",
                      f"fall:{band['resident_id']}", 120, "Possible fall",
                      resident_id=band["resident_id"], device_key=band["device_key"],
                      details={"device_id": "wb-0042", "check": True, "check_window_s": 30})  # fmt: skip

    async def go() -> None:
        pool = await open_pool(database_url, name="test", max_size=2)
        try:
            async with pool.connection() as conn, conn.transaction():
                assert await ask_first(conn, verdict, now=impact + timedelta(seconds=3))
            for at in (8, 13):
                await run_fall_checks(pool, policy=POLICY, limit=10,
                                      now=impact + timedelta(seconds=at),
                                      wall=impact + timedelta(seconds=at))  # fmt: skip
                if at == 8:  # not still long enough yet
                    assert query(database_url, "SELECT 1 FROM alerts") == []
        finally:
            await pool.close()

    asyncio.run(go())
    [check] = checks(database_url)
    assert check["outcome"] == "raised: lying_still"
    [order] = query(database_url, "SELECT colour, opened_at FROM dispatch_orders")
    assert order["colour"] == "red"
    assert (order["opened_at"] - impact).total_seconds() == 13  # not the 33 s of the window
    [cmd] = query(database_url, "SELECT topic, payload FROM device_commands")
    assert cmd["topic"] == f"eldercare/v1/{band['site_id']}/wb-0042/cmd"
    assert json.loads(bytes(cmd["payload"]))["type"] == "fall_check"
