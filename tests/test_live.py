"""Live push over a real HTTP connection: an SOS reaches the right dashboards within a
second, and nobody outside the order's scope hears of it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2 as httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from dashboard_api.live import issue_ticket, redeem_ticket
from devices.accounts import token_hash
from devtools.seed import DemoPopulation
from tests.http import HTTP
from tests.live_server import serve
from tests.services import Services, seed
from tests.test_api import _raise_sos


@pytest.fixture
def server(services: Services, database_url: str) -> Iterator[tuple[str, DemoPopulation, str]]:
    pop = seed(services, database_url)
    with serve(database_url, live_keepalive_s=0.5) as base:
        yield base, pop, database_url


def token(base: str, pop: DemoPopulation, username: str) -> str:
    user = next(u for u in pop.users if u.username == username)
    r = HTTP.post(f"{base}/api/auth/token", data={"username": username, "password": user.password})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


class Listener:
    """One open event stream; order events land in a queue with their arrival time."""

    def __init__(self, client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> None:
        self.events: asyncio.Queue[tuple[float, dict[str, Any]]] = asyncio.Queue()
        self.status: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.headers = headers
        self.signed_out = False
        self.task = asyncio.create_task(self._read(client, url, headers))

    async def _read(self, client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> None:
        async with client.stream("GET", url, headers=headers) as r:
            self.status.set_result(r.status_code)
            name = ""
            async for line in r.aiter_lines():
                if line.startswith("event: "):
                    name = line[7:]
                elif name == "signed-out":
                    self.signed_out = True
                elif line.startswith("data: ") and name == "order":
                    self.events.put_nowait((time.monotonic(), json.loads(line[6:])))

    async def orders(self, within: float) -> list[tuple[float, dict[str, Any]]]:
        out: list[tuple[float, dict[str, Any]]] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                out.append(await self.events.get())
                while True:
                    out.append(await asyncio.wait_for(self.events.get(), 0.2))
        return out


async def _scenario(base: str, pop: DemoPopulation, url: str) -> None:
    bearer = {"Authorization": f"Bearer {token(base, pop, 'staff-homes')}"}
    async with httpx.AsyncClient(timeout=httpx.Timeout(5.0, read=None)) as client:
        ticket = (await client.post(f"{base}/api/live/ticket", headers=bearer)).json()["ticket"]
        listeners = {
            "staff-homes": Listener(client, f"{base}/api/live?ticket={ticket}", {}),
            **{
                name: Listener(
                    client,
                    f"{base}/api/live",
                    {"Authorization": f"Bearer {token(base, pop, name)}"},
                )
                for name in ("family-home17", "staff-sunrise", "operator-96345")
            },
        }
        try:
            assert [await lst.status for lst in listeners.values()] == [200, 200, 200, 200]
            # a ticket is single-use; no credentials, no stream
            assert (await client.get(f"{base}/api/live?ticket={ticket}")).status_code == 401
            assert (await client.get(f"{base}/api/live")).status_code == 401
            await asyncio.sleep(0.2)  # the streams have registered once "hello" went out
            sent = time.monotonic()
            await asyncio.to_thread(_raise_sos, url, "btn-0042")  # home-17
            got = await listeners["staff-homes"].orders(within=3.0)
            assert got, "no event"
            at, ev = got[0]
            assert at - sent < 1.0, f"took {at - sent:.3f} s"
            assert (ev["site_id"], ev["state"], ev["colour"], ev["kind"]) == (
                "home-17",
                "queued",
                "red",
                "sos",
            )
            family = await listeners["family-home17"].orders(within=1.0)
            assert [e["order_id"] for _, e in family] == [ev["order_id"]]
            assert await listeners["staff-sunrise"].orders(within=0.5) == []
            # the 96345 centre hears of every site's order, not who it is about
            [(_, centre)] = await listeners["operator-96345"].orders(within=1.0)
            assert centre["order_id"] == ev["order_id"]
            assert "resident_name" not in centre
            assert "explanation" not in centre
            assert "resident_id" not in centre
            # an order change is pushed too
            r = await client.post(f"{base}/api/orders/{ev['order_id']}/accept", headers=bearer)
            assert r.status_code == 200
            change = await listeners["family-home17"].orders(within=2.0)
            assert [e["state"] for _, e in change] == ["accepted"]
            # signing out ends the open stream at its next keepalive
            family = listeners["family-home17"]
            assert (
                await client.post(f"{base}/api/auth/logout", headers=family.headers)
            ).status_code == 204
            async with asyncio.timeout(5):
                await family.task
            assert family.signed_out
        finally:
            for lst in listeners.values():
                lst.task.cancel()
            await asyncio.gather(*(lst.task for lst in listeners.values()), return_exceptions=True)


def test_sos_is_pushed_within_a_second_to_those_in_scope(
    server: tuple[str, DemoPopulation, str],
) -> None:
    asyncio.run(_scenario(*server))


async def _logout_ends_a_busy_stream(base: str, pop: DemoPopulation, url: str) -> None:
    """Finding 8: with events flowing (no keepalive gap), 24 events arrived in the 45 s after
    logout. Now the logout itself ends the stream."""
    family = {"Authorization": f"Bearer {token(base, pop, 'family-home17')}"}
    async with httpx.AsyncClient(timeout=httpx.Timeout(5.0, read=None)) as client:
        lst = Listener(client, f"{base}/api/live", family)
        try:
            assert await lst.status == 200
            await asyncio.sleep(0.2)
            await asyncio.to_thread(_raise_sos, url, "btn-0042")
            assert await lst.orders(within=3.0)
            r = await client.post(f"{base}/api/auth/logout", headers=family)
            assert r.status_code == 204
            async with asyncio.timeout(3):
                await lst.task
            assert lst.signed_out
            await asyncio.to_thread(_raise_sos, url, "btn-0042")
            assert lst.events.empty()
        finally:
            lst.task.cancel()
            await asyncio.gather(lst.task, return_exceptions=True)


def test_logout_ends_the_live_stream_at_once(services: Services, database_url: str) -> None:
    pop = seed(services, database_url)
    with serve(database_url, live_keepalive_s=60.0) as base:  # no keepalive to hide behind
        asyncio.run(_logout_ends_a_busy_stream(base, pop, database_url))


def test_a_ticket_from_one_api_process_opens_the_stream_on_another_once(
    services: Services, database_url: str
) -> None:
    """Two API processes serve the same users: tickets live in PostgreSQL, single-use, and
    expire after 30 s (the clock is passed in)."""
    pop = seed(services, database_url)
    with serve(database_url) as first, serve(database_url) as second:
        bearer = {"Authorization": f"Bearer {token(first, pop, 'staff-homes')}"}
        ticket = HTTP.post(f"{first}/api/live/ticket", headers=bearer).json()["ticket"]

        async def open_on(base: str) -> int:
            async with (
                httpx.AsyncClient(timeout=5) as c,
                c.stream("GET", f"{base}/api/live?ticket={ticket}") as r,
            ):
                return r.status_code

        assert asyncio.run(open_on(second)) == 200
        assert asyncio.run(open_on(first)) == 401  # used once, wherever


def test_tickets_expire_and_forged_ones_open_nothing(services: Services, database_url: str) -> None:
    t0 = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)

    async def go() -> tuple[object, ...]:
        async with await psycopg.AsyncConnection.connect(database_url, row_factory=dict_row) as c:
            ticket, expires = await issue_ticket(c, token="tok", now=t0)
            late, _ = await issue_ticket(c, token="tok", now=t0)
            return (
                expires,
                await redeem_ticket(c, ticket=ticket, now=t0 + timedelta(seconds=1)),
                await redeem_ticket(c, ticket=ticket, now=t0 + timedelta(seconds=2)),
                await redeem_ticket(c, ticket=late, now=t0 + timedelta(seconds=31)),
                await redeem_ticket(c, ticket="forged", now=t0),
            )

    expires, first, again, late, forged = asyncio.run(go())
    assert expires == t0 + timedelta(seconds=30)
    assert first == token_hash("tok")
    assert (again, late, forged) == (None, None, None)
