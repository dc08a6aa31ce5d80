"""Prometheus metrics of the ingest worker (``python -m ingest run --metrics-port N``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECEIVED = Counter("ingest_messages_received", "MQTT messages taken from the broker")
STORED = Counter("ingest_rows_stored", "Rows committed", ["table"])
REJECTED = Counter(
    "ingest_messages_rejected",
    "Messages refused: dead-lettered with this reason, or dropped (rate_limited)",
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
DB_RETRIES = Counter("ingest_db_retries", "Batch writes retried after a database error")
BACKLOG = Gauge("ingest_backlog_messages", "Messages received but not yet taken into a batch")
LAG = Gauge("ingest_lag_seconds", "Arrival-to-commit delay of the oldest message of the last batch")
