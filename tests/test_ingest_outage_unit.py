"""Ingest through a database outage (found by the chaos run, session 7): a device-cache reload
that hits the outage is waited out like a batch's commit instead of ending the consumer, and a
closed pool (the process going down) is never retried."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import cast

import psycopg
import pytest
from psycopg_pool import PoolClosed

from devices.db import AsyncPool
from ingest.decode import RawMessage
from ingest.devicecache import DeviceCache
from ingest.worker import _ensure_devices


class FlakyCache:
    """A cache whose reloads fail ``failures`` times with ``error`` before they work."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures, self.error, self.calls = failures, error, 0

    async def ensure(self, pool: object, device_ids: Iterable[str], now: float) -> None:
        self.calls += 1
        list(device_ids)
        if self.calls <= self.failures:
            raise self.error


def _msg() -> RawMessage:
    return RawMessage(topic="eldercare/v1/home-1/btn-1/event", payload=b"{}", received_at=0.0)


def _run(cache: FlakyCache, stop: asyncio.Event) -> bool:
    async def go() -> bool:
        return await _ensure_devices(
            cast(DeviceCache, cache), cast(AsyncPool, None), [_msg()], stop
        )

    return asyncio.run(go())


def test_a_reload_during_an_outage_is_retried_until_the_database_is_back() -> None:
    cache = FlakyCache(3, psycopg.errors.AdminShutdown("terminating connection"))
    assert _run(cache, asyncio.Event()) is True
    assert cache.calls == 4


def test_stop_during_the_outage_ends_the_wait_without_acknowledging() -> None:
    stop = asyncio.Event()
    stop.set()
    cache = FlakyCache(10**6, psycopg.OperationalError("down"))
    assert _run(cache, stop) is False
    assert cache.calls == 1


def test_a_closed_pool_is_not_an_outage() -> None:
    cache = FlakyCache(10**6, PoolClosed("the pool 'ingest' is closed"))
    with pytest.raises(PoolClosed):
        _run(cache, asyncio.Event())
    assert cache.calls == 1
