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
    # the finding in the reader's language, from its catalogue message and stored figures
    assert [f["text"] for f in smoke] == ["烟感 smoke-sunrise-1 自检失败"]
    assert client.put("/api/me/locale", headers=officer, json={"locale": "en"}).status_code == 200
    english = client.get("/api/safety/findings?open_only=true", headers=officer).json()
    assert [f["text"] for f in english if f["kind"] == "selftest_failed"] == [
        "smoke detector smoke-sunrise-1 failed its self-test"
    ]
    assert client.put("/api/me/locale", headers=officer, json={"locale": None}).status_code == 200
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
    assert one["text"] == "blocked"  # a round's finding: the inspector's own words
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


def test_a_round_is_recorded_with_the_time_it_was_walked(
    world: tuple[TestClient, DemoPopulation, str],
) -> None:
    client, pop, url = world
    officer = demo_login(client, pop, "safety-sunrise")
    items = client.get("/api/safety/sites/sunrise/checklist", headers=officer).json()
    results = [{"item_key": i["item_key"], "ok": i["item_key"] != "bed_rails"} for i in items]
    before = datetime.now(UTC)
    walked = before - timedelta(days=10, hours=3)

    def walk(at: object) -> tuple[int, dict[str, object]]:
        r = client.post(
            "/api/safety/sites/sunrise/rounds",
            headers=officer,
            json={"results": results, "done_at": at},
        )
        return r.status_code, r.json()

    # refused: in the future, without a zone, more than 35 days back
    for at, code in (
        ((before + timedelta(minutes=5)).isoformat(), "error.time_future"),
        (walked.replace(tzinfo=None).isoformat(), "error.time_zone"),
        ((before - timedelta(days=35, minutes=1)).isoformat(), "error.time_too_old"),
    ):
        status, body = walk(at)
        assert (status, body.get("code")) == (422, code), at
    assert query(url, "SELECT count(*) AS n FROM safety_rounds")[0]["n"] == 0
    status, body = walk(walked.isoformat())
    assert status == 201, body
    assert datetime.fromisoformat(str(body["done_at"])) == walked
    assert before <= datetime.fromisoformat(str(body["recorded_at"])) <= datetime.now(UTC)
    [stored] = query(
        url,
        "SELECT r.done_at, r.recorded_at, u.username FROM safety_rounds r "
        "JOIN users u ON u.user_id = r.inspector_id",
    )
    assert (stored["done_at"], stored["username"]) == (walked, "safety-sunrise")
    assert stored["recorded_at"] >= before
    # its finding is opened on the day walked, due a week after
    [fid] = body["finding_ids"]
    [finding] = [
        f
        for f in client.get("/api/safety/findings", headers=officer).json()
        if f["finding_id"] == fid
    ]
    assert datetime.fromisoformat(finding["opened_at"]) == walked
    assert datetime.fromisoformat(finding["deadline"]) == walked + timedelta(days=7)
    # the site's rounds, latest walked first; a round now comes before the one walked earlier
    assert walk(None)[0] == 201
    rounds = client.get("/api/safety/sites/sunrise/rounds", headers=officer).json()
    assert [(r["inspector"], r["failed_items"]) for r in rounds] == [("safety-sunrise", 1)] * 2
    assert datetime.fromisoformat(rounds[1]["done_at"]) == walked
    # closed with the time it was fixed: not before it was found, not in the future
    for at, code in (
        (walked - timedelta(hours=1), "error.closed_before_opened"),
        (datetime.now(UTC) + timedelta(minutes=5), "error.time_future"),
    ):
        r = client.post(
            f"/api/safety/findings/{fid}/close",
            headers=officer,
            json={"note": "rail fixed", "closed_at": at.isoformat()},
        )
        assert (r.status_code, r.json().get("code")) == (422, code)
    fixed = walked + timedelta(days=2)
    r = client.post(
        f"/api/safety/findings/{fid}/close",
        headers=officer,
        json={"note": "rail fixed", "closed_at": fixed.isoformat()},
    )
    assert r.status_code == 200, r.text
    assert datetime.fromisoformat(r.json()["closed_at"]) == fixed
    [row] = query(
        url,
        "SELECT closed_at, close_recorded_at FROM safety_findings WHERE finding_id = %s",
        (fid,),
    )
    assert row["closed_at"] == fixed
    assert row["close_recorded_at"] >= before
