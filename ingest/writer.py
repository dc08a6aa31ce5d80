"""Write one batch of decoded messages in one transaction.

Every insert is idempotent on the row's natural key (device, name, time), so a message the
broker redelivers after a crash is stored once. Events that were really new are copied to
``stream_outbox`` for the detectors in the same transaction, and ``NOTIFY`` wakes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg

from devices.registry import Conn
from devices.wire import Reason
from ingest import copy_binary
from ingest.decode import AccWindowRow, DeadLetter, Decoded, EventRow, StatusRow, TelemetryRow

OUTBOX_CHANNEL = "stream_outbox"


@dataclass(slots=True)
class Batch:
    telemetry: list[TelemetryRow] = field(default_factory=list)
    events: list[EventRow] = field(default_factory=list)
    windows: list[AccWindowRow] = field(default_factory=list)
    statuses: list[StatusRow] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    last_seen: dict[int, float] = field(default_factory=dict)
    dropped: dict[int, int] = field(default_factory=dict)  # rate-limited messages per device
    messages: int = 0

    def add(self, item: Decoded | DeadLetter) -> None:
        self.messages += 1
        if isinstance(item, DeadLetter):
            key = item.device_key
            if item.reason is Reason.RATE_LIMITED and key is not None:
                # Counted per device; one dead letter per device and batch keeps a sample of
                # the flood without writing the flood itself.
                n = self.dropped.get(key, 0)
                self.dropped[key] = n + 1
                if n:
                    return
            self.dead.append(item)
            return
        self.telemetry.extend(item.telemetry)
        self.events.extend(item.events)
        self.windows.extend(item.windows)
        if item.status is not None:
            self.statuses.append(item.status)
        if item.last_time:
            self.last_seen[item.device_key] = max(
                item.last_time, self.last_seen.get(item.device_key, 0.0)
            )


@dataclass(frozen=True, slots=True)
class WriteResult:
    telemetry: int
    events: int
    windows: int
    duplicates: int
    dead: int


# Staging tables, one set per connection: rows arrive by binary COPY (the fastest way into
# PostgreSQL), then one INSERT ... SELECT ... ON CONFLICT DO NOTHING per table moves them into
# the hypertables. The unique keys make that idempotent across batches and across workers.
# Each has the columns of its hypertable, so one COPY buffer (ingest.copy_binary) fits both.
STAGING = """
CREATE TEMP TABLE IF NOT EXISTS s_tel (t timestamptz, k int4, m text, v float8)
  ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS s_ev (t timestamptz, k int4, n text, b bool, v float8, s text)
  ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS s_win (t timestamptz, k int4, o float4[], x float4[],
  y float4[], z float4[]) ON COMMIT DELETE ROWS;
"""


async def _copy(conn: Conn, target: str, data: bytes) -> None:
    async with conn.cursor() as cur, cur.copy(f"COPY {target} FROM STDIN (FORMAT BINARY)") as cp:
        await cp.write(data)


async def _telemetry(conn: Conn, rows: list[TelemetryRow]) -> int:
    """Readings go straight into the hypertable by COPY (twice as fast as staging them); a
    batch holding a reading already stored (a redelivery, a resend) fails on the unique key,
    is rolled back to the savepoint and takes the staging path, which skips exactly those."""
    data = copy_binary.telemetry(rows)
    try:
        async with conn.transaction():
            await _copy(conn, "telemetry (time, device_key, metric, value)", data)
        return len(rows)
    except psycopg.errors.UniqueViolation:
        pass  # not an error: the batch repeats a stored reading; stage it instead
    await conn.execute(STAGING)
    await _copy(conn, "s_tel", data)
    cur = await conn.execute(
        "INSERT INTO telemetry (time, device_key, metric, value) "
        "SELECT t, k, m, v FROM s_tel ON CONFLICT DO NOTHING"
    )
    return cur.rowcount


async def write_batch(conn: Conn, batch: Batch) -> WriteResult:
    """Insert the batch; the caller commits (and only then acknowledges the messages)."""
    tel = ev = win = 0
    if batch.events or batch.windows:
        await conn.execute(STAGING)
    if batch.telemetry:
        tel = await _telemetry(conn, batch.telemetry)
    if batch.events:
        await _copy(conn, "s_ev", copy_binary.events(batch.events))
        cur = await conn.execute(
            "WITH new AS ("
            " INSERT INTO events (time, device_key, name, value_bool, value_num, value_text)"
            " SELECT t, k, n, b, v, s FROM s_ev"
            " ON CONFLICT DO NOTHING RETURNING *)"
            " INSERT INTO stream_outbox (kind, device_key, time, name, value_bool, value_num,"
            " value_text) SELECT 'event', device_key, time, name, value_bool, value_num, value_text"
            " FROM new"
        )
        ev = cur.rowcount
    if batch.windows:
        await _copy(conn, "s_win", copy_binary.windows(batch.windows))
        # Every newly stored window is announced to the live fall detector (kind 'acc').
        cur = await conn.execute(
            "WITH new AS ("
            " INSERT INTO acc_windows (time, device_key, t_offset, acc_x, acc_y, acc_z)"
            " SELECT t, k, o, x, y, z FROM s_win"
            " ON CONFLICT DO NOTHING RETURNING time, device_key)"
            " INSERT INTO stream_outbox (kind, device_key, time, name)"
            " SELECT 'acc', device_key, time, 'acc' FROM new"
        )
        win = cur.rowcount
    if batch.statuses or batch.last_seen or batch.dropped:
        # device_status rows are shared by concurrent batches (this worker's pipeline, other
        # workers): taking them one transaction at a time, in commit order, cannot deadlock.
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('ingest:device_status', 0))"
        )
    if batch.statuses:
        await _statuses(conn, batch.statuses)
    if batch.last_seen:
        keys = list(batch.last_seen)
        await conn.execute(
            "INSERT INTO device_status (device_key, online, reported_at, last_seen_at) "
            "SELECT k, true, '-infinity'::timestamptz, to_timestamp(t) FROM unnest(%s::int[], %s::float8[])"
            " AS u(k, t) ON CONFLICT (device_key) DO UPDATE SET last_seen_at = GREATEST("
            "device_status.last_seen_at, EXCLUDED.last_seen_at)",
            (keys, [batch.last_seen[k] for k in keys]),
        )
    if batch.dropped:
        keys = sorted(batch.dropped)
        await conn.execute(
            "INSERT INTO device_status (device_key, online, reported_at, dropped_messages,"
            " dropped_at) SELECT k, true, '-infinity'::timestamptz, n, now()"
            " FROM unnest(%s::int[], %s::int8[]) AS u(k, n) ON CONFLICT (device_key) DO UPDATE"
            " SET dropped_messages = device_status.dropped_messages + EXCLUDED.dropped_messages,"
            " dropped_at = now()",
            (keys, [batch.dropped[k] for k in keys]),
        )
    if batch.dead:
        await _dead_letters(conn, batch.dead)
    if ev or win:
        await conn.execute(f"NOTIFY {OUTBOX_CHANNEL}")
    stored = len(batch.telemetry) + len(batch.events) + len(batch.windows)
    return WriteResult(tel, ev, win, stored - tel - ev - win, len(batch.dead))


async def _dead_letters(conn: Conn, dead: Sequence[DeadLetter]) -> None:
    # One row per distinct message (digest); a repeat only counts up. Sorted by digest so two
    # workers never wait on each other's rows in opposite orders.
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO dead_letters (digest, topic, payload, reason, detail) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (digest) DO UPDATE SET "
            "times_seen = dead_letters.times_seen + 1, last_seen_at = now()",
            [
                (d.digest, d.topic, d.payload, d.reason.value, d.detail)
                for d in sorted(dead, key=lambda d: d.digest)
            ],
        )


_STATUSES_SQL = """
WITH s AS (
  SELECT * FROM unnest(%s::int[], %s::bool[], %s::float8[], %s::text[], %s::float8[])
    AS u(k, online, battery, fw, at)),
