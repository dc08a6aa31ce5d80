"""The dead-man's switch, the quarantine and the supervised worker against the real database
(and a real alerts process), with time passed in where the rule is about time."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg.rows import dict_row

from alerts.detection.detectors.base import StreamEvent, Verdict
from alerts.detection.detectors.registry import build_registry, route
from alerts.detection.worker import run_cycle
from alerts.dispatch.escalation import run_due
from alerts.dispatch.policy import policy_from_settings
from alerts.notify.wiring import open_channels
from alerts.watchdog.loop import WatchConfig, watch_once
from devices.db import open_pool
from devices.settings import Settings
from tests.http import HTTP
from tests.live_server import serve
from tests.notify_servers import http_sink
from tests.services import Services, query, running, seed, wait_until, worker_env
from tests.test_api import _raise_sos

POLICY = policy_from_settings(Settings())


@dataclass(frozen=True, slots=True)
class Exploding:
    """A detector with a bug that only one device's events reach."""

    device_id: str
    name: str = "exploding"

    def evaluate(self, event: StreamEvent, *, now: datetime) -> Verdict | None:
        if event.device_id == self.device_id:
            raise KeyError("a bug that only this device's events reach")
        return None


def _outbox_sos(url: str, devices: Sequence[str], at: datetime) -> None:
    with psycopg.connect(url) as conn:
        for device_id in devices:
            conn.execute(
                "INSERT INTO stream_outbox (kind, device_key, time, name, value_bool) "
                "SELECT 'event', device_key, %s, 'sos', true FROM devices WHERE device_id = %s",
                (at, device_id),
            )


async def _watch(url: str, now: datetime, *, watchers: int = 1, **settings: object) -> None:
    config = WatchConfig.from_settings(Settings(database_url=url, **settings))  # type: ignore[arg-type]
    pool = await open_pool(url, name="watch-test", max_size=4)
    try:
        async with open_channels(Settings(webhook_allow_hosts=frozenset({"127.0.0.1"}))) as ch:
            await asyncio.gather(
                *(
                    watch_once(pool, config=config, channels=ch, watcher=f"w{i}", now=now)
                    for i in range(watchers)
                )
            )
    finally:
        await pool.close()


def _technical(url: str) -> list[dict[str, object]]:
    return query(url, "SELECT * FROM technical_alerts ORDER BY id")


def test_a_poison_row_is_quarantined_and_the_batch_goes_on(
    services: Services, database_url: str
) -> None:
    """One SOS reaches a detector's bug: it is kept with its error and still raised red by the
    fallback; the other resident's SOS in the same batch is raised as usual; nothing repeats."""
    seed(services, database_url)
    now = datetime.now(UTC)
    _outbox_sos(database_url, ["btn-0042", "btn-0043"], now - timedelta(seconds=2))
    specs = build_registry(fall_min_confidence=0.2, fall_confirm_confidence=0.7)
    routes = route(specs)
    routes = {**routes, "sos": (Exploding("btn-0042"), *routes["sos"])}

    async def go() -> tuple[int, int]:
        pool = await open_pool(database_url, name="t", max_size=2)
        try:
            first = await run_cycle(pool, routes=routes, policy=POLICY, limit=50, now=now)
            again = await run_cycle(pool, routes=routes, policy=POLICY, limit=50, now=now)
        finally:
            await pool.close()
        return first.alerts, again.claimed

    raised, reclaimed = asyncio.run(go())
    assert (raised, reclaimed) == (2, 0)
    alerts = query(
        database_url,
        "SELECT d.device_id, a.colour, a.detector, a.details->>'fallback' AS fallback "
        "FROM alerts a JOIN devices d USING (device_key) ORDER BY d.device_id",
    )
    assert [(a["device_id"], a["colour"], a["detector"], a["fallback"]) for a in alerts] == [
        ("btn-0042", "red", "fallback", "true"),
        ("btn-0043", "red", "sos", None),
    ]
    assert len(query(database_url, "SELECT 1 FROM dispatch_orders")) == 2
    kept = query(database_url, "SELECT queue, error, payload FROM quarantine")
    assert len(kept) == 1
    assert kept[0]["queue"] == "stream_outbox"
    assert "a bug that only this device" in str(kept[0]["error"])
    assert kept[0]["payload"]["device_id"] == "btn-0042"
    assert not query(database_url, "SELECT 1 FROM stream_outbox")

    # the quarantine is a technical alert until an administrator resolves the item
    asyncio.run(_watch(database_url, now, watch_processes=""))
    assert [t["key"] for t in _technical(database_url)] == ["quarantine:stream_outbox"]
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE quarantine SET resolved_at = now()")
    asyncio.run(_watch(database_url, now + timedelta(seconds=10), watch_processes=""))
    assert _technical(database_url)[0]["cleared_at"] is not None


