"""Order updates and the daily summary reach the family (real database, real HTTP sink)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import psycopg

from alerts.dispatch.orders import Actor, accept_order, resolve_order
from devices.db import AsyncPool
from devices.domain import Colour, Outcome
from tests.notify_servers import http_sink
from tests.services import Services, query, seed
from tests.test_notify_integration import (
    SH,
    cycle,
    family,
    outbox,
    raise_alert,
    run,
    set_prefs,
    settings_for,
)


def test_order_updates_tell_the_family_how_it_was_handled(
    services: Services, database_url: str
) -> None:
    seed(services, database_url)
    user_id, resident_id, site_id = family(database_url)
    staff = query(database_url, "SELECT user_id FROM users WHERE username = 'staff-homes'")[0]
    settings = settings_for(database_url)
    now = datetime.now(UTC)
    with http_sink() as sink:

        async def go(pool: AsyncPool) -> None:
            await set_prefs(pool, user_id, channels=[{"kind": "webhook", "address": sink.url}])
            await raise_alert(
                pool,
                resident_id=resident_id,
                site_id=site_id,
                colour=Colour.RED,
                kind="fall",
                at=now,
            )
            await cycle(pool, settings, now)
            order_id = query(database_url, "SELECT order_id FROM dispatch_orders")[0]["order_id"]
            async with pool.connection() as conn:
                actor = Actor("staff-homes", user_id=staff["user_id"])
                await accept_order(
                    conn, order_id=order_id, actor=actor, now=now + timedelta(seconds=20)
                )
                await resolve_order(
                    conn,
                    order_id=order_id,
                    actor=actor,
                    now=now + timedelta(minutes=9),
                    outcome=Outcome.FALSE_ALARM,
                    note="sat down on the floor to find her glasses",
                )
                await conn.commit()
            await cycle(pool, settings, now + timedelta(minutes=10))

        run(database_url, go)
    bodies = [h.json() for h in sink.received]
    assert [(b["type"], b["order_state"]) for b in bodies] == [
        ("alert", "queued"),
        ("order", "accepted"),
        ("order", "resolved"),
    ]
    assert "A carer has taken the case." in bodies[1]["text"]
    assert bodies[2]["text"].endswith(
        "The case is closed. Outcome: false alarm. Note: sat down on the floor to find her glasses"
    )
    assert {r["state"] for r in outbox(database_url)} == {"delivered"}


def test_daily_summary_from_a_known_day(services: Services, database_url: str) -> None:
    seed(services, database_url)
    user_id, _resident_id, _ = family(database_url)
    keys = {
        r["device_id"]: r["device_key"]
        for r in query(database_url, "SELECT device_id, device_key FROM devices")
    }
    # A day well after the seed (device assignments start then): 08:05 local, 20 days on.
    day = (datetime.now(SH) + timedelta(days=20)).date()
    summary_at = datetime.combine(day, time(8, 5), tzinfo=SH)
    morning = datetime.combine(day, time(8), tzinfo=SH)
    rows: list[tuple[datetime, int, str, bool]] = [
        (morning - timedelta(hours=9, minutes=30), keys["bed-0042"], "presence", True),
        (morning - timedelta(hours=2, minutes=30), keys["bed-0042"], "presence", False),
        (morning - timedelta(hours=1), keys["bed-0042"], "presence", True),  # a nap: 1 h more
    ]
    for d in range(15):  # day 0 (the summary's day): 96 triggers; 14 days before: 100 each
        for i in range(96 if d == 0 else 100):
            at = morning - timedelta(days=d, hours=20) + timedelta(seconds=37 * i)
            rows.append((at, keys["pir-0042"], "motion", True))
    with psycopg.connect(database_url) as conn:
        conn.cursor().executemany(
            "INSERT INTO events (time, device_key, name, value_bool) VALUES (%s, %s, %s, %s)", rows
        )
    settings = settings_for(database_url)
    with http_sink() as sink:

        async def go(pool: AsyncPool) -> None:
            await set_prefs(
                pool,
                user_id,
                daily_summary=True,
                channels=[{"kind": "webhook", "address": sink.url}],
            )
            await cycle(pool, settings, summary_at.astimezone(UTC) - timedelta(hours=1))
            assert not sink.received  # before the summary hour
            await cycle(pool, settings, summary_at.astimezone(UTC))
            await cycle(pool, settings, summary_at.astimezone(UTC) + timedelta(hours=2))

        run(database_url, go)
    [hook] = sink.received  # once per day, however many cycles
    body = hook.json()
    assert body["type"] == "summary"
    assert body["text"] == f"{body['resident_name']}: in bed 8.0 h, active as usual, no alerts."
    assert body["motion"] == 96
