"""Faults under load, each ending with an exact count: every message stored once, none lost.

The load comes from the project's load publisher (simulators.load) as a test-only account that
may publish for every load device; the rows each message yields are known, so the tables are
counted against the messages the broker acknowledged.

The database test runs twice: a restart (stopped about a second) and a 30 s outage, both
under load.
"""

from __future__ import annotations

import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from bench.ingest import counts, expected_rows
from bench.stack import provision
from devtools.servers import start_mosquitto, start_postgres
from simulators.load_run import LoadResult, LoadSpec, run_load
from tests.services import LOAD_USER, Services, query, running, wait_until, worker_env

DEVICES = 200

pytestmark = pytest.mark.integration


def _load(s: Services, messages: int, *, rate: float = 0.0, prefix: str = "ld") -> LoadResult:
    spec = LoadSpec(
        "127.0.0.1",
        s.broker.port,
        *LOAD_USER,
        devices=DEVICES,
        sites=5,
        prefix=prefix,
        messages=messages,
        rate=rate,
        processes=1,
    )
    return run_load(spec, live=False)


def _env(s: Services, url: str) -> dict[str, str]:
    env = worker_env(s, url)
    env["ELDERCARE_MQTT_SESSION_EXPIRY_S"] = "120"  # outlives a restart, not the test session
    return env


def _ready(s: Services, url: str) -> dict[str, int]:
    """Probe until the worker stores; returns the row counts to add the real load to."""

    def stored() -> bool:
        _load(s, 10)
        time.sleep(0.3)
        return sum(counts(url).values()) > 0

    wait_until(stored, timeout=60, what="ingest worker subscribed")
    time.sleep(1.0)
    return counts(url)


def _assert_exact(
    url: str, before: dict[str, int], *loads: LoadResult, timeout: float = 90
) -> None:
    want = dict(before)
    for load in loads:
        assert load.errors == 0
        assert load.acked == load.sent
        for table, n in expected_rows(load).items():
            want[table] += n
    deadline = time.monotonic() + timeout
    while (got := counts(url)) != want and time.monotonic() < deadline:
        time.sleep(0.2)
    assert got == want, f"rows committed {got} != expected {want}"
    time.sleep(1.0)  # nothing more arrives afterwards (no late duplicates)
    assert counts(url) == want
    # Every newly stored event and acc window was announced once to the detectors.
    outbox = {
        r["kind"]: r["n"]
        for r in query(url, "SELECT kind, count(*) AS n FROM stream_outbox GROUP BY kind")
    }
    assert outbox.get("event", 0) == want["events"]
    assert outbox.get("acc", 0) == want["acc_windows"]


@pytest.fixture
def fleet_url(database_url: str) -> str:
    provision(database_url, devices=DEVICES, sites=5)
    return database_url


def test_kill_9_mid_batch_loses_and_doubles_nothing(services: Services, fleet_url: str) -> None:
    env = _env(services, fleet_url)
    # Paced (5 s of publishing), so the kill lands while messages are still arriving; what is
    # published while the worker is dead waits in its persistent session.
    with running("ingest", env) as proc:
        before = _ready(services, fleet_url)
        with _background_load(services, 20_000, rate=4000.0) as result:
            wait_until(lambda: sum(counts(fleet_url).values()) > sum(before.values()) + 500)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            at_kill = sum(counts(fleet_url).values())
    assert at_kill < sum(before.values()) + sum(expected_rows(result[0]).values())
    with running("ingest", env):  # same client id: the same persistent session
        _assert_exact(fleet_url, before, *result)


