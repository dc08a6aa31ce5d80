"""The pages in a real headless Chromium (Debian's package; no browser download): staff see
a red SOS arrive live and accept it, the family sees it and how it was handled. Writes a
screenshot of each page to artifacts/screenshots/."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from devtools.seed import DemoPopulation
from tests.live_server import serve
from tests.services import ROOT, Services, device, publish, running, seed, wait_for_beat, worker_env
from tests.test_ingest_integration import wait_for_ingest

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = ROOT / "artifacts" / "screenshots"
PHONE = {"width": 390, "height": 844}
OWN_SHOTS = (
    "family-phone.png",
    "family.png",
    "login.png",
    "station-phone.png",
    "station-red-alert.png",
    "station.png",
)

# A week of plausible readings for the home-17 resident, and two ailing devices. The day is
# the site's (Asia/Shanghai): up at 06:30, about from 07:00 to 21:59, in bed at 22:00. Until
# session 14 these were UTC hours, so from 02:00 to 06:30 UTC the resident had been "in bed"
# since 06:00 local, past the 4-h cap: an inactivity alert, and the test failed at those hours.
HISTORY = """
UPDATE device_assignments SET during = tstzrange(now() - interval '30 days', NULL);
INSERT INTO events (time, device_key, name, value_bool)
SELECT t, (SELECT device_key FROM devices WHERE device_id = 'pir-0042'), 'motion', true
FROM generate_series(now() - interval '7 days', now() - interval '5 minutes', interval '7 minutes') t
WHERE extract(hour FROM t AT TIME ZONE 'Asia/Shanghai') BETWEEN 7 AND 21 AND random() < 0.6;
INSERT INTO events (time, device_key, name, value_bool)
SELECT (d + h) AT TIME ZONE 'Asia/Shanghai', (SELECT device_key FROM devices WHERE device_id = 'bed-0042'),
       'presence', h > interval '12 hours'
FROM generate_series(date_trunc('day', now() AT TIME ZONE 'Asia/Shanghai') - interval '7 days',
                     date_trunc('day', now() AT TIME ZONE 'Asia/Shanghai'), interval '1 day') d,
     (VALUES (interval '6 hours 30 minutes'), (interval '22 hours')) v(h)
WHERE (d + h) AT TIME ZONE 'Asia/Shanghai' < now();
INSERT INTO telemetry (time, device_key, metric, value)
SELECT t, (SELECT device_key FROM devices WHERE device_id = 'wb-0042'), 'hr', 68 + 10 * random()
FROM generate_series(now() - interval '7 days', now(), interval '10 minutes') t;
INSERT INTO telemetry (time, device_key, metric, value)
SELECT t, (SELECT device_key FROM devices WHERE device_id = 'bed-0042'), 'rr', 14 + 3 * random()
FROM generate_series(now() - interval '7 days', now(), interval '10 minutes') t;
INSERT INTO device_status (device_key, online, battery, reported_at, last_seen_at)
SELECT device_key, device_id <> 'pir-0043', CASE WHEN device_id = 'smoke-0044' THEN 8 ELSE 85 END,
       now(), now() - CASE WHEN device_id = 'pir-0043' THEN interval '3 hours' ELSE interval '1 minute' END
FROM devices WHERE site_id LIKE 'home-%';
"""


@pytest.fixture
def pop(services: Services, database_url: str) -> DemoPopulation:
    """Seeded before the browser starts: Playwright's sync API keeps an event loop running."""
    population = seed(services, database_url)
    with psycopg.connect(database_url) as conn:
        conn.execute(HISTORY)
    return population


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


def _sign_in(page: Page, base: str, pop: DemoPopulation, username: str) -> None:
    user = next(u for u in pop.users if u.username == username)
    page.goto(f"{base}/login")
    page.fill("#username", username)
    page.fill("#password", user.password)
    page.click("#signin")


def _shot(page: Page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def english(page: Page, base: str) -> None:
    """Choose English as on the sign-in page's language switch."""
    page.context.add_cookies([{"name": "eldercare_locale", "value": "en", "url": base}])


def _fits_width(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))


