"""One message catalogue for every process and page: zh-CN first, English too (issue 14).

The catalogues are flat JSON files (``zh-CN.json``, ``en.json``): key -> text with named
``{placeholders}``. JSON because the same file serves the Python side (alert explanations,
notifications, daily summaries, API errors) and the browser pages (``/i18n/<locale>.json``,
read by ``common.js``) with no compile step and no second catalogue; gettext/Babel would need
.mo files plus a JS gettext runtime for the pages. Chinese has no plural forms; English plural
wording is chosen with separate keys where it matters.

``t(key, locale, **params)`` renders a message; a missing key is a bug and raises ``KeyError``
(tests check both catalogues have the same keys and placeholders).
"""

from __future__ import annotations

import json
import string
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Final, Literal
from zoneinfo import ZoneInfo

Locale = Literal["zh-CN", "en"]
LOCALES: Final[tuple[Locale, ...]] = ("zh-CN", "en")
DEFAULT_LOCALE: Final[Locale] = "zh-CN"
HERE = Path(__file__).resolve().parent


def parse_locale(value: str | None, default: Locale = DEFAULT_LOCALE) -> Locale:
    """A supported locale from a tag such as ``zh``, ``zh-CN``, ``en-GB`` or an
    Accept-Language header; ``default`` when none matches."""
    if not value:
        return default
    for part in value.split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh-CN"
        if tag.startswith("en"):
            return "en"
    return default


@cache
def catalogue(locale: Locale) -> Mapping[str, str]:
    data = json.loads((HERE / f"{locale}.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return {str(k): str(v) for k, v in data.items()}


def placeholders(text: str) -> frozenset[str]:
    return frozenset(name for _, name, _, _ in string.Formatter().parse(text) if name)


def has(key: str) -> bool:
    return key in catalogue(DEFAULT_LOCALE)


def t(key: str, locale: Locale, /, **params: object) -> str:
    """The message ``key`` in ``locale`` with its placeholders filled in."""
    return catalogue(locale)[key].format(**params)


def t_or(key: str, fallback_key: str, locale: Locale, /, **params: object) -> str:
    """``key`` if the catalogue has it (e.g. ``kind.<a detector's kind>``), else the fallback."""
    return t(key if has(key) else fallback_key, locale, **params)


def hm(at: datetime, tz: str) -> str:
    return at.astimezone(ZoneInfo(tz)).strftime("%H:%M")


def format_time(at: datetime, *, tz: str, locale: Locale, now: datetime) -> str:
    """A moment in the site's zone as people read it: "14:05" today, with the date on any
    other day ("12月1日 14:05", "1 Dec 14:05") and the year when not this year."""
    zone = ZoneInfo(tz)
    local, today = at.astimezone(zone), now.astimezone(zone)
    p = {
        "hm": local.strftime("%H:%M"),
        "day": local.day,
        "month": local.month,
        "mon": t(f"month.{local.month}", locale),
        "year": local.year,
    }
    if local.date() == today.date():
        return t("fmt.time_today", locale, **p)
    if local.year == today.year:
        return t("fmt.date_time", locale, **p)
    return t("fmt.date_time_year", locale, **p)


def format_date(at: datetime, *, tz: str, locale: Locale) -> str:
    local = at.astimezone(ZoneInfo(tz))
    return t(
        "fmt.date", locale, day=local.day, month=local.month, mon=t(f"month.{local.month}", locale)
    )


def duration(seconds: float, locale: Locale) -> str:
    """A duration as a carer reads it: "45 秒", "3 分钟", "2 小时 10 分钟"."""
    s = max(0, round(seconds))
    if s < 120:
        return t("dur.s", locale, n=s)
    minutes = s // 60
    h, m = divmod(minutes, 60)
    if not h:
        return t("dur.min", locale, n=m)
    if not m:
        return t("dur.h", locale, n=h)
    return t("dur.h_min", locale, h=h, m=m)
