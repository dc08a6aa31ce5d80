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
    SMS = "sms"  # the installation's SMS provider (gateway, Aliyun or Tencent Cloud)
    WECHAT = "wechat"  # WeChat Official Account template message to an openid
    VOICE = "voice"  # a text-to-speech phone call: red only, after unread text
    WECOM_ROBOT = "wecom_robot"  # a care station's WeChat Work group robot (site rows only)


# What a family member may put in their own channel list.
FAMILY_CHANNELS = frozenset(ChannelKind) - {ChannelKind.WECOM_ROBOT}


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


def targets_for(
    channels: list[dict[str, str]], *, colour: Colour, site_id: str | None
) -> list[dict[str, str]]:
    """The channel list a row is delivered along: a care station's group robot for a site
    row; a family member's own list otherwise, where a voice call is kept for red only."""
    if site_id is not None:
        return [{"kind": ChannelKind.WECOM_ROBOT.value, "address": site_id}]
    return [
        c
        for c in channels
        if c.get("kind") != ChannelKind.WECOM_ROBOT.value
        and (c.get("kind") != ChannelKind.VOICE.value or colour is Colour.RED)
    ]


def _next_voice(kinds: list[str], after: int) -> int | None:
    return next(
        (i for i in range(after + 1, len(kinds)) if kinds[i] == ChannelKind.VOICE.value), None
    )


@dataclass(frozen=True, slots=True)
class AwaitRead:
    """Delivered as text; call at ``at`` on ``channel_index`` unless read by then."""

    at: datetime
    channel_index: int


def after_delivery(
    now: datetime, *, colour: Colour, kinds: list[str], channel_index: int, voice_after: timedelta
) -> AwaitRead | None:
    """A red notification delivered as text, with a voice channel later in the list, waits
    ``voice_after`` to be read before the call; anything else is done once delivered."""
    if colour is not Colour.RED or voice_after <= timedelta(0):
        return None
    if kinds[channel_index] == ChannelKind.VOICE.value:
        return None
    voice = _next_voice(kinds, channel_index)
    return None if voice is None else AwaitRead(now + voice_after, voice)


def undelivered_jump(
    now: datetime,
    *,
    colour: Colour,
    created_at: datetime,
    kinds: list[str],
    channel_index: int,
    voice_after: timedelta,
) -> Retry | None:
    """A red notification still not delivered ``voice_after`` after it was queued goes
    straight to the next voice channel instead of working through more text retries."""
    if colour is not Colour.RED or voice_after <= timedelta(0) or now - created_at < voice_after:
        return None
    if kinds[channel_index] == ChannelKind.VOICE.value:
        return None
    voice = _next_voice(kinds, channel_index)
    return None if voice is None else Retry(now, voice, 0)
