"""Plain-words messages for families in their language (devices/i18n): who, what, when (in
the site's zone, with the date when not today), how it is being handled. The explanation is
rendered from the alert's stored details, never translated from the detector's sentence."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from devices.domain import Colour
from devices.i18n import Locale, format_time, parse_locale, t, t_or
from devices.i18n.explain import explain


@dataclass(frozen=True, slots=True)
class Message:
    subject: str
    text: str


def locale_for(lang: str | None) -> Locale:
    """A family's notification language ("zh", "zh-CN", "en") as a catalogue locale."""
    return parse_locale(lang)


def local_time(at: datetime, tz: str) -> str:
    """The full local date and time, for machine-readable payloads."""
    return at.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")


def what(kind: str, locale: Locale) -> str:
    return t_or(f"kind.{kind}", "kind.other", locale)


def alert_message(
    *,
    resident: str,
    kind: str,
    colour: Colour,
    details: Mapping[str, object],
    site_id: str,
    occurred_at: datetime,
    order_state: str | None,
    tz: str,
    lang: str,
    now: datetime,
) -> Message:
    loc = locale_for(lang)
    explanation = explain(
        kind,
        details,
        resident=resident,
        site_id=site_id,
        occurred_at=occurred_at,
        locale=loc,
        tz=tz,
        now=now,
    )
    handling = t(f"handling.{order_state}", loc) if order_state else ""
    subject = t(
        "notify.alert_subject",
        loc,
        colour=t(f"colour.{colour.value}", loc),
        resident=resident,
        what=what(kind, loc),
    )
    text = t(
        "notify.alert_text",
        loc,
        time=format_time(occurred_at, tz=tz, locale=loc, now=now),
        explanation=explanation,
        handling=handling,
    )
    return Message(subject, text.strip())


def order_message(
    *,
    resident: str,
    kind: str,
    to_state: str,
    at: datetime,
    outcome: str | None,
    note: str,
    tz: str,
    lang: str,
    now: datetime,
) -> Message:
    loc = locale_for(lang)
    text = t(
        "notify.order_text",
        loc,
        time=format_time(at, tz=tz, locale=loc, now=now),
        handling=t_or(f"handling.{to_state}", "handling.queued", loc),
    )
    if outcome:
        text += t("notify.order_outcome", loc, outcome=t(f"outcome.{outcome}", loc))
    if note:
        text += t("notify.order_note", loc, note=note)
    subject = t("notify.order_subject", loc, resident=resident, what=what(kind, loc))
    return Message(subject, text)


def late_reply_message(
    *,
    resident: str,
    kind: str,
    text: str,
    at: datetime,
    tz: str,
    lang: str,
    now: datetime,
) -> Message:
    """A resident's text after their unanswered check-in raised the alert, for the carers:
    when, what it said, and that a call confirms it before anyone is stood down."""
    loc = locale_for(lang)
    body = t(
        "order.late_reply",
        loc,
        time=format_time(at, tz=tz, locale=loc, now=now),
        text=text[:60],
    )
    return Message(t("notify.order_subject", loc, resident=resident, what=what(kind, loc)), body)
