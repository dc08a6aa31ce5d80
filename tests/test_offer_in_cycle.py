"""An SOS is committed as alert, order and first offer in one transaction (issue 18: no
second claim between the detector and the responder), against the real broker and
database; time driven by the test's ``now``."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from alerts.detection.detectors.registry import build_registry, route
from alerts.detection.worker import Offer, run_cycle
from alerts.dispatch.escalation import offer_opened, run_due
from alerts.dispatch.policy import policy_from_settings
from devices.db import open_pool
from devices.registry import Conn
from devices.settings import Settings
from tests.dispatch_world import add_responder
from tests.services import Services, query, running, seed, wait_until, worker_env
from tests.test_ingest_integration import _pub, wait_for_ingest

SOS_BUTTON = "sos-r101"


async def cycle(url: str, *, now: datetime, offer: Offer | None) -> int:
    specs = build_registry(fall_min_confidence=0.2, fall_confirm_confidence=0.7)
    pool = await open_pool(url, name="test", max_size=2)
    try:
        done = await run_cycle(
            pool,
            routes=route(specs),
            policy=policy_from_settings(Settings()),
            limit=500,
            now=now,
            life_safety_only=True,
            offer=offer,
        )
        return done.alerts
    finally:
        await pool.close()


async def escalate(url: str, *, now: datetime) -> int:
    pool = await open_pool(url, name="test", max_size=1)
    try:
        async with pool.connection() as conn:
            return len(await run_due(conn, now=now))
    finally:
        await pool.close()


def press_sos(services: Services, url: str) -> datetime:
    """An SOS through the real broker and ingest worker; its stamp."""
    pop = seed(services, url)
    now = datetime.now(UTC)
    add_responder(
        url,
        "carer-a",
        site_id="sunrise",
        on_duty=(now - timedelta(hours=1), now + timedelta(hours=8)),
    )
    at = now - timedelta(seconds=2)
    with running("ingest", worker_env(services, url)):
        wait_for_ingest(services, url, pop)
        _pub(
            services,
            pop,
            SOS_BUTTON,
            "event",
            [{"bn": f"{SOS_BUTTON}:", "bt": at.timestamp(), "n": "sos", "vb": True}],
        )
        wait_until(
            lambda: bool(query(url, "SELECT 1 FROM stream_outbox WHERE name = 'sos'")),
            what="the SOS in the outbox",
        )
    return at


def orders(url: str) -> list[dict[str, object]]:
    return query(
        url,
        "SELECT o.state, o.offered_at = o.opened_at AS offered_at_open, o.steps_done,"
        " (SELECT count(*) FROM responder_notifications n WHERE n.order_id = o.order_id) AS told"
        " FROM dispatch_orders o",
    )


def test_the_cycle_that_raises_an_sos_offers_it_before_committing(
    services: Services, database_url: str
) -> None:
    press_sos(services, database_url)
    now = datetime.now(UTC)
    assert asyncio.run(cycle(database_url, now=now, offer=offer_opened)) == 1
    assert orders(database_url) == [
        {"state": "offered", "offered_at_open": True, "steps_done": 1, "told": 1}
    ]
    # nothing is left for the escalation loop until the policy's next step
    assert asyncio.run(escalate(database_url, now=now)) == 0


def test_an_offer_that_fails_leaves_the_sos_raised_and_due_for_escalation(
    services: Services, database_url: str
) -> None:
    press_sos(services, database_url)

    async def broken(conn: Conn, now: datetime) -> None:
        await offer_opened(conn, now)
        raise RuntimeError("the offer broke after its step")

    now = datetime.now(UTC)
    assert asyncio.run(cycle(database_url, now=now, offer=broken)) == 1
    # the alert and its order are committed; the failed offer is rolled back
    assert orders(database_url) == [
        {"state": "queued", "offered_at_open": None, "steps_done": 0, "told": 0}
    ]
    assert query(database_url, "SELECT kind FROM alerts") == [{"kind": "sos"}]
    assert asyncio.run(escalate(database_url, now=now + timedelta(seconds=1))) == 1
    assert [o["state"] for o in orders(database_url)] == ["offered"]