def test_staff_accepts_a_live_sos_and_the_family_sees_how_it_was_handled(
    services: Services, database_url: str, pop: DemoPopulation, browser: Browser
) -> None:
    # only this test's own files: the other browser tests write theirs here too, perhaps at
    # the same time (pytest-xdist runs test files in parallel)
    for name in OWN_SHOTS:
        (SHOTS / name).unlink(missing_ok=True)
    SHOTS.mkdir(parents=True, exist_ok=True)
    env = worker_env(services, database_url)
    with serve(database_url) as base, running("ingest", env), running("alerts", env) as alerts:
        wait_for_ingest(services, database_url, pop)
        wait_for_beat(database_url, alerts)
        staff = browser.new_page(viewport={"width": 1280, "height": 900})
        english(staff, base)  # zh-CN is the site's default: tests/test_pages_i18n.py
        staff.goto(f"{base}/login")
        _shot(staff, "login")
        wrong = staff.locator("#error")
        staff.fill("#username", "staff-homes")
        staff.fill("#password", "not-the-password")
        staff.click("#signin")
        expect(wrong).to_contain_text("Wrong username or password")
        _sign_in(staff, base, pop, "staff-homes")
        staff.wait_for_url(f"{base}/station")
        expect(staff.locator("#live-dot.on")).to_be_visible()
        staff.click("#sound")  # a user gesture unlocks WebAudio
        staff.evaluate(
            "window.__beeps = 0; const b = beep; window.beep = () => { window.__beeps++; b(); }"
        )

        family = browser.new_page(viewport=PHONE)
        english(family, base)
        _sign_in(family, base, pop, "family-home17")
        family.wait_for_url(f"{base}/family")
        expect(family.locator("#live-dot.on")).to_be_visible()
        expect(family.locator("#alerts")).to_contain_text("No alerts")
        # the watch's promise (GET /api/residents/{id}/watch), on both pages
        expect(family.locator("#watch")).to_contain_text("the carers are alerted by")
        expect(family.locator("#watch")).to_contain_text("the bed-exit watch")
        expect(staff.locator("#watch")).to_contain_text(
            re.compile(r"If nothing moves \((at home|in bed)\)")
        )
        expect(staff.locator("#watch svg.chart")).to_have_count(3)  # at home, seated, in bed

        btn = device(pop, "btn-0042")
        pressed = time.monotonic()
        publish(
            services,
            username=btn.device_id,
            password=btn.password,
            topic=f"eldercare/v1/{btn.site_id}/{btn.device_id}/event",
            payload=json.dumps([{"bn": "btn-0042:", "bt": time.time(), "n": "sos", "vb": True}]),
        )
        # queued, or already offered to a responder on shift by the escalation loop
        card = staff.locator(".alert.red:is([data-state=queued], [data-state=offered])")
        expect(card).to_be_visible(timeout=10_000)
        seen_after = time.monotonic() - pressed
        print(f"SOS press -> red card on the wall: {seen_after:.2f} s")
        assert staff.evaluate("window.__beeps") >= 1, "no sound for a red alert"
        expect(family.locator(".timeline-item.red")).to_be_visible(timeout=10_000)
        _shot(staff, "station-red-alert")
        card.locator("button.accept").click()
        accepted = staff.locator(".alert.red[data-state=accepted]")
        expect(accepted).to_be_visible()
        expect(family.locator(".timeline-item.red .handled")).to_contain_text(
            "a carer has taken it"
        )
        accepted.locator("select").select_option("emergency_handled")
        accepted.locator("button.resolve").click()
        expect(staff.locator(".alert.red:not(.done)")).to_have_count(0)
        # the seeded smoke detector at 8 % stays on the wall as a technical (yellow) ticket
        expect(staff.locator(".alert.yellow")).to_contain_text("battery at 8%")
        expect(staff.locator("#figures")).to_contain_text("Resolved today")
        expect(staff.locator("#devices")).to_contain_text("pir-0043")
        expect(staff.locator("#charts svg")).to_have_count(4)
        _shot(staff, "station")

        handled = family.locator(".timeline-item.red .handled")
        expect(handled).to_contain_text("help given on site", timeout=10_000)
        expect(handled).to_contain_text("answered in")
        expect(family.locator("#week svg")).to_have_count(3)
        expect(family.locator("#notifications")).not_to_be_empty()
        assert _fits_width(family), "family page wider than a phone screen"
        _shot(family, "family-phone")

        family.set_viewport_size({"width": 1280, "height": 900})
        _shot(family, "family")
        staff.set_viewport_size(PHONE)
        staff.reload()
        expect(staff.locator("#charts svg")).to_have_count(4)
        assert _fits_width(staff), "station page wider than a phone screen"
        _shot(staff, "station-phone")
        staff.close()  # end the event streams before the server stops
        family.close()
    assert all((SHOTS / name).exists() for name in OWN_SHOTS)
