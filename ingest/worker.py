"""The ingest worker: MQTT batches in, one transaction per batch, acknowledgements after commit."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from psycopg_pool import PoolClosed

from devices.db import AsyncPool
from devices.loops import Outage
from devices.migrate import drop_old_chunks
from devices.registry import DeviceRef
from devices.settings import Settings
from devices.wire import Reason
from ingest import metrics
from ingest.decode import DeadLetter, Decoded, Limits, RawMessage, decode, is_life_safety
from ingest.devicecache import DeviceCache, device_of_topic
from ingest.mqtt_source import MqttSource
from ingest.ratelimit import BacklogPacer, TokenBuckets
from ingest.writer import Batch, WriteResult, write_batch

log = logging.getLogger(__name__)


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
    device = device_of_topic(topic)
    if len(_DEVICE_OF_TOPIC) >= 100_000:
        _DEVICE_OF_TOPIC.clear()
    _DEVICE_OF_TOPIC[topic] = device
    return device


Held = tuple[RawMessage, Decoded]


def decode_all(
    messages: list[RawMessage],
    refs: dict[str, DeviceRef],
    limits: Limits,
    buckets: TokenBuckets | None = None,
    now: float = 0.0,
    pacer: BacklogPacer[Held] | None = None,
) -> tuple[list[Decoded | DeadLetter], list[RawMessage]]:
    """Decode every message; returns the items to commit and the messages to acknowledge once
    they are. The rate limit applies after decoding, to anything but a life-safety event (sos,
    fall, smoke), which always passes and takes no token. A fresh message over the limit
    becomes a ``rate_limited`` dead letter carrying its device (counted per device in
    ``device_status.dropped_messages``). A backlog message (all its readings older than
    ``late_after_s``) goes to the ``pacer`` instead: stored now, or held (neither stored nor
    acknowledged yet) and handed back by a later call, or, past the pacer's bound, dropped
    like a flood. Held messages due again come first."""
    out: list[Decoded | DeadLetter] = []
    acks: list[RawMessage] = []
    dropped = late = 0
    if pacer is not None:
        for m, again in pacer.release(now):
            out.append(again)
            acks.append(m)
            late += 1
    for m in messages:
        item: Decoded | DeadLetter = decode(m, refs, limits)
        if isinstance(item, Decoded):
            backlog = 0 < item.last_time < m.received_at - limits.late_after_s
            verdict: bool | None = True
            if buckets is not None and not (item.events and is_life_safety(item)):
                device = _device_id(m.topic)
                if backlog and pacer is not None:
                    verdict = pacer.offer(device, (m, item), now)
                else:
                    verdict = buckets.allow(device, now)
            if verdict is None:
                continue  # held by the pacer: acknowledged when a later batch commits it
            if not verdict:
                dropped += 1
                item = DeadLetter(
                    m.topic,
                    m.payload,
                    Reason.RATE_LIMITED,
                    f"backlog over the pacer's bound ({pacer.max_held} messages held)"
                    if backlog and pacer is not None
                    else f"device over {buckets.rate:g} msg/s (burst {buckets.burst:g})"
                    if buckets is not None
                    else "over the rate",
                    item.device_key,
                )
            elif backlog:
                late += 1  # stored all the same: a device that was offline sends its backlog
        out.append(item)
        acks.append(m)
    metrics.LATE.inc(late)
    return out, acks


async def store(
    pool: AsyncPool,
    items: list[Decoded | DeadLetter],
    *,
    stop: asyncio.Event,
    seen: LastSeenThrottle | None = None,
    status_apart: bool = False,
) -> WriteResult | None:
    """Commit the batch, retrying while the database is unreachable; a batch the database
    refuses for another reason is written message by message so one bad row cannot block the
    rest. Returns None only if asked to stop before the batch was committed. With
    ``status_apart`` the rows are committed first and the ``device_status`` updates (which
    wait for the lock that orders every batch's status writes) in a second transaction, so a
    life-safety event never waits behind a telemetry batch's commit."""
    outage = Outage("ingest batch")
    while True:
        try:
            written = await _commit(pool, items, seen, status_apart=status_apart)
            outage.ok()
            return written
        except PoolClosed:
            raise  # the process is going down: nothing to retry on (the broker redelivers)
        except psycopg.OperationalError as exc:
            metrics.DB_RETRIES.inc()
            delay = outage.failed(exc)
        except psycopg.DatabaseError:
            log.exception("batch refused by the database; isolating messages")
            return await _commit_one_by_one(pool, items)
        try:
            await asyncio.wait_for(stop.wait(), timeout=delay)
            return None
        except TimeoutError:
            continue


async def _commit(
    pool: AsyncPool,
    items: list[Decoded | DeadLetter],
    seen: LastSeenThrottle | None = None,
    *,
    status_apart: bool = False,
) -> WriteResult:
    batch = Batch()
    for item in items:
        batch.add(item)
    if seen is not None:
        batch.last_seen = seen.due(batch.last_seen)
    later: Batch | None = None
    if status_apart and (batch.statuses or batch.last_seen or batch.dropped):
        later = Batch(statuses=batch.statuses, last_seen=batch.last_seen, dropped=batch.dropped)
        batch.statuses, batch.last_seen, batch.dropped = [], {}, {}
    async with pool.connection() as conn:
        async with conn.transaction():
            result = await write_batch(conn, batch)
        if later is not None:
            # A crash between the two commits redelivers the batch: its rows are then
            # duplicates, and these updates are written again.
            async with conn.transaction():
                await write_batch(conn, later)
            batch = later
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


@dataclass(frozen=True, slots=True)
class Path:
    """How one of the worker's paths batches: the telemetry path (large batches, decoding in a
    thread, several writes in flight) or the life-safety lane (what is there, at once, decoded
    on the loop, its rows committed before any device_status update)."""

    name: str
    batch_max: int
    wait_s: float
    depth: int
    decode_in_thread: bool
    status_apart: bool

    @classmethod
    def telemetry(cls, settings: Settings) -> Path:
        return cls(
            "telemetry",
            settings.ingest_batch_max,
            settings.ingest_batch_wait_ms / 1000,
            max(1, settings.ingest_writes_in_flight),
            decode_in_thread=True,
            status_apart=False,
        )

    @classmethod
    def life_safety(cls, settings: Settings) -> Path:
        # Two writes in flight: while one waits for the device_status lock (its rows already
        # committed), the next SOS is committed on the other connection.
        return cls("life-safety", 500, 0.0, 2, decode_in_thread=False, status_apart=True)


async def consume(
    settings: Settings,
    pool: AsyncPool,
    source: MqttSource,
    stop: asyncio.Event,
    *,
    cache: DeviceCache | None = None,
    path: Path | None = None,
) -> None:
    cache = cache if cache is not None else DeviceCache()
    path = path if path is not None else Path.telemetry(settings)
    seen = LastSeenThrottle(settings.ingest_last_seen_resolution_s)
    limits = Limits(
        settings.max_payload_bytes, settings.max_future_skew_s, settings.ingest_late_after_s
    )
    buckets = TokenBuckets(settings.ingest_device_rate, settings.ingest_device_burst)
    pacer: BacklogPacer[Held] | None = None
    if settings.ingest_device_rate > 0:
        # Held messages hold slots of the broker's Receive Maximum: keep most of it flowing.
        held_max = min(settings.ingest_backlog_max, settings.mqtt_receive_maximum // 2)
        pacer = BacklogPacer(
            TokenBuckets(settings.ingest_backlog_rate, settings.ingest_device_burst), held_max
        )
    wait_s = path.wait_s
    # A pipeline: while batches are written (each on its own connection, up to path.depth at
    # once), the next one is gathered and decoded. Commits may end in any order, but
    # acknowledgements leave in arrival order: a batch is acknowledged only once it and every
    # batch before it are committed (messages held by the backlog pacer are the exception:
    # acknowledged with the later batch that commits them; brokers match PUBACKs by packet id).
    depth = path.depth
    pending: deque[_Pending] = deque()
    try:
        while not stop.is_set():
            held = pacer is not None and pacer.held > 0
            # a written batch is acked promptly; held backlog is released at its pace
            idle_s = 0.05 if held else 0.5 if not pending else max(wait_s, 0.02)
            messages = await source.take_batch(path.batch_max, wait_s, idle_s)
            items: list[Decoded | DeadLetter] = []
            acks: list[RawMessage] = []
            if messages or held:
                metrics.RECEIVED.inc(len(messages))
                if not await _ensure_devices(cache, pool, messages, stop):
                    break  # stopped during an outage: nothing of this batch is acknowledged
                started = time.perf_counter()
                args = (messages, cache.refs, limits, buckets, time.monotonic(), pacer)
                if path.decode_in_thread:
                    # In a thread, so the batches being written keep making their round trips.
                    items, acks = await asyncio.to_thread(decode_all, *args)
                else:
                    items, acks = decode_all(*args)
                metrics.DECODE_SECONDS.observe(time.perf_counter() - started)
                metrics.HELD.labels(path.name).set(pacer.held if pacer is not None else 0)
            if pending and not acks and not pending[0].task.done():
                # Idle: acknowledge the oldest write as soon as it commits, but never block on it
                # (a lane write waiting for the status lock must not keep the next SOS waiting).
                await asyncio.wait([pending[0].task], timeout=0.05)
            while pending and (pending[0].task.done() or len(pending) >= depth):
                if not await pending.popleft().finish(source):
                    await _abandon(pending)
                    return  # not committed, not acknowledged: the broker will deliver them again
            if acks:
                pending.append(_Pending(pool, items, acks, stop, seen, path.status_apart))
        while pending:
            if not await pending.popleft().finish(source):
                await _abandon(pending)
                return

    except BaseException:
        # the consumer failed or was cancelled: its writes in flight die with it (nothing they
        # commit is acknowledged; the broker redelivers, and a repeat is dropped as one)
        for unfinished in pending:
            unfinished.task.cancel()
        raise


async def _ensure_devices(
    cache: DeviceCache, pool: AsyncPool, messages: list[RawMessage], stop: asyncio.Event
) -> bool:
    """Load the devices a batch names, waiting out a database outage like a batch's commit
    (a reload that failed once used to end the consumer); False if stopped meanwhile."""
    outage = Outage("ingest device cache")
    while True:
        try:
            await cache.ensure(pool, map(_device_id_of, messages), time.monotonic())
            outage.ok()
            return True
        except PoolClosed:
            raise
        except psycopg.OperationalError as exc:
            delay = outage.failed(exc)
        try:
            await asyncio.wait_for(stop.wait(), timeout=delay)
            return False
        except TimeoutError:
            continue


def _device_id_of(m: RawMessage) -> str:
    return _device_id(m.topic)


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
        status_apart: bool,
    ) -> None:
        self.items = items
        self.messages = messages
        self.seconds = 0.0
        self.task = asyncio.create_task(self._write(pool, items, stop, seen, status_apart))

    async def _write(
        self,
        pool: AsyncPool,
        items: list[Decoded | DeadLetter],
        stop: asyncio.Event,
        seen: LastSeenThrottle,
        status_apart: bool,
    ) -> WriteResult | None:
        started = time.perf_counter()
        if not items:
            return WriteResult(0, 0, 0, 0, 0)
        result = await store(pool, items, stop=stop, seen=seen, status_apart=status_apart)
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
