"""Safety rounds and device findings (issue 15): the pure judgement of self-tests, silent
buttons and batteries; the selftest event through the wire decoder; over the real database
a failed self-test becomes one finding, and a round's failures are tracked to closure."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from alerts.care.findings import DeviceFacts, device_findings_cycle, judge
from dashboard_api.app import create_app
from devices.registry import DeviceRef
from devices.settings import Settings
from devices.wire import Reason
from devtools.seed import DemoPopulation
from ingest.decode import DeadLetter, Decoded, Limits, RawMessage, decode
from tests.dispatch_world import arun
from tests.services import Services, query, seed
from tests.test_orders_api import demo_login

NOW = datetime(2026, 11, 20, 9, tzinfo=UTC)
OLD = NOW - timedelta(days=90)


def facts(kind: str, **kw: object) -> DeviceFacts:
    base: dict[str, object] = {
        "device_key": 1,
        "device_id": "dev-1",
        "kind": kind,
        "site_id": "sunrise",
        "registered_at": OLD,
        "last_seen_at": NOW,
        "battery": 90.0,
        "last_selftest_at": NOW - timedelta(days=10),
        "last_selftest_ok": True,
    }
    return DeviceFacts(**{**base, **kw})  # type: ignore[arg-type]


def kinds(d: DeviceFacts) -> list[str]:
    return [f.kind for f in judge(d, now=NOW)]


def test_judgement_of_device_findings() -> None:
    assert kinds(facts("smoke")) == []
    assert kinds(facts("smoke", last_selftest_ok=False)) == ["selftest_failed"]
    assert kinds(facts("smoke", last_selftest_at=NOW - timedelta(days=40))) == ["selftest_missed"]
    assert kinds(facts("smoke", last_selftest_at=None, last_selftest_ok=None)) == [
        "selftest_missed"
    ]
    # newly installed, never tested yet: not a finding before its first month is out
    fresh = facts(
        "smoke",
        registered_at=NOW - timedelta(days=10),
        last_selftest_at=None,
        last_selftest_ok=None,
    )
    assert kinds(fresh) == []
    assert kinds(facts("sos_button", last_seen_at=NOW - timedelta(days=22))) == ["button_silent"]
    assert kinds(facts("sos_button", last_seen_at=NOW - timedelta(days=5))) == []
    assert kinds(facts("pir", battery=12.0)) == ["low_battery"]
    low = judge(facts("smoke", battery=9.0, last_selftest_ok=False), now=NOW)
    assert [f.kind for f in low] == ["selftest_failed", "low_battery"]
    assert low[1].description.startswith("设备 dev-1 电量低 (9%)")


def test_selftest_needs_a_boolean_on_the_wire() -> None:
    refs = {"smoke-1": DeviceRef(3, "smoke-1", "home-1", "smoke", False)}
    topic = "eldercare/v1/home-1/smoke-1/event"
    ok = decode(
        RawMessage(
            topic, b'[{"bn":"smoke-1:","bt":1794999990,"n":"selftest","vb":false}]', 1795000000.0
        ),
        refs,
        Limits(),
    )
    assert isinstance(ok, Decoded)
    assert [(e.name, e.value_bool) for e in ok.events] == [("selftest", False)]
    bad = decode(
        RawMessage(
            topic, b'[{"bn":"smoke-1:","bt":1794999990,"n":"selftest","v":1}]', 1795000000.0
        ),
        refs,
        Limits(),
    )
    assert isinstance(bad, DeadLetter)
    assert bad.reason is Reason.BAD_VALUE


@pytest.fixture
def world(
    services: Services, database_url: str
) -> Iterator[tuple[TestClient, DemoPopulation, str]]:
    pop = seed(services, database_url)
    with TestClient(create_app(Settings(database_url=database_url))) as client:
        yield client, pop, database_url


def test_a_failed_selftest_becomes_one_finding_and_a_round_is_closed(
    world: tuple[TestClient, DemoPopulation, str],
) -> None:
    client, pop, url = world
    now = datetime.now(UTC)
    key = query(url, "SELECT device_key FROM devices WHERE device_id = 'smoke-sunrise-1'")[0][
        "device_key"
    ]
    query(
        url,
        "INSERT INTO events (time, device_key, name, value_bool) VALUES (%s, %s, 'selftest', false) "
        "RETURNING device_key",
        (now - timedelta(minutes=1), key),
    )
    first = arun(url, lambda c: device_findings_cycle(c, now=now))
    again = arun(url, lambda c: device_findings_cycle(c, now=now + timedelta(minutes=1)))
    assert first > 0
    assert again == 0  # one open finding per device and kind
    officer = demo_login(client, pop, "safety-sunrise")
    found = client.get("/api/safety/findings?open_only=true", headers=officer).json()
    smoke = [f for f in found if f["kind"] == "selftest_failed"]
    assert [(f["device_id"], f["site_id"], f["source"]) for f in smoke] == [
        ("smoke-sunrise-1", "sunrise", "device")
    ]
    assert {f["site_id"] for f in found} == {"sunrise"}  # the officer sees only their site
    # a round from the phone: two items fail, each opens a finding with owner and deadline
    items = client.get("/api/safety/sites/sunrise/checklist", headers=officer).json()
    assert [i["item_key"] for i in items] == [
        "fire_exits",
        "extinguishers",
        "smoke_detectors",
        "call_buttons",
        "bed_rails",
    ]
    results = [
        {
            "item_key": i["item_key"],
            "ok": i["item_key"] not in ("fire_exits", "bed_rails"),
            "note": "blocked" if i["item_key"] == "fire_exits" else "",
        }
        for i in items
    ]
    r = client.post(
        "/api/safety/sites/sunrise/rounds",
        headers=officer,
        json={"results": results, "owner": "facilities"},
    )
    assert r.status_code == 201, r.text
    ids = r.json()["finding_ids"]
    assert len(ids) == 2
    one = client.patch(
        f"/api/safety/findings/{ids[0]}", headers=officer, json={"owner": "Mr Zhou"}
    ).json()
    assert (one["owner"], one["description"], one["closed_at"]) == ("Mr Zhou", "blocked", None)
    closed = client.post(
        f"/api/safety/findings/{ids[0]}/close", headers=officer, json={"note": "boxes moved"}
    )
    assert closed.status_code == 200
    assert closed.json()["closure_note"] == "boxes moved"
    assert (
        client.post(
            f"/api/safety/findings/{ids[0]}/close", headers=officer, json={"note": "again"}
        ).status_code
        == 409
    )
    still_open = {
        f["finding_id"]
        for f in client.get("/api/safety/findings?open_only=true", headers=officer).json()
    }
    assert ids[1] in still_open
    assert ids[0] not in still_open
    # an item the site does not have is refused; a site not theirs looks missing
    bad = client.post(
        "/api/safety/sites/sunrise/rounds",
        headers=officer,
        json={"results": [{"item_key": "moat", "ok": True}]},
    )
    assert bad.status_code == 409
    assert client.get("/api/safety/sites/home-17/checklist", headers=officer).status_code == 404
    # the site adds its own item
    assert (
        client.post(
            "/api/safety/sites/sunrise/checklist",
            headers=officer,
            json={"item_key": "kitchen_gas", "label": "厨房燃气 Kitchen gas"},
        ).status_code
        == 204
    )
    assert "kitchen_gas" in {
        i["item_key"]
        for i in client.get("/api/safety/sites/sunrise/checklist", headers=officer).json()
    }
