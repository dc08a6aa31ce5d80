"""The Chinese channels carried by the real outbox (real database, local provider emulators,
time passed in): fallback after failures, the voice call after an unread red text, the
undelivered bound, a care station's group robot, and the family's choices over the API."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from alerts.notify import service
from alerts.notify.wiring import config_from, open_channels
from alerts.notify.worker import Cycle, enqueue, run_cycle
from dashboard_api.app import create_app
from devices.db import AsyncPool
from devices.domain import Colour
from devices.settings import Settings
from tests.cn_emulators import (
    OPENID,
    ROBOT_KEY,
    aliyun,
    official_account,
    tencent_sms,
    wecom_robot,
)
from tests.services import Services, query, seed
from tests.test_api import _login
from tests.test_notify_cn_channels import settings as provider_settings
from tests.test_notify_integration import family, outbox, raise_alert, run, set_prefs

PHONE = "+8613800000000"


def cn_settings(url: str, **kw: Any) -> Settings:
    return provider_settings(database_url=url, smtp_port=1, **kw)


async def cycle(pool: AsyncPool, settings: Settings, now: datetime) -> Cycle:
    async with open_channels(settings) as channels:
        return await run_cycle(
            pool, channels=channels, config=config_from(settings), now=now, rng=random.Random(3)
        )


def attempts(url: str) -> list[dict[str, Any]]:
    return query(
        url, "SELECT channel, address, ok, receipt, at FROM notification_attempts ORDER BY id"
    )


def test_wechat_failing_falls_back_to_aliyun_sms(services: Services, database_url: str) -> None:
    seed(services, database_url)
    user_id, resident_id, site_id = family(database_url)
    now = datetime.now(UTC)
    with official_account() as oa, aliyun() as ali:
        oa.openids.clear()  # the member unfollowed the account: 40003 every time
        s = cn_settings(
            database_url,
            wechat_oa_api_base=oa.base,
            sms_provider="aliyun",
            aliyun_sms_endpoint=ali.base + "/",
            notify_max_attempts=2,
        )

        async def go(pool: AsyncPool) -> None:
            channels = [{"kind": "wechat", "address": OPENID}, {"kind": "sms", "address": PHONE}]
            await set_prefs(pool, user_id, channels=channels, language="zh")
            await raise_alert(
                pool,
                resident_id=resident_id,
                site_id=site_id,
                colour=Colour.YELLOW,
                kind="inactivity",
                at=now,
            )
            await cycle(pool, s, now)
            due = outbox(database_url)[0]["next_attempt_at"]
            assert timedelta(seconds=15) <= due - now <= timedelta(seconds=30)
            await cycle(pool, s, due)  # second WeChat failure: SMS is next, at once
            await cycle(pool, s, due)

        run(database_url, go)
    assert oa.problems == []
    assert ali.problems == []
    log = attempts(database_url)
    assert [(a["channel"], a["ok"]) for a in log] == [
        ("wechat", False),
        ("wechat", False),
        ("sms", True),
    ]
    assert log[0]["receipt"] == "errcode=40003 invalid openid"
    assert log[2]["receipt"].startswith("HTTP 200 BizId=")
    [row] = outbox(database_url)
    assert (row["state"], row["delivered_via"], row["attempts"]) == ("delivered", "sms", 3)


def _ladder(database_url: str, *, read_after: timedelta | None) -> tuple[Any, Any]:
    """A red SOS to [Tencent SMS, voice]; optionally read ``read_after`` the send."""
    user_id, resident_id, site_id = family(database_url)
    now = datetime.now(UTC)
    with tencent_sms() as tc, aliyun() as ali:
        s = cn_settings(
            database_url,
            sms_provider="tencent",
            tencent_sms_endpoint=tc.base + "/",
            aliyun_voice_endpoint=ali.base + "/",
            notify_voice_after_s=120,
        )

        async def go(pool: AsyncPool) -> None:
            channels = [{"kind": "sms", "address": PHONE}, {"kind": "voice", "address": PHONE}]
            await set_prefs(pool, user_id, channels=channels)
            await raise_alert(
                pool,
                resident_id=resident_id,
                site_id=site_id,
                colour=Colour.RED,
                kind="sos",
                at=now,
            )
            await cycle(pool, s, now)
            [row] = outbox(database_url)
            assert (row["state"], row["delivered_via"], row["channel_index"]) == (
                "pending",
                "sms",
                1,
            )
            assert row["next_attempt_at"] == now + timedelta(seconds=120)
            await cycle(pool, s, now + timedelta(seconds=60))  # not yet
            assert ali.requests == []
            if read_after is not None:
                async with pool.connection() as conn:
                    alert = row["alert_id"]
                    for k in (1, 2):  # reading twice keeps the first time
                        marked = await service.mark_alert_read(
                            conn, user_id=user_id, alert_id=alert, now=now + k * read_after
                        )
                        assert marked == 1
                    await conn.commit()
            await cycle(pool, s, now + timedelta(seconds=120))
            await cycle(pool, s, now + timedelta(seconds=400))  # nothing further either way

        run(database_url, go)
    assert tc.problems == []
    assert ali.problems == []
    return tc, ali


def test_an_unread_red_text_is_followed_by_a_voice_call(
    services: Services, database_url: str
) -> None:
    seed(services, database_url)
    tc, ali = _ladder(database_url, read_after=None)
    assert len(tc.requests) == 1
    [call] = ali.requests
    assert "Action=SingleCallByTts" in call.body.decode()
    log = attempts(database_url)
    assert [(a["channel"], a["ok"]) for a in log] == [("sms", True), ("voice", True)]
    assert log[1]["receipt"].startswith("HTTP 200 CallId=")
    assert (log[1]["at"] - log[0]["at"]) == timedelta(seconds=120)
    [row] = outbox(database_url)
    assert (row["state"], row["delivered_via"]) == ("delivered", "sms+voice")


def test_a_read_text_is_not_followed_by_a_call(services: Services, database_url: str) -> None:
    seed(services, database_url)
    tc, ali = _ladder(database_url, read_after=timedelta(seconds=90))
    assert len(tc.requests) == 1
    assert ali.requests == []
    [row] = outbox(database_url)
    assert (row["state"], row["delivered_via"]) == ("delivered", "sms")
    assert row["reason"].startswith("read at ")
    assert [a["channel"] for a in attempts(database_url)] == ["sms"]


def test_an_undelivered_red_text_is_called_after_the_bound(
    services: Services, database_url: str
) -> None:
    seed(services, database_url)
    user_id, resident_id, site_id = family(database_url)
    now = datetime.now(UTC)
    with official_account() as oa, aliyun() as ali:
        oa.openids.clear()
        s = cn_settings(
            database_url,
            wechat_oa_api_base=oa.base,
            aliyun_voice_endpoint=ali.base + "/",
            notify_voice_after_s=10,
            notify_max_attempts=5,
        )

        async def go(pool: AsyncPool) -> None:
            channels = [{"kind": "wechat", "address": OPENID}, {"kind": "voice", "address": PHONE}]
            await set_prefs(pool, user_id, channels=channels)
            await raise_alert(
                pool,
                resident_id=resident_id,
                site_id=site_id,
                colour=Colour.RED,
                kind="fall",
                at=now,
            )
            await cycle(pool, s, now)  # fails; retried in 15-30 s, past the 10 s bound
            due = outbox(database_url)[0]["next_attempt_at"]
            await cycle(pool, s, due)  # fails again: straight to the call, not 3 more tries
            await cycle(pool, s, due)

        run(database_url, go)
    log = attempts(database_url)
    assert [(a["channel"], a["ok"]) for a in log] == [
        ("wechat", False),
        ("wechat", False),
        ("voice", True),
    ]
    assert len(ali.requests) == 1
    [row] = outbox(database_url)
    assert (row["state"], row["delivered_via"]) == ("delivered", "voice")


def test_a_yellow_alert_never_calls(services: Services, database_url: str) -> None:
    seed(services, database_url)
    user_id, resident_id, site_id = family(database_url)
    now = datetime.now(UTC)
    with aliyun() as ali:
        s = cn_settings(
            database_url,
            sms_provider="aliyun",
            aliyun_sms_endpoint=ali.base + "/",
            aliyun_voice_endpoint=ali.base + "/",
        )

        async def go(pool: AsyncPool) -> None:
            channels = [{"kind": "voice", "address": PHONE}, {"kind": "sms", "address": PHONE}]
            await set_prefs(pool, user_id, channels=channels)
            await raise_alert(
                pool,
                resident_id=resident_id,
                site_id=site_id,
                colour=Colour.YELLOW,
                kind="inactivity",
                at=now,
            )
            for k in range(3):
                await cycle(pool, s, now + timedelta(minutes=5 * k))

        run(database_url, go)
    assert ["Action=SendSms" in r.body.decode() for r in ali.requests] == [True]
    [row] = outbox(database_url)
    assert (row["state"], row["delivered_via"]) == ("delivered", "sms")


def test_a_care_station_group_hears_red_and_yellow_once(
    services: Services, database_url: str
) -> None:
    seed(services, database_url)
    _, resident_id, site_id = family(database_url)
    now = datetime.now(UTC)
    with wecom_robot() as robot:
        s = cn_settings(
            database_url,
            wecom_robot_api_base=robot.base,
            wecom_robot_keys=json.dumps({site_id: ROBOT_KEY}),
        )
        robot.script.append((200, {"errcode": 45009, "errmsg": "api freq out of limit"}))

        async def go(pool: AsyncPool) -> None:
            for colour, kind in ((Colour.RED, "sos"), (Colour.GREEN, "low_battery")):
                await raise_alert(
                    pool, resident_id=resident_id, site_id=site_id, colour=colour, kind=kind, at=now
                )
            await cycle(pool, s, now)  # rate-limited: retried like any channel
            due = outbox(database_url)[0]["next_attempt_at"]
            for k in range(3):
                await cycle(pool, s, due + timedelta(seconds=k))

        run(database_url, go)
    assert robot.problems == []
    assert len(robot.requests) == 2
    content = robot.requests[1].json()["markdown"]["content"]
    assert "紧急" in content
    [row] = outbox(database_url)
    assert (row["site_id"], row["user_id"], row["state"]) == (site_id, None, "delivered")
    assert [(a["channel"], a["address"], a["ok"]) for a in attempts(database_url)] == [
        ("wecom_robot", site_id, False),
        ("wecom_robot", site_id, True),
    ]
    assert all(ROBOT_KEY not in a["receipt"] for a in attempts(database_url))


def test_a_family_chooses_wechat_and_voice_and_marks_a_notification_read(
    services: Services, database_url: str
) -> None:
    pop = seed(services, database_url)
    user_id, resident_id, site_id = family(database_url)
    with TestClient(create_app(Settings(database_url=database_url))) as client:
        me = _login(client, pop, "family-home17")
        staff = _login(client, pop, "staff-homes")
        body = {
            "colours": ["red"],
            "daily_summary": False,
            "channels": [
                {"kind": "wechat", "address": OPENID},
                {"kind": "sms", "address": PHONE},
                {"kind": "voice", "address": PHONE},
            ],
        }
        r = client.put("/api/notifications/preferences", headers=me, json=body)
        assert r.status_code == 200, r.text
        assert [c["kind"] for c in r.json()["channels"]] == ["wechat", "sms", "voice"]
        for bad in (
            {"kind": "wecom_robot", "address": site_id},
            {"kind": "wechat", "address": "not an openid"},
            {"kind": "voice", "address": "call me"},
        ):
            refused = client.put(
                "/api/notifications/preferences", headers=me, json={"channels": [bad]}
            )
            assert refused.status_code == 422, bad
        run(
            database_url,
            lambda pool: raise_alert(
                pool,
                resident_id=resident_id,
                site_id=site_id,
                colour=Colour.RED,
                kind="sos",
                at=datetime.now(UTC),
            ),
        )
        config = config_from(cn_settings(database_url))
        run(database_url, lambda pool: enqueue(pool, now=datetime.now(UTC), config=config))
        [row] = outbox(database_url)
        path = f"/api/notifications/alerts/{row['alert_id']}/read"
        assert client.post(path, headers=staff).status_code == 403
        assert (
            client.post(
                f"/api/notifications/alerts/{row['alert_id'] + 99}/read", headers=me
            ).status_code
            == 404
        )
        read = client.post(path, headers=me)
        assert read.status_code == 200, read.text
        history = client.get("/api/notifications/deliveries", headers=me).json()
    assert history[0]["read_at"] == read.json()["read_at"]
    assert history[0]["user_id"] == user_id
    assert history[0]["site_id"] == site_id
    assert history[0]["to_station"] is False
    assert read.json()["notifications"] == 1


async def _inactivity(pool: AsyncPool, resident_id: int, site_id: str, at: datetime) -> None:
    await raise_alert(
        pool,
        resident_id=resident_id,
        site_id=site_id,
        colour=Colour.YELLOW,
        kind="inactivity",
        at=at,
    )


def _note_late(url: str, reply: dict[str, object]) -> None:
    """A late text noted on the inactivity alert, as the check loop notes it."""
    query(
        url,
        "UPDATE alerts SET details = jsonb_set(details, '{late_replies}', COALESCE("
        "details -> 'late_replies', '[]'::jsonb) || %s::jsonb) WHERE kind = 'inactivity' "
        "RETURNING 1",
        (json.dumps([reply]),),
    )


def test_a_care_station_group_hears_a_residents_late_text_once_while_the_order_is_open(
    services: Services, database_url: str
) -> None:
    """The check loop notes a "1" that came after the unanswered check-in raised the alert
    (``details.late_replies``, tests/test_check_in_sms.py); the site's group robot hears each
    such text once, in Chinese, while the order is open. Before session 14 only the pages
    showed it."""
    seed(services, database_url)
    _, resident_id, site_id = family(database_url)
    now = datetime.now(UTC)
    late = [
        {
            "at": (now + timedelta(minutes=2)).isoformat(),
            "text": "1",
            "reading": "fine",
            "reply_id": 7,
        },
        {
            "at": (now + timedelta(minutes=3)).isoformat(),
            "text": "我没事",
            "reading": "fine",
            "reply_id": 8,
        },
    ]
    with wecom_robot() as robot:
        s = cn_settings(
            database_url,
            wecom_robot_api_base=robot.base,
            wecom_robot_keys=json.dumps({site_id: ROBOT_KEY}),
        )

        async def go(pool: AsyncPool) -> None:
            await _inactivity(pool, resident_id, site_id, now)
            await cycle(pool, s, now)  # the alert itself
            _note_late(database_url, late[0])
            await cycle(pool, s, now + timedelta(minutes=2))
            await cycle(pool, s, now + timedelta(minutes=2, seconds=30))  # nothing new
            _note_late(database_url, late[1])
            await cycle(pool, s, now + timedelta(minutes=3))

        run(database_url, go)
    assert robot.problems == []
    contents = [r.json()["markdown"]["content"] for r in robot.requests]
    assert len(contents) == 3, contents  # the alert, then each late text once
    assert "告警后老人回复短信：“1”" in contents[1]
    assert "请先回电确认" in contents[1]
    assert "“我没事”" in contents[2]
    rows = [r for r in outbox(database_url) if str(r["idem_key"]).startswith("late:")]
    assert [(r["source"], r["state"]) for r in rows] == [("order", "delivered")] * 2


def test_a_late_text_on_a_closed_order_is_not_posted(services: Services, database_url: str) -> None:
    seed(services, database_url)
    _, resident_id, site_id = family(database_url)
    now = datetime.now(UTC)
    s = cn_settings(database_url, wecom_robot_keys=json.dumps({site_id: ROBOT_KEY}))

    async def go(pool: AsyncPool) -> None:
        await _inactivity(pool, resident_id, site_id, now)
        _note_late(database_url, {"at": now.isoformat(), "text": "1", "reply_id": 9})
        query(database_url, "UPDATE dispatch_orders SET state = 'cancelled' RETURNING 1")
        assert await enqueue(pool, now=now, config=config_from(s)) == 1  # the alert alone

    run(database_url, go)
    assert not [r for r in outbox(database_url) if str(r["idem_key"]).startswith("late:")]
