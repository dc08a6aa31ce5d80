"""Notifications against the real database, a real SMTP server and a real HTTP sink.

Time is driven explicitly: each cycle gets its ``now``; nothing sleeps to make time pass.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from alerts.detection.detectors.base import Verdict
from alerts.detection.persist import persist
from alerts.dispatch.policy import policy_from_settings
from alerts.notify import service
from alerts.notify.channels import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from alerts.notify.wiring import config_from, open_channels
from alerts.notify.worker import Cycle, run_cycle
from devices.db import AsyncPool, open_pool
from devices.domain import Colour
from devices.settings import Settings
from tests.notify_servers import HttpSink, Mailbox, http_sink, smtp_server
from tests.services import Services, query, seed

T = TypeVar("T")
SH = ZoneInfo("Asia/Shanghai")


def family(url: str) -> tuple[int, int, str]:
    """The demo family member, their relative and the relative's site."""
    row = query(
        url,
        "SELECT u.user_id, f.resident_id, r.site_id FROM users u JOIN family_links f USING "
        "(user_id) JOIN residents r USING (resident_id) WHERE u.username = 'family-home17'",
    )[0]
    return row["user_id"], row["resident_id"], row["site_id"]


def settings_for(url: str, mailbox: Mailbox | None = None, **kw: Any) -> Settings:
    return Settings(
        database_url=url,
        smtp_host="127.0.0.1",
        smtp_port=mailbox.port if mailbox else 1,
        **kw,
    )


def run(url: str, go: Callable[[AsyncPool], Awaitable[T]]) -> T:
    async def main() -> T:
        pool = await open_pool(url, name="notify-test", max_size=4)
        try:
            return await go(pool)
        finally:
            await pool.close()

    return asyncio.run(main())


async def set_prefs(pool: AsyncPool, user_id: int, **kw: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "colours": ["red", "yellow"],
        "kinds": None,
        "order_updates": True,
        "daily_summary": False,
        "channels": [],
        "quiet_start": None,
        "quiet_end": None,
        "timezone": None,
        "language": "en",
        **kw,
    }
    async with pool.connection() as conn:
        row = await service.save_prefs(conn, user_id=user_id, now=datetime.now(UTC), **fields)
        await conn.commit()
        return row


async def raise_alert(
    pool: AsyncPool, *, resident_id: int, site_id: str, colour: Colour, kind: str, at: datetime
) -> bool:
    """Store an alert and open its order exactly as the alerts worker does."""
    verdict = Verdict(
        detector=kind,
        kind=kind,
        colour=colour,
        occurred_at=at,
        site_id=site_id,
        idem_key=f"{kind}:{resident_id}:{at.timestamp()}",
        fold_key=f"{kind}:{resident_id}",
        fold_s=60,
        explanation=f"{kind} for resident {resident_id}",
        resident_id=resident_id,
    )
    async with pool.connection() as conn:
        stored = await persist(conn, verdict, now=at, policy=policy_from_settings(Settings()))
        await conn.commit()
        return stored


async def cycle(pool: AsyncPool, settings: Settings, now: datetime) -> Cycle:
    async with open_channels(settings) as channels:
        return await run_cycle(
            pool, channels=channels, config=config_from(settings), now=now, rng=random.Random(7)
        )


def outbox(url: str) -> list[dict[str, Any]]:
    return query(url, "SELECT * FROM notification_outbox ORDER BY id")


def test_red_alert_reaches_the_family_webhook_signed(services: Services, database_url: str) -> None:
    seed(services, database_url)
    user_id, resident_id, site_id = family(database_url)
    settings = settings_for(database_url)
    now = datetime.now(UTC)
    with http_sink() as sink:

        async def go(pool: AsyncPool) -> tuple[dict[str, Any], Cycle]:
            prefs = await set_prefs(
                pool, user_id, channels=[{"kind": "webhook", "address": sink.url}]
            )
            await raise_alert(
                pool,
                resident_id=resident_id,
                site_id=site_id,
                colour=Colour.RED,
                kind="sos",
                at=now,
            )
            return prefs, await cycle(pool, settings, now)

        prefs, result = run(database_url, go)
    assert result.delivered == 1
    [hook] = sink.received
    expected = sign(prefs["webhook_secret"], int(hook.headers[TIMESTAMP_HEADER]), hook.body)
    assert hook.headers[SIGNATURE_HEADER] == expected
    body = hook.json()
    assert (body["type"], body["kind"], body["colour"]) == ("alert", "sos", "red")
    name = query(
        database_url, "SELECT full_name FROM residents WHERE resident_id = %s", (resident_id,)
    )
    assert body["resident_name"] == name[0]["full_name"]
    assert body["subject"] == f"Urgent: {body['resident_name']}: SOS"
    [row] = outbox(database_url)
    assert (row["state"], row["delivered_via"], row["attempts"]) == ("delivered", "webhook", 1)
    [attempt] = query(database_url, "SELECT ok, receipt FROM notification_attempts")
    assert attempt["ok"]
    assert attempt["receipt"].startswith("HTTP 200")


