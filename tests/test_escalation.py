"""The escalation state machine against a real database, time driven by ``now``."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from alerts.detection.detectors.base import Verdict
from alerts.detection.persist import persist
from alerts.dispatch.escalation import CLAIM_SQL, StepDone, perform, run_due
from alerts.dispatch.orders import Actor, OrderError, accept_order, cancel_order, set_site_policy
from alerts.dispatch.policy import to_builtins
from devices.domain import Colour
from devices.registry import Conn
from tests.dispatch_world import POLICY, T0, add_responder, arun, raise_sos
from tests.services import Services, query, seed


def due(url: str, at_s: float) -> list[StepDone]:
    return arun(url, lambda conn: run_due(conn, now=T0 + timedelta(seconds=at_s)))


def steps(url: str, order_id: int) -> list[dict[str, Any]]:
    return query(
        url,
        "SELECT seq, action, responder_id FROM order_steps WHERE order_id = %s ORDER BY seq",
        (order_id,),
    )


@pytest.fixture
def sunrise(services: Services, database_url: str) -> dict[str, int]:
    """Two carers on shift at the nursing home, one off shift, a supervisor, the centre,
    and a home-care provider of another community."""
    seed(services, database_url)
    ids = {
        "a": add_responder(database_url, "carer-a", site_id="sunrise"),
        "b": add_responder(database_url, "carer-b", site_id="sunrise"),
        "off": add_responder(
            database_url,
            "carer-off",
            site_id="sunrise",
            on_duty=(T0 - timedelta(hours=20), T0 - timedelta(hours=12)),
        ),
        "sup": add_responder(database_url, "sup", kind="supervisor", level=2, site_id="sunrise"),
        "centre": add_responder(database_url, "centre", kind="centre", level=3),
        "provider": add_responder(
            database_url, "provider", kind="provider", community="pinghu-west"
        ),
    }
    return ids


def test_offer_reoffer_escalate_and_renotify_until_accepted(
    database_url: str, sunrise: dict[str, int]
) -> None:
    r = sunrise
    order = raise_sos(database_url, "sos-r101", at=T0)  # opened at T0+1 s, first step due
    assert [(s.action, s.responder_id) for s in due(database_url, 1)] == [("offer", r["a"])]
    assert due(database_url, 15) == []  # the 15 s wait is not over
    assert [s.responder_id for s in due(database_url, 16)] == [r["b"]]  # re-offered
    assert [s.responder_id for s in due(database_url, 31)] == [r["sup"]]  # supervisor
    assert [s.responder_id for s in due(database_url, 46)] == [r["centre"]]  # centre
    renotify = due(database_url, 61)
    assert [(s.action, s.notified) for s in renotify] == [
        ("renotify", tuple(sorted((r["a"], r["b"], r["sup"], r["centre"]))))
    ]
    assert len(due(database_url, 76)) == 1  # and again, until someone accepts
    carer_b = Actor("carer-b")
    arun(
        database_url,
        lambda c: accept_order(c, order_id=order, actor=carer_b, now=T0 + timedelta(seconds=80)),
    )
    assert due(database_url, 3600) == []
    assert [s["seq"] for s in steps(database_url, order)] == [1, 2, 3, 4, 5, 6]
    kinds = query(
        database_url,
        "SELECT kind, count(*) AS n FROM responder_notifications GROUP BY kind ORDER BY kind",
    )
    assert kinds == [
        {"kind": "escalation", "n": 2},
        {"kind": "offer", "n": 2},
        {"kind": "renotify", "n": 8},
    ]
    offered = {x["responder_id"] for x in query(database_url, "SELECT * FROM order_offers")}
    assert r["off"] not in offered
    assert r["provider"] not in offered
    trail = query(
        database_url,
        "SELECT to_state, actor FROM order_transitions WHERE order_id = %s ORDER BY id",
        (order,),
    )
    assert [(t["to_state"], t["actor"]) for t in trail] == [
        ("queued", "system"),
        *[("offered", "escalation")] * 4,
        ("accepted", "carer-b"),
    ]
    [row] = query(
        database_url,
        "SELECT state, step_due_at, run_token, offered_at FROM dispatch_orders WHERE order_id = %s",
        (order,),
    )
    assert row["state"] == "accepted"
    assert row["step_due_at"] is None
    assert row["run_token"] is None
    assert row["offered_at"] == T0 + timedelta(seconds=1)


def test_nobody_on_duty_goes_up_a_level_and_nobody_at_all_keeps_trying(
    services: Services, database_url: str
) -> None:
    seed(services, database_url)
    order = raise_sos(database_url, "btn-0042", at=T0)  # home-17, no responders yet
    [first] = due(database_url, 1)
    assert (first.action, first.responder_id) == ("offer", None)
    [row] = query(database_url, "SELECT state, step_due_at FROM dispatch_orders")
    assert row["state"] == "queued"
    assert row["step_due_at"] == T0 + timedelta(seconds=16)
    assert "nobody on duty" in query(database_url, "SELECT note FROM order_steps")[0]["note"]
    sup = add_responder(
        database_url, "sup-west", kind="supervisor", level=2, community="pinghu-west"
    )
    add_responder(  # the provider's shift is over
        database_url,
        "provider-west",
        kind="provider",
        community="pinghu-west",
        on_duty=(T0 - timedelta(hours=9), T0 - timedelta(hours=1)),
    )
    [second] = due(database_url, 16)
    assert (second.action, second.responder_id) == ("offer", sup)
    assert len(steps(database_url, order)) == 2


def test_cancelled_order_stops_escalating_and_tells_the_device(
    database_url: str, sunrise: dict[str, int]
) -> None:
    order = raise_sos(database_url, "sos-r101", at=T0)
    due(database_url, 1)
    staff = Actor("staff-sunrise")
    arun(
        database_url,
        lambda c: cancel_order(
            c, order_id=order, actor=staff, note="pressed by mistake", now=T0 + timedelta(seconds=5)
        ),
    )
    assert due(database_url, 600) == []
    assert len(steps(database_url, order)) == 1
    [cmd] = query(database_url, "SELECT topic, payload FROM device_commands")
    assert cmd["topic"] == "eldercare/v1/sunrise/sos-r101/cmd"
    assert b'"type":"alert_cancelled"' in bytes(cmd["payload"])
    with pytest.raises(OrderError, match="already closed"):
        arun(
            database_url,
            lambda c: cancel_order(c, order_id=order, actor=staff, note="again", now=T0),
        )


def test_the_site_policy_is_copied_when_the_order_opens(
    database_url: str, sunrise: dict[str, int]
) -> None:
    r = sunrise
    least_loaded = to_builtins(POLICY) | {"assignment": "least_loaded"}
    arun(
        database_url,
        lambda c: set_site_policy(c, site_id="sunrise", policy=least_loaded, now=T0),
    )
    [admin] = query(database_url, "SELECT user_id FROM users WHERE username = 'admin'")
    query(  # carer-a signs in as that user
        database_url,
        "UPDATE responders SET user_id = %s WHERE responder_id = %s RETURNING 1",
        (admin["user_id"], r["a"]),
    )
    first = raise_sos(database_url, "sos-r101", at=T0)
    due(database_url, 1)  # offered to carer-a
    due(database_url, 16)  # re-offered to carer-b: round robin would pick carer-a next
    carer_a = Actor("carer-a", user_id=admin["user_id"])
    arun(database_url, lambda c: accept_order(c, order_id=first, actor=carer_a, now=T0))
    # A later edit of the site's policy does not change the order opened before it.
    second = raise_sos(database_url, "sos-r103", at=T0 + timedelta(seconds=16))
    arun(
        database_url,
        lambda c: set_site_policy(c, site_id="sunrise", policy=to_builtins(POLICY), now=T0),
    )
    [step] = due(database_url, 17)
    assert step.order_id == second
    assert step.responder_id == r["b"]
    policies = query(
        database_url, "SELECT policy->>'assignment' AS a FROM dispatch_orders ORDER BY order_id"
    )
    assert [p["a"] for p in policies] == ["least_loaded", "least_loaded"]


def _verdict(i: int) -> Verdict:
    return Verdict(
        detector="sos",
        kind="sos",
        colour=Colour.RED,
        occurred_at=T0 + timedelta(seconds=i),
        site_id="sunrise",
        idem_key=f"sos:race:{i}",
        fold_key="sos:race",
        fold_s=120,
        explanation="race",
    )


def test_duplicates_from_racing_writers_fold_into_one_incident(
    services: Services, database_url: str
) -> None:
    seed(services, database_url)
    writers = 8

    async def race() -> list[bool]:
        conns = [
            await psycopg.AsyncConnection.connect(database_url, row_factory=dict_row)
            for _ in range(writers)
        ]
        start = asyncio.Barrier(writers)

        async def write(conn: Conn, i: int) -> bool:
            async with conn.transaction():
                await conn.execute("SELECT 1")  # the transaction is open on every writer
                await start.wait()
                return await persist(
                    conn, _verdict(i), now=T0 + timedelta(seconds=9), policy=POLICY
                )

        try:
            return await asyncio.gather(*(write(c, i) for i, c in enumerate(conns)))
        finally:
            for c in conns:
                await c.close()

    opened = asyncio.run(race())
    assert sum(opened) == 1
    again = asyncio.run(race())  # redelivery of the same inputs: nothing new at all
    assert sum(again) == 0
    [incident] = query(database_url, "SELECT * FROM incidents")
    assert incident["alert_count"] == writers
    assert (incident["first_at"], incident["last_at"]) == (T0, T0 + timedelta(seconds=7))
    assert len(query(database_url, "SELECT 1 FROM alerts")) == writers
    [order] = query(database_url, "SELECT incident_id FROM dispatch_orders")
    assert order["incident_id"] == incident["incident_id"]


def test_a_worker_killed_mid_step_loses_nothing_and_another_does_it_once(
    database_url: str, sunrise: dict[str, int]
) -> None:
    order = raise_sos(database_url, "sos-r101", at=T0)
    now = T0 + timedelta(seconds=1)

    async def scenario() -> tuple[list[StepDone], list[StepDone], list[str]]:
        async def connect(**kw: Any) -> Conn:
            return await psycopg.AsyncConnection.connect(database_url, row_factory=dict_row, **kw)

        listener = await connect(autocommit=True)
        await listener.execute("LISTEN responders")
        doomed, other, admin = await connect(), await connect(), await connect(autocommit=True)
        tx = doomed.transaction()
        await tx.__aenter__()
        [row] = await (await doomed.execute(CLAIM_SQL, {"now": now, "limit": 10})).fetchall()
        assert await perform(doomed, dict(row), now=now) is not None
        # A second worker meanwhile finds nothing to do: the order is locked, not doubled.
        while_locked = await run_due(other, now=now)
        await admin.execute("SELECT pg_terminate_backend(%s)", (doomed.info.backend_pid,))
        with pytest.raises(psycopg.OperationalError):
            await tx.__aexit__(None, None, None)
        after = await run_due(other, now=now)
        await other.commit()
        heard = [n.payload async for n in listener.notifies(timeout=1.0)]
        for c in (listener, other, admin):
            await c.close()
        return while_locked, after, heard

    while_locked, after, heard = asyncio.run(scenario())
    assert while_locked == []
    assert [(s.order_id, s.seq, s.responder_id) for s in after] == [(order, 1, sunrise["a"])]
    assert len(heard) == 1  # the killed run's notification was never delivered
    assert len(steps(database_url, order)) == 1
    assert len(query(database_url, "SELECT 1 FROM order_offers")) == 1
    assert len(query(database_url, "SELECT 1 FROM responder_notifications")) == 1


def test_a_late_sos_waits_for_a_person_and_is_sent_to_nobody(
    database_url: str, sunrise: dict[str, int]
) -> None:
    """Issue 18 finding 12 (the full chaos run's old_sos attack got through): an SOS stamped
    2005 is stored, yellow and late, and its order stays queued with no step scheduled, so
    nobody is sent until a person decides; a carer may still take it from the wall."""
    from alerts.detection.worker import flag_late

    real = raise_sos(database_url, "sos-r101", at=T0)

    async def late(conn: Conn) -> int:
        cur = await conn.execute(
            "SELECT d.device_key, d.device_id, d.kind AS device_kind, d.site_id "
            "FROM devices d WHERE device_id = 'sos-r101'"
        )
        dev = await cur.fetchone()
        assert dev is not None
        old = T0.replace(year=2005)
        verdict = Verdict(
            detector="sos", kind="sos", colour=Colour.RED, occurred_at=old,
            site_id=dev["site_id"], resident_id=None, device_key=dev["device_key"],
            idem_key=f"sos:{dev['device_key']}:{old.timestamp()}", fold_key="sos:late-test",
            fold_s=120, explanation="SOS", details={},
        )  # fmt: skip
        from alerts.detection.detectors.base import StreamEvent

        event = StreamEvent(
            kind="event", name="sos", time=old, device_key=dev["device_key"],
            device_id=dev["device_id"], device_kind=dev["device_kind"], site_id=dev["site_id"],
            value_bool=True,
        )  # fmt: skip
        flagged = flag_late(verdict, event, now=T0)
        assert flagged.details["late"] is True
        assert await persist(conn, flagged, now=T0, policy=POLICY)
        cur = await conn.execute("SELECT max(order_id) AS id FROM dispatch_orders")
        row = await cur.fetchone()
        assert row is not None
        return int(row["id"])

    held = arun(database_url, late)
    [row] = query(
        database_url,
        "SELECT state, colour, step_due_at FROM dispatch_orders WHERE order_id = %s",
        (held,),
    )
    assert (row["state"], row["colour"], row["step_due_at"]) == ("queued", "yellow", None)
    done = due(database_url, 3600)
    assert {s.order_id for s in done} == {real}  # the real SOS is offered, the late one not
    assert steps(database_url, held) == []
    carer_a = Actor("carer-a")
    arun(
        database_url,
        lambda c: accept_order(c, order_id=held, actor=carer_a, now=T0 + timedelta(seconds=90)),
    )
    [after] = query(database_url, "SELECT state FROM dispatch_orders WHERE order_id = %s", (held,))
    assert after["state"] == "accepted"