@pytest.mark.parametrize("shared", [False, True], ids=["plain", "shared"])
def test_broker_restart(services: Services, fleet_url: str, shared: bool) -> None:
    """Mosquitto 2.0 keeps persistent sessions and their queued messages over a restart, but
    does not restore *shared* subscriptions from its persistence file (checked by hand with
    mosquitto_sub: a plain persistent subscription gets a message published after the restart,
    a shared one does not). So with a shared subscription, what devices publish between the
    broker's restart and the workers' resubscription is lost at the broker; docs/ingest.md
    explains the deployment choice. A plain subscription (one worker) loses nothing."""
    env = _env(services, fleet_url)
    if not shared:
        env["ELDERCARE_MQTT_SHARE_GROUP"] = ""
    with running("ingest", env):
        before = _ready(services, fleet_url)
        first = _load(services, 15_000)
        log = services.broker.conf_dir / "mosquitto.log"
        seen = log.stat().st_size
        services.broker.stop()  # Mosquitto saves sessions and queued messages on the way down
        port = services.broker.port
        services.broker = start_mosquitto(services.broker.conf_dir, port=port)
        assert services.broker.port == port
        if shared:  # wait for the worker to be back (and give it a moment to resubscribe)
            client_id = env["ELDERCARE_MQTT_CLIENT_ID"]
            # both of the worker's connections: telemetry (<id>) and the life-safety lane
            back = [re.compile(rf" as {re.escape(c)} \(") for c in (client_id, f"{client_id}-ls")]
            wait_until(
                lambda: all(b.search(log.read_text()[seen:]) for b in back),
                what="both worker connections back",
            )
            time.sleep(1.0)
        second = _load(services, 5_000)
        _assert_exact(fleet_url, before, first, second)


@contextmanager
def _background_load(s: Services, messages: int, rate: float) -> Iterator[list[LoadResult]]:
    out: list[LoadResult] = []
    t = threading.Thread(target=lambda: out.append(_load(s, messages, rate=rate)))
    t.start()
    try:
        yield out
    finally:
        t.join()


@pytest.mark.parametrize("outage_s", [1.0, 30.0], ids=["restart", "outage-30s"])
def test_database_outage_under_load(services: Services, fleet_url: str, outage_s: float) -> None:
    rate = 1000.0
    with running("ingest", _env(services, fleet_url)):
        before = _ready(services, fleet_url)
        with _background_load(services, int(rate * (outage_s + 6)), rate) as result:
            time.sleep(2.0)
            services.pg.stop()  # restart = stop + start; the outage lasts outage_s
            down_at = time.monotonic()
            time.sleep(outage_s)
            port = services.pg.port
            services.pg = start_postgres(services.base, port=port, password=services.pg.password)
            assert services.pg.port == port
            assert time.monotonic() - down_at >= outage_s
        _assert_exact(fleet_url, before, *result, timeout=120)


def test_redelivered_messages_are_stored_once(services: Services, fleet_url: str) -> None:
    """The same bytes twice (a device resending, or the broker redelivering after a lost ack)."""
    from simulators.load import device_ids, payload

    with running("ingest", _env(services, fleet_url)):
        before = _ready(services, fleet_url)
        site, dev = device_ids(DEVICES, 5)[7]
        now = time.time() - 10
        msgs = [payload(kind, dev, now + i, i) for i, kind in enumerate(["vitals", "event", "acc"])]
        for _ in range(2):
            for channel, body, _retain in msgs:
                subprocess.run(
                    ["mosquitto_pub", "-p", str(services.broker.port), "-u", LOAD_USER[0],
                     "-P", LOAD_USER[1], "-q", "1", "-t", f"eldercare/v1/{site}/{dev}/{channel}",
                     "-m", body.decode()],
                    check=True,
                )  # fmt: skip
        want = {
            t: before[t] + n for t, n in {"telemetry": 3, "events": 1, "acc_windows": 1}.items()
        }
        wait_until(lambda: counts(fleet_url) == want, what="one copy of each")
        time.sleep(1.5)
        assert counts(fleet_url) == want


def test_two_workers_on_one_shared_subscription(services: Services, fleet_url: str) -> None:
    env = _env(services, fleet_url)
    other = dict(env, ELDERCARE_MQTT_CLIENT_ID=env["ELDERCARE_MQTT_CLIENT_ID"] + "-b")
    with running("ingest", env), running("ingest", other):
        before = _ready(services, fleet_url)
        load = _load(services, 20_000)
        _assert_exact(fleet_url, before, load)
