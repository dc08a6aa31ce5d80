"""Helpers for dispatch tests: responders with shifts, alerts raised at a given time, and
running async service functions against a test database."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import psycopg
from psycopg.rows import dict_row

from alerts.detection.detectors.safety import SosDetector
from alerts.detection.persist import persist
from alerts.detection.worker import to_event
from alerts.dispatch.policy import policy_from_settings
from devices import roster
from devices.accounts import create_user, hash_password
from devices.domain import Role
from devices.registry import Conn
from devices.settings import Settings

T = TypeVar("T")
T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
POLICY = policy_from_settings(Settings())


def arun(database_url: str, fn: Callable[[Conn], Awaitable[T]]) -> T:
    """Run ``fn(conn)`` on a fresh connection and commit."""

    async def go() -> T:
        async with await psycopg.AsyncConnection.connect(
            database_url, row_factory=dict_row
        ) as conn:
            result = await fn(conn)
            await conn.commit()
            return result

    return asyncio.run(go())


def add_responder(
    database_url: str,
    name: str,
    *,
    kind: str = "staff",
    level: int = 1,
    site_id: str | None = None,
    community: str | None = None,
    on_duty: tuple[datetime, datetime] | None = (T0 - timedelta(hours=1), T0 + timedelta(hours=8)),
    lat: float | None = None,
    lon: float | None = None,
    login: tuple[str, Role] | None = None,
) -> int:
    """A responder (with a login when ``login`` names a user and role; password = name)."""

    async def go(conn: Conn) -> int:
        user_id = None
        if login is not None:
            sites = (site_id,) if login[1] is Role.STAFF and site_id else ()
            user_id = await create_user(
                conn,
                username=login[0],
                password_hash=hash_password(name),
                role=login[1],
                site_ids=sites,
            )
        responder_id = await roster.add_responder(
            conn, name=name, kind=kind, level=level, user_id=user_id, site_id=site_id,
            community=community, lat=lat, lon=lon,
        )  # fmt: skip
        if on_duty is not None:
            await roster.add_shift(
                conn, responder_id=responder_id, start=on_duty[0], end=on_duty[1]
            )
        return responder_id

    return arun(database_url, go)


EVENT_SQL = (
    "SELECT 'event' AS kind, 'sos' AS name, %s::timestamptz AS time, d.device_key, d.device_id,"
    " d.kind AS device_kind, d.site_id, true AS value_bool, NULL::float8 AS value_num,"
    " NULL AS value_text, d.room_id, NULL AS room_name, COALESCE(a.resident_id, (SELECT"
    " min(x.resident_id) FROM residents x WHERE x.room_id = d.room_id HAVING count(*) = 1))"
    " AS resident_id, NULL AS resident_name FROM devices d LEFT JOIN device_assignments a"
    " USING (device_key) WHERE device_id = %s"
)


def raise_sos(database_url: str, device_id: str, *, at: datetime, delay_s: float = 1.0) -> int:
    """An SOS pressed at ``at``, stored ``delay_s`` later the way the alerts worker does;
    returns the order id."""

    async def go(conn: Conn) -> int:
        cur = await conn.execute(EVENT_SQL, (at, device_id))
        row = await cur.fetchone()
        assert row is not None
        now = at + timedelta(seconds=delay_s)
        verdict = SosDetector().evaluate(to_event(row), now=now)
        assert verdict is not None
        assert await persist(conn, verdict, now=now, policy=POLICY)
        cur = await conn.execute("SELECT max(order_id) AS id FROM dispatch_orders")
        order = await cur.fetchone()
        assert order is not None
        return int(order["id"])

    return arun(database_url, go)
