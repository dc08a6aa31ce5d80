"""The responders' roster: who may be offered a site's orders (``responders``) and when
(``shifts``). The escalation (``alerts.dispatch``) reads it; ``python -m devices responder``,
the demo seed and the tests write it through these two functions."""

from __future__ import annotations

from datetime import datetime

from devices.registry import Conn


async def add_responder(
    conn: Conn,
    *,
    name: str,
    kind: str,
    level: int,
    user_id: int | None = None,
    site_id: str | None = None,
    community: str | None = None,
    phone: str = "",
    lat: float | None = None,
    lon: float | None = None,
) -> int:
    """A responder covering ``site_id`` or ``community`` (level 3, the centre, may cover
    neither); the table's checks refuse anything else. Returns its id."""
    cur = await conn.execute(
        "INSERT INTO responders (user_id, name, kind, level, site_id, community, phone, lat, lon)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING responder_id",
        (user_id, name, kind, level, site_id, community, phone, lat, lon),
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row["responder_id"])


async def add_shift(conn: Conn, *, responder_id: int, start: datetime, end: datetime) -> None:
    """On shift over [start, end); an overlapping shift of the same responder is refused
    (``psycopg.errors.ExclusionViolation``)."""
    await conn.execute(
        "INSERT INTO shifts (responder_id, during) VALUES (%s, tstzrange(%s, %s))",
        (responder_id, start, end),
    )
