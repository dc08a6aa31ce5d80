"""Notification settings and delivery history over the API, per role."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from alerts.notify.wiring import config_from, open_channels
from alerts.notify.worker import run_cycle
from dashboard_api.app import create_app
from devices.db import open_pool
from devices.settings import Settings
from devtools.seed import DemoPopulation
from tests.notify_servers import http_sink
from tests.services import Services, query, seed
from tests.test_api import _login, _raise_sos

World = tuple[TestClient, DemoPopulation, str]


@pytest.fixture
def world(services: Services, database_url: str) -> Iterator[World]:
    pop = seed(services, database_url)
    with TestClient(create_app(Settings(database_url=database_url))) as client:
        yield client, pop, database_url


def _deliver(url: str) -> None:
    async def go() -> None:
        settings = Settings(database_url=url)
        pool = await open_pool(url, name="notify-api-test", max_size=2)
        try:
            async with open_channels(settings) as channels:
                await run_cycle(
                    pool, channels=channels, config=config_from(settings), now=datetime.now(UTC)
                )
        finally:
            await pool.close()

    asyncio.run(go())


def test_family_sets_their_own_preferences_and_sees_their_deliveries(world: World) -> None:
    client, pop, url = world
    family = _login(client, pop, "family-home17")
    me = client.get("/api/me", headers=family).json()["user_id"]
    first = client.get("/api/notifications/preferences", headers=family).json()
    assert first["configured"] is False
    assert first["colours"] == ["red", "yellow"]
    with http_sink() as sink:
        body = {
            "colours": ["red"],
            "channels": [
                {"kind": "webhook", "address": sink.url},
                {"kind": "email", "address": "daughter@example.cn"},
                {"kind": "sms", "address": "+8613800000000"},
            ],
            "quiet_start": "22:00",
            "quiet_end": "07:00",
            "language": "zh",
            # Off, or after 08:00 in Shanghai the daily summary is due too and rides along.
            "daily_summary": False,
        }
        r = client.put("/api/notifications/preferences", headers=family, json=body)
        assert r.status_code == 200, r.text
        saved = r.json()
        assert saved["configured"] is True
        assert [c["kind"] for c in saved["channels"]] == ["webhook", "email", "sms"]
        assert len(saved["webhook_secret"]) > 30
        again = client.put("/api/notifications/preferences", headers=family, json=body).json()
        assert again["webhook_secret"] == saved["webhook_secret"]  # kept across saves
        _raise_sos(url, "btn-0042")
        _deliver(url)
    assert len(sink.received) == 1
    assert "紧急" in sink.received[0].json()["subject"]
    history = client.get("/api/notifications/deliveries", headers=family).json()
    assert [(h["user_id"], h["state"], h["delivered_via"]) for h in history] == [
        (me, "delivered", "webhook")
    ]
    assert history[0]["attempt_log"][0]["receipt"].startswith("HTTP 200")
    homes, sunrise = _login(client, pop, "staff-homes"), _login(client, pop, "staff-sunrise")
    seen = client.get(f"/api/notifications/deliveries?user_id={me}", headers=homes).json()
    assert [h["id"] for h in seen] == [history[0]["id"]]  # staff of the relative's site
    assert client.get("/api/notifications/deliveries", headers=sunrise).json() == []


@pytest.mark.parametrize(
    "body",
    [
        {"channels": [{"kind": "sms", "address": "call me"}]},
        {"channels": [{"kind": "email", "address": "not-an-address"}]},
        {"channels": [{"kind": "webhook", "address": "ftp://example.cn/x"}]},
        {"channels": [{"kind": "pigeon", "address": "roof"}]},
        {"channels": [{"kind": "email", "address": "李@example.cn"}]},
        {"channels": [{"kind": "webhook", "address": "http://example.cn/\u0000"}]},
        {"quiet_start": "22:00"},
        {"quiet_start": "22:00+08:00", "quiet_end": "07:00"},
        {"timezone": "Mars/Olympus"},
        {"colours": ["purple"]},
        {"language": "fr"},
    ],
)
def test_bad_preferences_are_refused_with_422(world: World, body: dict[str, object]) -> None:
    client, pop, _ = world
    family = _login(client, pop, "family-home17")
    r = client.put("/api/notifications/preferences", headers=family, json=body)
    assert r.status_code == 422, r.text


def test_who_may_see_whose_notification_settings(world: World) -> None:
    client, pop, url = world
    family = _login(client, pop, "family-home17")
    fid = client.get("/api/me", headers=family).json()["user_id"]
    client.put(
        "/api/notifications/preferences",
        headers=family,
        json={"channels": [{"kind": "email", "address": "d@example.cn"}]},
    )
    homes, sunrise = _login(client, pop, "staff-homes"), _login(client, pop, "staff-sunrise")
    admin = _login(client, pop, "admin")
    path = f"/api/notifications/users/{fid}/preferences"
    seen = client.get(path, headers=homes)
    assert seen.status_code == 200
    assert seen.json()["channels"] == [{"kind": "email", "address": "d@example.cn"}]
    assert seen.json()["webhook_secret"] is None  # the secret is the member's alone
    assert client.get(path, headers=admin).status_code == 200
    assert client.get(path, headers=sunrise).status_code == 404  # another site's family
    assert (
        client.get(f"/api/notifications/deliveries?user_id={fid}", headers=sunrise).status_code
        == 404
    )
    others = [
        r["user_id"] for r in query(url, "SELECT user_id FROM users WHERE user_id <> %s", (fid,))
    ]
    for other in others:  # a family member cannot look at anyone else, staff included
        assert (
            client.get(f"/api/notifications/users/{other}/preferences", headers=family).status_code
            == 404
        )
        assert (
            client.get(f"/api/notifications/deliveries?user_id={other}", headers=family).status_code
            == 404
        )
    for staff in (homes, admin):  # staff look, they do not set a family's preferences
        assert client.get("/api/notifications/preferences", headers=staff).status_code == 403
        assert (
            client.put("/api/notifications/preferences", headers=staff, json={}).status_code == 403
        )
    for p in ("/api/notifications/preferences", "/api/notifications/deliveries", path):
        assert client.get(p).status_code == 401
