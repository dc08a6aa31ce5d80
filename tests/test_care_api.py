"""Visits over the real database and API (issue 15): who sees which residents, a visit
recorded moves the month's rate, a follow-up opens a service order, alerts raise a resident
up the plan, reminders go to the visitor's outbox once."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from alerts.care.reminders import enqueue_visit_reminders
from dashboard_api.app import create_app
from devices.settings import Settings
from devtools.seed import DemoPopulation
from simulators.care_month import play_care_month
from tests.dispatch_world import arun
from tests.live_server import serve
from tests.services import Services, query, seed
from tests.test_api import _raise_sos
from tests.test_orders_api import demo_login

World = tuple[TestClient, DemoPopulation, str]
CHECKS = {
    "eating_ok": True,
    "mobility_ok": True,
    "mood_ok": False,
    "home_safety_ok": True,
    "devices_ok": True,
}


@pytest.fixture
def world(services: Services, database_url: str) -> Iterator[World]:
    pop = seed(services, database_url)
    with TestClient(create_app(Settings(database_url=database_url))) as client:
        yield client, pop, database_url


def resident_of(url: str, site: str) -> int:
    return int(
        query(url, "SELECT resident_id FROM residents WHERE site_id = %s", (site,))[0][
            "resident_id"
        ]
    )


def month_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m")


def test_each_role_sees_its_own_plan(world: World) -> None:
    client, pop, _ = world
    sites = {
        user: {
            e["site_id"]
            for e in client.get("/api/care/plan", headers=demo_login(client, pop, user)).json()
        }
        for user in ("admin", "staff-sunrise", "staff-homes", "visitor-west", "volunteer-east")
    }
    assert sites["admin"] == {"sunrise", "home-17", "home-18", "home-19"}
    assert sites["staff-sunrise"] == sites["volunteer-east"] == {"sunrise"}
    assert sites["staff-homes"] == {"home-17", "home-18", "home-19"}
    assert sites["visitor-west"] == {"home-17", "home-18"}  # home-19 is not assigned to them
    plan = client.get("/api/care/plan", headers=demo_login(client, pop, "volunteer-east")).json()
    assert len(plan) == 4
    for user in ("family-home17", "safety-sunrise", "reader"):
        assert (
            client.get("/api/care/plan", headers=demo_login(client, pop, user)).status_code == 403
        )


def test_a_recorded_visit_moves_the_rate_and_a_follow_up_opens_an_order(world: World) -> None:
    client, pop, url = world
    admin = demo_login(client, pop, "admin")
    visitor = demo_login(client, pop, "visitor-west")
    rates = {r["community"]: r for r in client.get("/api/care/visit-rate", headers=admin).json()}
    west = rates["pinghu-west"]
    assert (west["priority_residents"], west["visited"], west["rate"]) == (3, 0, 0.0)
    assert len(west["not_visited"]) == 3
    x, z = resident_of(url, "home-17"), resident_of(url, "home-19")
    r = client.post(
        f"/api/care/residents/{x}/visits",
        headers=visitor,
        json={
            **CHECKS,
            "notes": "fridge nearly empty",
            "follow_up": True,
            "follow_up_category": "meal",
        },
    )
    assert r.status_code == 201, r.text
    visit = r.json()
    assert visit["mood_ok"] is False
    assert visit["order_id"] is not None
    order = query(
        url,
        "SELECT site_id, resident_id, category, colour, state FROM dispatch_orders WHERE order_id = %s",
        (visit["order_id"],),
    )[0]
    assert (order["site_id"], order["resident_id"], order["category"], order["colour"]) == (
        "home-17",
        x,
        "meal",
        "green",
    )
    rates = {
        r["community"]: r
        for r in client.get(f"/api/care/visit-rate?month={month_now()}", headers=admin).json()
    }
    west = rates["pinghu-west"]
    assert (west["visited"], round(west["rate"], 3)) == (1, 0.333)
    assert x not in {n["resident_id"] for n in west["not_visited"]}
    # the visitor may not record a visit for a resident not assigned to them
    assert (
        client.post(f"/api/care/residents/{z}/visits", headers=visitor, json=CHECKS).status_code
        == 404
    )
    # a visitor's rate covers only their own residents
    mine = client.get("/api/care/visit-rate", headers=visitor).json()
    assert [(m["community"], m["priority_residents"], m["visited"]) for m in mine] == [
        ("pinghu-west", 2, 1)
    ]
    history = client.get(f"/api/care/residents/{x}/visits", headers=visitor).json()
    assert [h["visit_id"] for h in history] == [visit["visit_id"]]


def test_an_alert_raises_a_resident_to_the_top(world: World) -> None:
    client, pop, url = world
    staff = demo_login(client, pop, "staff-homes")
    y = resident_of(url, "home-18")
    _raise_sos(url, "btn-0043")
    plan = client.get("/api/care/plan", headers=staff).json()
    assert plan[0]["resident_id"] == y
    assert "recent_alerts" in plan[0]["reasons"]
    assert plan[0]["score"] > plan[1]["score"]
    # each reason a catalogue message with its figures, rendered in the reader's language
    assert plan[0]["reason_messages"][0] == {
        "key": "recent_alerts",
        "params": {"red": 1, "yellow": 0, "green": 0},
    }
    assert plan[0]["reasons_text"][0] == "近14天有警报：红色 1、黄色 0、绿色 0"
    assert len(plan[0]["reasons_text"]) == len(plan[0]["reasons"])
    assert not any(" / " in text for e in plan for text in e["reasons_text"])
    assert client.put("/api/me/locale", headers=staff, json={"locale": "en"}).status_code == 200
    english = client.get("/api/care/plan", headers=staff).json()
    assert english[0]["reasons_text"][0] == "alerts in the last 14 days: red 1, yellow 0, green 0"
    overdue = client.get("/api/care/overdue", headers=staff).json()
    assert overdue
    assert all(e["reasons_text"][-1].startswith("visit overdue by ") for e in overdue)


def test_flags_assignment_and_the_overdue_list(world: World) -> None:
    client, pop, url = world
    staff = demo_login(client, pop, "staff-homes")
    z = resident_of(url, "home-19")
    visitor_id = int(
        query(url, "SELECT user_id FROM users WHERE username = 'visitor-west'")[0]["user_id"]
    )
    assert (
        client.put(
            f"/api/care/residents/{z}/visitor", headers=staff, json={"visitor_user_id": visitor_id}
        ).status_code
        == 204
    )
    # a non-visitor cannot be assigned
    admin_id = int(query(url, "SELECT user_id FROM users WHERE username = 'admin'")[0]["user_id"])
    assert (
        client.put(
            f"/api/care/residents/{z}/visitor", headers=staff, json={"visitor_user_id": admin_id}
        ).status_code
        == 409
    )
    assert (
        client.put(
            f"/api/care/residents/{z}/flags",
            headers=staff,
            json={"flags": ["living_alone"], "visits_per_month": 4},
        ).status_code
        == 204
    )
    # flagged 30 days ago by the seed, never visited: everybody is overdue now
    overdue = client.get(
        "/api/care/overdue", headers=demo_login(client, pop, "visitor-west")
    ).json()
    assert {e["site_id"] for e in overdue} == {"home-17", "home-18", "home-19"}
    assert all(e["state"] == "overdue" and "overdue" in e["reasons"] for e in overdue)
    # staff of another site cannot flag this resident
    other = demo_login(client, pop, "staff-sunrise")
    assert (
        client.put(
            f"/api/care/residents/{z}/flags", headers=other, json={"flags": ["disabled"]}
        ).status_code
        == 404
    )


def test_reminders_reach_the_visitor_once_per_due_date(world: World) -> None:
    _client, _pop, url = world
    now = datetime.now(UTC)
    # visitor-west has notification settings (no channel yet); volunteer-east has none
    query(
        url,
        "INSERT INTO notification_prefs (user_id, webhook_secret) SELECT user_id, 'x' FROM users "
        "WHERE username = 'visitor-west' RETURNING user_id",
    )
    added = arun(url, lambda c: enqueue_visit_reminders(c, now=now))
    again = arun(url, lambda c: enqueue_visit_reminders(c, now=now + timedelta(minutes=5)))
    rows = query(
        url,
        "SELECT u.username, n.resident_id, n.subject, n.state, n.reason FROM notification_outbox n "
        "JOIN users u USING (user_id) WHERE n.source = 'visit_reminder' ORDER BY n.resident_id",
    )
    # the two home-care residents assigned to visitor-west, both overdue (flagged 30 days ago)
    assert (added, again, len(rows)) == (2, 0, 2)
    assert {r["username"] for r in rows} == {"visitor-west"}
    assert all(r["subject"].startswith("探访已逾期") for r in rows)
    assert {(r["state"], r["reason"]) for r in rows} == {("skipped", "no channel configured")}


def test_the_simulators_play_a_month_of_visits_and_rounds(world: World) -> None:
    client, pop, url = world
    logins = {u.username: u.password for u in pop.users if u.role in ("visitor", "safety_officer")}
    now = datetime.now(UTC)
    with serve(url) as base:
        out = play_care_month(base, logins, now=now, rng=random.Random(15))
        # a main job started again leaves the month's rounds be
        again = play_care_month(base, logins, now=now, rng=random.Random(16))
    stored = query(url, "SELECT count(*) AS n FROM visits")[0]["n"]
    orders = query(url, "SELECT count(*) AS n FROM visits WHERE order_id IS NOT NULL")[0]["n"]
    # (a resident the first run left unvisited may be visited by the second)
    assert out.visits + again.visits == stored > 0
    assert out.follow_ups + again.follow_ups == orders
    assert (again.rounds, again.findings) == (0, 0)
    # the officer's one site, walked once a week through the last four weeks
    rounds = query(
        url,
        "SELECT done_at, recorded_at FROM safety_rounds WHERE site_id = 'sunrise' ORDER BY done_at",
    )
    assert out.rounds == len(rounds) == 4
    walked = [r["done_at"] for r in rounds]
    assert now - timedelta(days=28) <= walked[0]
    assert walked[-1] < now - timedelta(hours=12)
    assert all(
        timedelta(days=5) <= b - a <= timedelta(days=9) for a, b in itertools.pairwise(walked)
    )
    assert all(r["recorded_at"] >= now for r in rounds)  # entered now, walked before
    found = query(
        url,
        "SELECT f.opened_at, f.closed_at, r.done_at FROM safety_findings f "
        "JOIN safety_rounds r USING (round_id) WHERE f.source = 'round'",
    )
    assert out.findings == len(found) > 0
    assert all(f["opened_at"] == f["done_at"] for f in found)  # opened the day walked
    closed = [f for f in found if f["closed_at"] is not None]
    assert out.closed == len(closed) > 0
    assert all(f["opened_at"] < f["closed_at"] < now for f in closed)
    # the visits show in the rate the staff see, in the month most of them were made
    [busiest] = query(
        url,
        "SELECT to_char(visited_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM') AS m, count(*) AS n "
        "FROM visits GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1",
    )
    admin = demo_login(client, pop, "admin")
    rates = client.get(f"/api/care/visit-rate?month={busiest['m']}", headers=admin).json()
    assert sum(r["visited"] for r in rates) > 0, busiest
