"""SOS to offered: latency of the dispatch path under steady background telemetry.

    .venv/bin/python -m bench.dispatch_latency [--incidents 1000] [--rate 5000]
    .venv/bin/python -m bench.dispatch_latency --load fleet --rate 0   # ingest saturated

Starts its own PostgreSQL+TimescaleDB and Mosquitto, seeds the demo population, puts
responders on shift, and runs the real ``ingest`` and ``alerts`` processes. Background
publisher processes send telemetry at ``--rate`` messages/s: with ``--load paho`` (the
default) one SenML record per message, QoS 1, each demo device with its own credentials;
with ``--load fleet`` the project's fast load publisher (simulators.load_run, the same mix as
bench.ingest: vitals, status, door/motion events, acc windows) over a provisioned fleet of
``--fleet-devices``, where ``--rate 0`` publishes as fast as the broker takes it, more than
one ingest worker stores here, so telemetry saturates ingest. Then, one
incident at a time, an SOS is published over MQTT by a button with its own credentials, and
the clock stops when the order's offer reaches a responder: the ``NOTIFY responders`` that
PostgreSQL delivers only once the offer is committed. The order is then cancelled so the
next press is a new incident. Prints p50/p99/max and the background rate actually
published and actually stored during the measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import signal
import statistics
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from multiprocessing.sharedctypes import Synchronized
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from psycopg.rows import dict_row

from alerts.dispatch.orders import Actor, OrderError, cancel_order
from bench.stack import provision
from devices.credentials import ADMIN_USERNAME, ServiceUser, mosquitto_hash
from devtools import local_services
from devtools.local_services import LocalServices as Services
from devtools.local_services import fresh_database, running, seed
from devtools.seed import DemoDevice
from simulators.load_run import LoadSpec, acked, start_load

BACKGROUND_KINDS = ("wristband", "bed_mat", "pir", "door", "smoke")
LOAD_USER = ("loadgen", "bench-load")
# the workers as the tests run them (the figures in README were measured so)
WORKER_SETTINGS = {
    "ELDERCARE_ALERTS_POLL_INTERVAL_S": "0.2",
    "ELDERCARE_WEBHOOK_ALLOW_HOSTS": '["127.0.0.1"]',
}


def start_services() -> Services:
    """The stack the tests use (devtools.local_services; database with fsync off)."""
    s = local_services.start(
        db_password="bench-pw",
        passwords={
            "ingest": "bench-ingest",
            "backend": "bench-backend",
            ADMIN_USERNAME: "bench-admin",
        },
        # the load publisher speaks for every load device (bench only)
        extra_users=(
            ServiceUser(LOAD_USER[0], mosquitto_hash(LOAD_USER[1]), write=("eldercare/v1/#",)),
        ),
        fast=True,
    )
    local_services.make_template(s)
    return s


def worker_env(s: Services, url: str) -> dict[str, str]:
    return s.worker_env(
        url,
        client_id=f"ingest-{uuid.uuid4().hex[:8]}",
        share_group=f"g{uuid.uuid4().hex[:8]}",
        extra=WORKER_SETTINGS,
    )


def _client(port: int, dev: DemoDevice) -> mqtt.Client:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=dev.device_id,
        protocol=mqtt.MQTTv5,
    )
    client.username_pw_set(dev.device_id, dev.password)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def _connected(clients: Sequence[mqtt.Client]) -> None:
    deadline = time.monotonic() + 30
    while not all(c.is_connected() for c in clients):
        if time.monotonic() > deadline:
            raise RuntimeError("bench clients could not connect to the broker")
        time.sleep(0.05)


def load_worker(
    port: int,
    devices: Sequence[DemoDevice],
    rate: float,
    sent: Synchronized[int],
    ready: Synchronized[int],
    stop: Any,
    nice: int = 0,
) -> None:
    """Publish telemetry round-robin over ``devices`` at ``rate`` messages/s until stopped,
    at ``nice`` (the publishers stand for devices, which share no CPU with the server)."""
    if nice:
        os.nice(nice)
    clients = [(_client(port, d), d) for d in devices]
    _connected([c for c, _ in clients])
    with ready.get_lock():
        ready.value += 1
    tick, i, start = 0.01, 0, time.perf_counter()
    while not stop.is_set():
        due = int((time.perf_counter() - start) * rate)
        burst = 0
        while i < due:
            client, dev = clients[i % len(clients)]
            pack = [{"bn": f"{dev.device_id}:", "bt": time.time(), "n": "hr", "u": "beat/min"}]
            pack[0]["v"] = 60 + i % 30
            client.publish(
                f"eldercare/v1/{dev.site_id}/{dev.device_id}/telemetry", json.dumps(pack), qos=1
            )
            i += 1
            burst += 1
        with sent.get_lock():
            sent.value += burst
        time.sleep(tick)
    for client, _ in clients:
        client.disconnect()
        client.loop_stop()


def add_responders(url: str) -> None:
    now = datetime.now(UTC)
    with psycopg.connect(url) as conn:
        for name, kind, level, site, community in (
            ("carer-1", "staff", 1, "sunrise", None),
            ("carer-2", "staff", 1, "sunrise", None),
            ("provider-1", "provider", 1, None, "pinghu-west"),
            ("supervisor", "supervisor", 2, "sunrise", None),
        ):
            row = conn.execute(
                "INSERT INTO responders (name, kind, level, site_id, community) "
                "VALUES (%s, %s, %s, %s, %s) RETURNING responder_id",
                (name, kind, level, site, community),
            ).fetchone()
            assert row is not None
            conn.execute(
                "INSERT INTO shifts (responder_id, during) VALUES (%s, tstzrange(%s, %s))",
                (row[0], now - timedelta(hours=1), now + timedelta(hours=12)),
            )


async def measure(
    url: str, port: int, buttons: Sequence[DemoDevice], incidents: int
) -> tuple[list[float], int, dict[int, float]]:
    clients = [(_client(port, b), b) for b in buttons]
    _connected([c for c, _ in clients])
    listener = await psycopg.AsyncConnection.connect(url, autocommit=True)
    await listener.execute("LISTEN responders")
    conn = await psycopg.AsyncConnection.connect(url, row_factory=dict_row)
    offers: asyncio.Queue[tuple[float, dict[str, Any]]] = asyncio.Queue()

    async def hear() -> None:
        async for note in listener.notifies():
            offers.put_nowait((time.perf_counter(), json.loads(note.payload)))

    hearing = asyncio.create_task(hear())
    latencies: list[float] = []
    by_order: dict[int, float] = {}
    timeouts = 0
    bench = Actor("bench")

    async def incident(
        button: DemoDevice, client: mqtt.Client, wait_s: float
    ) -> tuple[float, int] | None:
        """Press, wait for this press's offer, cancel the order; (latency, order) or None."""
        pack = [{"bn": f"{button.device_id}:", "bt": time.time(), "n": "sos", "vb": True}]
        topic = f"eldercare/v1/{button.site_id}/{button.device_id}/event"
        started = time.perf_counter()
        client.publish(topic, json.dumps(pack), qos=1)
        deadline = started + wait_s
        while True:
            try:
                heard_at, note = await asyncio.wait_for(
                    offers.get(), timeout=max(deadline - time.perf_counter(), 0.001)
                )
            except TimeoutError:
                return None
            if note["kind"] not in ("offer", "escalation"):
                continue
            cur = await conn.execute(
                "SELECT d.device_id FROM dispatch_orders o JOIN alerts a ON a.alert_id = o.alert_id"
                " JOIN devices d ON d.device_key = a.device_key WHERE o.order_id = %s",
                (note["order_id"],),
            )
            row = await cur.fetchone()
            try:
                await cancel_order(
                    conn,
                    order_id=note["order_id"],
                    actor=bench,
                    note="bench",
                    now=datetime.now(UTC),
                )
            except OrderError:  # a repeated notice of an order already cancelled
                await conn.rollback()
                continue
            await conn.commit()
            if row is not None and row["device_id"] == button.device_id:
                return heard_at - started, int(note["order_id"])
            # a late offer of an earlier, timed-out press: cancelled, keep waiting

    try:
        # One press first, not counted, with a long wait: the stack is up and warm.
        if await incident(clients[0][1], clients[0][0], 120.0) is None:
            raise RuntimeError("the warm-up SOS was never offered")
        for n in range(incidents):
            client, button = clients[(n + 1) % len(clients)]
            heard = await incident(button, client, 10.0)
            if heard is None:
                timeouts += 1
            else:
                latencies.append(heard[0])
                by_order[heard[1]] = heard[0]
    finally:
        hearing.cancel()
        await listener.close()
        await conn.close()
        for client, _ in clients:
            client.disconnect()
            client.loop_stop()
    return latencies, timeouts, by_order


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(int(-(-q * len(ordered) // 100)), 1) - 1]


BREAKDOWN_SQL = """
SELECT stage, percentile_disc(0.5) WITHIN GROUP (ORDER BY ms) AS p50,
       percentile_disc(0.99) WITHIN GROUP (ORDER BY ms) AS p99, max(ms) AS max
FROM dispatch_orders o
JOIN alerts a ON a.alert_id = o.alert_id
JOIN events e ON e.device_key = a.device_key AND e.time = o.event_at AND e.name = 'sos'
JOIN unnest(%(orders)s::bigint[], %(latencies)s::float8[]) h(order_id, latency_s)
  ON h.order_id = o.order_id
CROSS JOIN LATERAL (VALUES
    ('1 publish -> ingest transaction', e.received_at - o.event_at),
    ('2 ingest -> alerts cycle', a.raised_at - e.received_at),
    ('3 alerts cycle -> escalation step', o.offered_at - a.raised_at),
    -- what the transactions' start times cannot show: the offer's transaction until it
    -- commits, and its NOTIFY reaching the bench (the press's latency less stages 1-3)
    ('4 offer transaction -> heard', make_interval(secs => h.latency_s) - (o.offered_at - o.event_at))
    ) s(stage, span)
CROSS JOIN LATERAL (SELECT extract(epoch FROM s.span) * 1000 AS ms) m
WHERE o.offered_at IS NOT NULL
GROUP BY stage ORDER BY stage
"""


def breakdown(url: str, by_order: dict[int, float]) -> list[tuple[str, float, float, float]]:
    """Where the time goes, from the rows' own timestamps (transaction start times, the
    same clock as the publisher's ``bt``) and each press's measured latency."""
    params = {"orders": list(by_order), "latencies": list(by_order.values())}
    with psycopg.connect(url) as conn:
        rows = conn.execute(BREAKDOWN_SQL, params)
        return [(r[0], float(r[1]), float(r[2]), float(r[3])) for r in rows]


def telemetry_rows(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM telemetry").fetchone()
        return int(row[0]) if row else 0


def fleet_messages(url: str) -> int:
    """Background messages of the load fleet committed so far, from the rows they left (a
    vitals pack is three telemetry rows, an acc window one row, an event one row; the 5% of
    status messages leave none and are not counted)."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM telemetry t JOIN devices d USING (device_key)"
            "  WHERE d.device_id LIKE 'ld%%') / 3"
            " + (SELECT count(*) FROM acc_windows)"
            " + (SELECT count(*) FROM events e JOIN devices d USING (device_key)"
            "  WHERE d.device_id LIKE 'ld%%')"
        ).fetchone()
        return int(row[0]) if row else 0


def _interrupt(_sig: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--incidents", type=int, default=1000)
    parser.add_argument(
        "--rate", type=float, default=5000.0, help="background messages/s (fleet: 0 = unpaced)"
    )
    parser.add_argument("--publishers", type=int, default=2)
    parser.add_argument("--load", choices=("paho", "fleet"), default="paho")
    parser.add_argument("--fleet-devices", type=int, default=2000)
    parser.add_argument("--fleet-sites", type=int, default=50)
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of load first")
    parser.add_argument(
        "--load-nice",
        type=int,
        default=0,
        help="run the publishers (paho or fleet) at this nice level (devices do not share the server's CPU)",
    )
    parser.add_argument(
        "--lane-processes",
        action="store_true",
        help="also run the life-safety lanes as processes of their own "
        "(python -m ingest lane, python -m alerts lane), as scripts/run.sh does",
    )
    parser.add_argument(
        "--bulk-nice",
        type=int,
        default=0,
        help="run the main ingest and alerts workers at this nice level (the lane processes "
        "stay at 0)",
    )
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _interrupt)  # a timeout still stops every process started

    services: Services = start_services()
    try:
        with fresh_database(services) as url:
            run(services, url, args)
    finally:
        services.stop()


class Background:
    """The background load, started and stopped around the measurement."""

    def __init__(self, services: Services, url: str, args: argparse.Namespace, pop: Any) -> None:
        self.args = args
        self.procs: list[Any] = []
        port = services.broker.port
        ctx = mp.get_context("spawn")
        if args.load == "fleet":
            provision(url, devices=args.fleet_devices, sites=args.fleet_sites)
            self.spec = LoadSpec(
                host="127.0.0.1", port=port, username=LOAD_USER[0], password=LOAD_USER[1],
                devices=args.fleet_devices, sites=args.fleet_sites, messages=10**12,
                rate=args.rate, processes=args.publishers,
            )  # fmt: skip
            return
        self.stop = ctx.Event()
        self.sent_value = ctx.Value("q", 0)
        self.ready = ctx.Value("q", 0)  # publishers with every device connected
        background = [d for d in pop.devices if d.kind in BACKGROUND_KINDS]
        shares = [background[i :: args.publishers] for i in range(args.publishers)]
        self.procs = [
            ctx.Process(
                target=load_worker,
                args=(
                    port,
                    share,
                    args.rate / args.publishers,
                    self.sent_value,
                    self.ready,
                    self.stop,
                    args.load_nice,
                ),
            )
            for share in shares
        ]

    def start(self) -> None:
        if self.args.load == "fleet":
            self.procs, self.shared = start_load(self.spec)
            for proc in self.procs:  # devices share no CPU with the server
                if self.args.load_nice and proc.pid is not None:
                    os.setpriority(os.PRIO_PROCESS, proc.pid, self.args.load_nice)
            return
        for p in self.procs:
            p.start()
        # the warm-up counts from when every device is connected (76 connects can take
        # seconds on a busy machine)
        deadline = time.monotonic() + 120
        while self.ready.value < len(self.procs):
            if time.monotonic() > deadline or not all(p.is_alive() for p in self.procs):
                raise RuntimeError("the background publishers could not connect")
            time.sleep(0.1)

    def sent(self) -> int:
        if self.args.load == "fleet":
            return acked(self.shared, self.spec.processes)
        return int(self.sent_value.value)

    def close(self) -> None:
        if self.args.load == "fleet":
            for p in self.procs:
                p.terminate()
        else:
            self.stop.set()
        for p in self.procs:
            p.join(timeout=10)


def run(services: Services, url: str, args: argparse.Namespace) -> None:
    pop = seed(services, url)
    add_responders(url)
    buttons = [d for d in pop.devices if d.kind == "sos_button"]
    background = [d for d in pop.devices if d.kind in BACKGROUND_KINDS]
    env = worker_env(services, url)
    env["ELDERCARE_BROKER_BACKEND_PASSWORD"] = services.backend_password
    if args.load == "paho":
        # The demo's few devices each send far more than a real one (every 10 s): lift the
        # per-device flood guard above the bench's own rate, or it drops the background load.
        per_device = args.rate / max(len(background), 1)
        env["ELDERCARE_INGEST_DEVICE_RATE"] = str(max(50.0, 2 * per_device))
        env["ELDERCARE_INGEST_DEVICE_BURST"] = str(max(500.0, 20 * per_device))
        print(f"{len(background)} background devices, {per_device:,.0f} msg/s each", flush=True)
    else:
        print(
            f"{args.fleet_devices} fleet devices, {args.rate or 'unpaced':} msg/s in total",
            flush=True,
        )
    load = Background(services, url, args, pop)
    alerts_env = env | {
        "ELDERCARE_MQTT_USERNAME": "backend",
        "ELDERCARE_MQTT_PASSWORD": services.backend_password,
    }
    with contextlib.ExitStack() as workers:
        workers.enter_context(running("ingest", env, nice=args.bulk_nice))
        workers.enter_context(running("alerts", alerts_env, nice=args.bulk_nice))
        if args.lane_processes:
            workers.enter_context(running("ingest", env, command="lane"))
            workers.enter_context(running("alerts", alerts_env, command="lane"))
        time.sleep(2)  # let ingest subscribe (a startup wait, not a measured interval)
        load.start()
        try:
            time.sleep(args.warmup)  # background load reaches its steady state
            count = fleet_messages if args.load == "fleet" else telemetry_rows
            sent0, rows0, t0 = load.sent(), count(url), time.perf_counter()
            print(f"after warm-up: {sent0} published, {rows0} stored", flush=True)
            latencies, timeouts, by_order = asyncio.run(
                measure(url, services.broker.port, buttons, args.incidents)
            )
            elapsed = time.perf_counter() - t0
            sent1, rows1 = load.sent(), count(url)
            stages = breakdown(url, by_order)
        finally:
            load.close()
    ms = [x * 1000 for x in latencies]
    print(f"load average (1/5/15 min) at the end: {os.getloadavg()}, cpus: {os.cpu_count()}")
    print(
        f"SOS published over MQTT -> order offered (offer committed, NOTIFY received), "
        f"{len(ms)} incidents, {timeouts} timed out (>10 s)"
    )
    print(
        f"background ({args.load}): {(sent1 - sent0) / elapsed:,.0f} msg/s published, "
        f"{(rows1 - rows0) / elapsed:,.0f} msg/s stored"
        f"{' (status messages not counted)' if args.load == 'fleet' else ''}, over {elapsed:.1f} s"
    )
    if ms:
        print(
            f"latency ms: p50 {pct(ms, 50):.1f}  p99 {pct(ms, 99):.1f}  max {max(ms):.1f}  "
            f"mean {statistics.fmean(ms):.1f}"
        )
    for stage, p50, p99, worst in stages:
        print(f"  {stage:36s} p50 {p50:7.1f}  p99 {p99:7.1f}  max {worst:7.1f} ms")


if __name__ == "__main__":
    main()
