"""Heartbeats: every worker process writes one row (``worker_heartbeats``) every few seconds
with the health of its supervised loops. A watcher in another process (the API, another
worker) reads them: a heartbeat that stops is a worker that died, whatever killed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from psycopg.types.json import Jsonb

from devices.backoff import Backoff
from devices.db import AsyncPool
from devices.loops import Outage, database_loop
from devices.supervise import Supervisor

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WorkerIdentity:
    worker_id: str
    process: str
    hostname: str
    pid: int

    @classmethod
    def current(cls, process: str) -> WorkerIdentity:
        host, pid = socket.gethostname(), os.getpid()
        return cls(f"{process}@{host}:{pid}:{uuid.uuid4().hex[:8]}", process, host, pid)


UPSERT = """
INSERT INTO worker_heartbeats (worker_id, process, hostname, pid, started_at, beat_at, loops)
VALUES (%(worker_id)s, %(process)s, %(hostname)s, %(pid)s, %(now)s, %(now)s, %(loops)s)
ON CONFLICT (worker_id) DO UPDATE SET beat_at = excluded.beat_at, loops = excluded.loops,
    stopped_at = NULL
"""


async def beat(
    pool: AsyncPool, who: WorkerIdentity, supervisor: Supervisor | None, *, now: datetime
) -> None:
    loops = {n: h.as_json() for n, h in (supervisor.loops if supervisor else {}).items()}
    async with pool.connection() as conn:
        await conn.execute(
            UPSERT,
            {
                "worker_id": who.worker_id,
                "process": who.process,
                "hostname": who.hostname,
                "pid": who.pid,
                "now": now,
                "loops": Jsonb(loops),
            },
        )


async def mark_stopped(pool: AsyncPool, who: WorkerIdentity, *, now: datetime) -> None:
    """A clean stop says so, so a watcher tells "stopped by an operator" from "died"."""
    with contextlib.suppress(psycopg.Error):
        async with pool.connection(timeout=5) as conn:
            await conn.execute(
                "UPDATE worker_heartbeats SET stopped_at = %s WHERE worker_id = %s",
                (now, who.worker_id),
            )


async def heartbeat_loop(
    pool: AsyncPool,
    who: WorkerIdentity,
    *,
    supervisor: Supervisor | None,
    every_s: float,
    stop: asyncio.Event,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """Beat every ``every_s`` until stopped, then say so. A database outage is logged once
    when it starts and once when it ends (the watchers see the gap either way); meanwhile the
    beat is tried again at least every ``every_s`` (``devices.loops``)."""

    async def one_round() -> float:
        await beat(pool, who, supervisor, now=clock())
        return every_s

    backoff = Backoff(initial_s=min(0.2, every_s), maximum_s=every_s)
    outage = Outage("heartbeat", backoff=backoff)
    await database_loop("heartbeat", one_round, stop=stop, outage=outage)
    await mark_stopped(pool, who, now=clock())
