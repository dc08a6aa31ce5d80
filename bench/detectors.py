"""Detector throughput: stream events per second through the live detectors.

    .venv/bin/python -m bench.detectors [--events 20000]

Starts its own PostgreSQL+TimescaleDB, seeds the demo population and prints, in one run:
- the pure detectors alone (events/s on one core, no I/O);
- the alerts worker's cycle over the database (claim from ``stream_outbox``, resolve resident
  and care plans, detect, store alerts, deferrals and orders), in events/s and per CPU-second;
- the baseline measured the same way: the same claim query with no detectors, so the ratio says
  what detection costs on top of moving the rows.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
from psycopg.rows import dict_row
from threadpoolctl import threadpool_limits

from alerts.detection.detectors.registry import build_registry, route
from alerts.detection.fall.detector import AccFallDetector, AccWindow
from alerts.detection.fall.model import PLACEMENTS
from alerts.detection.fall.model import load as load_fall_model
from alerts.detection.fall.model import load_all as load_fall_models
from alerts.detection.worker import CLAIM_SQL, claim_params, evaluate, run_cycle, to_event
from alerts.dispatch.policy import policy_from_settings
from devices import migrate
from devices.db import open_pool
from devices.settings import Settings
from devtools.seed import seed_demo
from devtools.servers import start_postgres

MIX = (  # (name, value_bool, value_num, value_text, weight): mostly routine, a few emergencies
    ("motion", True, None, None, 50),
    ("presence", True, None, None, 15),
    ("presence", False, None, None, 15),
    ("door", None, None, "open", 10),
    ("fall", True, 0.5, None, 4),
    ("sos", True, None, None, 3),
    ("smoke", True, None, None, 1),
)


def fill_outbox(url: str, n: int, *, start: datetime) -> None:
    rng = random.Random(7)
    with psycopg.connect(url, row_factory=dict_row) as conn:
        keys = [r["device_key"] for r in conn.execute("SELECT device_key FROM devices")]
        rows = []
        for i in range(n):
            name, vb, vn, vt, _ = rng.choices(MIX, weights=[m[4] for m in MIX])[0]
            at = start + timedelta(milliseconds=37 * i)
            rows.append(("event", rng.choice(keys), at, name, vb, vn, vt))
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY stream_outbox (kind, device_key, time, name, value_bool, value_num, value_text)"
                " FROM STDIN"
            ) as copy,
        ):
            for row in rows:
                copy.write_row(row)


async def drain(url: str, *, detect: bool, now: datetime) -> tuple[int, float, float]:
    settings = Settings()
    routes = route(build_registry(fall_min_confidence=0.2))
    pool = await open_pool(url, name="bench", max_size=2)
    done = 0
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        while True:
            if detect:
                cycle = await run_cycle(
                    pool, routes=routes, policy=policy_from_settings(settings), limit=500, now=now
                )
                claimed = cycle.claimed
            else:
                async with pool.connection() as conn, conn.transaction():
                    cur = await conn.execute(CLAIM_SQL, claim_params(500))
                    claimed = len([to_event(r) for r in await cur.fetchall()])
            done += claimed
            if claimed == 0:
                break
    finally:
        await pool.close()
    return done, time.perf_counter() - wall, time.process_time() - cpu


def pure_rate(url: str, n: int) -> float:
    routes = route(build_registry(fall_min_confidence=0.2))
    with psycopg.connect(url, row_factory=dict_row) as conn:
        events = [to_event(r) for r in conn.execute(CLAIM_SQL, claim_params(n)).fetchall()]
        conn.rollback()  # leave the outbox as it was
    now = datetime.now(UTC)
    t = time.perf_counter()
    for _ in range(3):
        evaluate(events, routes, now)
    return 3 * len(events) / (time.perf_counter() - t)


def window_rate(n: int = 400, placement: str = "unknown") -> tuple[float, float]:
    """Accelerometer windows per second through ``acc_fall`` on one core with the model of
    ``placement``: quiet windows (the cheap path: no impact, no model call) and windows with
    an impact (features + model)."""
    detector = AccFallDetector(model=load_fall_model(), models=load_fall_models())
    rng = np.random.default_rng(7)
    start = datetime.now(UTC)
    rates = []
    for impact in (False, True):
        windows = []
        for i in range(n):
            xyz = rng.normal(0, 0.3, size=(325, 3)) + np.array([0.0, 0.0, 9.81])
            if impact:
                xyz[150:155] += rng.normal(0, 25, size=(5, 3))  # a 2-3 g blow 3 s in
            windows.append(
                AccWindow(
                    i,
                    f"wb-{i}",
                    "bench",
                    start,
                    50.0,
                    xyz[:, 0],
                    xyz[:, 1],
                    xyz[:, 2],
                    placement=placement,
                )
            )
        with threadpool_limits(1):  # as the alerts worker runs its models
            t = time.perf_counter()
            for w in windows:
                detector.evaluate(w, now=start)
            rates.append(n / (time.perf_counter() - t))
    return rates[0], rates[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="eldercare-bench-"))
    base.chmod(0o755)
    pg = start_postgres(base, password="bench", fast=True)
    try:
        url = pg.url("postgres")
        migrate.upgrade(url)

        async def seed() -> None:
            async with await psycopg.AsyncConnection.connect(url, row_factory=dict_row) as c:
                await seed_demo(c, now=datetime.now(UTC) - timedelta(days=1))
                await c.commit()

        asyncio.run(seed())
        start = datetime.now(UTC) - timedelta(hours=12)
        fill_outbox(url, args.events, start=start)
        pure = pure_rate(url, args.events)
        base_n, base_wall, base_cpu = asyncio.run(drain(url, detect=False, now=start))
        fill_outbox(url, args.events, start=start + timedelta(hours=1))
        n, wall, cpu = asyncio.run(drain(url, detect=True, now=start + timedelta(hours=2)))
        print(f"events: {n} (mix: {', '.join(m[0] for m in MIX)}), batch 500")
        print(f"pure detectors, one core:         {pure:>10,.0f} events/s")
        print(
            f"baseline claim only (no detect):  {base_n / base_wall:>10,.0f} events/s "
            f"({base_n / base_cpu:,.0f} per worker CPU-second)"
        )
        print(
            f"live worker cycle with detectors: {n / wall:>10,.0f} events/s "
            f"({n / cpu:,.0f} per worker CPU-second)"
        )
        print(f"ratio live / baseline:            {(n / wall) / (base_n / base_wall):>10.2f}")
        for placement in PLACEMENTS:
            quiet, impact = window_rate(placement=placement)
            print(
                f"acc_fall {placement:5s} model: quiet 6.5-s windows {quiet:>8,.0f}/s, "
                f"windows with an impact {impact:>6,.0f}/s (one core)"
            )
    finally:
        pg.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
