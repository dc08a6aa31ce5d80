"""Device commands: the outbox written with an order's transition is published to each
device's ``cmd`` topic at QoS 1 after commit, and marked sent once the broker acknowledged.

Delivery is at least once: a crash between the PUBACK and the commit publishes the command
again, which a device takes as the same command (``alert_id`` identifies it).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt

from devices.db import AsyncPool
from devices.loops import Outage, database_loop, pause
from devices.registry import Conn

log = logging.getLogger(__name__)

CLAIM_SQL = (
    "SELECT id, topic, payload FROM device_commands WHERE sent_at IS NULL "
    "ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED"
)


async def publish_pending(
    conn: Conn, client: aiomqtt.Client, *, now: datetime, limit: int = 100
) -> int:
    """Publish unsent commands and mark them sent, in one transaction."""
    async with conn.transaction():
        cur = await conn.execute(CLAIM_SQL, {"limit": limit})
        rows = await cur.fetchall()
        for row in rows:
            await client.publish(row["topic"], bytes(row["payload"]), qos=1, timeout=10)
        if rows:
            await conn.execute(
                "UPDATE device_commands SET sent_at = %s, attempts = attempts + 1 "
                "WHERE id = ANY(%s)",
                (now, [r["id"] for r in rows]),
            )
    return len(rows)


async def _publish_round(pool: AsyncPool, client: aiomqtt.Client, *, poll_s: float) -> float:
    async with pool.connection() as conn:
        sent = await publish_pending(conn, client, now=datetime.now(UTC))
    if sent:
        log.info("published %d device command(s)", sent)
    return 0.0 if sent else poll_s  # 0: more may be waiting


async def command_publisher(
    pool: AsyncPool,
    *,
    host: str,
    port: int,
    username: str,
    password: str,
    wake: asyncio.Event,
    stop: asyncio.Event,
    poll_s: float,
    tls_ca_file: Path | None = None,
) -> None:
    """Keep one broker connection; publish whenever woken (NOTIFY) or every ``poll_s``.
    With ``tls_ca_file``, over TLS, the broker's certificate verified against that CA. The
    rounds are a database loop (``devices.loops``: a database outage waits with backoff,
    keeping the broker connection); a broker failure reconnects with the same backoff."""
    outage = Outage("command publisher", what="broker or database")
    tls = aiomqtt.TLSParameters(ca_certs=str(tls_ca_file)) if tls_ca_file else None
    while not stop.is_set():
        try:
            async with aiomqtt.Client(
                host, port, username=username, password=password, identifier=None, tls_params=tls
            ) as client:
                outage.ok()
                one_round = functools.partial(_publish_round, pool, client, poll_s=poll_s)
                await database_loop(
                    "command publisher", one_round, stop=stop, wake=wake, outage=outage
                )
        except aiomqtt.MqttError as exc:
            await pause(outage.failed(exc), stop=stop, wake=None)
