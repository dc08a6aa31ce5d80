"""Ingest's cache of the device registry, reloaded the moment the registry changes.

A trigger on ``devices`` (migration 0013) sends ``NOTIFY devices_changed`` in the transaction
that provisions, retires, moves or re-keys a device; :func:`watch_devices` LISTENs and marks
the cache stale, and the next batch reloads it before decoding. So a retired or moved device
is refused from its next message on, without restarting ingest. An unknown id still reloads
it too (at most every ``refresh_every_s``), and so does every (re)connect of the listener,
which may have missed a notification while away.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

import psycopg

from devices.db import AsyncPool
from devices.loops import Outage
from devices.registry import DEVICES_CHANNEL, DeviceRef, device_refs

log = logging.getLogger(__name__)


def device_of_topic(topic: str) -> str:
    parts = topic.split("/")
    return parts[3] if len(parts) > 3 else ""


class DeviceCache:
    """device_id -> DeviceRef, shared by the worker's paths (telemetry and life-safety)."""

    def __init__(self, refresh_every_s: float = 2.0) -> None:
        self.refs: dict[str, DeviceRef] = {}
        self.stale = True  # reload before the next batch
        self.reloads = 0
        self._loaded_at = float("-inf")
        self._every = refresh_every_s

    def invalidate(self) -> None:
        self.stale = True

    async def ensure(self, pool: AsyncPool, device_ids: Iterable[str], now: float) -> None:
        refs = self.refs
        unknown = any(d not in refs for d in device_ids)
        if self.stale or (unknown and now - self._loaded_at >= self._every):
            self.stale = False  # before the query: a NOTIFY during it marks it stale again
            try:
                async with pool.connection() as conn:
                    self.refs = await device_refs(conn)
            except BaseException:
                self.stale = True
                raise
            self._loaded_at = now
            self.reloads += 1


async def watch_devices(database_url: str, cache: DeviceCache, stop: asyncio.Event) -> None:
    """LISTEN on ``devices_changed`` and mark the cache stale on every notification (and on
    every (re)connect); reconnect with backoff."""
    outage = Outage("devices LISTEN")
    while not stop.is_set():
        try:
            async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as c:
                await c.execute(f"LISTEN {DEVICES_CHANNEL}")
                cache.invalidate()  # whatever changed while nobody listened
                outage.ok()
                while not stop.is_set():
                    async for _note in c.notifies(timeout=1.0):
                        cache.invalidate()
        except psycopg.OperationalError as exc:
            delay = outage.failed(exc)
            try:
                await asyncio.wait_for(stop.wait(), timeout=delay)
            except TimeoutError:
                continue
