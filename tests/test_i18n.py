"""The message catalogue (issue 14): both languages complete and alike, times in the site's
zone with a date when not today, explanations built from alert details."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from devices.i18n import LOCALES, catalogue, duration, format_time, parse_locale, placeholders, t
from devices.i18n.explain import explain

NOW = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)  # 14:00 in Shanghai


def test_catalogues_have_the_same_keys_and_placeholders() -> None:
    zh, en = catalogue("zh-CN"), catalogue("en")
    assert set(zh) == set(en), set(zh) ^ set(en)
    differ = {k for k in zh if placeholders(zh[k]) != placeholders(en[k])}
    assert not differ, differ
    assert all(zh[k].strip() and en[k].strip() for k in zh if k != "fmt.time_today")


def test_chinese_catalogue_is_chinese() -> None:
    """Catches an English sentence pasted into zh-CN: most messages with letters have Han."""
    zh = catalogue("zh-CN")
    latin_only = [
        k
        for k, v in zh.items()
        if any(c.isascii() and c.isalpha() for c in v.replace("{", " ").split("}")[-1])
        and not any("\u4e00" <= c <= "\u9fff" for c in v)
        and not k.startswith(("lang.", "unit.", "fmt."))
    ]
    assert latin_only == [], latin_only


def test_parse_locale() -> None:
    assert parse_locale("zh") == "zh-CN"
    assert parse_locale("en-GB,en;q=0.9") == "en"
    assert parse_locale("fr-FR, zh-TW;q=0.5") == "zh-CN"
    assert parse_locale("fr", "en") == "en"
    assert parse_locale(None) == "zh-CN"


def test_time_in_site_zone_with_date_when_not_today() -> None:
    tz = "Asia/Shanghai"
    assert format_time(NOW, tz=tz, locale="zh-CN", now=NOW) == "14:00"
    assert format_time(NOW - timedelta(days=2), tz=tz, locale="zh-CN", now=NOW) == "12月1日 14:00"
    assert format_time(NOW - timedelta(days=2), tz=tz, locale="en", now=NOW) == "1 Dec 14:00"
    old = datetime(2005, 1, 1, 0, 30, tzinfo=UTC)
    assert format_time(old, tz=tz, locale="zh-CN", now=NOW) == "2005年1月1日 08:30"
    assert format_time(old, tz=tz, locale="en", now=NOW) == "1 Jan 2005 08:30"
    # 23:30 UTC is already tomorrow in Shanghai: a date, not "07:30"
    late = datetime(2026, 12, 2, 15, 59, tzinfo=UTC)
    assert format_time(late, tz=tz, locale="en", now=NOW) == "2 Dec 23:59"


def test_durations() -> None:
    assert duration(45, "zh-CN") == "45 秒"
    assert duration(182.3 * 60, "en") == "3 h 2 min"
    assert duration(600, "zh-CN") == "10 分钟"


def test_sos_explained_in_each_language_from_details() -> None:
    d = {"device_id": "sos-7", "device_kind": "sos_button", "room_name": "201"}
    kw = dict(resident="王秀英", site_id="s1", occurred_at=NOW, tz="Asia/Shanghai", now=NOW)
    zh = explain("sos", d, locale="zh-CN", **kw)  # type: ignore[arg-type]
    en = explain("sos", d, locale="en", **kw)  # type: ignore[arg-type]
    assert zh == "王秀英（201）按下了紧急呼叫（紧急按钮 sos-7）"
    assert en == "王秀英 (201) pressed SOS (SOS button sos-7)"


def test_late_sos_names_its_own_date() -> None:
    stamped = datetime(2005, 1, 1, tzinfo=UTC)
    d = {"device_id": "b1", "late": True, "event_at": stamped.isoformat(), "late_min": 9999}
    text = explain(
        "sos",
        d,
        resident="Li",
        site_id="s1",
        occurred_at=stamped,
        locale="zh-CN",
        tz="Asia/Shanghai",
        now=NOW,
    )
    assert text.startswith("迟报：事件发生于 2005年1月1日 08:00，9999 分钟后")


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize(
    ("kind", "details", "needle_zh", "needle_en"),
    [
        ("fall", {"device_kind": "radar", "confidence": 0.9, "quiet_s": 30}, "90%", "30 s"),
        ("vitals_hr", {"value": 131.0, "range": [50, 110], "lasted_s": 600}, "10 分钟", "10 min"),
        (
            "inactivity",
            {
                "state": "quiet",
                "elapsed_s": 11400,
                "usual_max_s": 7200,
                "room_kind": "bathroom",
                "routine_learned": False,
            },
            "卫生间",
            "bathroom",
        ),
        (
            "inactivity",
            {
                "state": "door",
                "elapsed_s": 8000,
                "threshold_s": 7200,
                "check_in": {"outcome": "no_answer", "window_s": 600},
            },
            "按键报平安：10 分钟内无应答",
            "no answer within 10 min",
        ),
        ("low_battery", {"device_kind": "wristband", "battery": 9}, "9%", "9%"),
        ("bed_exit", {"away_s": 1800, "left_at": NOW.isoformat()}, "30 分钟", "30 min"),
        (
            "wandering",
            {"exit_door": True, "opened_at": "2026-12-02T18:10:00+00:00"},
            "出口门",
            "exit door",
        ),
        ("some_future_kind", {}, "其他警报", "Other alert"),
    ],
)
def test_each_kind_renders(
    kind: str, details: dict[str, object], needle_zh: str, needle_en: str, locale: str
) -> None:
    text = explain(
        kind,
        details,
        resident="Li",
        site_id="s1",
        occurred_at=NOW,
        locale=locale,  # type: ignore[arg-type]
        tz="Asia/Shanghai",
        now=NOW,
    )
    assert (needle_zh if locale == "zh-CN" else needle_en) in text


def test_t_fills_placeholders_and_unknown_key_raises() -> None:
    assert t("dur.h_min", "zh-CN", h=2, m=10) == "2 小时 10 分钟"
    with pytest.raises(KeyError):
        t("no.such.key", "en")


def test_api_errors_speak_the_callers_language_with_a_stable_code() -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from dashboard_api.errors import ApiError, api_error
    from devices.settings import Settings

    app = FastAPI()
    app.state.settings = Settings()
    app.add_exception_handler(ApiError, api_error)

    @app.get("/x")
    async def x() -> None:
        raise ApiError(404, "error.no_such_resident")

    client = TestClient(app)
    zh = client.get("/x")
    en = client.get("/x", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert (zh.status_code, en.status_code) == (404, 404)
    assert zh.json() == {"detail": "没有这位老人", "code": "error.no_such_resident"}
    assert en.json() == {"detail": "no such resident", "code": "error.no_such_resident"}


def test_pages_declare_their_language_and_hold_no_markers() -> None:
    from dashboard_api.pages import render

    for name in ("login.html", "station.html", "wall.html", "family.html"):
        for locale in LOCALES:
            page = render(name, locale)
            assert f'<html lang="{locale}">' in page
            assert "{{" not in page
    assert "登录" in render("login.html", "zh-CN")
    assert "Sign in" in render("login.html", "en")
