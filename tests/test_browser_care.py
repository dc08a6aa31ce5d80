"""The care pages on a phone in a real headless Chromium (issue 15): a visitor records a visit
with a follow-up that opens a service order; a safety officer submits a round and closes a
finding. The visitor reads English, the officer Chinese (the site's default): every word from the
catalogue. Screenshots in artifacts/screenshots/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from devtools.seed import DemoPopulation
from tests.live_server import serve
from tests.services import Services, query, seed
from tests.test_browser import ARGS, CHROMIUM, PHONE, SHOTS, _sign_in, english


@pytest.fixture
def pop(services: Services, database_url: str) -> DemoPopulation:
    return seed(services, database_url)


@pytest.fixture
def browser(pop: DemoPopulation) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/setup.sh (installs Debian's chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def test_record_a_visit_and_close_a_finding_on_a_phone(
    browser: Browser, pop: DemoPopulation, database_url: str
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with serve(database_url) as base:
        page = browser.new_page(viewport=PHONE)
        english(page, base)
        _sign_in(page, base, pop, "visitor-west")
        expect(page).to_have_url(f"{base}/visits")
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(page.locator("h1")).to_have_text("Visits")
        rows = page.locator("#plan [data-resident]")
        expect(rows).to_have_count(2)
        expect(page.locator("#rate")).to_contain_text("0/2")
        # why each is on the plan, in the reader's language only (flagged 30 days ago: overdue)
        reasons = page.locator("#plan .reasons")
        expect(reasons).to_have_count(2)
        expect(reasons.first).to_contain_text("visit overdue by ")
        expect(reasons.first).not_to_contain_text("逾期")
        # home-17's resident needs one visit a month (home-18's two: one would not be enough)
        rows.filter(has_text="Zheng Hui").locator("button.record").click()
        page.uncheck("input[name=mood_ok]")
        page.fill("textarea[name=notes]", "seems low; fridge empty")
        page.check("#follow-up")
        page.select_option("#category", "meal")
        page.click("#save")
        expect(page.locator("#result")).to_contain_text("service order #")
        expect(page.locator("#rate")).to_contain_text("1/2")
        page.screenshot(path=str(SHOTS / "visits-phone.png"), full_page=True)
        [visit] = query(database_url, "SELECT mood_ok, notes, order_id FROM visits")
        assert visit["mood_ok"] is False
        assert visit["notes"] == "seems low; fridge empty"
        [order] = query(
            database_url,
            "SELECT category, kind FROM dispatch_orders WHERE order_id = %s",
            (visit["order_id"],),
        )
        assert (order["category"], order["kind"]) == ("meal", "service")

        officer = browser.new_page(viewport=PHONE)
        _sign_in(officer, base, pop, "safety-sunrise")
        expect(officer).to_have_url(f"{base}/safety")
        expect(officer.locator("html")).to_have_attribute("lang", "zh-CN")
        expect(officer.locator("#logout")).to_have_text("退出")
        expect(officer.locator("#items [data-item]")).to_have_count(5)
        officer.uncheck("input[name='ok:fire_exits']")
        officer.fill("input[name='note:fire_exits']", "exit 2 blocked by boxes")
        officer.click("#round-form button[type=submit]")
        expect(officer.locator("#round-result")).to_contain_text("发现隐患 1 处")
        finding = officer.locator("#findings [data-finding]", has_text="exit 2 blocked by boxes")
        finding.locator("input.close-note").fill("boxes moved to store")
        finding.locator("button.close").click()
        expect(finding).to_contain_text("boxes moved to store")
        officer.screenshot(path=str(SHOTS / "safety-phone.png"), full_page=True)
        [closed] = query(
            database_url,
            "SELECT closed_at, closure_note FROM safety_findings WHERE source = 'round'",
        )
        assert closed["closed_at"] is not None
        assert closed["closure_note"] == "boxes moved to store"
