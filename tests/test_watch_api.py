"""``GET /api/residents/{id}/watch`` over a real database: the promise of the seeded home-17
resident (frail, a home-care bed with a wristband, a bed mat and an armchair seat mat, every
device in the bedroom), at a fixed 10:00 local so the answer does not depend on the hour the
test runs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest
from fastapi.testclient import TestClient

from dashboard_api.app import create_app
from dashboard_api.deps import now
from devices.settings import Settings
from devtools.seed import DemoPopulation
from tests.services import Services, query, seed
from tests.test_api import _login

SHANGHAI = ZoneInfo("Asia/Shanghai")
H = 3600.0


def _ten_o_clock() -> datetime:
    local = datetime.now(SHANGHAI).replace(hour=10, minute=0, second=0, microsecond=0)
    return local if local <= datetime.now(SHANGHAI) else local - timedelta(days=1)


AT = _ten_o_clock()
LAST = AT - timedelta(minutes=30)


@pytest.fixture
def world(
    services: Services, database_url: str
) -> Iterator[tuple[TestClient, DemoPopulation, int]]:
    pop = seed(services, database_url)
    key = {r["device_id"]: r["device_key"] for r in query(database_url, "SELECT * FROM devices")}
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE device_assignments SET during = tstzrange(now() - interval '1 year', NULL)"
        )
        rows = [
            (AT - timedelta(days=1, hours=3), "bed-0042", "presence", False),
            (AT - timedelta(hours=2), "seat-0042", "presence", True),
            (AT - timedelta(hours=1), "seat-0042", "presence", False),
            (LAST, "pir-0042", "motion", True),
        ]
        for t, device, name, value in rows:
            conn.execute(
                "INSERT INTO events (time, device_key, name, value_bool) VALUES (%s, %s, %s, %s)",
                (t, key[device], name, value),
            )
    app = create_app(Settings(database_url=database_url))
    app.dependency_overrides[now] = lambda: AT
    rid = int(
        query(database_url, "SELECT resident_id FROM residents WHERE site_id = 'home-17'")[0][
            "resident_id"
        ]
    )
    with TestClient(app) as client:
        yield client, pop, rid


def test_the_family_reads_when_the_carers_would_be_alerted(
    world: tuple[TestClient, DemoPopulation, int],
) -> None:
    client, pop, rid = world
    r = client.get(f"/api/residents/{rid}/watch", headers=_login(client, pop, "family-home17"))
    assert r.status_code == 200, r.text
    w = r.json()
    assert (w["has_bed_mat"], w["has_seat_sensor"], w["bed_exit_watch"]) == (True, True, True)
    assert w["asks_on"] == "wb-0042"
    assert w["check_in_s"] == 600
    assert w["routine_learned"] is False
    assert w["sleep_window"] == [22.0, 6.0]
    spell = w["current"]
    assert spell["state"] == "active"
    assert datetime.fromisoformat(spell["last_sign_at"]) == LAST
    # a seat sensor in the home: the active cap, 2 h, asked a window before it
    assert datetime.fromisoformat(spell["alert_by"]) == LAST + timedelta(hours=2)
    assert datetime.fromisoformat(spell["ask_from"]) == LAST + timedelta(hours=1, minutes=50)
    places = {p["place"]: p for p in w["places"]}
    assert set(places) == {"active", "seated", "bed"}  # no bathroom sensor in home-17
    seated = {h["hour"]: h for h in places["seated"]["hours"]}
    assert seated[14]["alert_after_s"] == 4 * H
    active = {h["hour"]: h for h in places["active"]["hours"]}
    assert (active[3]["from_window_end"], active[3]["alert_after_s"]) == (True, 5 * H)


def test_staff_of_another_site_and_an_unknown_resident_get_404(
    world: tuple[TestClient, DemoPopulation, int],
) -> None:
    client, pop, rid = world
    other = _login(client, pop, "staff-sunrise")
    assert client.get(f"/api/residents/{rid}/watch", headers=other).status_code == 404
    staff = _login(client, pop, "staff-homes")
    assert client.get(f"/api/residents/{rid}/watch", headers=staff).status_code == 200
    assert client.get("/api/residents/999999/watch", headers=staff).status_code == 404
