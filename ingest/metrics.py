"""Prometheus metrics of the ingest worker (``python -m ingest run --metrics-port N``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECEIVED = Counter("ingest_messages_received", "MQTT messages taken from the broker")
STORED = Counter("ingest_rows_stored", "Rows committed", ["table"])
REJECTED = Counter(
    "ingest_messages_rejected",
    "Messages refused: dead-lettered with this reason (rate_limited: over the device rate)",
    ["reason"],
)
DUPLICATES = Counter("ingest_duplicates_dropped", "Rows already stored (redelivery or resend)")
LATE = Counter("ingest_late_messages", "Messages stored whose readings arrived late")
BATCH_SIZE = Histogram(
    "ingest_batch_messages",
    "Messages per committed batch",
    buckets=(1, 10, 50, 100, 500, 1000, 2000, 5000, 10000),
)
COMMIT_SECONDS = Histogram(
    "ingest_commit_seconds",
    "Time to write and commit one batch",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
DECODE_SECONDS = Histogram(
    "ingest_decode_seconds",
    "Time to decode one batch (CPU on the worker's event loop)",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)
DB_RETRIES = Counter("ingest_db_retries", "Batch writes retried after a database error")
BACKLOG = Gauge("ingest_backlog_messages", "Messages received but not yet taken into a batch")
LAG = Gauge("ingest_lag_seconds", "Arrival-to-commit delay of the oldest message of the last batch")
_LATENCY_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2)
_LATENCY_BUCKETS += (0.25, 0.3, 0.4, 0.5, 0.75, 1, 2, 5, 10, 20, 30, 60)
READING_TO_COMMIT = Histogram(
    "ingest_reading_to_commit_seconds",
    "From a pack's earliest reading time to its commit (publish-to-commit for a live device"
    " with a good clock); packs older than a minute are left out",
    buckets=_LATENCY_BUCKETS,
)
HELD = Gauge(
    "ingest_backlog_held_messages",
    "Backlog messages held by the pacer (not yet stored nor acknowledged), per path",
    ["path"],
)
