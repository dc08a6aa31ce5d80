"""The ingest worker: MQTT batches in, one transaction per batch, acknowledgements after commit."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from datetime import UTC, datetime

import psycopg

from devices.backoff import Backoff
from devices.db import AsyncPool
from devices.migrate import drop_old_chunks
from devices.registry import DeviceRef, device_refs
from devices.settings import Settings
from devices.wire import Reason
from ingest import metrics
from ingest.decode import DeadLetter, Decoded, Limits, RawMessage, decode, is_life_safety
from ingest.mqtt_source import MqttSource
from ingest.ratelimit import TokenBuckets
from ingest.writer import Batch, WriteResult, write_batch

log = logging.getLogger(__name__)


class DeviceCache:
    """device_id -> DeviceRef, reloaded when an unknown id shows up (at most every few seconds)."""

    def __init__(self, refresh_every_s: float = 2.0) -> None:
        self.refs: dict[str, DeviceRef] = {}
        self._loaded_at = float("-inf")
        self._every = refresh_every_s

    async def ensure(self, pool: AsyncPool, messages: list[RawMessage], now: float) -> None:
        unknown = any(_device_id(m.topic) not in self.refs for m in messages)
        if unknown and now - self._loaded_at >= self._every:
            async with pool.connection() as conn:
                self.refs = await device_refs(conn)
            self._loaded_at = now


class LastSeenThrottle:
    """Refresh a device's ``last_seen_at`` only when it moved ``resolution_s`` past what this
    worker last committed; marked after commit, so a failed batch is written in full again."""

    def __init__(self, resolution_s: float) -> None:
        self.resolution_s = resolution_s
        self._written: dict[int, float] = {}

    def due(self, last_seen: dict[int, float]) -> dict[int, float]:
        written, res = self._written, self.resolution_s
        return {k: t for k, t in last_seen.items() if t >= written.get(k, float("-inf")) + res}

    def mark(self, committed: dict[int, float]) -> None:
        self._written.update(committed)


_DEVICE_OF_TOPIC: dict[str, str] = {}


def _device_id(topic: str) -> str:
    """The topic's device id, memoised (a device repeats its few topics)."""
    try:
        return _DEVICE_OF_TOPIC[topic]
    except KeyError:
        pass
    parts = topic.split("/")
    device = parts[3] if len(parts) > 3 else ""
    if len(_DEVICE_OF_TOPIC) >= 100_000:
        _DEVICE_OF_TOPIC.clear()
    _DEVICE_OF_TOPIC[topic] = device
    return device


def decode_all(
    messages: list[RawMessage],
    refs: dict[str, DeviceRef],
    limits: Limits,
    buckets: TokenBuckets | None = None,
    now: float = 0.0,
) -> list[Decoded | DeadLetter]:
    """Decode every message; the rate limit applies after decoding, to anything but a
    life-safety event (sos, fall, smoke), which always passes and takes no token. A message
    over the limit becomes a ``rate_limited`` dead letter carrying its device (counted per
    device in ``device_status.dropped_messages``)."""
    out: list[Decoded | DeadLetter] = []
    dropped = late = 0
    for m in messages:
        item = decode(m, refs, limits)
        if isinstance(item, Decoded):
            if (
                buckets is not None
                and not (item.events and is_life_safety(item))
                and not buckets.allow(_device_id(m.topic), now)
            ):
                dropped += 1
                item = DeadLetter(
                    m.topic,
                    m.payload,
                    Reason.RATE_LIMITED,
                    f"device over {buckets.rate:g} msg/s (burst {buckets.burst:g})",
                    item.device_key,
                )
            elif 0 < item.last_time < m.received_at - limits.late_after_s:
                late += 1  # stored all the same: a device that was offline sends its backlog
        out.append(item)
    metrics.LATE.inc(late)
    return out


async def store(
    pool: AsyncPool,
    items: list[Decoded | DeadLetter],
    *,
    stop: asyncio.Event,
    seen: LastSeenThrottle | None = None,
) -> WriteResult | None:
    """Commit the batch, retrying while the database is unreachable; a batch the database
    refuses for another reason is written message by message so one bad row cannot block the
    rest. Returns None only if asked to stop before the batch was committed."""
    backoff = Backoff()
    while True:
        try:
            return await _commit(pool, items, seen)
        except psycopg.OperationalError as exc:
            metrics.DB_RETRIES.inc()
            delay = backoff.next_delay()
            log.warning("database unavailable (%s); retrying batch in %.1f s", exc, delay)
        except psycopg.DatabaseError:
            log.exception("batch refused by the database; isolating messages")
            return await _commit_one_by_one(pool, items)
        try:
            await asyncio.wait_for(stop.wait(), timeout=delay)
            return None
        except TimeoutError:
            continue


async def _commit(
    pool: AsyncPool, items: list[Decoded | DeadLetter], seen: LastSeenThrottle | None = None
) -> WriteResult:
    batch = Batch()
    for item in items:
        batch.add(item)
    if seen is not None:
        batch.last_seen = seen.due(batch.last_seen)
    async with pool.connection() as conn:
        async with conn.transaction():
            result = await write_batch(conn, batch)
        if seen is not None:
            seen.mark(batch.last_seen)
        return result


