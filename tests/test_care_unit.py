"""Pure visit-plan logic (issue 15): due dates, reminder windows, sensor-driven priority and
the monthly visit-rate arithmetic; the reasons as catalogue messages with their figures."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from alerts.care.messages import finding_record, finding_text, reason_text
from alerts.care.plan import (
    DueState,
    Flag,
    SensorFacts,
    due_state,
    month_bounds,
    next_due,
    parse_month,
    priority,
    visit_rate,
)
from alerts.care.reminders import reminder_text
from devices.i18n import LOCALES, catalogue, placeholders, t

NOW = datetime(2026, 11, 20, 9, tzinfo=UTC)
END = datetime(2026, 11, 30, 16, tzinfo=UTC)  # 2026-12-01 00:00 in Shanghai


def test_month_bounds_are_local_calendar_months() -> None:
    start, end = month_bounds(date(2026, 12, 1), "Asia/Shanghai")
    assert start.utcoffset() == timedelta(hours=8)
    assert (start.isoformat(), end.isoformat()) == (
        "2026-12-01T00:00:00+08:00",
        "2027-01-01T00:00:00+08:00",
    )
    assert parse_month("2026-11") == date(2026, 11, 1)
    with pytest.raises(ValueError, match="month must look like"):
        parse_month("2026-1")


def test_due_is_thirty_days_over_the_policy_capped_at_month_end() -> None:
    last = datetime(2026, 11, 2, tzinfo=UTC)
    # monthly, visited this month: due 30 days after the visit (next month)
    assert next_due(
        visits_per_month=1, last_visit=last, flagged_at=last, visits_this_month=1, month_end=END
    ) == last + timedelta(days=30)
    # twice a month, one visit done: 15 days after
    assert next_due(
        visits_per_month=2, last_visit=last, flagged_at=last, visits_this_month=1, month_end=END
    ) == last + timedelta(days=15)
    # twice a month, one visit on the 20th: the second is still due by the month's end
    mid = datetime(2026, 11, 20, tzinfo=UTC)
    assert (
        next_due(
            visits_per_month=2, last_visit=mid, flagged_at=mid, visits_this_month=1, month_end=END
        )
        == END
    )
    # never visited: counted from the day they were flagged
    flagged = datetime(2026, 10, 1, tzinfo=UTC)
    assert next_due(
        visits_per_month=1, last_visit=None, flagged_at=flagged, visits_this_month=0, month_end=END
    ) == flagged + timedelta(days=30)


def test_due_state_reminds_three_days_before() -> None:
    due = NOW + timedelta(days=2)
    assert due_state(due, now=NOW) is DueState.DUE_SOON
    assert due_state(NOW + timedelta(days=4), now=NOW) is DueState.OK
    assert due_state(NOW - timedelta(seconds=1), now=NOW) is DueState.OVERDUE


def test_quiet_resident_on_time_scores_zero() -> None:
    p = priority(
        SensorFacts(activity_week=100, activity_baseline=100.0, last_activity=NOW),
        due=NOW + timedelta(days=20),
        now=NOW,
    )
    assert p.score == 0
    assert p.reasons == p.keys == ()


def test_each_sensor_signal_raises_the_score_and_says_why() -> None:
    due = NOW + timedelta(days=20)
    base = SensorFacts(activity_week=100, activity_baseline=100.0, last_activity=NOW)
    cases = {
        "recent_alerts": SensorFacts(
            red_alerts=1, activity_week=100, activity_baseline=100.0, last_activity=NOW
        ),
        "falling_activity": SensorFacts(
            activity_week=30, activity_baseline=100.0, last_activity=NOW
        ),
        "long_silence": SensorFacts(
            activity_week=100, activity_baseline=100.0, last_activity=NOW - timedelta(hours=30)
        ),
        "failing_devices": SensorFacts(
            failing_devices=2, activity_week=100, activity_baseline=100.0, last_activity=NOW
        ),
    }
    zero = priority(base, due=due, now=NOW).score
    for reason, facts in cases.items():
        p = priority(facts, due=due, now=NOW)
        assert p.score > zero, reason
        assert p.keys == (reason,), reason
    assert priority(cases["falling_activity"], due=due, now=NOW).score == 21.0  # 30 x (1 - 0.3)
    # an activity dip on too small a baseline is noise, not a signal
    assert (
        priority(
            SensorFacts(activity_week=1, activity_baseline=5.0, last_activity=NOW), due=due, now=NOW
        ).score
        == 0
    )


def test_red_alert_outranks_a_few_days_late() -> None:
    sos = priority(
        SensorFacts(red_alerts=1, last_activity=NOW), due=NOW + timedelta(days=10), now=NOW
    )
    late = priority(SensorFacts(last_activity=NOW), due=NOW - timedelta(days=3), now=NOW)
    assert sos.score > late.score > 0
    assert late.keys == ("overdue",)
    assert priority(SensorFacts(), due=NOW - timedelta(days=300), now=NOW).score == 20  # capped


def test_visit_rate_arithmetic() -> None:
    r = visit_rate("pinghu-west", "2026-11", [(3, 2, 1), (1, 1, 1), (2, 1, 0), (4, 1, 3)])
    assert (r.priority_residents, r.visited, r.rate, r.not_visited) == (4, 2, 0.5, (2, 3))
    assert visit_rate("x", "2026-11", []).rate is None
    assert visit_rate("x", "2026-11", [(1, 1, 1)]).rate == 1.0


def test_reminder_is_chinese_first() -> None:
    subject, body = reminder_text(name="Wang Fang", site="home-17", due=END, overdue=True)
    assert subject.startswith("探访已逾期")
    assert subject.endswith("Visit overdue: Wang Fang")
    assert body.splitlines()[0].startswith("请在 2026-11-30")
    assert "by 2026-11-30" in body


def test_every_reason_and_flag_has_words_in_the_catalogue() -> None:
    worst = SensorFacts(
        red_alerts=1,
        activity_week=1,
        activity_baseline=50.0,
        last_activity=NOW - timedelta(days=2),
        failing_devices=1,
    )
    late = priority(worst, due=NOW - timedelta(days=3), now=NOW).reasons
    soon = priority(SensorFacts(), due=NOW + timedelta(days=1), now=NOW).reasons
    assert len({r.key for r in (*late, *soon)} | set(Flag)) == 10
    for reason in (*late, *soon):
        for lang in LOCALES:
            message = catalogue(lang)[f"visits.reason.{reason.key}"]
            assert placeholders(message) == {name for name, _ in reason.params}, reason
            assert "{" not in reason_text(reason, lang)
    for flag in Flag:
        assert t(f"visits.reason.{flag}", "zh-CN") != t(f"visits.reason.{flag}", "en")


def test_reasons_carry_their_figures_in_the_readers_language() -> None:
    facts = SensorFacts(
        red_alerts=1,
        yellow_alerts=2,
        activity_week=12,
        activity_baseline=40.0,
        last_activity=NOW - timedelta(hours=30, minutes=20),
        failing_devices=2,
    )
    late = priority(facts, due=NOW - timedelta(days=2, hours=1), now=NOW).reasons
    assert [r.as_json() for r in late] == [
        {"key": "recent_alerts", "params": {"red": 1, "yellow": 2, "green": 0}},
        {"key": "falling_activity", "params": {"percent": 30}},
        {"key": "long_silence", "params": {"hours": 30}},
        {"key": "failing_devices", "params": {"n": 2}},
        {"key": "overdue", "params": {"days": 3}},  # two days and an hour: into the third
    ]
    assert [reason_text(r, "zh-CN") for r in late] == [
        "近14天有警报：红色 1、黄色 2、绿色 0",
        "活动量降至平时的 30%",
        "已 30 小时无动静",
        "2 台设备故障",
        "探访已逾期 3 天",
    ]
    assert [reason_text(r, "en") for r in late] == [
        "alerts in the last 14 days: red 1, yellow 2, green 0",
        "activity down to 30% of usual",
        "no sign of activity for 30 h",
        "failing devices: 2",
        "visit overdue by 3 d",
    ]
    [soon] = priority(SensorFacts(), due=NOW + timedelta(hours=30), now=NOW).reasons
    assert (soon.key, reason_text(soon, "en")) == ("due_soon", "visit due within 2 d")
    # no language is glued to another in one string
    assert not any(" / " in reason_text(r, lang) for r in late for lang in LOCALES)


def test_a_device_finding_renders_in_one_language() -> None:
    params = {"device": "smoke-1", "battery": "12"}
    assert finding_text("low_battery", params, "en") == "device smoke-1 battery low (12%)"
    assert finding_text("low_battery", params, "zh-CN") == "设备 smoke-1 电量低 (12%)"
    # the stored record keeps both, Chinese first, for readers of the table
    assert finding_record("low_battery", params) == (
        "设备 smoke-1 电量低 (12%) / device smoke-1 battery low (12%)"
    )
