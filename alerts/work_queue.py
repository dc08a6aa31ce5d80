"""The one shape of a PostgreSQL work queue whose items are judged in the database: claimed
with their rows locked (the queue's own ``FOR UPDATE SKIP LOCKED`` claim, in one transaction:
a crash or an outage before its end leaves every item as it was), each item worked in its own
savepoint so that one that fails rolls back alone, the one that fails kept in the quarantine
(:mod:`alerts.quarantine`) with its error while the others go on, and a retried item's
quarantine entry resolved once it succeeds. A database outage (``psycopg.OperationalError``)
is no item's fault: it propagates, the claim rolls back and the loop (``devices.loops``) waits
it out.

Its queues: the stream outbox (row by row, once a batch failed: ``alerts.detection.worker``),
the detector checks (``alerts.detection.check_queue``) and escalation
(``alerts.dispatch.escalation``). Each keeps its own claim SQL, its own outcome type and what
it does beside the quarantine (a fallback alert, a retry time). The notify outbox and the
device commands take their items otherwise (docs/operations.md says why).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import psycopg
from psycopg.rows import DictRow

from alerts.quarantine import describe, quarantine_item
from devices.registry import Conn

log = logging.getLogger(__name__)

Row = Mapping[str, Any]
R = TypeVar("R", bound=Row)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Queue:
    name: str  # its name in the quarantine (``quarantine.queue``)
    key: str  # the column that names an item
    what: str  # how the logs name an item ("check", "order", ...)
    field: str = ""  # the logs' field for its key (default: ``key``)

    def item_key(self, row: Row) -> str:
        return str(row.get(self.key))


@asynccontextmanager
async def claimed(
    conn: Conn, claim_sql: str, params: Mapping[str, object]
) -> AsyncIterator[list[DictRow]]:
    """The claimed rows, locked until the block ends (its transaction commits)."""
    async with conn.transaction():
        cur = await conn.execute(claim_sql, params)
        yield await cur.fetchall()


async def each(
    conn: Conn,
    rows: Sequence[R],
    work: Callable[[R], Awaitable[T]],
    *,
    failed: Callable[[R, Exception], Awaitable[T]],
    then: Callable[[R, T], Awaitable[None]] | None = None,
) -> list[T]:
    """``work(row)`` for each row in its own savepoint; ``failed(row, exc)`` (outside it, its
    work rolled back) for one that raised anything but a database outage; ``then(row,
    outcome)`` after each, before the next row. The outcomes, in the rows' order."""
    outcomes: list[T] = []
    for row in rows:
        try:
            async with conn.transaction():
                outcome = await work(row)
        except psycopg.OperationalError:
            raise
        except Exception as exc:  # noqa: BLE001 (the queue's failed() quarantines and logs it)
            outcome = await failed(row, exc)
        if then is not None:
            await then(row, outcome)
        outcomes.append(outcome)
    return outcomes


async def quarantine(
    conn: Conn,
    queue: Queue,
    row: Row,
    exc: Exception,
    *,
    now: datetime,
    payload: dict[str, object] | None = None,
) -> tuple[str, int]:
    """Log the item's failure and keep it (in a savepoint of its own) with its error and
    ``payload`` (the row by default). (The error as kept, the attempts so far.)"""
    error, key = describe(exc), queue.item_key(row)
    log.error(
        "%s %s failed and is quarantined: %s",
        queue.what,
        key,
        error,
        exc_info=exc,
        extra={queue.field or queue.key: row.get(queue.key), "queue": queue.name},
    )
    async with conn.transaction():
        attempts = await quarantine_item(
            conn,
            queue=queue.name,
            item_key=key,
            payload=dict(row) if payload is None else payload,
            error=error,
            process="alerts",
            now=now,
        )
    return error, attempts


async def resolve(conn: Conn, queue: Queue, row: Row, *, now: datetime) -> None:
    """A retried item succeeded: its open quarantine entry, if any, is resolved."""
    await conn.execute(
        "UPDATE quarantine SET resolved_at = %s, resolved_by = 'retried: succeeded' "
        "WHERE queue = %s AND item_key = %s AND resolved_at IS NULL",
        (now, queue.name, queue.item_key(row)),
    )
