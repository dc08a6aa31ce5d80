"""Timelines, status now, device health, today's figures and alert detail over a real
database with readings placed at known times."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dashboard_api.app import create_app
from dashboard_api.deps import now
from devices.settings import Settings
from devtools.seed import DemoPopulation
from tests.services import Services, query, seed
from tests.test_api import _login, _raise_sos

BASE = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=5)


def _at(minutes: int) -> datetime:
    return BASE + timedelta(minutes=minutes)


@pytest.fixture
def world(
    services: Services, database_url: str
) -> Iterator[tuple[TestClient, DemoPopulation, str]]:
    pop = seed(services, database_url)
    key = {r["device_id"]: r["device_key"] for r in query(database_url, "SELECT * FROM devices")}
    with psycopg.connect(database_url) as conn:
        # the devices were assigned at seeding: pretend it was long before these readings
        conn.execute(
            "UPDATE device_assignments SET during = tstzrange(now() - interval '1 year', NULL)"
        )
        for minute in (10, 20, 70):
            conn.execute(
                "INSERT INTO events (time, device_key, name, value_bool) VALUES (%s,%s,'motion',true)",
                (_at(minute), key["pir-0042"]),
            )
        for minute, inbed in ((30, True), (90, False)):
            conn.execute(
                "INSERT INTO events (time, device_key, name, value_bool) VALUES (%s,%s,'presence',%s)",
                (_at(minute), key["bed-0042"], inbed),
            )
        for minute, metric, value in ((5, "hr", 60.0), (25, "hr", 80.0), (65, "rr", 15.0)):
            conn.execute(
                "INSERT INTO telemetry (time, device_key, metric, value) VALUES (%s,%s,%s,%s)",
                (_at(minute), key["wb-0042"] if metric == "hr" else key["bed-0042"], metric, value),
            )
        conn.execute(
            "INSERT INTO device_status (device_key, online, battery, reported_at, last_seen_at) "
            "VALUES (%s, true, 12, now(), now()), (%s, true, 90, now(), now())",
            (key["btn-0042"], key["wb-0042"]),
        )
    with TestClient(create_app(Settings(database_url=database_url))) as client:
        yield client, pop, database_url


def test_timeline_buckets_activity_bed_and_vitals(
    world: tuple[TestClient, DemoPopulation, str],
) -> None:
    client, pop, _ = world
    family = _login(client, pop, "family-home17")
    rid = client.get("/api/me", headers=family).json()["resident_ids"][0]
    r = client.get(
        f"/api/residents/{rid}/timeline",
        params={"start": BASE.isoformat(), "end": _at(180).isoformat()},
        headers=family,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["bucket_seconds"] == 3600
    points = [
        (
            p["motion_events"],
            p["in_bed_minutes"],
            p["hr_avg"],
            p["hr_min"],
            p["hr_max"],
            p["rr_avg"],
        )
        for p in body["points"]
    ]
    assert points == [
        (2, 30.0, 70.0, 60.0, 80.0, None),
        (1, 30.0, None, None, None, 15.0),
        (0, 0.0, None, None, None, None),
    ]
    daily = client.get(
        f"/api/residents/{rid}/timeline",
        params={"start": (BASE - timedelta(days=30)).isoformat(), "end": _at(180).isoformat()},
        headers=family,
    ).json()
    assert daily["bucket_seconds"] == 86400
    assert sum(p["motion_events"] for p in daily["points"]) == 3
    status = client.get(f"/api/residents/{rid}/status", headers=family).json()
    assert (status["in_bed"], status["hr"], status["rr"]) == (False, 80.0, 15.0)
    assert datetime.fromisoformat(status["last_motion_at"]) == _at(70)
    assert status["devices_low_battery"] == 1
    for params in (
        {"start": _at(60).isoformat(), "end": BASE.isoformat()},
        {"start": "1900-01-01T00:00:00Z"},
        {"end": "0001-01-01T04:19:06Z"},  # schemathesis: the default start overflowed (500)
        {"end": "9999-12-31T23:59:59Z"},
        {"start": (BASE - timedelta(days=500)).isoformat(), "end": BASE.isoformat()},
        {"start": (BASE - timedelta(days=300)).isoformat(), "bucket": "hour"},
        {"bucket": "minute"},
    ):
        bad = client.get(f"/api/residents/{rid}/timeline", params=params, headers=family)
        assert bad.status_code == 422, params


def test_health_today_and_how_an_alert_was_handled(
    world: tuple[TestClient, DemoPopulation, str],
) -> None:
    client, pop, url = world
    homes, sunrise = _login(client, pop, "staff-homes"), _login(client, pop, "staff-sunrise")
    problems = client.get("/api/device-health?problems_only=true&limit=500", headers=homes).json()
    low = [d for d in problems if d["low_battery"]]
    assert [d["device_id"] for d in low] == ["btn-0042"]
    assert "wb-0042" not in {d["device_id"] for d in problems}  # fresh and charged
    assert all(d["problem"] for d in problems)
    assert {
        d["site_id"] for d in client.get("/api/device-health?limit=500", headers=sunrise).json()
    } == {"sunrise"}
    _raise_sos(url, "btn-0042")
    order = client.get("/api/orders", headers=homes).json()[0]
    assert client.post(f"/api/orders/{order['order_id']}/accept", headers=homes).status_code == 200
    client.post(
        f"/api/orders/{order['order_id']}/resolve",
        headers=homes,
        json={"outcome": "emergency_handled", "note": "helped up"},
    )
    today = client.get("/api/stats/today?tz=UTC", headers=homes).json()
    assert (today["opened"], today["accepted"], today["resolved"], today["open_now"]) == (
        1,
        1,
        1,
        0,
    )
    assert today["median_accept_s"] is not None
    assert today["median_accept_s"] >= 0
    assert client.get("/api/stats/today", headers=sunrise).json()["opened"] == 0
    assert client.get("/api/stats/today?tz=Mars/Base", headers=homes).status_code == 422
    family = _login(client, pop, "family-home17")
    detail = client.get(f"/api/alerts/{order['alert_id']}", headers=family).json()
    assert (detail["order_state"], detail["outcome"], detail["note"]) == (
        "resolved",
        "emergency_handled",
        "helped up",
    )
    # a family is told roles, never staff usernames (issue 14)
    assert [(s["state"], s["by"], s["role"]) for s in detail["steps"]] == [
        ("queued", "system", "system"),
        ("accepted", "staff", "staff"),
        ("resolved", "staff", "staff"),
    ]
    assert client.get(f"/api/alerts/{order['alert_id']}", headers=sunrise).status_code == 404


def test_sign_in_is_throttled_and_pages_carry_security_headers(
    world: tuple[TestClient, DemoPopulation, str],
) -> None:
    client, _pop, _ = world
    # the six attempts happen at one instant (the clock is the test's: a slow machine's argon2
    # must not let the delay run out between them)
    at = datetime.now(UTC)
    client.app.dependency_overrides[now] = lambda: at  # type: ignore[attr-defined]
    try:
        for _ in range(5):
            r = client.post("/api/auth/token", data={"username": "staff-homes", "password": "x"})
            assert r.status_code == 401
        r = client.post("/api/auth/token", data={"username": "staff-homes", "password": "x"})
        assert r.status_code == 429
        assert int(r.headers["Retry-After"]) > 0  # the delay: tests/test_login_throttle.py
    finally:
        client.app.dependency_overrides.pop(now)  # type: ignore[attr-defined]
    assert (
        client.post("/api/auth/token", data={"username": "admin", "password": "x"}).status_code
        == 401
    )
    page = client.get("/station")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "<script>" not in page.text  # no inline scripts: the CSP would block them
    for name in ("login", "family"):
        assert "<script>" not in client.get(f"/{name}").text


def test_tokens_expire_and_disabled_users_are_locked_out(
    world: tuple[TestClient, DemoPopulation, str],
) -> None:
    client, pop, url = world
    family = _login(client, pop, "family-home17")
    staff = _login(client, pop, "staff-homes")
    assert client.get("/api/me", headers=family).status_code == 200
    app = client.app
    assert isinstance(app, FastAPI)
    app.dependency_overrides[now] = lambda: datetime.now(UTC) + timedelta(hours=12, minutes=1)
    try:
        assert client.get("/api/me", headers=family).status_code == 401
        assert client.post("/api/live/ticket", headers=family).status_code == 401
    finally:
        app.dependency_overrides.clear()
    assert client.get("/api/me", headers=staff).status_code == 200
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE users SET disabled_at = now() WHERE username = 'staff-homes'")
    assert client.get("/api/me", headers=staff).status_code == 401
    right = next(u for u in pop.users if u.username == "staff-homes").password
    r = client.post("/api/auth/token", data={"username": "staff-homes", "password": right})
    assert r.status_code == 401
