"""The notify worker: enqueue what families should hear about, deliver due rows, retry with
backoff, fall back to the next channel. One cycle is a pure function of the database and
``now``; the loop only supplies the clock and waits for work."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from alerts.notify.channels import Channel, DeliveryFailed, Outgoing
from alerts.notify.outbox import claim_due, record_attempt, update_row
from alerts.notify.policy import (
    ChannelKind,
    GiveUp,
    Retry,
    after_delivery,
    after_failure,
    targets_for,
    undelivered_jump,
)
from alerts.notify.stations import enqueue_site_alerts, enqueue_site_late_replies
from alerts.notify.store import (
    NotifyConfig,
    enqueue_alerts,
    enqueue_order_changes,
    enqueue_summaries,
)
from devices.db import AsyncPool
from devices.domain import Colour
from devices.loops import database_loop
from devices.registry import Conn

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Cycle:
    enqueued: int
    claimed: int
    delivered: int
    failed_attempts: int
    gave_up: int


# Another room's messages for the outbox (the care programme's visit reminders): given by
# ``alerts.__main__`` so that notifications import nothing of the rooms that use them.
Enqueuer = Callable[[Conn, datetime], Awaitable[int]]


async def enqueue(
    pool: AsyncPool, *, now: datetime, config: NotifyConfig, extra: Sequence[Enqueuer] = ()
) -> int:
    async with pool.connection() as conn, conn.transaction():
        added = await enqueue_alerts(conn, now=now, config=config)
        added += await enqueue_order_changes(conn, now=now, config=config)
        added += await enqueue_summaries(conn, now=now, config=config)
        added += await enqueue_site_alerts(conn, now=now, config=config)
        added += await enqueue_site_late_replies(conn, now=now, config=config)
        for more in extra:
            added += await more(conn, now)
    return added


CLOSED = frozenset({"resolved", "cancelled"})


def _outgoing(row: Mapping[str, Any], address: str, now: datetime) -> Outgoing:
    return Outgoing(
        delivery_id=int(row["id"]),
        address=address,
        subject=row["subject"],
        text=row["body"],
        payload={**row["payload"], "notification_id": int(row["id"])},
        secret=row["secret"] or "",
        timestamp=int(now.timestamp()),
    )


def _no_call_needed(row: Mapping[str, Any]) -> str | None:
    """A red text already delivered and now due for its voice call: is the call still
    needed? Not once the family read it, nor once the case is closed."""
    if row["delivered_at"] is None:
        return None
    if row["read_at"] is not None:
        return f"read at {row['read_at'].isoformat()}; no call"
    if row["order_state"] in CLOSED:
        return f"case {row['order_state']} before the call; no call"
    return None


def _on_success(
    row: Mapping[str, Any],
    *,
    kind: str,
    kinds: list[str],
    index: int,
    config: NotifyConfig,
    now: datetime,
    attempts: int,
) -> tuple[str, dict[str, object]]:
    base: dict[str, object] = {
        "attempts": attempts,
        "channel_attempts": int(row["channel_attempts"]) + 1,
    }
    if row["delivered_at"] is not None:  # the voice call after an unread text
        via = f"{row['delivered_via']}+{kind}"
        return "delivered", {**base, "state": "delivered", "delivered_via": via, "reason": ""}
    wait = after_delivery(
        now,
        colour=Colour(row["colour"]),
        kinds=kinds,
        channel_index=index,
        voice_after=config.voice_after,
    )
    done = {"delivered_at": now, "delivered_via": kind}
    if wait is None:
        return "delivered", {**base, **done, "state": "delivered"}
    return "delivered", {
        **base,
        **done,
        "next_attempt_at": wait.at,
        "channel_index": wait.channel_index,
        "channel_attempts": 0,
        "reason": f"delivered by {kind}; a voice call follows at {wait.at.isoformat()} unless read",
    }


def _on_failure(
    row: Mapping[str, Any],
    *,
    kinds: list[str],
    index: int,
    config: NotifyConfig,
    now: datetime,
    attempts: int,
    receipt: str,
    rng: random.Random | None,
) -> tuple[str, dict[str, object]]:
    step: Retry | GiveUp | None = None
    if row["delivered_at"] is None and index < len(kinds):
        step = undelivered_jump(
            now,
            colour=Colour(row["colour"]),
            created_at=row["created_at"],
            kinds=kinds,
            channel_index=index,
            voice_after=config.voice_after,
        )
    if step is None:
        step = after_failure(
            now,
            channel_index=index,
            channel_attempts=int(row["channel_attempts"]) + 1,
            channels=len(kinds),
            max_attempts=config.max_attempts,
            initial_s=config.backoff_initial_s,
            maximum_s=config.backoff_max_s,
            rng=rng,
        )
    if isinstance(step, GiveUp):
        if row["delivered_at"] is not None:  # the text got there; only the call did not
            reason = f"delivered by {row['delivered_via']}; the voice call failed: {receipt}"
            return "failed", {"state": "delivered", "reason": reason[:1000], "attempts": attempts}
        log.warning(
            "notification %s failed: %s (%s)",
            row["id"],
            step.reason,
            receipt,
            extra={"notification_id": row["id"], "reason": step.reason},
        )
        return "failed", {"state": "failed", "reason": step.reason, "attempts": attempts}
    return "retry", {
        "next_attempt_at": step.at,
        "channel_index": step.channel_index,
        "channel_attempts": step.channel_attempts,
        "attempts": attempts,
        "reason": receipt[:1000],
    }


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
    targets = targets_for(
        list(row["channels"] or []), colour=Colour(row["colour"]), site_id=row["site_id"]
    )
    kinds = [t["kind"] for t in targets]
    index = int(row["channel_index"])
    outbox_id = int(row["id"])
    skip = _no_call_needed(row)
    if skip is not None:
        async with pool.connection() as conn, conn.transaction():
            await update_row(
                conn, outbox_id=outbox_id, fields={"state": "delivered", "reason": skip}
            )
        return "delivered"
    ok, receipt, kind, address, took = False, "no channel left", "none", "", 0
    if index < len(targets):
        kind, address = targets[index]["kind"], targets[index]["address"]
        started = time.monotonic()
        channel = next((c for k, c in channels.items() if k.value == kind), None)
        if channel is None:
            receipt = f"channel {kind} is not enabled on this installation"
        else:
            try:
                receipt, ok = await channel.send(_outgoing(row, address, now)), True
            except DeliveryFailed as exc:
                receipt = exc.receipt
            except Exception as exc:  # a channel's bug is this delivery's failure, no one else's
                log.exception("notification %s: channel %s raised", outbox_id, kind)
                receipt = f"internal error in channel {kind}: {type(exc).__name__}"
        took = int((time.monotonic() - started) * 1000)
    attempts = int(row["attempts"]) + 1
    if ok:
        result, fields = _on_success(
            row, kind=kind, kinds=kinds, index=index, config=config, now=now, attempts=attempts
        )
    else:
        result, fields = _on_failure(
            row,
            kinds=kinds,
            index=index,
            config=config,
            now=now,
            attempts=attempts,
            receipt=receipt,
            rng=rng,
        )
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
        await update_row(conn, outbox_id=outbox_id, fields=fields)
    return result


async def run_cycle(
    pool: AsyncPool,
    *,
    channels: Mapping[ChannelKind, Channel],
    config: NotifyConfig,
    now: datetime,
    rng: random.Random | None = None,
    extra: Sequence[Enqueuer] = (),
) -> Cycle:
    enqueued = await enqueue(pool, now=now, config=config, extra=extra)
    async with pool.connection() as conn, conn.transaction():
        due = await claim_due(conn, now=now, config=config)
    # One recipient's rows go one after another, oldest first (a family hears "accepted"
    # before "resolved", which concurrent sends could swap); recipients run concurrently.
    queues: dict[tuple[object, object], list[Mapping[str, Any]]] = {}
    for row in due:
        queues.setdefault((row["user_id"], row["site_id"]), []).append(row)

    async def in_order(rows: list[Mapping[str, Any]]) -> list[str]:
        return [
            await _deliver_one(pool, row, channels=channels, config=config, now=now, rng=rng)
            for row in rows
        ]

    results = [r for rs in await asyncio.gather(*map(in_order, queues.values())) for r in rs]
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
    extra: Sequence[Enqueuer] = (),
) -> None:
    """Run cycles until stopped; an order change (NOTIFY dispatch) wakes it early."""

    async def one_round() -> float:
        cycle = await run_cycle(
            pool, channels=channels, config=config, now=datetime.now(UTC), extra=extra
        )
        if cycle.delivered or cycle.failed_attempts:
            log.info("notifications: %s", cycle)
        more = cycle.enqueued >= config.batch or cycle.claimed >= config.batch
        return 0.0 if more else poll_s

    await database_loop("notify", one_round, stop=stop, wake=wake)
