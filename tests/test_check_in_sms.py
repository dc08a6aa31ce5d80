"""Check-ins by SMS against the real database, the API and a local Aliyun emulator (issue 17
item 3): a quiet resident of a home-care bed with no button or wristband, whose care plan
allows it, is texted "reply 1 if you are fine"; the text goes out through the provider with
the check-in template; the provider's reply callback reaches the API; "2" raises a red alert
at once, "1" records the check-in and raises nothing. Time is driven by the test."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import httpx2 as httpx
import psycopg
from fastapi.testclient import TestClient

from alerts.detection.sms_replies import LATE_KEEP, run_replies
from alerts.dispatch.orders import Actor, cancel_order
from alerts.notify.resident_messages import send_due
from alerts.notify.wiring import check_in_sms_from
from dashboard_api.app import create_app
from devices.db import open_pool
from devices.registry import Conn
from devices.settings import Settings
from tests.cn_emulators import ALIYUN_ID, ALIYUN_SECRET, aliyun
from tests.dispatch_world import arun
from tests.http import HTTP
from tests.live_server import serve
from tests.services import Services, query, seed
from tests.test_check_in_integration import (
    HISTORY_SQL,
    POLICY,
    _checks,
    _midday_zone,
    _tick,
    checks,
)
from tests.test_orders_api import demo_login

PHONE = "13800000018"
TOKEN = "inbound-test-token"
WIDE_ONE = "\uff11"  # a full-width 1, as a Chinese keyboard types it


def quiet_home_18(url: str, now: datetime) -> None:
    """home-18's resident: an hour quiet after a week of motion every 20 min, no button or
    wristband (retired), a phone, and a plan that allows texting them."""
    query(url, "UPDATE sites SET timezone = %s RETURNING 1", (_midday_zone(now),))
    query(url, HISTORY_SQL, {"start": now - timedelta(days=7), "end": now - timedelta(minutes=60),
                             "pirs": ["pir-0043"]})  # fmt: skip
    query(
        url,
        "UPDATE devices SET retired_at = %s WHERE site_id = 'home-18'"
        " AND kind IN ('wristband', 'sos_button') RETURNING 1",
        (now - timedelta(days=1),),
    )
    query(
        url,
        "UPDATE residents SET phone = '+86 138 0000 0018',"
        " care_plan = care_plan || '{\"check_in_by_phone\": true}' WHERE site_id = 'home-18'"
        " RETURNING 1",
    )


async def _read_replies(url: str, now: datetime) -> int:
    pool = await open_pool(url, name="test-replies", max_size=1)
    try:
        return await run_replies(pool, policy=POLICY, limit=100, wall=now)
    finally:
        await pool.close()


def replies(url: str) -> list[dict[str, Any]]:
    return query(
        url, "SELECT body, check_id, handled_at, outcome FROM check_in_replies ORDER BY id"
    )


def alerts_of(url: str, site: str) -> list[dict[str, Any]]:
    return query(
        url,
        "SELECT a.kind, a.colour, a.explanation, a.details FROM alerts a"
        " JOIN residents r USING (resident_id) WHERE r.site_id = %s ORDER BY a.alert_id",
        (site,),
    )


async def _send(url: str, settings: Settings, now: datetime) -> dict[str, int]:
    pool = await open_pool(url, name="test-texts", max_size=1)
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            return await send_due(pool, channel=check_in_sms_from(settings, client), now=now)
    finally:
        await pool.close()


def reply(base: str, text: str, *, key: str = TOKEN, seq: int = 1) -> httpx.Response:
    body = [{"phone_number": PHONE, "content": text, "send_time": "2026-12-03 20:15:00",
             "dest_code": "1234", "sequence_id": seq}]  # fmt: skip
    return HTTP.post(f"{base}/api/inbound/sms/aliyun?key={key}", json=body, timeout=10)


def ask(services: Services, url: str) -> tuple[datetime, dict[str, Any]]:
    seed(services, url)
    now = datetime.now(UTC).replace(microsecond=0)
    quiet_home_18(url, now)
    assert asyncio.run(_tick(url, now)).alerts == 0  # asked first
    return now, checks(url)["home-18"]


def test_a_text_goes_out_and_a_reply_asking_for_help_raises_a_red_alert_at_once(
    services: Services, database_url: str
) -> None:
    url = database_url
    now, asked = ask(services, url)
    assert asked["device_key"] is None
    assert asked["event"]["phone"] == PHONE
    assert asked["event"]["via"] == "sms"
    [text] = query(url, "SELECT * FROM resident_messages")
    assert text["phone"] == PHONE
    assert text["state"] == "pending"
    assert "回复1" in text["body"]
    assert "1 小时" in text["body"]  # the quiet time, as devices.i18n.duration writes it
    with aliyun() as emu:
        settings = Settings(
            sms_provider="aliyun",
            aliyun_sms_endpoint=emu.base + "/",
            aliyun_access_key_id=ALIYUN_ID,
            aliyun_access_key_secret=ALIYUN_SECRET,
            aliyun_sms_sign_name="颐养护理站",
            aliyun_check_in_template_code="SMS_CHECKIN_1",
        )
        assert asyncio.run(_send(url, settings, now)) == {"sent": 1}
    assert emu.problems == []
    sent = dict(parse_qsl(emu.requests[0].body.decode()))
    assert (sent["PhoneNumbers"], sent["TemplateCode"]) == (PHONE, "SMS_CHECKIN_1")
    assert json.loads(sent["TemplateParam"]) == {"name": text["payload"]["resident_name"]}
    assert query(url, "SELECT state FROM resident_messages") == [{"state": "sent"}]
    with serve(url, inbound_sms_token=TOKEN) as base:
        assert reply(base, "2", key="guess").status_code == 404
        first = reply(base, "2")
        assert (first.status_code, first.json()) == (200, {"code": 0, "msg": "接收成功"})
        assert reply(base, "2").status_code == 200  # the provider's retry: the same reply
    stored = query(url, "SELECT check_id, body FROM check_in_replies")
    assert stored == [{"check_id": asked["check_id"], "body": "2"}]
    asyncio.run(_checks(url, now + timedelta(seconds=30)))
    [alert] = query(
        url,
        "SELECT a.colour, a.explanation, a.details FROM alerts a"
        " JOIN residents r USING (resident_id) WHERE r.site_id = 'home-18'",
    )
    assert alert["colour"] == "red"
    assert alert["details"]["check_in"]["outcome"] == "help"
    assert "asks for help" in alert["explanation"]
    assert checks(url)["home-18"]["outcome"] == "raised: replied '2'"


def test_a_fine_reply_records_the_check_in_and_a_stray_one_changes_nothing(
    services: Services, database_url: str
) -> None:
    url = database_url
    now, asked = ask(services, url)
    # the right key from an address that is not the provider's: 404, nothing stored
    with serve(url, inbound_sms_token=TOKEN, inbound_sms_allow_nets=["10.0.0.0/8"]) as base:
        assert reply(base, "1").status_code == 404
    assert query(url, "SELECT id FROM check_in_replies") == []
    with serve(url, inbound_sms_token=TOKEN, inbound_sms_allow_nets=["127.0.0.0/8"]) as base:
        assert reply(base, WIDE_ONE).status_code == 200  # a full-width 1
    asyncio.run(_checks(url, now + timedelta(seconds=30)))
    assert checks(url)["home-18"]["outcome"].startswith(f"answered: replied by SMS: '{WIDE_ONE}'")
    assert (
        query(
            url,
            "SELECT 1 FROM alerts a JOIN residents r USING (resident_id)"
            " WHERE r.site_id = 'home-18'",
        )
        == []
    )
    # a reply with no open check-in (the one above is decided) is kept, unmatched; hostile
    # bodies are refused with 422 and store nothing
    with serve(url, inbound_sms_token=TOKEN) as base:
        assert reply(base, "我很好\x00", seq=2).status_code == 200  # NUL blanked, not a 500
        inbound = f"{base}/api/inbound/sms"
        too_many = [{"phone_number": PHONE, "content": "1", "sequence_id": i} for i in range(101)]
        for path, body in (("aliyun", too_many), ("aliyun", {"not": "a list"}),
                           ("tencent", {"mobile": PHONE, "text": "1", "time": -1}),
                           ("gateway", {"id": "", "from": PHONE, "text": "1"})):  # fmt: skip
            r = HTTP.post(f"{inbound}/{path}?key={TOKEN}", json=body, timeout=10)
            assert r.status_code == 422, (path, r.status_code)
    assert query(url, "SELECT check_id, body FROM check_in_replies ORDER BY id") == [
        {"check_id": asked["check_id"], "body": WIDE_ONE},
        {"check_id": None, "body": "我很好 "},
    ]
    # the check-in's own reply was read by its decision; the stray one is read once by the
    # unread pass: a resident saying they are fine raises nothing
    rid = query(url, "SELECT resident_id FROM residents WHERE site_id = 'home-18'")[0][
        "resident_id"
    ]
    assert asyncio.run(_read_replies(url, now + timedelta(seconds=40))) == 1
    read, stray = replies(url)
    assert read["outcome"] == f"read by check-in {asked['check_id']}"
    assert read["handled_at"] == now + timedelta(seconds=30)
    assert stray["outcome"] == f"fine, resident {rid}"
    assert stray["handled_at"] == now + timedelta(seconds=40)
    assert asyncio.run(_read_replies(url, now + timedelta(seconds=50))) == 0
    assert alerts_of(url, "home-18") == []


def test_a_text_asking_for_help_with_no_check_in_open_is_a_red_alert_at_once(
    services: Services, database_url: str
) -> None:
    """A resident who texts "救命" on their own (no check-in asked), or "2" after their
    check-in was decided, is asking for a person: before migration 0029 such a text was kept
    and read by nobody."""
    url = database_url
    seed(services, url)
    now = datetime.now(UTC).replace(microsecond=0)
    quiet_home_18(url, now)  # gives home-18's resident the phone +86 138 0000 0018
    with serve(url, inbound_sms_token=TOKEN) as base:
        assert reply(base, "救命", seq=7).status_code == 200
        stranger = {"id": "gw-1", "from": "13900000000", "text": "2"}
        got = HTTP.post(f"{base}/api/inbound/sms/gateway?key={TOKEN}", json=stranger, timeout=10)
        assert got.status_code == 200
    assert [r["check_id"] for r in replies(url)] == [None, None]
    assert asyncio.run(_read_replies(url, now)) == 2
    [alert] = alerts_of(url, "home-18")
    assert (alert["kind"], alert["colour"]) == ("sos", "red")
    assert "'救命'" in alert["explanation"]
    assert "no check-in open" in alert["explanation"]
    assert alert["details"]["via"] == "sms"
    [order] = query(
        url,
        "SELECT o.state, i.colour FROM dispatch_orders o JOIN incidents i USING (incident_id)"
        " JOIN residents r ON r.resident_id = i.resident_id WHERE r.site_id = 'home-18'",
    )
    assert (order["state"], order["colour"]) == ("queued", "red")  # a red order, to be offered
    help_text, unknown = replies(url)
    assert help_text["outcome"].startswith("raised: asks for help, resident ")
    assert unknown["outcome"] == "help, no resident's number"
    # read once: another pass raises nothing more
    assert asyncio.run(_read_replies(url, now + timedelta(seconds=5))) == 0
    assert len(alerts_of(url, "home-18")) == 1


def test_a_reply_that_came_after_its_check_in_was_decided_is_still_read(
    services: Services, database_url: str
) -> None:
    url = database_url
    now, asked = ask(services, url)
    # the check-in was decided (no answer) and a "2" matched to it lands after the decision
    query(
        url,
        "UPDATE detector_checks SET done_at = %s, outcome = 'raised: no answer'"
        " WHERE check_id = %s RETURNING 1",
        (now + timedelta(minutes=10), asked["check_id"]),
    )
    query(
        url,
        "INSERT INTO check_in_replies (provider, provider_id, phone, body, received_at, check_id)"
        " VALUES ('gateway', 'late-1', %s, '2', %s, %s) RETURNING 1",
        (PHONE, now + timedelta(minutes=11), asked["check_id"]),
    )
    assert asyncio.run(_read_replies(url, now + timedelta(minutes=11))) == 1
    [alert] = alerts_of(url, "home-18")
    assert (alert["kind"], alert["colour"]) == ("sos", "red")
    assert f"after check-in {asked['check_id']} was decided" in alert["explanation"]


def test_a_fine_reply_after_the_alert_is_noted_on_it_and_shown_on_the_console(
    services: Services, database_url: str
) -> None:
    """Nobody answers the text, so the check loop raises the inactivity alert; "1" comes two
    minutes later. It raises nothing, but the alert carries it and the 96345 console shows it
    on the order: the operator calls before standing anyone down. Before session 13 it was
    stored and shown to nobody."""
    url = database_url
    pop = seed(services, url)
    now = datetime.now(UTC).replace(microsecond=0)
    quiet_home_18(url, now)
    assert asyncio.run(_tick(url, now)).alerts == 0  # asked first
    asked = checks(url)["home-18"]
    due = asked["due_at"]
    assert isinstance(due, datetime)
    asyncio.run(_checks(url, due + timedelta(seconds=1)))
    assert str(checks(url)["home-18"]["outcome"]).startswith("raised")
    [alert] = query(
        url,
        "SELECT a.alert_id, a.kind, a.details FROM alerts a JOIN residents r USING"
        " (resident_id) WHERE r.site_id = 'home-18'",
    )
    assert alert["kind"] == "inactivity"
    assert "late_replies" not in alert["details"]
    late = due + timedelta(minutes=2)
    query(
        url,
        "INSERT INTO check_in_replies (provider, provider_id, phone, body, received_at, check_id)"
        " VALUES ('gateway', 'late-fine', %s, %s, %s, %s) RETURNING 1",
        (PHONE, WIDE_ONE, late, asked["check_id"]),
    )
    with psycopg.connect(url, autocommit=True) as listener:
        listener.execute("LISTEN dispatch")
        assert asyncio.run(_read_replies(url, late)) == 1
        # the order's pages hear of it at once (before session 14: at their next reload)
        heard = [n.payload for n in listener.notifies(timeout=1.0)]
    [order_row] = query(
        url, "SELECT order_id, state FROM dispatch_orders WHERE alert_id = %s", (alert["alert_id"],)
    )
    assert heard == [f"{order_row['order_id']}:{order_row['state']}"]
    [again] = query(
        url,
        "SELECT a.alert_id, a.details FROM alerts a JOIN residents r USING (resident_id)"
        " WHERE r.site_id = 'home-18'",
    )  # still one alert: a fine reply raises nothing
    [noted] = again["details"]["late_replies"]
    assert (noted["text"], noted["reading"]) == (WIDE_ONE, "fine")
    assert datetime.fromisoformat(noted["at"]) == late
    [read] = replies(url)
    assert read["outcome"].endswith(
        f"after check-in {asked['check_id']}, noted on alert {alert['alert_id']}"
    )
    with TestClient(create_app(Settings(database_url=url))) as client:
        board = client.get(
            "/api/console/orders", headers=demo_login(client, pop, "operator-96345")
        ).json()
        [order] = [o for o in board if o["resident_name"] and o["site_id"] == "home-18"]
        assert [(r["text"], r["reading"]) for r in order["late_replies"]] == [(WIDE_ONE, "fine")]
        # and on the order itself, for the site's staff and whoever it is offered to
        staff = demo_login(client, pop, "staff-homes")
        got = client.get(f"/api/orders/{order['order_id']}", headers=staff)
        assert got.status_code == 200, got.text
        assert [r["text"] for r in got.json()["late_replies"]] == [WIDE_ONE]
        listed = client.get("/api/orders?site_id=home-18", headers=staff).json()
        assert [o["late_replies"][0]["text"] for o in listed] == [WIDE_ONE]
        # and on the care station's wall
        [card] = client.get("/api/wall", headers=staff).json()
        assert [r["text"] for r in card["late_replies"]] == [WIDE_ONE]
    # read once: another pass notes nothing more
    assert asyncio.run(_read_replies(url, late + timedelta(seconds=5))) == 0
    # texts through the provider after the decision match no open check-in (check_id NULL):
    # noted on the same alert, the last LATE_KEEP of them (a flood cannot grow it)
    places = ["在公园", "在超市", "在女儿家", "在楼下", "在邻居家", "在菜场"][: LATE_KEEP + 1]
    with serve(url, inbound_sms_token=TOKEN) as base:
        for n, place in enumerate(places):  # no digit: "2" would ask for help
            assert reply(base, f"我{place}", seq=10 + n).status_code == 200
    assert [r["check_id"] for r in replies(url)][1:] == [None] * (LATE_KEEP + 1)
    assert asyncio.run(_read_replies(url, late + timedelta(minutes=1))) == LATE_KEEP + 1
    [kept] = query(url, "SELECT details FROM alerts WHERE alert_id = %s", (alert["alert_id"],))
    assert [r["text"] for r in kept["details"]["late_replies"]] == [f"我{p}" for p in places[1:]]
    assert all(
        r["outcome"].endswith(f"noted on alert {alert['alert_id']}") for r in replies(url)[1:]
    )
    # once the order is closed, a text is kept with its reading but noted on no alert
    order_id = order["order_id"]

    async def close(conn: Conn) -> None:
        await cancel_order(conn, order_id=order_id, actor=Actor("admin"), note="called", now=late)

    arun(url, close)
    with serve(url, inbound_sms_token=TOKEN) as base:
        assert reply(base, "好的", seq=30).status_code == 200
    assert asyncio.run(_read_replies(url, late + timedelta(minutes=2))) == 1
    assert "noted" not in replies(url)[-1]["outcome"]
    [after] = query(url, "SELECT details FROM alerts WHERE alert_id = %s", (alert["alert_id"],))
    assert after["details"]["late_replies"] == kept["details"]["late_replies"]
