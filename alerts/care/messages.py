"""The care programme's words for people (issue 15), from the catalogue: a plan reason
(``visits.reason.<key>``) and a device finding (``safety.finding.<kind>``) are a key and its
parameters, rendered in the reader's language where they are shown (the API, the pages).
What goes to a channel (visit reminders, ``reminders.py``) keeps both languages, Chinese
first, as every notification does."""

from __future__ import annotations

from collections.abc import Mapping

from alerts.care.plan import Reason
from devices.i18n import LOCALES, Locale, t


def reason_text(reason: Reason, locale: Locale) -> str:
    return t(f"visits.reason.{reason.key}", locale, **dict(reason.params))


def finding_text(kind: str, params: Mapping[str, object], locale: Locale) -> str:
    return t(f"safety.finding.{kind}", locale, **params)


def finding_record(kind: str, params: Mapping[str, object]) -> str:
    """The description stored with a device finding (for readers of the table, such as the
    report's CSVs): Chinese then English; the API renders ``params`` instead."""
    return " / ".join(finding_text(kind, params, lang) for lang in LOCALES)
