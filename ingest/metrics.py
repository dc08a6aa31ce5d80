"""Prometheus metrics of the ingest worker."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECEIVED = Counter("ingest_messages_received", "MQTT messages taken from the broker")
STORED = Counter("ingest_rows_stored", "Rows committed", ["table"])
REJECTED = Counter("ingest_messages_rejected", "Messages dead-lettered", ["reason"])
DUPLICATES = Counter("ingest_duplicates_dropped", "Rows already stored (redelivery or resend)")
BATCH_SIZE = Histogram(
    "ingest_batch_messages",
    "Messages per committed batch",
    buckets=(1, 10, 50, 100, 500, 1000, 2000, 5000, 10000),
)
COMMIT_SECONDS = Histogram("ingest_commit_seconds", "Time to write and commit one batch")
DB_RETRIES = Counter("ingest_db_retries", "Batch writes retried after a database error")
BACKLOG = Gauge("ingest_backlog_messages", "Messages received but not yet committed")
LAG = Gauge("ingest_lag_seconds", "Receive-to-commit delay of the newest batch")
