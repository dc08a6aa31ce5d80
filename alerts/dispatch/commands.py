"""Device commands: the outbox written with an order's transition is published to each
device's ``cmd`` topic at QoS 1 after commit, and marked sent once the broker acknowledged.

Delivery is at least once: a crash between the PUBACK and the commit publishes the command
again, which a device takes as the same command (``alert_id`` identifies it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt
import psycopg

from devices.db import AsyncPool
from devices.loops import Outage
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
    With ``tls_ca_file``, over TLS, the broker's certificate verified against that CA."""
    outage = Outage("command publisher", what="broker or database")
    tls = aiomqtt.TLSParameters(ca_certs=str(tls_ca_file)) if tls_ca_file else None
    while not stop.is_set():
        try:
            async with aiomqtt.Client(
                host, port, username=username, password=password, identifier=None, tls_params=tls
            ) as client:
                outage.ok()
                while not stop.is_set():
                    wake.clear()
                    async with pool.connection() as conn:
                        sent = await publish_pending(conn, client, now=datetime.now(UTC))
                    if sent:
                        log.info("published %d device command(s)", sent)
                        continue
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), timeout=poll_s)
        except (aiomqtt.MqttError, psycopg.OperationalError) as exc:
            delay = outage.failed(exc)
            await asyncio.sleep(delay)
