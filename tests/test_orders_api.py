"""Order routes over a real database: service orders from the hotline, the responder's
lifecycle (accept, en route, on site, resolve), scopes, and time-to-help figures."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from alerts.dispatch.escalation import run_due
from alerts.dispatch.orders import Actor, accept_order, arrive, cancel_order, resolve_order
from dashboard_api.app import create_app
from devices.domain import Outcome, Role
from devices.registry import Conn
from devices.settings import Settings
from devtools.seed import DemoPopulation
from tests.dispatch_world import T0, add_responder, arun, raise_sos
from tests.services import Services, query, seed


@pytest.fixture
def world(
    services: Services, database_url: str
) -> Iterator[tuple[TestClient, DemoPopulation, str]]:
    pop = seed(services, database_url)
    with TestClient(create_app(Settings(database_url=database_url))) as client:
        yield client, pop, database_url


def login(client: TestClient, username: str, password: str) -> dict[str, str]:
    r = client.post("/api/auth/token", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def demo_login(client: TestClient, pop: DemoPopulation, username: str) -> dict[str, str]:
    return login(client, username, next(u for u in pop.users if u.username == username).password)


def escalate(url: str, *, after_s: float) -> None:
    arun(url, lambda c: run_due(c, now=datetime.now(UTC) + timedelta(seconds=after_s)))


def test_service_order_from_the_hotline_through_a_provider(
    world: tuple[TestClient, DemoPopulation, str],
) -> None:
    client, pop, url = world
    on_duty = (datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC) + timedelta(hours=8))
    west = [
        add_responder(
            url,
            f"provider-{n}",
            kind="provider",
            community="pinghu-west",
            on_duty=on_duty,
            login=(f"provider-{n}", Role.RESPONDER),
        )
        for n in ("one", "two")
    ]
    add_responder(
        url,
        "provider-east",
        kind="provider",
        community="pinghu-east",
        on_duty=on_duty,
        login=("provider-east", Role.RESPONDER),
    )
    operator = demo_login(client, pop, "staff-homes")
    [resident] = query(url, "SELECT resident_id FROM residents WHERE site_id = 'home-17'")
    body = {"site_id": "home-17", "resident_id": resident["resident_id"], "category": "meal"}
    r = client.post("/api/orders", headers=operator, json=body | {"note": "lunch, no salt"})
    assert r.status_code == 201, r.text
    order = r.json()
    assert (order["kind"], order["colour"], order["state"]) == ("service", "green", "queued")
    deadline = datetime.fromisoformat(order["accept_deadline"])
    assert deadline - datetime.fromisoformat(order["opened_at"]) == timedelta(seconds=1800)
    # Out of the operator's sites, red, a resident of another site, a family member: refused.
    sunrise = demo_login(client, pop, "staff-sunrise")
    assert client.post("/api/orders", headers=sunrise, json=body).status_code == 404
    assert (
        client.post("/api/orders", headers=operator, json=body | {"colour": "red"}).status_code
        == 409
    )
    other = body | {"site_id": "home-18"}
    assert client.post("/api/orders", headers=operator, json=other).status_code == 409
    family = demo_login(client, pop, "family-home17")
    assert client.post("/api/orders", headers=family, json=body).status_code == 403

    oid = order["order_id"]
    escalate(url, after_s=1)  # offered to provider-one
    one, two = (
        login(client, "provider-one", "provider-one"),
        login(client, "provider-two", "provider-two"),
    )
    east = login(client, "provider-east", "provider-east")
    mine = client.get("/api/orders?offered_to_me=true", headers=one).json()
    assert [(o["order_id"], o["state"], o["offered_to"]) for o in mine] == [
        (oid, "offered", west[0])
    ]
    assert client.get("/api/orders", headers=two).json() == []
    assert client.get("/api/orders", headers=east).json() == []
    assert client.post(f"/api/orders/{oid}/accept", headers=east).status_code == 404
    escalate(url, after_s=901)  # not accepted in time: re-offered to provider-two
    assert [o["order_id"] for o in client.get("/api/orders", headers=two).json()] == [oid]
    accepted = client.post(f"/api/orders/{oid}/accept", headers=one)
    assert accepted.status_code == 200
    assert accepted.json()["state"] == "accepted"
    # provider-two was offered it too, but only the one who accepted moves it on.
    assert client.post(f"/api/orders/{oid}/en-route", headers=two).status_code == 409
    assert (
        client.post(f"/api/orders/{oid}/cancel", headers=one, json={"reason": "x"}).status_code
        == 403
    )
    for step, state in (("en-route", "en_route"), ("on-site", "on_site")):
        r = client.post(f"/api/orders/{oid}/{step}", headers=one)
        assert (r.status_code, r.json()["state"]) == (200, state)
    done = client.post(
        f"/api/orders/{oid}/resolve",
        headers=one,
        json={"outcome": "emergency_handled", "note": "meal served"},
    )
    assert done.json()["state"] == "resolved"
    trail = client.get(f"/api/orders/{oid}/trail", headers=operator).json()
    assert [(t["to_state"], t["actor"]) for t in trail] == [
        ("queued", "staff-homes"),
        ("offered", "escalation"),
        ("offered", "escalation"),
        ("accepted", "provider-one"),
        ("en_route", "provider-one"),
        ("on_site", "provider-one"),
        ("resolved", "provider-one"),
    ]
    assert query(url, "SELECT 1 FROM device_commands") == []  # no device to tell
    listed = client.get("/api/orders?kind=service&state=resolved", headers=operator).json()
    assert [o["order_id"] for o in listed] == [oid]
    assert client.get("/api/orders?kind=alert", headers=operator).json() == []


def test_staff_cancel_with_a_reason(world: tuple[TestClient, DemoPopulation, str]) -> None:
    client, pop, url = world
    order = raise_sos(url, "btn-0042", at=datetime.now(UTC))
    staff = demo_login(client, pop, "staff-homes")
    assert client.post(f"/api/orders/{order}/cancel", headers=staff, json={}).status_code == 422
    r = client.post(f"/api/orders/{order}/cancel", headers=staff, json={"reason": "test press"})
    assert (r.json()["state"], r.json()["note"]) == ("cancelled", "test press")
    assert client.post(f"/api/orders/{order}/accept", headers=staff).status_code == 409


def test_time_to_help_figures_from_a_known_scenario(
    world: tuple[TestClient, DemoPopulation, str],
) -> None:
    client, pop, url = world
    carers = {
        n: add_responder(url, n, site_id="sunrise", login=(n, Role.STAFF))
        for n in ("carer-a", "carer-b")
    }
    add_responder(
        url, "provider-w", kind="provider", community="pinghu-west", login=("pw", Role.RESPONDER)
    )
    users = {r["username"]: r["user_id"] for r in query(url, "SELECT username, user_id FROM users")}
    assert len(carers) == 2

    def at(s: float) -> datetime:
        return T0 + timedelta(seconds=s)

    def run(
        order: int, start: float, who: str, accept: float, on_site: float, outcome: Outcome | None
    ) -> None:
        actor = Actor(who, users[who])

        async def go(conn: Conn) -> None:
            await run_due(conn, now=at(start + 1))
            await accept_order(conn, order_id=order, actor=actor, now=at(start + accept))
            await arrive(conn, order_id=order, actor=actor, now=at(start + on_site))
            if outcome is not None:
                await resolve_order(
                    conn, order_id=order, actor=actor, outcome=outcome, note="", now=at(start + 500)
                )

        arun(url, go)

    run(raise_sos(url, "sos-r101", at=at(0)), 0, "carer-a", 30, 120, Outcome.EMERGENCY_HANDLED)
    run(raise_sos(url, "sos-r103", at=at(600)), 600, "carer-b", 90, 200, Outcome.FALSE_ALARM)
    run(raise_sos(url, "btn-0042", at=at(1200)), 1200, "pw", 400, 1000, None)
    cancelled = raise_sos(url, "sos-r105", at=at(1800))
    admin = Actor("admin", users["admin"])
    arun(url, lambda c: cancel_order(c, order_id=cancelled, actor=admin, note="x", now=at(1820)))

    staff = demo_login(client, pop, "admin")
    period = {"since": at(-60).isoformat(), "until": at(3600).isoformat()}
    by_site = {
        f["group"]: f
        for f in client.get("/api/figures/time-to-help", headers=staff, params=period).json()
    }
    s = by_site["sunrise"]
    assert (s["orders"], s["accepted"], s["resolved"]) == (3, 2, 2)
    assert s["percentiles"]["accept"] == {"p50": 30, "p90": 90, "p99": 90}
    assert s["percentiles"]["detect"] == {"p50": 1, "p90": 1, "p99": 1}
    assert s["percentiles"]["offer"] == {"p50": 0, "p90": 0, "p99": 0}
    assert s["percentiles"]["arrive"] == {"p50": 90, "p90": 110, "p99": 110}
    assert (s["accepted_within_60s"], s["accepted_within_300s"]) == (0.5, 1.0)
    assert s["false_alarm_rate"] == 0.5
    assert s["top_cases"] == [["sos", 3]]
    assert s["score"] == 75.0
    h = by_site["home-17"]
    assert (h["accepted_within_60s"], h["accepted_within_300s"], h["score"]) == (0.0, 0.0, 0.0)
    assert h["percentiles"]["total"]["p50"] == 1000
    by_provider = client.get(
        "/api/figures/time-to-help", headers=staff, params=period | {"by": "provider"}
    ).json()
    assert {f["group"]: f["score"] for f in by_provider} == {
        "carer-a": 100.0,
        "carer-b": 50.0,
        "provider-w": 0.0,
    }
    by_community = client.get(
        "/api/figures/time-to-help", headers=staff, params=period | {"by": "community"}
    ).json()
    assert [(f["group"], f["orders"]) for f in by_community] == [
        ("pinghu-east", 3),
        ("pinghu-west", 1),
    ]
    # Staff see only their own sites' figures; families none at all.
    homes = demo_login(client, pop, "staff-homes")
    mine = client.get("/api/figures/time-to-help", headers=homes, params=period).json()
    assert [f["group"] for f in mine] == ["home-17"]
    family = demo_login(client, pop, "family-home17")
    assert client.get("/api/figures/time-to-help", headers=family).status_code == 403