def test_quiet_hours_hold_a_yellow_but_not_a_red(services: Services, database_url: str) -> None:
    seed(services, database_url)
    user_id, resident_id, site_id = family(database_url)
    settings = settings_for(database_url)
    now = datetime.now(UTC)
    local = now.astimezone(SH)
    quiet = {
        "quiet_start": time((local.hour - 1) % 24, 0),
        "quiet_end": time((local.hour + 2) % 24, 0),
    }
    with http_sink() as sink:

        async def go(pool: AsyncPool) -> None:
            await set_prefs(
                pool, user_id, channels=[{"kind": "webhook", "address": sink.url}], **quiet
            )
            for colour, kind in ((Colour.YELLOW, "inactivity"), (Colour.RED, "fall")):
                await raise_alert(
                    pool, resident_id=resident_id, site_id=site_id, colour=colour, kind=kind, at=now
                )
            await cycle(pool, settings, now)
            assert [h.json()["kind"] for h in sink.received] == ["fall"]
            await cycle(pool, settings, now + timedelta(hours=1))  # still quiet
            assert len(sink.received) == 1
            await cycle(pool, settings, now + timedelta(hours=3))  # morning
            assert [h.json()["kind"] for h in sink.received] == ["fall", "inactivity"]

        run(database_url, go)
    held = next(r for r in outbox(database_url) if r["colour"] == "yellow")
    assert held["not_before"].astimezone(SH).time() == quiet["quiet_end"]


def test_failing_webhook_is_retried_with_backoff_then_email_arrives(
    services: Services, database_url: str
) -> None:
    seed(services, database_url)
    user_id, resident_id, site_id = family(database_url)
    now = datetime.now(UTC)
    with http_sink(status=500) as sink, smtp_server() as mailbox:
        settings = settings_for(database_url, mailbox, notify_max_attempts=3)

        async def go(pool: AsyncPool) -> None:
            channels = [
                {"kind": "webhook", "address": sink.url},
                {"kind": "email", "address": "daughter@example.cn"},
            ]
            await set_prefs(pool, user_id, channels=channels)
            await raise_alert(
                pool,
                resident_id=resident_id,
                site_id=site_id,
                colour=Colour.RED,
                kind="sos",
                at=now,
            )
            await cycle(pool, settings, now)
            assert len(sink.received) == 1
            first_retry = outbox(database_url)[0]["next_attempt_at"]
            assert timedelta(seconds=15) <= first_retry - now <= timedelta(seconds=30)
            await cycle(pool, settings, now + timedelta(seconds=10))  # backing off: not yet
            assert len(sink.received) == 1
            t = now
            for _ in range(2):  # second and third webhook attempts, each when due
                t = outbox(database_url)[0]["next_attempt_at"]
                await cycle(pool, settings, t)
            assert len(sink.received) == 3
            assert not mailbox.messages
            await cycle(pool, settings, t)  # fallback channel is due at once
            assert len(mailbox.messages) == 1

        run(database_url, go)
    [mail] = mailbox.messages
    assert mailbox.recipients == [["daughter@example.cn"]]
    assert str(mail["Subject"]).endswith(": SOS")
    assert "sending someone" in mail.get_content()
    attempts = query(
        database_url, "SELECT channel, ok, receipt, at FROM notification_attempts ORDER BY id"
    )
    assert [(a["channel"], a["ok"]) for a in attempts] == [
        ("webhook", False),
        ("webhook", False),
        ("webhook", False),
        ("email", True),
    ]
    assert all(a["receipt"].startswith("HTTP 500") for a in attempts[:3])
    assert attempts[3]["receipt"].startswith("SMTP 250")
    assert "queued as M1" in attempts[3]["receipt"]
    gaps = [(b["at"] - a["at"]).total_seconds() for a, b in itertools.pairwise(attempts[:3])]
    assert 15 <= gaps[0] <= 30  # exponential, jittered
    assert 30 <= gaps[1] <= 60
    [row] = outbox(database_url)
    assert (row["state"], row["delivered_via"], row["attempts"]) == ("delivered", "email", 4)


def test_a_redelivered_alert_notifies_once(services: Services, database_url: str) -> None:
    seed(services, database_url)
    user_id, resident_id, site_id = family(database_url)
    settings = settings_for(database_url)
    now = datetime.now(UTC)
    with http_sink() as sink:

        async def go(pool: AsyncPool) -> list[bool]:
            await set_prefs(pool, user_id, channels=[{"kind": "webhook", "address": sink.url}])
            kw = {"resident_id": resident_id, "site_id": site_id, "colour": Colour.RED}
            stored = [await raise_alert(pool, kind="sos", at=now, **kw)]
            await cycle(pool, settings, now)
            stored.append(await raise_alert(pool, kind="sos", at=now, **kw))  # redelivered
            for k in range(3):  # rescans within the lookback, and a second worker's cycle
                await cycle(pool, settings, now + timedelta(seconds=k))
            return stored

        assert run(database_url, go) == [True, False]
    assert len(sink.received) == 1
    assert len(outbox(database_url)) == 1


def test_sink_and_mailbox_are_real_servers() -> None:
    """The test servers themselves answer over real sockets (guards the fixtures above)."""
    import smtplib
    import urllib.request

    with http_sink(status=503) as sink, smtp_server() as box:
        req = urllib.request.Request(sink.url, data=b"{}", method="POST")  # noqa: S310
        try:
            urllib.request.urlopen(req)  # noqa: S310
        except urllib.error.HTTPError as exc:
            assert exc.code == 503
        with smtplib.SMTP("127.0.0.1", box.port) as smtp:
            smtp.sendmail("a@b.c", ["d@e.f"], b"Subject: hi\r\n\r\nbody")
    assert isinstance(sink, HttpSink)
    assert len(sink.received) == 1
    assert json.loads(sink.received[0].body) == {}
    assert len(box.messages) == 1
