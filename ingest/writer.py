"""Write one batch of decoded messages in one transaction.

Every insert is idempotent on the row's natural key (device, name, time), so a message the
broker redelivers after a crash is stored once. Events that were really new are copied to
``stream_outbox`` for the detectors in the same transaction, and ``NOTIFY`` wakes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from devices.registry import Conn
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
    messages: int = 0

    def add(self, item: Decoded | DeadLetter) -> None:
        self.messages += 1
        if isinstance(item, DeadLetter):
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


def _cols(rows: Sequence[object], *names: str) -> list[list[object]]:
    return [[getattr(r, n) for r in rows] for n in names]


async def write_batch(conn: Conn, batch: Batch) -> WriteResult:
    """Insert the batch; the caller commits (and only then acknowledges the messages)."""
    tel = ev = win = 0
    if batch.telemetry:
        cur = await conn.execute(
            "INSERT INTO telemetry (time, device_key, metric, value) "
            "SELECT to_timestamp(t), k, m, v FROM unnest(%s::float8[], %s::int[], %s::text[], "
            "%s::float8[]) AS u(t, k, m, v) ON CONFLICT DO NOTHING",
            _cols(batch.telemetry, "time", "device_key", "metric", "value"),
        )
        tel = cur.rowcount
    if batch.events:
        cur = await conn.execute(
            "WITH new AS ("
            " INSERT INTO events (time, device_key, name, value_bool, value_num, value_text)"
            " SELECT to_timestamp(t), k, n, b, v, s FROM unnest(%s::float8[], %s::int[],"
            " %s::text[], %s::bool[], %s::float8[], %s::text[]) AS u(t, k, n, b, v, s)"
            " ON CONFLICT DO NOTHING RETURNING *)"
            " INSERT INTO stream_outbox (kind, device_key, time, name, value_bool, value_num,"
            " value_text) SELECT 'event', device_key, time, name, value_bool, value_num, value_text"
            " FROM new",
            _cols(
                batch.events, "time", "device_key", "name", "value_bool", "value_num", "value_text"
            ),
        )
        ev = cur.rowcount
    for w in batch.windows:
        cur = await conn.execute(  # a new window also goes to the detectors (outbox 'acc')
            "WITH new AS (INSERT INTO acc_windows (time, device_key, t_offset, acc_x, acc_y, acc_z)"
            " VALUES (to_timestamp(%s), %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
            " RETURNING time, device_key) INSERT INTO stream_outbox (kind, device_key, time, name)"
            " SELECT 'acc', device_key, time, 'acc' FROM new",
            (w.time, w.device_key, list(w.t_offset), list(w.acc_x), list(w.acc_y), list(w.acc_z)),
        )
        win += cur.rowcount
    for st in sorted(batch.statuses, key=lambda s: s.reported_at):
        await _upsert_status(conn, st)
    if batch.last_seen:
        keys = list(batch.last_seen)
        await conn.execute(
            "INSERT INTO device_status (device_key, online, reported_at, last_seen_at) "
            "SELECT k, true, '-infinity'::timestamptz, to_timestamp(t) FROM unnest(%s::int[], %s::float8[])"
            " AS u(k, t) ON CONFLICT (device_key) DO UPDATE SET last_seen_at = GREATEST("
            "device_status.last_seen_at, EXCLUDED.last_seen_at)",
            (keys, [batch.last_seen[k] for k in keys]),
        )
    for d in batch.dead:
        await conn.execute(
            "INSERT INTO dead_letters (digest, topic, payload, reason, detail) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (digest) DO UPDATE SET "
            "times_seen = dead_letters.times_seen + 1, last_seen_at = now()",
            (d.digest, d.topic, d.payload, d.reason.value, d.detail),
        )
    if ev or win:
        await conn.execute(f"NOTIFY {OUTBOX_CHANNEL}")
    stored = len(batch.telemetry) + len(batch.events) + len(batch.windows)
    return WriteResult(tel, ev, win, stored - tel - ev - win, len(batch.dead))


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
