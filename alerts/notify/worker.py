"""The notify worker: enqueue what families should hear about, deliver due rows, retry with
backoff, fall back to the next channel. One cycle is a pure function of the database and
``now``; the loop only supplies the clock and waits for work."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from alerts.care.reminders import enqueue_visit_reminders
from alerts.notify.channels import Channel, DeliveryFailed, Outgoing
from alerts.notify.outbox import claim_due, record_attempt, update_row
from alerts.notify.policy import ChannelKind, GiveUp, after_failure
from alerts.notify.store import (
    NotifyConfig,
    enqueue_alerts,
    enqueue_order_changes,
    enqueue_summaries,
)
from devices.backoff import Backoff
from devices.db import AsyncPool

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Cycle:
    enqueued: int
    claimed: int
    delivered: int
    failed_attempts: int
    gave_up: int


async def enqueue(pool: AsyncPool, *, now: datetime, config: NotifyConfig) -> int:
    async with pool.connection() as conn, conn.transaction():
        added = await enqueue_alerts(conn, now=now, config=config)
        added += await enqueue_order_changes(conn, now=now, config=config)
        added += await enqueue_summaries(conn, now=now, config=config)
        added += await enqueue_visit_reminders(conn, now=now)
    return added


async def _deliver_one(
    pool: AsyncPool,
    row: Mapping[str, Any],
    *,
    channels: Mapping[ChannelKind, Channel],
    config: NotifyConfig,
    now: datetime,
    rng: random.Random | None,
) -> str:
    """Try the row's current channel once; returns "delivered", "retry" or "failed"."""
    targets: list[dict[str, str]] = list(row["channels"] or [])
    index = int(row["channel_index"])
    outbox_id = int(row["id"])
    ok, receipt, kind, address, took = False, "no channel left", "none", "", 0
    if index < len(targets):
        kind, address = targets[index]["kind"], targets[index]["address"]
        out = Outgoing(
            delivery_id=outbox_id,
            address=address,
            subject=row["subject"],
            text=row["body"],
            payload={**row["payload"], "notification_id": outbox_id},
            secret=row["secret"] or "",
            timestamp=int(now.timestamp()),
        )
        started = time.monotonic()
        channel = next((c for k, c in channels.items() if k.value == kind), None)
        if channel is None:
            receipt = f"channel {kind} is not enabled on this installation"
        else:
            try:
                receipt, ok = await channel.send(out), True
            except DeliveryFailed as exc:
                receipt = exc.receipt
        took = int((time.monotonic() - started) * 1000)
    attempts = int(row["attempts"]) + 1
    async with pool.connection() as conn, conn.transaction():
        await record_attempt(
            conn,
            outbox_id=outbox_id,
            now=now,
            channel=kind,
            address=address,
            ok=ok,
            receipt=receipt[:1000],
            duration_ms=took,
        )
        if ok:
            await update_row(
                conn,
                outbox_id=outbox_id,
                fields={
                    "state": "delivered",
                    "delivered_at": now,
                    "delivered_via": kind,
                    "attempts": attempts,
                    "channel_attempts": int(row["channel_attempts"]) + 1,
                },
            )
            return "delivered"
        step = after_failure(
            now,
            channel_index=index,
            channel_attempts=int(row["channel_attempts"]) + 1,
            channels=len(targets),
            max_attempts=config.max_attempts,
            initial_s=config.backoff_initial_s,
            maximum_s=config.backoff_max_s,
            rng=rng,
        )
        if isinstance(step, GiveUp):
            await update_row(
                conn,
                outbox_id=outbox_id,
                fields={"state": "failed", "reason": step.reason, "attempts": attempts},
            )
            log.warning("notification %s failed: %s (%s)", outbox_id, step.reason, receipt)
            return "failed"
        await update_row(
            conn,
            outbox_id=outbox_id,
            fields={
                "next_attempt_at": step.at,
                "channel_index": step.channel_index,
                "channel_attempts": step.channel_attempts,
                "attempts": attempts,
                "reason": receipt[:1000],
            },
        )
        return "retry"


async def run_cycle(
    pool: AsyncPool,
    *,
    channels: Mapping[ChannelKind, Channel],
    config: NotifyConfig,
    now: datetime,
    rng: random.Random | None = None,
) -> Cycle:
    enqueued = await enqueue(pool, now=now, config=config)
    async with pool.connection() as conn, conn.transaction():
        due = await claim_due(conn, now=now, config=config)
    results = await asyncio.gather(
        *(
            _deliver_one(pool, row, channels=channels, config=config, now=now, rng=rng)
            for row in due
        )
    )
    return Cycle(
        enqueued,
        len(due),
        results.count("delivered"),
        results.count("retry") + results.count("failed"),
        results.count("failed"),
    )


async def notify_loop(
    pool: AsyncPool,
    *,
    channels: Mapping[ChannelKind, Channel],
    config: NotifyConfig,
    poll_s: float,
    wake: asyncio.Event,
    stop: asyncio.Event,
) -> None:
    """Run cycles until stopped; an order change (NOTIFY dispatch) wakes it early."""
    backoff = Backoff()
    while not stop.is_set():
        try:
            cycle = await run_cycle(pool, channels=channels, config=config, now=datetime.now(UTC))
            backoff.reset()
        except psycopg.OperationalError as exc:
            delay = backoff.next_delay()
            log.warning("database unavailable (%s); retrying in %.1f s", exc, delay)
            await asyncio.sleep(delay)
            continue
        if cycle.delivered or cycle.failed_attempts:
            log.info("notifications: %s", cycle)
        if cycle.enqueued >= config.batch or cycle.claimed >= config.batch:
            continue  # more waiting
        wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=poll_s)
