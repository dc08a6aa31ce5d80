"""Ingest benchmark, one command: ``.venv/bin/python -m bench.ingest``.

Starts its own PostgreSQL+TimescaleDB and Mosquitto (devtools.local_services), provisions a load
fleet, and measures in one run, with the same payload mix (simulators.load):

1. the broker's QoS-1 delivery rate to ``mosquitto_sub`` (the baseline);
2. our sustained rate, one ingest worker: messages whose rows are all committed, per second,
   with rows counted against messages sent (zero loss is checked, not assumed);
3. publish-to-commit p50 / p99 at a fixed 5,000 msg/s;
4. the sustained rate with 2 workers on one shared subscription.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

from bench.stack import BenchStack, start_stack, worker_metrics
from simulators.load import ROWS
from simulators.load_run import LoadResult, LoadSpec, run_load

ROOT = Path(__file__).resolve().parent.parent


def load_spec(stack: BenchStack, args: argparse.Namespace, **kw: object) -> LoadSpec:
    base: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": stack.broker.port,
        "username": "loadgen",
        "password": stack.load_password,
        "devices": args.devices,
        "sites": args.sites,
        "processes": args.publishers,
        "acc": args.acc_share,
    }
    base.update(kw)
    return LoadSpec(**base)


def baseline(stack: BenchStack, args: argparse.Namespace) -> float:
    """QoS-1 messages/s from the broker to the C subscriber, same publisher and mix."""
    sub = subprocess.Popen(
        [
            "mosquitto_sub", "-h", "127.0.0.1", "-p", str(stack.broker.port),
            "-u", "ingest", "-P", stack.ingest_password, "-q", "1", "-V", "mqttv5",
            "-t", "eldercare/v1/+/+/telemetry", "-t", "eldercare/v1/+/+/event",
            "-t", "eldercare/v1/+/+/status", "-C", str(args.messages), "-W", "300",
        ],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(1.0)  # let it subscribe (no message is published before it is)
    done: list[float] = []

    def wait_for_sub() -> None:
        sub.wait(timeout=300)
        done.append(time.time())

    waiter = threading.Thread(target=wait_for_sub)
    waiter.start()
    result = run_load(load_spec(stack, args, messages=args.messages), live=False)
    waiter.join()
    if sub.returncode != 0:
        raise RuntimeError(f"mosquitto_sub did not receive all {args.messages} messages")
    print(f"  publisher alone reached {result.rate:,.0f} msg/s (acked by the broker)")
    # From the first message published to the last one received (not process start-up).
    return float(args.messages) / (done[0] - result.started_at)


def expected_rows(result: LoadResult) -> dict[str, int]:
    rows: dict[str, int] = {}
    for kind, (table, per_msg) in ROWS.items():
        rows[table] = rows.get(table, 0) + per_msg * result.by_kind.get(kind, 0)
    return rows


def counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {
            t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]
            for t in ("telemetry", "events", "acc_windows")
        }


def last_commit(url: str) -> float:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT extract(epoch FROM greatest((SELECT max(received_at) FROM telemetry),"
            " (SELECT max(received_at) FROM events), (SELECT max(received_at) FROM acc_windows)))"
        ).fetchone()
    return float(row[0]) if row and row[0] is not None else 0.0  # numeric -> float


def workers(stack: BenchStack, n: int, group: str) -> list[subprocess.Popen[bytes]]:
    procs = []
    for i in range(n):
        env = stack.worker_env(client_id=f"bench-{group}-{i}", group=group)
        env.update(stack.worker_settings)
        log = open(stack.base / f"ingest-{group}-{i}.log", "wb")  # noqa: SIM115
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    *_profile(f"{group}-{i}"),
                    "-m",
                    "ingest",
                    "run",
                    "--client-id",
                    f"bench-{group}-{i}",
                    "--metrics-port",
                    str(stack.metrics_ports[i]),
                ],
                env=env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    return procs


def _profile(name: str) -> list[str]:
    """BENCH_PROFILE_DIR=dir: run the workers under cProfile (one .prof file per worker)."""
    out = os.environ.get("BENCH_PROFILE_DIR")
    return ["-m", "cProfile", "-o", f"{out}/ingest-{name}.prof"] if out else []


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait(timeout=30)


def wait_subscribed(stack: BenchStack, args: argparse.Namespace) -> None:
    """Warm-up: publish until rows show up, so every worker is connected and subscribed."""
    before = sum(counts(stack.url).values())
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run_load(load_spec(stack, args, messages=200, processes=1, prefix="ld"), live=False)
        time.sleep(0.5)
        if sum(counts(stack.url).values()) > before:
            time.sleep(1.0)
            return
    raise RuntimeError("ingest workers did not start storing within 60 s")


def sustained(stack: BenchStack, args: argparse.Namespace, n_workers: int) -> float:
    group = f"g{uuid.uuid4().hex[:6]}"
    procs = workers(stack, n_workers, group)
    try:
        wait_subscribed(stack, args)
        time.sleep(2.0)  # let the warm-up drain
        before = counts(stack.url)
        result = run_load(load_spec(stack, args, messages=args.messages), live=True)
        t0 = result.started_at  # the first message published (as for the baseline)
        want = {t: before[t] + n for t, n in expected_rows(result).items()}
        got, progress_at = counts(stack.url), time.monotonic()
        while got != want and time.monotonic() - progress_at < 30:  # give up after 30 s idle
            time.sleep(0.5)
            now = counts(stack.url)
            if now != got:
                got, progress_at = now, time.monotonic()
        if got != want:
            raise RuntimeError(f"rows committed {got} != expected {want}: loss or duplicates")
        elapsed = last_commit(stack.url) - t0
        rows = sum(expected_rows(result).values())
        print(
            f"  {n_workers} worker(s): {result.sent:,} messages, {rows:,} rows, all committed"
            f" once, in {elapsed:.1f} s ({rows / elapsed:,.0f} rows/s)"
        )
        return result.sent / elapsed
    finally:
        stop(procs)


def latency(stack: BenchStack, args: argparse.Namespace) -> tuple[float, float]:
    group = f"g{uuid.uuid4().hex[:6]}"
    procs = workers(stack, 1, group)
    try:
        wait_subscribed(stack, args)
        time.sleep(2.0)
        before = worker_metrics(stack.metrics_ports[0])
        result = run_load(
            load_spec(stack, args, messages=int(args.latency_rate * args.latency_seconds),
                      rate=args.latency_rate),
            live=False,
        )  # fmt: skip
        print(f"  publisher held {result.rate:,.0f} msg/s")
        time.sleep(2.0)
        after = worker_metrics(stack.metrics_ports[0])
        return after.quantile(0.5, before), after.quantile(0.99, before)
    finally:
        stop(procs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--messages", type=int, default=150_000)
    ap.add_argument("--devices", type=int, default=2000)
    ap.add_argument("--sites", type=int, default=50)
    ap.add_argument("--publishers", type=int, default=2, help="publisher processes")
    ap.add_argument("--acc-share", type=float, default=0.05)
    ap.add_argument("--latency-rate", type=float, default=5000.0)
    ap.add_argument("--latency-seconds", type=float, default=15.0)
    ap.add_argument("--batch-max", type=int, default=None, help="ELDERCARE_INGEST_BATCH_MAX")
    ap.add_argument(
        "--batch-wait-ms", type=int, default=None, help="ELDERCARE_INGEST_BATCH_WAIT_MS"
    )
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra worker setting, e.g. --set MQTT_RECEIVE_MAXIMUM=20000 (ELDERCARE_ prefixed)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the data directory")
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="eldercare-bench-"))
    base.chmod(0o755)
    stack = start_stack(base, devices=args.devices, sites=args.sites)
    for name, value in (("BATCH_MAX", args.batch_max), ("BATCH_WAIT_MS", args.batch_wait_ms)):
        if value is not None:
            stack.worker_settings[f"ELDERCARE_INGEST_{name}"] = str(value)
    for item in args.set:
        name, _, value = item.partition("=")
        stack.worker_settings[f"ELDERCARE_{name.upper()}"] = value
    try:
        print(f"mix: 5% status, 5% events, {args.acc_share:.0%} 1-s 50 Hz acc windows, rest vitals;"
              f" {args.devices} devices, {args.messages:,} messages per run, {os.cpu_count()} cores")  # fmt: skip
        print("baseline: broker -> mosquitto_sub, QoS 1")
        base_rate = baseline(stack, args)
        print(f"  {base_rate:,.0f} msg/s")
        print("ingest, 1 worker, publisher at full speed")
        one = sustained(stack, args, 1)
        print(f"  {one:,.0f} msg/s committed = {one / base_rate:.0%} of the baseline")
        print(f"publish-to-commit at {args.latency_rate:,.0f} msg/s, 1 worker")
        p50, p99 = latency(stack, args)
        print(f"  p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms")
        print("ingest, 2 workers on one shared subscription")
        two = sustained(stack, args, 2)
        print(f"  {two:,.0f} msg/s committed = {two / base_rate:.0%} of the baseline")
        print(
            f"SUMMARY baseline {base_rate:,.0f} msg/s | 1 worker {one:,.0f} ({one / base_rate:.0%})"
            f" | 2 workers {two:,.0f} ({two / base_rate:.0%}) | at {args.latency_rate:,.0f} msg/s"
            f" p50 {p50 * 1000:.0f} ms p99 {p99 * 1000:.0f} ms"
        )
    finally:
        stack.stop()
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
