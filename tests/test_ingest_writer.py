"""The batch writer against the real database: statuses, outbox rows, idempotency."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from psycopg.rows import dict_row

from bench.stack import provision
from ingest.decode import AccWindowRow, Decoded, StatusRow, TelemetryRow
from ingest.writer import Batch, WriteResult, write_batch
from tests.services import query

pytestmark = pytest.mark.integration
T = 1_795_000_000.0


def _write(url: str, *items: Decoded) -> WriteResult:
    async def go() -> WriteResult:
        async with await psycopg.AsyncConnection.connect(url, row_factory=dict_row) as conn:
            batch = Batch()
            for item in items:
                batch.add(item)
            async with conn.transaction():
                return await write_batch(conn, batch)

    return asyncio.run(go())


def _status(key: int, online: bool, at: float) -> Decoded:
    return Decoded(key, status=StatusRow(key, online, 80.0, "1.0", at), last_time=at)


def test_status_changes_reach_the_outbox_once_each(database_url: str) -> None:
    provision(database_url, devices=3, sites=1)
    keys = [
        r["device_key"] for r in query(database_url, "SELECT device_key FROM devices ORDER BY 1")
    ]
    a, b, c = keys
    # a: first status (a change from nothing); b: offline then online in one batch (two changes);
    # c: online twice (one change).
    _write(
        database_url,
        _status(a, True, T),
        _status(b, False, T),
        _status(b, True, T + 1),
        _status(c, True, T),
        _status(c, True, T + 2),
    )
    # An older status does not overwrite a newer one, and repeats change nothing.
    _write(database_url, _status(c, False, T + 1), _status(a, True, T + 5))
    rows = query(
        database_url,
        "SELECT device_key, value_bool FROM stream_outbox WHERE kind = 'status' ORDER BY id",
    )
    changes = [(r["device_key"], r["value_bool"]) for r in rows]
    assert sorted(changes) == sorted([(a, True), (b, False), (b, True), (c, True)])
    assert changes.index((b, False)) < changes.index((b, True))
    status = {
        r["device_key"]: r["online"] for r in query(database_url, "SELECT * FROM device_status")
    }
    assert status == {a: True, b: True, c: True}


def test_new_acc_windows_are_announced_once(database_url: str) -> None:
    provision(database_url, devices=1, sites=1)
    (key,) = [r["device_key"] for r in query(database_url, "SELECT device_key FROM devices")]
    win = AccWindowRow(T, key, (0.0, 0.02), (0.1, 0.2), (0.0, 0.1), (9.8, 9.7))
    first = _write(database_url, Decoded(key, windows=(win, win), last_time=T))
    again = _write(database_url, Decoded(key, windows=(win,), last_time=T))
    assert (first.windows, first.duplicates, again.windows, again.duplicates) == (1, 1, 0, 1)
    rows = query(database_url, "SELECT kind, name, device_key, time FROM stream_outbox")
    assert [(r["kind"], r["name"], r["device_key"]) for r in rows] == [("acc", "acc", key)]
    assert rows[0]["time"].timestamp() == T


def test_readings_already_stored_are_skipped_and_the_rest_kept(database_url: str) -> None:
    """Telemetry is COPYed straight into the hypertable; a batch that repeats a stored reading
    (or holds one twice) falls back to the staging path and stores exactly the new ones."""
    provision(database_url, devices=1, sites=1)
    (key,) = [r["device_key"] for r in query(database_url, "SELECT device_key FROM devices")]

    def reading(dt: float, metric: str = "hr") -> TelemetryRow:
        return TelemetryRow(T + dt, key, metric, 60.0 + dt)

    first = _write(database_url, Decoded(key, telemetry=(reading(0), reading(0.5, "spo2"))))
    again = _write(database_url, Decoded(key, telemetry=(reading(0.5, "spo2"), reading(1))))
    twice = _write(database_url, Decoded(key, telemetry=(reading(2), reading(2), reading(3))))
    got = [(f.telemetry, f.duplicates) for f in (first, again, twice)]
    assert got == [(2, 0), (1, 1), (2, 1)]
    rows = query(database_url, "SELECT time, metric, value FROM telemetry ORDER BY time")
    assert [(r["time"].timestamp(), r["metric"], r["value"]) for r in rows] == [
        (T, "hr", 60.0),
        (T + 0.5, "spo2", 60.5),
        (T + 1, "hr", 61.0),
        (T + 2, "hr", 62.0),
        (T + 3, "hr", 63.0),
    ]
