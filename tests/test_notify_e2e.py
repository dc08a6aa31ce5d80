"""End to end: a demo device's SOS and fall over MQTT, ingest and alerts workers running as
processes; every red incident of a family's relative reaches every family member, through
the fallback channel when the first one keeps failing."""

from __future__ import annotations

import asyncio
import time

import psycopg
from psycopg.rows import dict_row

from devices.accounts import create_user, hash_password
from devices.db import AsyncPool
from devices.domain import Role
from tests.notify_servers import http_sink, smtp_server
from tests.services import Services, query, running, seed, wait_for_beat, wait_until, worker_env
from tests.test_ingest_integration import _pub, wait_for_ingest
from tests.test_notify_integration import family, run, set_prefs


def _second_family_member(url: str, resident_id: int) -> int:
    async def go() -> int:
        async with await psycopg.AsyncConnection.connect(url, row_factory=dict_row) as conn:
            user_id = await create_user(
                conn,
                username="son-home17",
                password_hash=hash_password("a long test password"),
                role=Role.FAMILY,
                resident_ids=(resident_id,),
            )
            await conn.commit()
            return user_id

    return asyncio.run(go())


def test_every_red_incident_reaches_every_family_member(
    services: Services, database_url: str
) -> None:
    pop = seed(services, database_url)
    daughter, resident_id, _ = family(database_url)
    son = _second_family_member(database_url, resident_id)
    with (
        http_sink(status=500) as broken_hook,
        http_sink(answer={"message_id": "gw-123"}) as sms_gateway,
        smtp_server() as mailbox,
    ):

        async def prefs(pool: AsyncPool) -> None:
            await set_prefs(
                pool,
                daughter,
                channels=[
                    {"kind": "webhook", "address": broken_hook.url},
                    {"kind": "email", "address": "daughter@example.cn"},
                ],
            )
            await set_prefs(pool, son, channels=[{"kind": "sms", "address": "+8613800000000"}])

        run(database_url, prefs)
        env = worker_env(services, database_url)
        env.update(
            {
                "ELDERCARE_SMTP_HOST": "127.0.0.1",
                "ELDERCARE_SMTP_PORT": str(mailbox.port),
                "ELDERCARE_SMS_GATEWAY_URL": sms_gateway.url,
                "ELDERCARE_NOTIFY_MAX_ATTEMPTS": "2",
                "ELDERCARE_NOTIFY_BACKOFF_INITIAL_S": "0.05",
                "ELDERCARE_NOTIFY_BACKOFF_MAX_S": "0.2",
                "ELDERCARE_NOTIFY_POLL_INTERVAL_S": "0.1",
            }
        )
        with running("ingest", env), running("alerts", env) as alerts:
            wait_for_ingest(services, database_url, pop)
            wait_for_beat(database_url, alerts)
            now = time.time()
            _pub(
                services,
                pop,
                "btn-0042",
                "event",
                [{"bn": "btn-0042:", "bt": now, "n": "sos", "vb": True}],
            )
            _pub(
                services,
                pop,
                "wb-0042",
                "event",
                [{"bn": "wb-0042:", "bt": now + 1, "n": "fall", "vb": True, "v": 0.93}],
            )
            wait_until(
                lambda: len(query(database_url, "SELECT 1 FROM alerts WHERE colour = 'red'")) == 2,
                what="two red alerts",
            )
            wait_until(
                lambda: (
                    len(
                        query(
                            database_url,
                            "SELECT 1 FROM notification_outbox WHERE source = 'alert' "
                            "AND state IN ('delivered', 'failed')",
                        )
                    )
                    == 4
                ),
                what="every alert notification settled",
            )

    red = query(database_url, "SELECT alert_id FROM alerts WHERE colour = 'red' ORDER BY alert_id")
    rows = query(
        database_url,
        "SELECT alert_id, user_id, state, delivered_via, attempts FROM notification_outbox "
        "WHERE source = 'alert' ORDER BY alert_id, user_id",
    )
    expected = sorted(
        (a["alert_id"], u, "delivered", via, n)
        for a in red
        for u, via, n in ((daughter, "email", 3), (son, "sms", 1))
    )
    assert (
        sorted(
            (r["alert_id"], r["user_id"], r["state"], r["delivered_via"], r["attempts"])
            for r in rows
        )
        == expected
    )
    # The daughter's webhook was tried twice per incident, the failures kept with receipts.
    failed = query(
        database_url, "SELECT receipt FROM notification_attempts WHERE NOT ok ORDER BY id"
    )
    assert len(failed) == 4
    assert all(f["receipt"].startswith("HTTP 500") for f in failed)
    assert len(broken_hook.received) == 4
    subjects = sorted(str(m["Subject"]).split(" ", 2)[-1] for m in mailbox.messages)
    assert len(subjects) == 2
    assert any("SOS" in s for s in subjects)
    assert any(s.endswith("Fall") for s in subjects)
    assert len(sms_gateway.received) == 2
    texts = [r.json()["text"] for r in sms_gateway.received]
    assert all(r.json()["to"] == "+8613800000000" for r in sms_gateway.received)
    assert any("SOS" in t for t in texts)
    receipts = query(
        database_url, "SELECT receipt FROM notification_attempts WHERE channel = 'sms'"
    )
    assert [r["receipt"] for r in receipts] == ["HTTP 200 id=gw-123"] * 2
    latency = query(
        database_url,
        "SELECT max(extract(epoch FROM n.delivered_at - a.occurred_at)) AS s "
        "FROM notification_outbox n JOIN alerts a USING (alert_id) WHERE n.user_id = %s",
        (son,),
    )[0]["s"]
    print(f"device event -> family SMS gateway accepted: {float(latency) * 1000:.0f} ms (max of 2)")
    assert float(latency) < 10
