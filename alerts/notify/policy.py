"""Pure decisions: who wants what, send now or later, retry or fall back. ``now`` comes in."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from devices.domain import Colour


class ChannelKind(StrEnum):
    WEBHOOK = "webhook"
    EMAIL = "email"
    SMS = "sms"


class Source(StrEnum):
    ALERT = "alert"
    ORDER = "order"
    SUMMARY = "summary"


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A local-time window, possibly across midnight (22:00-07:00)."""

    start: time
    end: time

    def contains(self, local: time) -> bool:
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


@dataclass(frozen=True, slots=True)
class Prefs:
    colours: frozenset[Colour]
    kinds: frozenset[str] | None  # None: every kind
    order_updates: bool
    daily_summary: bool
    quiet: QuietHours | None
    timezone: str
    language: str


def wants(prefs: Prefs, *, source: Source, colour: Colour, kind: str) -> str | None:
    """None if this recipient wants the notification, else the reason they do not."""
    if source is Source.SUMMARY:
        return None if prefs.daily_summary else "daily summary turned off"
    if source is Source.ORDER and not prefs.order_updates:
        return "order updates turned off"
    if colour not in prefs.colours:
        return f"{colour.value} not selected"
    if prefs.kinds is not None and kind not in prefs.kinds:
        return f"{kind} not selected"
    return None


def release_at(now: datetime, *, colour: Colour, quiet: QuietHours | None, tz: str) -> datetime:
    """When a notification may go out: now, or the end of the quiet hours. Red never waits."""
    if colour is Colour.RED or quiet is None:
        return now
    local = now.astimezone(ZoneInfo(tz))
    if not quiet.contains(local.time()):
        return now
    end = local.replace(hour=quiet.end.hour, minute=quiet.end.minute, second=0, microsecond=0)
    if end <= local:
        end += timedelta(days=1)
    return end


def retry_delay(
    attempt: int, *, initial_s: float, maximum_s: float, rng: random.Random | None = None
) -> timedelta:
    """Jittered exponential backoff after the ``attempt``-th failure (1-based): uniform in
    [cap/2, cap] with cap = min(maximum, initial * 2**(attempt-1))."""
    cap = min(maximum_s, initial_s * 2 ** max(attempt - 1, 0))
    return timedelta(seconds=(rng or random).uniform(cap / 2, cap))


@dataclass(frozen=True, slots=True)
class Retry:
    at: datetime
    channel_index: int
    channel_attempts: int


@dataclass(frozen=True, slots=True)
class GiveUp:
    reason: str


def after_failure(
    now: datetime,
    *,
    channel_index: int,
    channel_attempts: int,
    channels: int,
    max_attempts: int,
    initial_s: float,
    maximum_s: float,
    rng: random.Random | None = None,
) -> Retry | GiveUp:
    """Which channel next after a failed attempt (``channel_attempts`` counts it): the same
    one after a backoff, the next one at once after ``max_attempts`` failures, or none."""
    if channel_attempts < max_attempts and channel_index < channels:
        delay = retry_delay(channel_attempts, initial_s=initial_s, maximum_s=maximum_s, rng=rng)
        return Retry(now + delay, channel_index, channel_attempts)
    if channel_index + 1 < channels:
        return Retry(now, channel_index + 1, 0)
    return GiveUp(f"all {channels} channel(s) failed")