def test_a_broken_order_is_quarantined_and_the_others_escalate(
    services: Services, database_url: str
) -> None:
    seed(services, database_url)
    _raise_sos(database_url, "btn-0042")
    _raise_sos(database_url, "btn-0043")
    orders = query(database_url, "SELECT order_id FROM dispatch_orders ORDER BY order_id")
    broken, fine = (int(o["order_id"]) for o in orders)
    with psycopg.connect(database_url) as conn:  # a policy snapshot no code can read
        conn.execute(
            'UPDATE dispatch_orders SET policy = \'{"steps": "nonsense"}\' WHERE order_id = %s',
            (broken,),
        )
    now = datetime.now(UTC) + timedelta(seconds=1)

    async def go() -> list[int]:
        async with await psycopg.AsyncConnection.connect(database_url, row_factory=dict_row) as c:
            return [d.order_id for d in await run_due(c, now=now)]

    assert asyncio.run(go()) == [fine]
    kept = query(database_url, "SELECT queue, item_key, attempts FROM quarantine")
    assert [(k["queue"], k["item_key"], k["attempts"]) for k in kept] == [
        ("escalation", str(broken), 1)
    ]
    due = query(
        database_url,
        "SELECT step_due_at, state FROM dispatch_orders WHERE order_id = %s",
        (broken,),
    )[0]
    assert due["state"] == "queued"  # still open, on the wall, retried later
    assert due["step_due_at"] > now


def test_one_condition_is_one_technical_alert_told_once_and_cleared_once(
    services: Services, database_url: str
) -> None:
    """Three watchers see the alerts worker silent: one technical alert, one message to the
    duty channel; the worker beats again: cleared, and one recovery message."""
    now = datetime.now(UTC)
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO worker_heartbeats (worker_id, process, hostname, pid, started_at, "
            "beat_at) VALUES ('alerts@a:1', 'alerts', 'a', 1, %s, %s)",
            (now - timedelta(hours=1), now - timedelta(seconds=95)),
        )
    with http_sink() as sink:
        channels = [{"kind": "webhook", "address": sink.url}]
        asyncio.run(
            _watch(
                database_url,
                now,
                watchers=3,
                watch_processes="alerts",
                technical_alert_channels=channels,
            )
        )
        rows = _technical(database_url)
        assert [(r["key"], r["colour"]) for r in rows] == [("process_down:alerts", "red")]
        assert rows[0]["notified_at"] is not None
        assert len(sink.received) == 1
        told = sink.received[0].json()
        assert told["type"] == "technical"
        assert told["state"] == "raised"
        assert "95" in told["text"]
        assert "【系统故障】" in told["text"]

        with psycopg.connect(database_url) as conn:
            conn.execute("UPDATE worker_heartbeats SET beat_at = %s", (now + timedelta(seconds=9),))
        asyncio.run(
            _watch(
                database_url,
                now + timedelta(seconds=10),
                watchers=2,
                watch_processes="alerts",
                technical_alert_channels=channels,
            )
        )
        rows = _technical(database_url)
        assert rows[0]["cleared_at"] is not None
        assert [m.json()["state"] for m in sink.received] == ["raised", "cleared"]


