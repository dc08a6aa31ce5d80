"""The 96345 centre console in Debian's Chromium (issue 14 item 4), in zh-CN and en, at desktop
and phone size: the operator signs in, sees the overdue red SOS on the board, finds a resident
by phone, enters a hotline service order, sees it appear; a refused order says why; the
community requests and the provider league table show; axe finds nothing serious.
Screenshots: artifacts/screenshots/console/."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Browser, Page, expect

from alerts.dispatch.orders import Actor, accept_order, arrive
from devices.registry import Conn
from devtools.seed import DemoPopulation
from tests.a11y import audit
from tests.dispatch_world import arun, raise_sos
from tests.live_server import serve
from tests.services import ROOT, query
from tests.test_browser import PHONE, _fits_width, _sign_in, pop  # noqa: F401 - fixture
from tests.test_browser_a11y import browser, red_sos  # noqa: F401 - fixtures

SHOTS = ROOT / "artifacts" / "screenshots" / "console"
DESKTOP = {"width": 1280, "height": 900}
RUNS = (  # (language, size, viewport, service category): zh first, as the site's default
    ("zh-CN", "desktop", DESKTOP, "meal"),
    ("zh-CN", "phone", PHONE, "bathing"),
    ("en", "desktop", DESKTOP, "cleaning"),
    ("en", "phone", PHONE, "escort"),
)
WORDS = {
    "zh-CN": {
        "overdue": "已超时",
        "sos": "紧急呼叫",
        "meal": "助餐",
        "not_created": "未提交",
        "orders": "{} 单",
        "one_overdue": "1 单超时",
        "late": "告警后老人回复短信：“我在女儿家”",
    },
    "en": {
        "overdue": "overdue by",
        "sos": "SOS",
        "meal": "Meals",
        "not_created": "Not entered",
        "orders": "{} orders",
        "one_overdue": "1 overdue",
        "late": "Texted back at",
    },
}


@pytest.fixture
def handled(red_sos: int, database_url: str) -> int:  # noqa: F811
    """An SOS of home-18 that staff-homes accepted in 40 s and reached in 6 min: the league
    table has a provider to rank."""
    at = datetime.now(UTC) - timedelta(minutes=20)
    order_id = raise_sos(database_url, "btn-0043", at=at)
    [user] = query(database_url, "SELECT user_id FROM users WHERE username = 'staff-homes'")
    who = Actor("staff-homes", user["user_id"])

    async def go(conn: Conn) -> None:
        await accept_order(conn, order_id=order_id, actor=who, now=at + timedelta(seconds=40))
        await arrive(conn, order_id=order_id, actor=who, now=at + timedelta(minutes=6))

    arun(database_url, go)
    return order_id


def _newest_service_order(database_url: str) -> int:
    rows = query(
        database_url,
        "SELECT order_id FROM dispatch_orders WHERE kind = 'service' ORDER BY order_id DESC",
    )
    return int(rows[0]["order_id"]) if rows else 0


def _refused_order_says_why(page: Page, words: dict[str, str]) -> None:
    """No resident chosen: said on the page; a resident at the wrong site: the API's 409, said."""
    page.click("#submit")
    expect(page.locator("#form-msg.error")).not_to_be_empty()
    page.fill("#search", "Zheng")
    page.locator("button.match", has_text="Zheng Hui").click()
    page.evaluate("chosen.site_id = 'home-19'")  # as if the resident had moved meanwhile
    page.click("#submit")
    expect(page.locator("#form-msg.error")).to_contain_text(words["not_created"])


def test_the_operator_works_the_console(
    handled: int,
    pop: DemoPopulation,  # noqa: F811
    database_url: str,
    browser: Browser,  # noqa: F811
    red_sos: int,  # noqa: F811
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    # red_sos carries a text the resident sent after the alert (tests/test_browser_a11y.py)
    with serve(database_url) as base:
        for n, (lang, size, viewport, category) in enumerate(RUNS):
            words = WORDS[lang]
            page = browser.new_page(viewport=viewport)
            _sign_in(page, base, pop, "operator-96345")
            page.wait_for_url(f"{base}/console")
            if lang == "en" and RUNS[n - 1][0] != "en":
                page.select_option("#lang", "en")  # the user's choice: the next run opens in it
            # (a page that finds the user's choice differs from its own reloads in that one)
            expect(page.locator("html")).to_have_attribute("lang", lang)
            if n == len(RUNS) - 1:  # the care station is not the operator's page
                page.goto(f"{base}/station", wait_until="commit")  # it moves on at once
                page.wait_for_url(f"{base}/console")

            red = page.locator(f"#board .column.red .alert.red[data-order-id='{red_sos}']")
            expect(red).to_be_visible(timeout=10_000)
            expect(red).to_have_class(re.compile(r"\boverdue\b"))
            expect(red.locator(".countdown")).to_contain_text(words["overdue"])
            expect(red).to_contain_text("Zheng Hui")
            expect(red.locator(".late-reply[data-reading='other']")).to_contain_text(words["late"])
            expect(page.locator("#board .column.red h3")).to_contain_text(words["one_overdue"])
            expect(page.locator("#requests [data-community='pinghu-west']")).to_contain_text(
                words["sos"]
            )
            requests = page.locator("#requests [data-community='pinghu-west']")
            # three SOS (red_sos: one handled, one overdue; handled: one in hand), then the
            # orders entered by the runs before (the top three categories are shown)
            expect(requests).to_contain_text(words["orders"].format(3 + n))
            if n == 1:  # the first run's meal order counts among this month's requests
                expect(requests).to_contain_text(words["meal"])
            league = page.locator("#league tr[data-provider='staff-homes']")
            expect(league).to_contain_text("100")  # accepted within 60 s: the full share
            if n == 0:
                _refused_order_says_why(page, words)

            before = _newest_service_order(database_url)
            page.fill("#search", "138 0013 8017" if n % 2 == 0 else "8017")
            match = page.locator("button.match", has_text="Zheng Hui")
            expect(match).to_have_count(1)
            match.click()
            expect(page.locator("#chosen")).to_contain_text("Zheng Hui")
            page.select_option("#category", category)
            page.fill("#note", f"console test {n}")
            page.click("#submit")
            expect(page.locator("#form-msg")).to_contain_text("#")
            created = _newest_service_order(database_url)
            assert created > before
            expect(page.locator("#form-msg")).to_contain_text(f"#{created}")
            card = page.locator(f"#board .column.green .alert[data-order-id='{created}']")
            expect(card).to_be_visible()
            expect(card).to_contain_text(f"console test {n}")
            [row] = query(
                database_url,
                "SELECT category, colour, resident_id, site_id, note FROM dispatch_orders "
                "WHERE order_id = %s",
                (created,),
            )
            assert (row["category"], row["colour"], row["site_id"]) == (
                category,
                "green",
                "home-17",
            )

            if size == "phone":
                assert _fits_width(page), f"console wider than a phone screen ({lang})"
            audit(page, f"console {lang} {size}")
            SHOTS.mkdir(parents=True, exist_ok=True)  # another browser test may have just cleaned
            page.screenshot(path=str(SHOTS / f"console-{lang}-{size}.png"), full_page=True)
            page.close()  # no event stream here, but close before the server stops
    assert all((SHOTS / f"console-{lang}-{size}.png").exists() for lang, size, _, _ in RUNS)
