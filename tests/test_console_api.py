"""The 96345 centre console's API (issue 14 item 4) over a real database: the operator's
board of every site's orders with overdue marks, the resident look-up (name or phone, at
least 2 characters, wildcards taken literally, rate-limited), service orders anywhere and
no order moves."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashboard_api.app import create_app
from dashboard_api.console import SEARCH_LIMIT, SearchWindow, name_pattern
from devices.settings import Settings
from devtools.seed import DemoPopulation
from tests.dispatch_world import raise_sos
from tests.services import Services, query, seed
from tests.test_orders_api import demo_login


@pytest.fixture
def world(
    services: Services, database_url: str
) -> Iterator[tuple[TestClient, DemoPopulation, str]]:
    pop = seed(services, database_url)
    with TestClient(create_app(Settings(database_url=database_url))) as client:
        yield client, pop, database_url


def test_the_board_holds_every_site_with_overdue_marks(
    world: tuple[TestClient, DemoPopulation, str],
) -> None:
    client, pop, url = world
    now = datetime.now(UTC)
    late = raise_sos(url, "btn-0042", at=now - timedelta(minutes=5))  # home-17, 60 s to accept
    fresh = raise_sos(url, "wb-s01", at=now - timedelta(seconds=2))  # sunrise
    operator = demo_login(client, pop, "operator-96345")
    r = client.get("/api/console/orders", headers=operator)
    assert r.status_code == 200, r.text
    board = {o["order_id"]: o for o in r.json()}
    assert board[late]["overdue"] is True
    assert board[fresh]["overdue"] is False
    assert {board[late]["site_id"], board[fresh]["site_id"]} == {"home-17", "sunrise"}
    assert board[late]["resident_name"] == "Zheng Hui"
    assert board[late]["community"] == "pinghu-west"
    # staff use the wall, not the console; an operator moves no order
    assert client.get("/api/console/orders", headers=demo_login(client, pop, "admin")).is_success
    staff = demo_login(client, pop, "staff-homes")
    assert client.get("/api/console/orders", headers=staff).status_code == 403
    assert client.post(f"/api/orders/{late}/accept", headers=operator).status_code == 403
    cancel = client.post(f"/api/orders/{late}/cancel", headers=operator, json={"reason": "x"})
    assert cancel.status_code == 403


def test_resident_look_up_by_name_or_phone(
    world: tuple[TestClient, DemoPopulation, str],
) -> None:
    client, pop, _ = world
    operator = demo_login(client, pop, "operator-96345")

    def names(q: str) -> list[str]:
        r = client.get("/api/console/residents", params={"q": q}, headers=operator)
        assert r.status_code == 200, r.text
        return [m["full_name"] for m in r.json()]

    assert names("zheng") == ["Zheng Hui"]
    assert names("8017") == ["Zheng Hui"]  # the phone's digits, spaces or not
    assert names("138 0013 8018") == ["Liang Bo"]
    assert names("13800138019") == ["Song Lan"]
    assert names("%%") == []  # wildcards are taken literally
    assert names("__") == []
    assert names("' OR 1=1 --") == []
    assert len(names("an")) > 3
    for short in ("a", "  a  ", ""):
        r = client.get("/api/console/residents", params={"q": short}, headers=operator)
        assert r.status_code == 422, short
    r = client.get("/api/console/residents", params={"q": "x" * 41}, headers=operator)
    assert r.status_code == 422
    r = client.get("/api/console/residents", params={"q": "ab\x00"}, headers=operator)
    assert r.status_code == 422


def test_look_ups_are_rate_limited_per_user() -> None:
    window = SearchWindow(limit=3, per_s=10)
    assert [window.allow(1, now=100.0 + i) for i in range(4)] == [True, True, True, False]
    assert window.allow(2, now=103.5)  # another user has their own window
    assert window.allow(1, now=110.5)  # the first search has left the window


def test_the_look_up_answers_429_when_hammered(
    world: tuple[TestClient, DemoPopulation, str],
) -> None:
    client, pop, _ = world
    operator = demo_login(client, pop, "operator-96345")
    codes = [
        client.get("/api/console/residents", params={"q": "zh"}, headers=operator).status_code
        for _ in range(SEARCH_LIMIT + 1)
    ]
    assert codes[:-1] == [200] * SEARCH_LIMIT
    assert codes[-1] == 429


def test_an_operator_enters_service_orders_anywhere(
    world: tuple[TestClient, DemoPopulation, str],
) -> None:
    client, pop, url = world
    operator = demo_login(client, pop, "operator-96345")
    [resident] = query(url, "SELECT resident_id FROM residents WHERE site_id = 'home-18'")
    body = {"site_id": "home-18", "resident_id": resident["resident_id"], "category": "bathing"}
    r = client.post("/api/orders", headers=operator, json=body)
    assert r.status_code == 201, r.text
    assert (r.json()["kind"], r.json()["category"]) == ("service", "bathing")
    [trail] = query(
        url, "SELECT actor FROM order_transitions WHERE order_id = %s", (r.json()["order_id"],)
    )
    assert trail["actor"] == "operator-96345"
    r = client.post(
        "/api/orders", headers=operator, json={"site_id": "sunrise", "category": "meal"}
    )
    assert r.status_code == 201
    assert (
        client.post("/api/orders", headers=operator, json=body | {"colour": "red"}).status_code
        == 409
    )
    nowhere = body | {"site_id": "no-such-site"}
    assert client.post("/api/orders", headers=operator, json=nowhere).status_code == 404
    elsewhere = body | {"site_id": "home-19"}  # the resident lives at home-18
    assert client.post("/api/orders", headers=operator, json=elsewhere).status_code == 409
    r = client.get("/api/figures/time-to-help?by=community", headers=operator)
    assert r.status_code == 200
    assert {f["group"] for f in r.json()} == {"pinghu-east", "pinghu-west"}


TEXT = st.text(st.sampled_from("ab%_\\' -+()19张王"), max_size=8)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(hay=TEXT, needle=TEXT)
def test_a_name_pattern_matches_exactly_the_names_that_contain_the_text(
    database_url: str, hay: str, needle: str
) -> None:
    """Whatever the operator types, wildcards and backslashes included, the name pattern is
    a plain substring test in PostgreSQL's LIKE."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT lower(%s) LIKE %s ESCAPE '\\'", (hay, name_pattern(needle.lower()))
        ).fetchone()
    assert row is not None
    assert row[0] is (needle.lower() in hay.lower())