def test_the_api_tells_the_centre_when_the_alerts_worker_is_killed(
    services: Services, database_url: str
) -> None:
    """kill -9 of the only alerts worker: the API process's own watchdog raises the red
    technical alert on the wall and sends it to the duty channel (nobody else is left)."""
    seed(services, database_url)
    env = worker_env(services, database_url, username="backend")
    env |= {"ELDERCARE_HEARTBEAT_INTERVAL_S": "0.5"}
    with (
        http_sink() as sink,
        serve(
            database_url,
            heartbeat_interval_s=0.5,
            heartbeat_stale_s=2.0,
            watchdog_interval_s=0.3,
            watch_processes="alerts",
            webhook_allow_hosts=frozenset({"127.0.0.1"}),
            technical_alert_channels=[{"kind": "webhook", "address": sink.url}],
        ) as base,
    ):
        with running("alerts", env) as proc:
            wait_until(
                lambda: bool(
                    query(database_url, "SELECT 1 FROM worker_heartbeats WHERE process = 'alerts'")
                ),
                timeout=120,  # loading the fall models takes a while on a busy machine
                what="the alerts worker's first heartbeat",
            )
            wait_until(
                lambda: (
                    not query(
                        database_url,
                        "SELECT 1 FROM technical_alerts WHERE "
                        "key = 'process_down:alerts' AND cleared_at IS NULL",
                    )
                ),
                what="the start-up condition cleared",
            )
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()

            def told() -> list[str]:
                return [
                    m.json()["state"]
                    for m in sink.received
                    if m.json()["key"] == "process_down:alerts"
                ]

            # before the worker started (raised), when it beat (cleared), after the kill
            wait_until(
                lambda: len(told()) >= 3, timeout=60, what="the duty channel told of the kill"
            )
        assert told()[:3] == ["raised", "cleared", "raised"]
        wall = query(
            database_url,
            "SELECT colour FROM technical_alerts WHERE key = 'process_down:alerts' "
            "AND cleared_at IS NULL",
        )
        assert wall == [{"colour": "red"}]
        r = HTTP.post(f"{base}/api/auth/token", data={"username": "admin", "password": "x"})
        assert r.status_code in (400, 401)  # the API itself still serves
        assert HTTP.get(f"{base}/readyz").json()["loops"]["watchdog"]["running"] is True


def test_api_answers_503_while_the_database_refuses(services: Services, database_url: str) -> None:
    seed(services, database_url)
    dbname = database_url.rsplit("/", 1)[1]
    admin_url = database_url.rsplit("/", 1)[0] + "/postgres"
    with serve(database_url, watchdog_in_api=False) as base:
        assert HTTP.get(f"{base}/readyz").status_code == 200
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS false')
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                "AND pid <> pg_backend_pid()",
                (dbname,),
            )
            try:
                r = HTTP.get(f"{base}/api/sites", headers={"Authorization": "Bearer x"}, timeout=60)
                assert r.status_code == 503, r.text
                assert r.headers["retry-after"] == "5"
                assert HTTP.get(f"{base}/readyz", timeout=30).status_code == 503
            finally:
                admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')
        wait_until(
            lambda: HTTP.get(f"{base}/readyz", timeout=30).status_code == 200,
            timeout=40,
            what="ready again",
        )


def test_metrics_need_the_token(services: Services, database_url: str) -> None:
    with serve(database_url, watchdog_in_api=False, metrics_token="scrape-me") as base:
        assert HTTP.get(f"{base}/metrics").status_code == 401
        bad = HTTP.get(f"{base}/metrics", headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401
        ok = HTTP.get(f"{base}/metrics", headers={"Authorization": "Bearer scrape-me"})
        assert ok.status_code == 200
        assert 'db_pool{pool="api",stat="pool_size"}' in ok.text
