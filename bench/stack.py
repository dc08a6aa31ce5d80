"""The benchmark's own services: PostgreSQL+TimescaleDB, Mosquitto, a provisioned load fleet."""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from prometheus_client.parser import text_string_to_metric_families

from devices import migrate
from devices.credentials import ServiceUser, mosquitto_hash
from devtools import local_services
from devtools.local_services import LocalServices
from devtools.servers import LocalBroker, free_port
from simulators.load import device_ids

LATENCY_METRIC = "ingest_reading_to_commit_seconds"
INGEST_PASSWORD = "bench-ingest"
LOAD_PASSWORD = "bench-load"


@dataclass
class BenchStack:
    services: LocalServices
    load_password: str = LOAD_PASSWORD
    metrics_ports: list[int] = field(default_factory=list)
    worker_settings: dict[str, str] = field(default_factory=dict)  # extra ELDERCARE_* for workers

    @property
    def base(self) -> Path:
        return self.services.base

    @property
    def url(self) -> str:
        return self.services.pg.url()

    @property
    def broker(self) -> LocalBroker:
        return self.services.broker

    @property
    def ingest_password(self) -> str:
        return self.services.ingest_password

    def worker_env(self, *, client_id: str, group: str) -> dict[str, str]:
        return self.services.worker_env(
            self.url,
            client_id=client_id,
            share_group=group,
            # A bench worker's session ends with it: an old group must not keep queueing.
            extra={"ELDERCARE_MQTT_SESSION_EXPIRY_S": "0"},
        )

    def stop(self) -> None:
        self.services.stop()


def start_stack(base: Path, *, devices: int, sites: int) -> BenchStack:
    services = local_services.start(
        base,
        db_password="bench-pw",
        passwords={"ingest": INGEST_PASSWORD},
        # The load publisher speaks for every load device (bench only; a real device may
        # publish only under its own topics).
        extra_users=(
            ServiceUser("loadgen", mosquitto_hash(LOAD_PASSWORD), write=("eldercare/v1/#",)),
        ),
    )
    migrate.upgrade(services.pg.url())
    stack = BenchStack(services, metrics_ports=[free_port(), free_port()])
    provision(stack.url, devices=devices, sites=sites)
    return stack


def provision(url: str, *, devices: int, sites: int) -> None:
    fleet = device_ids(devices, sites)
    with psycopg.connect(url) as conn:
        site_ids = sorted({s for s, _ in fleet})
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO sites (site_id, name, kind) VALUES (%s, %s, 'nursing_home')",
                [(s, s) for s in site_ids],
            )
            cur.executemany(
                "INSERT INTO devices (device_id, site_id, kind) VALUES (%s, %s, 'wristband')",
                [(d, s) for s, d in fleet],
            )


@dataclass(frozen=True, slots=True)
class Histogram:
    buckets: dict[float, float]  # upper bound -> cumulative count

    def quantile(self, q: float, before: Histogram | None = None) -> float:
        """Linear interpolation inside the bucket, over the observations since ``before``."""
        bounds = sorted(self.buckets)
        cum = [self.buckets[b] - (before.buckets.get(b, 0.0) if before else 0.0) for b in bounds]
        total = cum[-1]
        if total <= 0:
            return float("nan")
        target = q * total
        lo_bound, lo_cum = 0.0, 0.0
        for b, c in zip(bounds, cum, strict=True):
            if c >= target:
                if b == float("inf"):
                    return lo_bound
                frac = (target - lo_cum) / (c - lo_cum) if c > lo_cum else 1.0
                return lo_bound + frac * (b - lo_bound)
            lo_bound, lo_cum = b, c
        return bounds[-1]


def worker_metrics(port: int) -> Histogram:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    buckets: dict[float, float] = {}
    for fam in text_string_to_metric_families(text):
        if fam.name == LATENCY_METRIC:
            for s in fam.samples:
                if s.name.endswith("_bucket"):
                    buckets[float(s.labels["le"])] = s.value
    return Histogram(buckets)
