"""Accessibility audit (issue 14, "Done when") of every page the browser tests visit -- sign-in,
care station, wall TV, family, centre console, visits, safety rounds -- in zh-CN and en, at
desktop and phone size, in Debian's Chromium, with axe-core (tests/a11y.py): no violation of
impact serious or critical.
The pages hold data while audited (a red SOS, a week of readings, the care programme), so
the cards, charts, tables and forms are judged, not empty shells."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from alerts.dispatch.orders import Actor, accept_order, resolve_order
from devices.domain import Outcome
from devices.registry import Conn
from devtools.seed import DemoPopulation
from tests.a11y import audit
from tests.dispatch_world import arun, raise_sos
from tests.live_server import serve
from tests.services import query
from tests.test_browser import ARGS, CHROMIUM, PHONE, _sign_in, pop  # noqa: F401 - fixture

DESKTOP = {"width": 1280, "height": 900}
# every page as audited, both languages and sizes (docs/pages.md shows a selection)
SHOTS = Path(__file__).resolve().parent.parent / "artifacts" / "screenshots" / "pages"
# (user, page, what shows the page has loaded its data, a switch that shows handled orders)
PAGES = (
    ("staff-homes", "/station", "#wall .alert.red", "#show-done"),
    ("staff-homes", "/wall-tv", "#wall .alert.red", None),
    ("family-home17", "/family", "#alerts .timeline-item", None),
    ("operator-96345", "/console", "#board .alert.red", "#show-done"),
    ("visitor-west", "/visits", "#plan [data-resident]", None),
    ("safety-sunrise", "/safety", "#items [data-item]", None),
)


@pytest.fixture
def red_sos(pop: DemoPopulation, database_url: str) -> int:  # noqa: F811
    """An unanswered SOS of home-17's resident, three minutes old (overdue), and a handled one
    of home-19's, before the browser starts (Playwright's sync API keeps an event loop
    running)."""
    at = datetime.now(UTC) - timedelta(minutes=30)
    done = raise_sos(database_url, "btn-0044", at=at)
    admin = Actor("admin")

    async def handle(conn: Conn) -> None:
        await accept_order(conn, order_id=done, actor=admin, now=at + timedelta(seconds=30))
        await resolve_order(
            conn,
            order_id=done,
            actor=admin,
            outcome=Outcome.FALSE_ALARM,
            note="pressed by mistake",
            now=at + timedelta(minutes=2),
        )

    arun(database_url, handle)
    order = raise_sos(database_url, "btn-0042", at=datetime.now(UTC) - timedelta(minutes=3))
    # a text from the resident after the alert (alerts.detection.sms_replies notes it on the
    # alert): shown on the wall and the console, and audited with them
    query(
        database_url,
        "UPDATE alerts SET details = details || jsonb_build_object('late_replies',"
        " jsonb_build_array(jsonb_build_object('at', now(), 'text', '我在女儿家',"
        " 'reading', 'other'))) WHERE alert_id = (SELECT alert_id FROM dispatch_orders"
        " WHERE order_id = %s) RETURNING 1",
        (order,),
    )
    return order


@pytest.fixture
def browser(red_sos: int) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/setup.sh (installs Debian's chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def _both_languages(page: Page, name: str, ready: str, show_done: str | None = None) -> list[str]:
    """Audit in the site's language (zh-CN), then in English chosen with the page's own
    switch (with handled orders shown, where the page can), each at desktop and phone size;
    the switch is set back after, as the user's choice is stored."""
    lesser = []
    for lang in ("zh-CN", "en"):
        if lang == "en":
            page.select_option("#lang", "en")
        expect(page.locator("html")).to_have_attribute("lang", lang)
        expect(page.locator(ready).first).to_be_visible(timeout=10_000)
        if show_done and lang == "en":
            page.check(show_done)
            expect(page.locator(".alert.done").first).to_be_visible()
        for size, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            page.set_viewport_size(viewport)
            found = audit(page, f"{name} {lang} {size}")
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / f"{name}-{lang}-{size}.png"), full_page=True)
            lesser += [f"{name} {lang} {size}: {v['id']} ({v['impact']})" for v in found]
        page.set_viewport_size(DESKTOP)
    page.select_option("#lang", "zh-CN")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    return lesser


def test_every_page_passes_axe_in_both_languages(
    pop: DemoPopulation,  # noqa: F811
    database_url: str,
    browser: Browser,
) -> None:
    lesser: list[str] = []
    shutil.rmtree(SHOTS, ignore_errors=True)  # only this run's pictures count below
    with serve(database_url) as base:
        login = browser.new_page(viewport=DESKTOP)
        login.goto(f"{base}/login")
        lesser += _both_languages(login, "login", "#signin")
        login.close()
        for username, path, ready, show_done in PAGES:
            page = browser.new_page(viewport=DESKTOP)
            _sign_in(page, base, pop, username)  # in the site's language: no choice stored
            page.wait_for_url(lambda url: not url.endswith("/login"))
            if not page.url.endswith(path):
                page.goto(f"{base}{path}")
            if path in ("/station", "/wall-tv", "/console"):  # the resident's late text
                expect(page.locator(".alert.red .late-reply").first).to_contain_text("我在女儿家")
            lesser += _both_languages(page, path.strip("/"), ready, show_done)
            page.close()  # end its event stream before the server stops
    print("moderate or minor findings:", lesser or "none")
    names = ["login"] + [path.strip("/") for _, path, _, _ in PAGES]
    for name in names:
        for lang in ("zh-CN", "en"):
            for size in ("desktop", "phone"):
                assert (SHOTS / f"{name}-{lang}-{size}.png").stat().st_size > 5_000, name
