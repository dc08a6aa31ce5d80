"""Pure notification decisions: quiet hours, retry or fall back, summary arithmetic, words."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta

from hypothesis import given
from hypothesis import strategies as st

from alerts.notify.channels import sign
from alerts.notify.messages import alert_message, order_message
from alerts.notify.policy import (
    GiveUp,
    Prefs,
    QuietHours,
    Retry,
    Source,
    after_failure,
    release_at,
    retry_delay,
    wants,
)
from alerts.notify.summary import (
    DayAlert,
    DayFacts,
    activity,
    due_day,
    render_summary,
    summary_window,
    time_in_bed,
)
from devices.domain import Colour

SH = "Asia/Shanghai"
NIGHT = QuietHours(time(22), time(7))
# 23:30 in Shanghai (UTC+8) is 15:30 UTC.
LATE = datetime(2026, 11, 23, 15, 30, tzinfo=UTC)


def test_quiet_hours_hold_yellow_until_morning_but_never_red() -> None:
    assert release_at(LATE, colour=Colour.RED, quiet=NIGHT, tz=SH) == LATE
    held = release_at(LATE, colour=Colour.YELLOW, quiet=NIGHT, tz=SH)
    assert held == datetime(2026, 11, 23, 23, 0, tzinfo=UTC)  # 07:00 next day in Shanghai
    noon = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)
    assert release_at(noon, colour=Colour.YELLOW, quiet=NIGHT, tz=SH) == noon
    assert release_at(LATE, colour=Colour.GREEN, quiet=None, tz=SH) == LATE


@given(st.times(), st.times(), st.times())
def test_quiet_window_contains_its_start_and_not_its_end(start: time, end: time, t: time) -> None:
    q = QuietHours(start, end)
    if start != end:
        assert q.contains(start)
        assert not q.contains(end)
    assert q.contains(t) != QuietHours(end, start).contains(t) or start == end


def test_preferences_pick_colours_kinds_and_sources() -> None:
    prefs = Prefs(
        colours=frozenset({Colour.RED}),
        kinds=frozenset({"sos", "fall"}),
        order_updates=False,
        daily_summary=True,
        quiet=None,
        timezone=SH,
        language="en",
    )
    assert wants(prefs, source=Source.ALERT, colour=Colour.RED, kind="sos") is None
    assert wants(prefs, source=Source.ALERT, colour=Colour.YELLOW, kind="sos") is not None
    assert wants(prefs, source=Source.ALERT, colour=Colour.RED, kind="smoke") is not None
    assert wants(prefs, source=Source.ORDER, colour=Colour.RED, kind="sos") is not None
    assert wants(prefs, source=Source.SUMMARY, colour=Colour.GREEN, kind="x") is None


@given(st.integers(1, 30), st.integers(0, 2**32))
def test_backoff_grows_within_its_jitter_band(attempt: int, seed: int) -> None:
    d = retry_delay(attempt, initial_s=30, maximum_s=1800, rng=random.Random(seed))
    cap = min(1800, 30 * 2 ** (attempt - 1))
    assert cap / 2 <= d.total_seconds() <= cap


def test_retry_the_same_channel_then_fall_back_then_give_up() -> None:
    now = LATE
    kw = {"channels": 2, "max_attempts": 3, "initial_s": 30.0, "maximum_s": 1800.0}
    first = after_failure(now, channel_index=0, channel_attempts=1, **kw)  # type: ignore[arg-type]
    assert isinstance(first, Retry)
    assert first.channel_index == 0
    assert timedelta(seconds=15) <= first.at - now <= timedelta(seconds=30)
    third = after_failure(now, channel_index=0, channel_attempts=3, **kw)  # type: ignore[arg-type]
    assert third == Retry(now, 1, 0)  # next channel, at once
    last = after_failure(now, channel_index=1, channel_attempts=3, **kw)  # type: ignore[arg-type]
    assert isinstance(last, GiveUp)


def test_time_in_bed_counts_the_night_across_the_window_edges() -> None:
    start = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
    end = start + timedelta(days=1)
    changes = [(start + timedelta(hours=6), False), (start + timedelta(hours=22), True)]
    assert time_in_bed(start, end, initial=True, changes=changes) == timedelta(hours=8)
    assert time_in_bed(start, end, initial=False, changes=[]) == timedelta()


def test_activity_compares_with_their_own_usual() -> None:
    usual = [100] * 14
    assert activity(95, usual, "en") == "active as usual"
    assert activity(60, usual, "en") == "less active than usual"
    assert activity(20, usual, "zh-CN") == "活动量明显少于平时"
    assert activity(200, usual, "en") == "more active than usual"
    assert activity(12, [5], "en") == "12 movements recorded"


def test_summary_window_and_due_day_follow_local_time() -> None:
    start, end = summary_window(date(2026, 11, 24), hour=8, tz=SH)
    assert end == datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
    assert end - start == timedelta(days=1)
    assert due_day(datetime(2026, 11, 23, 23, 59, tzinfo=UTC), hour=8, tz=SH) is None
    assert due_day(datetime(2026, 11, 24, 0, 1, tzinfo=UTC), hour=8, tz=SH) == date(2026, 11, 24)


def test_summary_words_in_english_and_chinese() -> None:
    start, end = summary_window(date(2026, 11, 24), hour=8, tz=SH)
    facts = DayFacts(
        in_bed_at_start=False,
        presence=[(end - timedelta(hours=9), True), (end - timedelta(hours=2), False)],
        motion_today=98,
        motion_baseline=[100] * 14,
        alerts=[],
    )
    en = render_summary(
        facts, resident="Li Wei", day=date(2026, 11, 24), start=start, end=end, lang="en"
    )
    assert en.text == "Li Wei: in bed 7.0 h, active as usual, no alerts."
    zh = render_summary(
        facts, resident="Li Wei", day=date(2026, 11, 24), start=start, end=end, lang="zh"
    )
    assert zh.text == "Li Wei：卧床 7.0 小时；活动量与平时相当；无警报。"
    assert zh.subject == "Li Wei 11月24日 日报"
    busy = DayFacts(None, [], 3, [], [DayAlert("sos", "red", end, "resolved", "false_alarm")])
    text = render_summary(
        busy, resident="Li Wei", day=date(2026, 11, 24), start=start, end=end, lang="en"
    ).text
    assert "no bed-mat data" in text
    assert "1 alert(s) (1 urgent: SOS); all handled" in text


def test_messages_say_who_what_when_and_how_handled() -> None:
    m = alert_message(
        resident="Song Lan",
        kind="sos",
        colour=Colour.RED,
        details={"device_id": "b1", "device_kind": "sos_button"},
        site_id="s1",
        occurred_at=LATE,
        order_state="queued",
        tz=SH,
        lang="en",
        now=LATE + timedelta(days=1),
    )
    assert m.subject == "Urgent: Song Lan: SOS"
    assert m.text.startswith("23 Nov 23:30: Song Lan pressed SOS (SOS button b1).")
    assert "sending someone" in m.text
    zh = order_message(
        resident="Song Lan",
        kind="fall",
        to_state="resolved",
        at=LATE,
        outcome="false_alarm",
        note="",
        tz=SH,
        lang="zh",
        now=LATE,
    )
    assert zh.text == "23:30：事件已处理完毕。结果：误报。"


def test_signature_is_hmac_sha256_over_timestamp_and_body() -> None:
    sig = sign("k", 1700000000, b'{"a":1}')
    # Independently computed: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac k
    import hashlib
    import hmac

    expected = hmac.new(b"k", b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
    assert sig == f"sha256={expected}"
    assert sign("other", 1700000000, b'{"a":1}') != sig


def test_the_documented_webhook_check_accepts_our_signature() -> None:
    """The verification snippet in docs/notifications.md, run as written."""
    import re
    import time as clock
    from pathlib import Path

    doc = (Path(__file__).parent.parent / "docs" / "notifications.md").read_text()
    [code] = [b for b in re.findall(r"```python\n(.*?)```", doc, re.S) if "def verify" in b]
    scope: dict[str, object] = {}
    exec(code, scope)  # noqa: S102 - our own documentation
    verify = scope["verify"]
    body, ts = b'{"type": "alert"}', int(clock.time())
    headers = {"X-Eldercare-Timestamp": str(ts), "X-Eldercare-Signature": sign("s3", ts, body)}
    assert verify("s3", headers, body)  # type: ignore[operator]
    assert not verify("other", headers, body)  # type: ignore[operator]
    assert not verify("s3", headers, body + b" ")  # type: ignore[operator]
