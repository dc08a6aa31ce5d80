"""The watchdog loop, run by every alerts worker and every API process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg

from alerts.notify.channels import Channel
from alerts.notify.policy import ChannelKind
from alerts.watchdog.conditions import Bounds, conditions
from alerts.watchdog.deliver import Target, deliver_due, send_all
from alerts.watchdog.store import Reconciled, read_snapshot, reconcile
from devices.db import AsyncPool
from devices.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WatchConfig:
    bounds: Bounds
    targets: tuple[Target, ...]
    secret: str
    every_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> WatchConfig:
        return cls(
            bounds=Bounds(
                heartbeat_stale_s=settings.heartbeat_stale_s,
                stream_outbox_lag_s=settings.watch_outbox_lag_s,
                escalation_lag_s=settings.watch_escalation_lag_s,
                notify_lag_s=settings.watch_notify_lag_s,
                texts_lag_s=settings.watch_texts_lag_s,
                flood_window_s=settings.watch_flood_window_s,
                watched=frozenset(
                    p.strip() for p in settings.watch_processes.split(",") if p.strip()
                ),
            ),
            targets=tuple(
                Target(ChannelKind(t["kind"]), t["address"])
                for t in settings.technical_alert_channels
            ),
            secret=settings.technical_alert_webhook_secret.get_secret_value(),
            every_s=settings.watchdog_interval_s,
        )


async def watch_once(
    pool: AsyncPool,
    *,
    config: WatchConfig,
    channels: Mapping[ChannelKind, Channel],
    watcher: str,
    now: datetime,
) -> Reconciled:
    async with pool.connection() as conn, conn.transaction():
        snap = await read_snapshot(conn, now=now, flood_window_s=config.bounds.flood_window_s)
        result = await reconcile(
            conn, conditions(snap, config.bounds, now=now), now=now, watcher=watcher
        )
    for key in result.raised:
        log.warning("technical alert raised: %s", key, extra={"key": key, "watcher": watcher})
    for key in result.cleared:
        log.info("technical alert cleared: %s", key, extra={"key": key, "watcher": watcher})
    async with pool.connection() as conn, conn.transaction():
        await deliver_due(
            conn, channels=channels, targets=config.targets, secret=config.secret, now=now
        )
    return result


async def tell_directly(
    channels: Mapping[ChannelKind, Channel],
    config: WatchConfig,
    *,
    raising: bool,
    since: datetime,
    now: datetime,
) -> bool:
    minutes = int((now - since).total_seconds() // 60)
    row = {
        "id": 0,
        "key": "database_down",
        "kind": "database_down",
        "colour": "red",
        "raising": raising,
        "details": {"since": since.isoformat()},
        "subject": f"数据库无法连接（自 {since:%H:%M:%S} UTC 起，{minutes} 分钟），告警与派单停止 / "
        f"database unreachable since {since:%H:%M:%S} UTC ({minutes} min): alerts and dispatch "
        "are stopped",
    }
    ok, receipt = await send_all(channels, config.targets, row, secret=config.secret, now=now)
    log.warning("database outage %s: %s", "told" if raising else "recovery told", receipt)
    return ok


async def watchdog_loop(
    pool: AsyncPool,
    *,
    config: WatchConfig,
    channels: Mapping[ChannelKind, Channel],
    watcher: str,
    stop: asyncio.Event,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """Watch until stopped. The database itself being down cannot be written into it: after
    ``heartbeat_stale_s`` of outage the watcher tells the channels directly, and once more
    when it is back."""
    down_since: datetime | None = None
    told = False
    while not stop.is_set():
        now = clock()
        try:
            await watch_once(pool, config=config, channels=channels, watcher=watcher, now=now)
            if down_since is not None:
                log.info("watchdog: database back")
                if told:
                    await tell_directly(channels, config, raising=False, since=down_since, now=now)
                down_since, told = None, False
        except psycopg.OperationalError as exc:
            if down_since is None:
                log.warning("watchdog: database unavailable (%s)", exc)
                down_since = now
            elif not told and (now - down_since).total_seconds() >= config.bounds.heartbeat_stale_s:
                told = await tell_directly(
                    channels, config, raising=True, since=down_since, now=now
                )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=config.every_s)
