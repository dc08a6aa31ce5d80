"""Plain-words messages for families, in English or Chinese: who, what, when, how handled."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from devices.domain import Colour


@dataclass(frozen=True, slots=True)
class Message:
    subject: str
    text: str


# What happened, by alert kind: (English, Chinese). Unknown kinds use the detector's sentence.
WHAT: dict[str, tuple[str, str]] = {
    "sos": ("pressed the SOS button", "按下了紧急呼叫按钮"),
    "fall": ("may have fallen", "可能跌倒了"),
    "smoke": ("smoke was detected at home", "家中检测到烟雾"),
    "device_offline": ("a safety device went offline", "一个安全设备离线"),
}
COLOUR_WORD = {
    Colour.RED: ("Urgent", "紧急"),
    Colour.YELLOW: ("Attention", "注意"),
    Colour.GREEN: ("Notice", "通知"),
}
# How the care station is handling it, by order state: (English, Chinese).
HANDLING: dict[str, tuple[str, str]] = {
    "queued": (
        "The care station has been alerted and is sending someone.",
        "护理站已收到警报，正在安排人员处理。",
    ),
    "offered": (
        "The care station has been alerted and is sending someone.",
        "护理站已收到警报，正在安排人员处理。",
    ),
    "accepted": ("A carer has taken the case.", "护理人员已接单。"),
    "en_route": ("A carer is on the way.", "护理人员正在赶往现场。"),
    "on_site": ("A carer is with them now.", "护理人员已到达现场。"),
    "resolved": ("The case is closed.", "事件已处理完毕。"),
    "cancelled": ("The case was cancelled.", "事件已取消。"),
}
OUTCOME: dict[str, tuple[str, str]] = {
    "emergency_handled": ("the emergency was handled", "紧急情况已处理"),
    "false_alarm": ("it was a false alarm", "确认为误报"),
    "handled_by_phone": ("it was handled by phone", "已通过电话处理"),
}


def _i(lang: str) -> int:
    return 1 if lang == "zh" else 0


def local_time(at: datetime, tz: str) -> str:
    return at.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")


def alert_message(
    *,
    resident: str,
    kind: str,
    colour: Colour,
    explanation: str,
    occurred_at: datetime,
    order_state: str | None,
    tz: str,
    lang: str,
) -> Message:
    i = _i(lang)
    what = WHAT[kind][i] if kind in WHAT else explanation
    when = local_time(occurred_at, tz)
    handling = HANDLING[order_state][i] if order_state in HANDLING else ""
    if i:
        subject = f"【{COLOUR_WORD[colour][1]}】{resident}：{what}"
        text = f"{resident}{what}（{when}）。{handling}"
    else:
        subject = f"{COLOUR_WORD[colour][0]}: {resident} {what}"
        text = f"{resident} {what} at {when} ({tz} time). {handling}".rstrip()
    return Message(subject, text)


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
) -> Message:
    i = _i(lang)
    what = WHAT[kind][i] if kind in WHAT else kind
    handling = HANDLING.get(to_state, (to_state, to_state))[i]
    result = OUTCOME[outcome][i] if outcome in OUTCOME else ""
    when = local_time(at, tz)
    if i:
        subject = f"更新：{resident}（{what}）"
        text = f"{when}：{handling}" + (f"结果：{result}。" if result else "")
        text += f"备注：{note}" if note else ""
    else:
        subject = f"Update: {resident} ({what})"
        text = f"{when}: {handling}" + (f" Outcome: {result}." if result else "")
        text += f" Note: {note}" if note else ""
    return Message(subject, text)
