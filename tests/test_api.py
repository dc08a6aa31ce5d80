"""The API over a real database: sign-in, role scopes, accept and resolve."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.rows import dict_row

from alerts.detection.detectors.safety import SosDetector
from alerts.detection.persist import persist
from alerts.detection.worker import to_event
from alerts.dispatch.policy import policy_from_settings
from dashboard_api.app import create_app
from devices.settings import Settings
from devtools.seed import DemoPopulation
from tests.services import Services, query, seed


@pytest.fixture
def world(
    services: Services, database_url: str
) -> Iterator[tuple[TestClient, DemoPopulation, str]]:
    pop = seed(services, database_url)
    with TestClient(create_app(Settings(database_url=database_url))) as client:
        yield client, pop, database_url


def _raise_sos(database_url: str, device_id: str) -> None:
    """Open an order the way the alerts worker does, for the device's resident."""

    async def go() -> None:
        async with await psycopg.AsyncConnection.connect(
            database_url, row_factory=dict_row
        ) as conn:
            cur = await conn.execute(
                "SELECT 'event' AS kind, 'sos' AS name, now() AS time, d.device_key, d.device_id,"
                " d.kind AS device_kind, d.site_id, true AS value_bool, NULL::float8 AS value_num,"
                " NULL AS value_text, d.room_id, NULL AS room_name, COALESCE(a.resident_id, (SELECT"
                " min(x.resident_id) FROM residents x WHERE x.room_id = d.room_id HAVING"
                " count(*) = 1)) AS resident_id,"
                " NULL AS resident_name FROM devices d LEFT JOIN device_assignments a"
                " USING (device_key) WHERE device_id = %s",
                (device_id,),
            )
            row = await cur.fetchone()
            assert row is not None
            verdict = SosDetector().evaluate(to_event(row), now=datetime.now(UTC))
            assert verdict is not None
            await persist(
                conn, verdict, now=datetime.now(UTC), policy=policy_from_settings(Settings())
            )
            await conn.commit()

    asyncio.run(go())