old AS (SELECT d.device_key, d.online FROM device_status d JOIN s ON s.k = d.device_key),
up AS (
  INSERT INTO device_status (device_key, online, battery, fw, reported_at)
  SELECT k, online, battery, fw, to_timestamp(at) FROM s
  ON CONFLICT (device_key) DO UPDATE SET online = EXCLUDED.online,
    battery = COALESCE(EXCLUDED.battery, device_status.battery),
    fw = COALESCE(EXCLUDED.fw, device_status.fw), reported_at = EXCLUDED.reported_at
  WHERE device_status.reported_at <= EXCLUDED.reported_at
  RETURNING device_key, online)
INSERT INTO stream_outbox (kind, device_key, time, name, value_bool)
SELECT 'status', up.device_key, to_timestamp(s.at), 'online', up.online
FROM up JOIN s ON s.k = up.device_key LEFT JOIN old ON old.device_key = up.device_key
WHERE old.online IS DISTINCT FROM up.online
"""


async def _statuses(conn: Conn, statuses: Sequence[StatusRow]) -> None:
    """The newest status per device in one statement; a device's older statuses of the same
    batch (rare: a flapping connection) go first, one by one, so no change of ``online`` is
    missed by the detectors."""
    newest: dict[int, StatusRow] = {}
    for st in sorted(statuses, key=lambda s: s.reported_at):
        if st.device_key in newest:
            await _upsert_status(conn, newest[st.device_key])
        newest[st.device_key] = st
    rows = sorted(newest.values(), key=lambda s: s.device_key)
    await conn.execute(
        _STATUSES_SQL,
        (
            [r.device_key for r in rows],
            [r.online for r in rows],
            [r.battery for r in rows],
            [r.fw for r in rows],
            [r.reported_at for r in rows],
        ),
    )


async def _upsert_status(conn: Conn, st: StatusRow) -> None:
    """Keep the newest status; a change of ``online`` also goes to the detectors."""
    cur = await conn.execute(
        "WITH old AS (SELECT online FROM device_status WHERE device_key = %(k)s), "
        "up AS (INSERT INTO device_status (device_key, online, battery, fw, reported_at) "
        " VALUES (%(k)s, %(online)s, %(battery)s, %(fw)s, to_timestamp(%(at)s)) "
        " ON CONFLICT (device_key) DO UPDATE SET online = EXCLUDED.online, "
        " battery = COALESCE(EXCLUDED.battery, device_status.battery), "
        " fw = COALESCE(EXCLUDED.fw, device_status.fw), reported_at = EXCLUDED.reported_at "
        " WHERE device_status.reported_at <= EXCLUDED.reported_at RETURNING online) "
        "SELECT (SELECT online FROM old) AS was, (SELECT online FROM up) AS now_online",
        {
            "k": st.device_key,
            "online": st.online,
            "battery": st.battery,
            "fw": st.fw,
            "at": st.reported_at,
        },
    )
    row = await cur.fetchone()
    if row is not None and row["now_online"] is not None and row["was"] != row["now_online"]:
        await conn.execute(
            "INSERT INTO stream_outbox (kind, device_key, time, name, value_bool) "
            "VALUES ('status', %s, to_timestamp(%s), 'online', %s)",
            (st.device_key, st.reported_at, st.online),
        )
