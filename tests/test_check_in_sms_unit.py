"""The pure rules of SMS check-ins: how a reply is read, which answer decides, and the
inbound callbacks' numbers and times (issue 17 item 3)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from alerts.detection import check_in as C
from alerts.detection.phone_check_ins import asked_how
from alerts.detection.routine import Activity
from dashboard_api.inbound import RedactKey, _aliyun_time, _number

CHECK = C.PendingCheckIn(check_id=7, device_key=None, asked_at=1000.0, due_at=1600.0, window_s=600)


def test_a_reply_is_fine_only_for_the_words_the_text_asks_for() -> None:
    for fine in ("1", " 1 ", "\uff11", "1。", "好", "好的！", "我很好", "OK", "fine."):
        assert C.read_reply(fine) == "fine", fine
    for help_ in (
        "2",
        "\uff12",
        "救命",
        "帮帮我",
        "摔倒了",
        "不舒服",
        "不好",
        "help",
        "SOS",
        "120",
    ):
        assert C.read_reply(help_) == "help", help_
    for other in ("在家看电视", "谢谢", "", "？"):
        assert C.read_reply(other) == "other", other


@given(st.text(max_size=300))
def test_any_reply_is_read_as_one_of_three(text: str) -> None:
    assert C.read_reply(text) in ("fine", "help", "other")


def test_the_first_reply_in_the_window_decides() -> None:
    assert C.replied(CHECK, [(900.0, "2")]) is None  # before it was asked
    assert C.replied(CHECK, [(1700.0, "2")]) is None  # after its due time
    assert C.replied(CHECK, [(1200.0, "1"), (1100.0, "救命")]) == C.Help(1100.0, "救命")
    answer = C.replied(CHECK, [(1200.0, "在家")])
    assert isinstance(answer, C.Answer)
    assert answer.how == "replied by SMS: '在家'"


def test_a_sign_of_life_before_the_reply_answers_and_a_help_reply_before_it_raises() -> None:
    moved = Activity(t=1150.0, room_kind="living", device_kind="pir", name="motion", value=True)
    first = C.judge(CHECK, [(moved, 5, None)], now=1300.0, replies=[(1250.0, "2")])
    assert first == C.Answer(1150.0, "sign of life")
    asked = C.judge(CHECK, [(moved, 5, None)], now=1300.0, replies=[(1100.0, "2")])
    assert asked == C.Help(1100.0, "2")
    assert C.judge(CHECK, [], now=1599.0) is None
    assert C.judge(CHECK, [], now=1600.0) == "no answer"


def test_the_device_answer_needs_a_device() -> None:
    pressed = Activity(t=1100.0, room_kind=None, device_kind="wristband", name=C.ANSWER, value=None)
    # a check-in asked by SMS has no device: no device's check_in_ok answers it
    assert C.answered(CHECK, [(pressed, 9, "7")]) is None


def test_numbers_times_and_words_as_the_texts_and_callbacks_write_them() -> None:
    assert _number("+86 138-0000-0000") == "13800000000"
    assert _number("13800000000", "86") == "13800000000"
    assert _number("91234567", "852") == "85291234567"
    assert _aliyun_time("2026-12-03 20:15:00") == datetime(2026, 12, 3, 12, 15, tzinfo=UTC)
    assert _aliyun_time("20261203201500") == datetime(2026, 12, 3, 12, 15, tzinfo=UTC)
    assert _aliyun_time("yesterday") is None
    assert asked_how("SMS") == 'texted "reply 1 if you are fine"'
    assert asked_how("wb-1") == 'asked "press if you are fine" on wb-1'


def test_the_access_log_never_shows_the_inbound_token() -> None:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("1.2.3.4:5", "POST", "/api/inbound/sms/aliyun?key=s3cret&x=1", "1.1", 200), None,
    )  # fmt: skip
    assert RedactKey().filter(record)
    assert "s3cret" not in record.getMessage()
    assert "/api/inbound/sms/aliyun?key=***&x=1" in record.getMessage()
