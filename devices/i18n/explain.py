"""Alert explanations rendered from the structured details each detector stores, in the
reader's language (never a translated English sentence). Pure: no I/O.

Details written before a field existed simply lose that part of the sentence.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from devices.i18n import Locale, duration, format_time, t, t_or


def _num(details: Mapping[str, object], key: str) -> float | None:
    v = details.get(key)
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _str(details: Mapping[str, object], key: str) -> str | None:
    v = details.get(key)
    return v if isinstance(v, str) and v else None


def _when(details: Mapping[str, object], key: str) -> datetime | None:
    v = _str(details, key)
    try:
        return datetime.fromisoformat(v) if v else None
    except ValueError:
        return None


def room_label(room: str | None, locale: Locale) -> str:
    return t_or(f"room.{room}", "room.bedroom", locale) if room else ""


def explain(
    kind: str,
    details: Mapping[str, object],
    *,
    resident: str | None,
    site_id: str,
    occurred_at: datetime,
    locale: Locale,
    tz: str,
    now: datetime,
) -> str:
    """The sentence a carer or a relative reads for one alert."""
    room = _str(details, "room_name")
    if resident:
        who = t("explain.who_room", locale, name=resident, room=room) if room else resident
    else:
        who = t("explain.site", locale, site=site_id)
    where = t("explain.in_room", locale, room=room) if room else ""
    device_kind = _str(details, "device_kind")
    device = t(
        "explain.device",
        locale,
        device=t_or(f"device.{device_kind}", "device.other", locale),
        device_id=_str(details, "device_id") or "",
    ).strip()

    def at(when: datetime) -> str:
        return format_time(when, tz=tz, locale=locale, now=now)

    if kind == "smoke":
        text = t("explain.smoke", locale, where=room or site_id, device=device)
    else:
        text = _body(kind, details, who=who, where=where, device=device, at=at, locale=locale)
    if details.get("late"):
        event_at = _when(details, "event_at") or occurred_at
        minutes = _num(details, "late_min")
        text = (
            t(
                "explain.late",
                locale,
                time=at(event_at),
                minutes="?" if minutes is None else f"{minutes:.0f}",
            )
            + text
        )
    return text


def _body(
    kind: str,
    d: Mapping[str, object],
    *,
    who: str,
    where: str,
    device: str,
    at: Callable[[datetime], str],
    locale: Locale,
) -> str:
    if kind == "sos":
        return t("explain.sos", locale, who=who, device=device)
    if kind == "fall":
        return _fall(d, who=who, device=device, at=at, locale=locale)
    if kind == "wandering":
        key = "explain.wandering_exit" if d.get("exit_door") else "explain.wandering_door"
        when = _when(d, "opened_at")
        return t(key, locale, who=who, time=at(when) if when else "")
    if kind == "bed_exit":
        away = _num(d, "away_s") or 0
        left = _when(d, "left_at")
        return t(
            "explain.bed_exit",
            locale,
            who=who,
            time=at(left) if left else "",
            away=duration(away, locale),
        )
    if kind == "inactivity":
        return _inactivity(d, who=who, locale=locale)
    if kind == "no_vital_signs":
        return t("explain.no_vital_signs", locale, who=who)
    if kind.startswith("vitals_"):
        return _vitals(kind.removeprefix("vitals_"), d, who=who, locale=locale)
    if kind in ("device_offline", "low_battery", "device_stale"):
        return _device(kind, d, device=device, where=where, locale=locale)
    label = t_or(f"kind.{kind}", "kind.other", locale)
    return t("explain.other", locale, who=who, kind=label)


def _fall(
    d: Mapping[str, object], *, who: str, device: str, at: Callable[[datetime], str], locale: Locale
) -> str:
    confidence = _num(d, "confidence")
    peak = _num(d, "peak_g")
    if peak is not None and confidence is not None:
        still, spread = _num(d, "post_still_frac") or 0, _num(d, "post_std_g") or 0
        after = (
            "explain.after_still"
            if still >= 0.6
            else "explain.after_moving"
            if spread > 0.15
            else "explain.after_little"
        )
        return t(
            "explain.fall_acc",
            locale,
            who=who,
            device=device,
            peak=f"{peak:.1f}",
            tilt=f"{_num(d, 'tilt_change_deg') or 0:.0f}",
            after=t(after, locale),
            confidence=f"{confidence * 100:.0f}",
        )
    if confidence is None:
        text = t("explain.fall", locale, who=who, device=device)
    else:
        text = t(
            "explain.fall_confidence",
            locale,
            who=who,
            device=device,
            confidence=f"{confidence * 100:.0f}",
        )
    if (sos_at := _when(d, "sos_at")) is not None:
        text += t("explain.fall_by_sos", locale, time=at(sos_at))
    elif (quiet := _num(d, "quiet_s")) is not None:
        text += t("explain.fall_quiet", locale, quiet=duration(quiet, locale))
    return text


def _inactivity(d: Mapping[str, object], *, who: str, locale: Locale) -> str:
    quiet = duration(_num(d, "elapsed_s") or 0, locale)
    usual = duration(_num(d, "usual_max_s") or _num(d, "threshold_s") or 0, locale)
    if d.get("state") == "bathroom":
        text = t("explain.inactivity_bathroom", locale, who=who, quiet=quiet, usual=usual)
    else:
        room = _str(d, "room_kind")
        where = t("explain.inactivity_where", locale, room=room_label(room, locale)) if room else ""
        text = t("explain.inactivity_quiet", locale, who=who, quiet=quiet, where=where, usual=usual)
    if d.get("state") == "door":
        text += t("explain.inactivity_door", locale)
    elif d.get("state") == "night":
        text += t("explain.inactivity_night", locale)
    if d.get("routine_learned") is False:
        text += t("explain.inactivity_default", locale)
    asked = d.get("check_in")
    if isinstance(asked, dict) and asked.get("outcome") == "no_answer":
        window = asked.get("window_s")
        seconds = float(window) if isinstance(window, int | float) else 0.0
        key = "sms" if asked.get("device_id") == "SMS" else ""
        text += t(
            f"explain.inactivity_check_in{'_' + key if key else ''}",
            locale,
            window=duration(seconds, locale),
        )
    elif isinstance(asked, dict) and asked.get("outcome") == "help":
        reply = str(asked.get("reply", ""))[:60]
        text += t("explain.inactivity_check_in_help", locale, reply=reply)
    return text


def _vitals(metric: str, d: Mapping[str, object], *, who: str, locale: Locale) -> str:
    value = _num(d, "value")
    bounds = d.get("range")
    low = high = None
    if isinstance(bounds, list) and len(bounds) == 2:
        low, high = (float(b) if isinstance(b, int | float) else None for b in bounds)
    p = {
        "who": who,
        "metric": t_or(f"metric.{metric}", "kind.other", locale),
        "unit": t_or(f"unit.{metric}", "common.dash", locale),
        "value": "?" if value is None else f"{value:.0f}",
        "low": "?" if low is None else f"{low:.0f}",
        "high": "?" if high is None else f"{high:.0f}",
    }
    lasted = _num(d, "lasted_s")
    if lasted is None:
        return t("explain.vitals_short", locale, **p)
    return t("explain.vitals", locale, lasted=duration(lasted, locale), **p)


def _device(kind: str, d: Mapping[str, object], *, device: str, where: str, locale: Locale) -> str:
    if kind == "device_offline":
        down = _num(d, "down_s")
        if down is None:
            return t("explain.device_offline_short", locale, device=device, where=where)
        return t(
            "explain.device_offline",
            locale,
            device=device,
            where=where,
            down=duration(down, locale),
        )
    if kind == "low_battery":
        battery = _num(d, "battery")
        if battery is None:
            return t("explain.low_battery_short", locale, device=device, where=where)
        return t(
            "explain.low_battery", locale, device=device, where=where, battery=f"{battery:.0f}"
        )
    silent = _num(d, "silent_s")
    if silent is None:
        return t("explain.device_stale_short", locale, device=device, where=where)
    return t(
        "explain.device_stale",
        locale,
        device=device,
        where=where,
        silent=duration(silent, locale),
    )