async def _commit_one_by_one(pool: AsyncPool, items: list[Decoded | DeadLetter]) -> WriteResult:
    totals = [0, 0, 0, 0, 0]
    for item in items:
        try:
            res = await _commit(pool, [item])
        except psycopg.OperationalError:
            raise
        except psycopg.DatabaseError as exc:
            # Only a Decoded can fail here; keep it, with the reason, instead of losing it.
            detail = f"database refused the rows: {exc}"
            res = await _commit(
                pool,
                [
                    DeadLetter(
                        f"device-key/{getattr(item, 'device_key', '?')}",
                        repr(item).encode(),
                        Reason.BAD_VALUE,
                        detail,
                    )
                ],
            )
        for i, v in enumerate((res.telemetry, res.events, res.windows, res.duplicates, res.dead)):
            totals[i] += v
    return WriteResult(*totals)


async def consume(
    settings: Settings, pool: AsyncPool, source: MqttSource, stop: asyncio.Event
) -> None:
    cache = DeviceCache()
    seen = LastSeenThrottle(settings.ingest_last_seen_resolution_s)
    limits = Limits(
        settings.max_payload_bytes, settings.max_future_skew_s, settings.ingest_late_after_s
    )
    buckets = TokenBuckets(settings.ingest_device_rate, settings.ingest_device_burst)
    wait_s = settings.ingest_batch_wait_ms / 1000
    # A pipeline: while batches are written (each on its own connection, up to
    # ingest_writes_in_flight at once), the next one is gathered and decoded. Commits may end
    # in any order, but acknowledgements leave in arrival order: a batch is acknowledged only
    # once it and every batch before it are committed.
    depth = max(1, settings.ingest_writes_in_flight)
    pending: deque[_Pending] = deque()
    while not stop.is_set():
        idle_s = 0.5 if not pending else wait_s  # a written batch is acked promptly
        messages = await source.take_batch(settings.ingest_batch_max, wait_s, idle_s)
        items: list[Decoded | DeadLetter] = []
        if messages:
            metrics.RECEIVED.inc(len(messages))
            await cache.ensure(pool, messages, time.monotonic())
            started = time.perf_counter()
            # In a thread, so the batches being written keep making their round trips.
            items = await asyncio.to_thread(
                decode_all, messages, cache.refs, limits, buckets, time.monotonic()
            )
            metrics.DECODE_SECONDS.observe(time.perf_counter() - started)
        while pending and (pending[0].task.done() or len(pending) >= depth or not messages):
            if not await pending.popleft().finish(source):
                await _abandon(pending)
                return  # not committed, not acknowledged: the broker will deliver them again
        if messages:
            pending.append(_Pending(pool, items, messages, stop, seen))
    while pending:
        if not await pending.popleft().finish(source):
            await _abandon(pending)
            return


async def _abandon(pending: deque[_Pending]) -> None:
    """Wait for the writes after an unfinished one, and acknowledge none of them (the broker
    redelivers them; whatever did commit is dropped as a duplicate)."""
    while pending:
        await pending.popleft().task


class _Pending:
    """One batch being written; acknowledged by :meth:`finish` once committed."""

    def __init__(
        self,
        pool: AsyncPool,
        items: list[Decoded | DeadLetter],
        messages: list[RawMessage],
        stop: asyncio.Event,
        seen: LastSeenThrottle,
    ) -> None:
        self.items = items
        self.messages = messages
        self.seconds = 0.0
        self.task = asyncio.create_task(self._write(pool, items, stop, seen))

    async def _write(
        self,
        pool: AsyncPool,
        items: list[Decoded | DeadLetter],
        stop: asyncio.Event,
        seen: LastSeenThrottle,
    ) -> WriteResult | None:
        started = time.perf_counter()
        if not items:
            return WriteResult(0, 0, 0, 0, 0)
        result = await store(pool, items, stop=stop, seen=seen)
        self.seconds = time.perf_counter() - started
        return result

    async def finish(self, source: MqttSource) -> bool:
        result = await self.task
        if result is None:
            return False
        source.ack(self.messages)
        _record(result, self.items, self.messages, self.seconds)
        metrics.BACKLOG.set(source.backlog())
        return True


def _record(
    result: WriteResult,
    items: list[Decoded | DeadLetter],
    messages: list[RawMessage],
    seconds: float,
) -> None:
    metrics.COMMIT_SECONDS.observe(seconds)
    metrics.BATCH_SIZE.observe(len(messages))
    metrics.STORED.labels("telemetry").inc(result.telemetry)
    metrics.STORED.labels("events").inc(result.events)
    metrics.STORED.labels("acc_windows").inc(result.windows)
    metrics.DUPLICATES.inc(result.duplicates)
    committed = time.time()
    for item in items:
        if isinstance(item, DeadLetter):
            metrics.REJECTED.labels(item.reason.value).inc()
        elif 0 < committed - item.first_time < 60:
            metrics.READING_TO_COMMIT.observe(committed - item.first_time)
    # Consumer lag: how long the oldest message of the batch waited from arrival to commit.
    metrics.LAG.set(time.time() - messages[0].received_at)


async def retention(
    settings: Settings, pool: AsyncPool, *, policies: bool, stop: asyncio.Event
) -> None:
    """With the Apache edition of TimescaleDB the application drops old chunks itself."""
    while not policies and not stop.is_set():
        async with pool.connection() as conn, conn.transaction():
            dropped = await drop_old_chunks(
                conn, now=datetime.now(UTC), retention_days=settings.telemetry_retention_days
            )
        if dropped:
            log.info("retention dropped %d chunks", dropped)
        try:
            await asyncio.wait_for(stop.wait(), timeout=settings.retention_check_interval_s)
        except TimeoutError:
            continue