def _login(client: TestClient, pop: DemoPopulation, username: str) -> dict[str, str]:
    user = next(u for u in pop.users if u.username == username)
    r = client.post("/api/auth/token", data={"username": username, "password": user.password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_sign_in_is_required_and_wrong_passwords_are_refused(
    world: tuple[TestClient, DemoPopulation, str],
) -> None:
    client, _, _ = world
    for path in (
        "/api/me",
        "/api/residents",
        "/api/alerts",
        "/api/orders",
        "/api/devices",
        "/api/sites",
    ):
        assert client.get(path).status_code == 401, path
    r = client.post("/api/auth/token", data={"username": "admin", "password": "wrong"})
    assert r.status_code == 401
    assert client.get("/api/me", headers={"Authorization": "Bearer forged"}).status_code == 401


def test_family_sees_only_their_own_relative(world: tuple[TestClient, DemoPopulation, str]) -> None:
    client, pop, url = world
    _raise_sos(url, "btn-0042")  # home-17: the family's relative
    _raise_sos(url, "btn-0043")  # home-18: somebody else's
    family = _login(client, pop, "family-home17")
    mine = client.get("/api/me", headers=family).json()["resident_ids"]
    assert len(mine) == 1
    residents = client.get("/api/residents", headers=family).json()
    assert [r["resident_id"] for r in residents] == mine
    alerts = client.get("/api/alerts", headers=family).json()
    assert [a["resident_id"] for a in alerts] == mine
    others = [
        r["resident_id"]
        for r in query(url, "SELECT resident_id FROM residents")
        if r["resident_id"] not in mine
    ]
    for other in others:  # guessing ids gives nothing away
        assert client.get(f"/api/residents/{other}", headers=family).status_code == 404
        assert client.get(f"/api/alerts?resident_id={other}", headers=family).json() == []
    assert client.get("/api/orders", headers=family).status_code == 403
    assert client.get("/api/devices", headers=family).status_code == 403
    order_id = query(url, "SELECT order_id FROM dispatch_orders")[0]["order_id"]
    assert client.post(f"/api/orders/{order_id}/accept", headers=family).status_code == 403


def test_staff_see_only_their_sites_and_run_an_order(
    world: tuple[TestClient, DemoPopulation, str],
) -> None:
    client, pop, url = world
    _raise_sos(url, "btn-0042")
    _raise_sos(url, "sos-r101")  # the nursing home
    homes, sunrise = _login(client, pop, "staff-homes"), _login(client, pop, "staff-sunrise")
    home_orders = client.get("/api/orders", headers=homes).json()
    assert {o["site_id"] for o in home_orders} == {"home-17"}
    sunrise_order = client.get("/api/orders", headers=sunrise).json()[0]
    assert sunrise_order["site_id"] == "sunrise"
    # Another site's order looks missing, and cannot be accepted.
    assert (
        client.post(f"/api/orders/{sunrise_order['order_id']}/accept", headers=homes).status_code
        == 404
    )
    assert {d["site_id"] for d in client.get("/api/devices?limit=500", headers=homes).json()} == {
        "home-17",
        "home-18",
        "home-19",
    }
    order_id = home_orders[0]["order_id"]
    bad = client.post(
        f"/api/orders/{order_id}/resolve", headers=homes, json={"outcome": "false_alarm"}
    )
    assert bad.status_code == 409  # not accepted yet
    accepted = client.post(f"/api/orders/{order_id}/accept", headers=homes)
    assert accepted.status_code == 200
    assert accepted.json()["state"] == "accepted"
    assert client.post(f"/api/orders/{order_id}/accept", headers=homes).status_code == 409
    done = client.post(
        f"/api/orders/{order_id}/resolve",
        headers=homes,
        json={"outcome": "emergency_handled", "note": "helped up, unhurt"},
    )
    assert done.json()["state"] == "resolved"
    trail = query(
        url,
        "SELECT to_state, actor FROM order_transitions WHERE order_id = %s ORDER BY id",
        (order_id,),
    )
    assert trail == [
        {"to_state": "queued", "actor": "system"},
        {"to_state": "accepted", "actor": "staff-homes"},
        {"to_state": "resolved", "actor": "staff-homes"},
    ]


def test_logout_revokes_the_token(world: tuple[TestClient, DemoPopulation, str]) -> None:
    client, pop, _ = world
    headers = _login(client, pop, "admin")
    assert client.get("/api/me", headers=headers).status_code == 200
    assert client.post("/api/auth/logout", headers=headers).status_code == 204
    assert client.get("/api/me", headers=headers).status_code == 401


def test_bad_requests_get_4xx(world: tuple[TestClient, DemoPopulation, str]) -> None:
    client, pop, _ = world
    headers = _login(client, pop, "admin")
    assert client.get("/api/alerts?colour=purple", headers=headers).status_code == 422
    assert client.get("/api/residents?limit=0", headers=headers).status_code == 422
    assert client.get("/api/residents/abc", headers=headers).status_code == 422
    assert client.get("/api/residents?site_id=a%20b", headers=headers).status_code == 422
    assert (
        client.post("/api/orders/1/resolve", headers=headers, json={"outcome": "x"}).status_code
        == 422
    )


def test_a_lone_surrogate_in_a_body_is_a_clear_422_not_a_500(
    world: tuple[TestClient, DemoPopulation, str],
) -> None:
    client, pop, _ = world
    headers = {**_login(client, pop, "staff-homes"), "content-type": "application/json"}
    r = client.post(
        "/api/orders", content=b'{"site_id": "\\udc80", "category": "meal"}', headers=headers
    )
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "site_id"]


def test_figures_refuse_dates_out_of_range_with_a_422(
    world: tuple[TestClient, DemoPopulation, str],
) -> None:
    client, pop, _ = world
    headers = _login(client, pop, "staff-homes")
    for params in ("until=0001-01-01T00:00:00Z", "since=0001-01-01T00:00:00", "until=9999-01-01"):
        r = client.get(f"/api/figures/time-to-help?{params}", headers=headers)
        assert r.status_code == 422, (params, r.text)
    ok = client.get("/api/figures/time-to-help?since=2026-01-01T00:00:00", headers=headers)
    assert ok.status_code == 200
