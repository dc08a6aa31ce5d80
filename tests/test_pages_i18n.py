"""The pages in Chinese (the site's default) and English, in Debian's Chromium (issue 14): the
wall folds repeated presses into one card with a count and a countdown, the wall TV shows it,
the family form saves event kinds with no internal fields, the language switch and large text
work, and /docs loads nothing from another host. Screenshots: artifacts/screenshots/i18n/."""

from __future__ import annotations

import json
import time
from urllib.parse import urlparse

from playwright.sync_api import Browser, Page, expect

from devtools.seed import DemoPopulation
from tests.live_server import serve
from tests.services import ROOT, Services, device, publish, running, worker_env
from tests.test_browser import PHONE, _sign_in, browser, pop  # noqa: F401 - fixtures
from tests.test_ingest_integration import wait_for_ingest

SHOTS = ROOT / "artifacts" / "screenshots" / "i18n"


def _shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _press(services: Services, population: DemoPopulation, at: float) -> None:
    btn = device(population, "btn-0042")
    publish(
        services,
        username=btn.device_id,
        password=btn.password,
        topic=f"eldercare/v1/{btn.site_id}/{btn.device_id}/event",
        payload=json.dumps([{"bn": "btn-0042:", "bt": at, "n": "sos", "vb": True}]),
    )


def test_pages_in_chinese_and_english(
    services: Services,
    database_url: str,
    pop: DemoPopulation,  # noqa: F811
    browser: Browser,  # noqa: F811
) -> None:
    env = worker_env(services, database_url)
    with serve(database_url) as base, running("ingest", env), running("alerts", env):
        wait_for_ingest(services, database_url, pop)
        login = browser.new_page(viewport={"width": 1280, "height": 900})
        login.goto(f"{base}/login")
        assert login.evaluate("document.documentElement.lang") == "zh-CN"
        expect(login.locator("#signin")).to_have_text("登录")
        _shot(login, "login-zh")

        # two presses of one button, further apart than the debounce: one situation, one card
        now = time.time()
        _press(services, pop, now - 200)
        _press(services, pop, now - 20)
        _sign_in(login, base, pop, "staff-homes")
        login.wait_for_url(f"{base}/station")
        staff = login
        card = staff.locator(".alert.red[data-count='2']")
        expect(card).to_be_visible(timeout=15_000)
        expect(staff.locator(".alert.red")).to_have_count(1)
        expect(card).to_contain_text("紧急呼叫")
        expect(card).to_contain_text("按下了紧急呼叫")
        expect(card.locator(".countdown")).to_contain_text("剩余")
        expect(staff.locator("#figures")).to_contain_text("已超时")
        expect(staff.locator("#charts svg")).to_have_count(4)
        assert "UTC" not in staff.locator("#wall").inner_text()
        _shot(staff, "station-zh")

        tv = browser.new_page(viewport={"width": 1920, "height": 1080})
        _sign_in(tv, base, pop, "staff-homes")
        tv.wait_for_url(f"{base}/station")
        tv.goto(f"{base}/wall-tv")
        expect(tv.locator(".alert.red[data-count='2']")).to_be_visible()
        _shot(tv, "wall-tv-zh")
        tv.close()

        staff.select_option("#lang", "en")
        expect(staff.locator("html")).to_have_attribute("lang", "en")
        expect(staff.locator(".alert.red[data-count='2']")).to_contain_text("pressed SOS")
        expect(staff.locator("#figures")).to_contain_text("Overdue")
        _shot(staff, "station-en")
        staff.close()

        family = browser.new_page(viewport=PHONE)
        _sign_in(family, base, pop, "family-home17")
        family.wait_for_url(f"{base}/family")
        assert family.evaluate("document.documentElement.lang") == "zh-CN"
        expect(family.locator(".timeline-item.red").first).to_contain_text("紧急呼叫")
        form = family.locator("#prefs-form")
        expect(form).to_be_visible()
        for internal in ("user id", "user_id", "configured", "webhook", "updated"):
            assert internal not in form.inner_text().lower()
        assert family.locator("#quiet-start").get_attribute("type") == "time"
        family.locator("#all-kinds").uncheck()
        family.locator("input[data-kind=sos]").check()
        family.locator("input[data-kind=fall]").uncheck()
        family.fill("#phone", "+8613800138000")
        family.locator("input[data-channel=sms]").check()
        family.fill("#quiet-start", "22:00")
        family.fill("#quiet-end", "07:00")
        family.click("#prefs-save")
        expect(family.locator("#prefs-msg")).to_have_text("已保存。")
        family.click("#large")
        assert family.evaluate("document.body.classList.contains('large')")
        _shot(family, "family-zh-large")
        family.reload()
        expect(family.locator("input[data-kind=sos]")).to_be_checked()
        expect(family.locator("input[data-kind=fall]")).not_to_be_checked()
        expect(family.locator("#quiet-start")).to_have_value("22:00")
        family.select_option("#lang", "en")
        expect(family.locator("html")).to_have_attribute("lang", "en")
        expect(family.locator("#prefs-form")).to_contain_text("Which events")
        _shot(family, "family-en")
        family.close()

        docs = browser.new_page()
        hosts: set[str] = set()
        docs.on("request", lambda r: hosts.add(urlparse(r.url).netloc))
        docs.goto(f"{base}/docs")
        expect(docs.locator(".swagger-ui .info")).to_be_visible(timeout=15_000)
        assert hosts == {urlparse(base).netloc}, hosts
        docs.close()
