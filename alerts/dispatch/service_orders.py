"""Service orders from the hotline: meal, cleaning, bathing, escort... through the same
queue as alerts, with the deadlines of their colour."""

from __future__ import annotations

from datetime import datetime

from alerts.dispatch.orders import Actor, OrderError, open_order
from alerts.dispatch.policy import EscalationPolicy
from devices.domain import Colour, OrderKind, ServiceCategory
from devices.registry import Conn


async def create_service_order(
    conn: Conn,
    *,
    site_id: str,
    resident_id: int | None,
    category: ServiceCategory,
    note: str,
    actor: Actor,
    now: datetime,
    policy: EscalationPolicy,
    colour: Colour = Colour.GREEN,
) -> int:
    """A hotline operator's order (meal, cleaning, bathing, escort...): same queue, the
    deadlines of its colour (green unless the operator says otherwise)."""
    if resident_id is not None:
        cur = await conn.execute(
            "SELECT 1 FROM residents WHERE resident_id = %s AND site_id = %s "
            "AND discharged_at IS NULL",
            (resident_id, site_id),
        )
        if await cur.fetchone() is None:
            raise OrderError(f"resident {resident_id} does not live at site {site_id}")
    return await open_order(
        conn,
        alert_id=None,
        site_id=site_id,
        resident_id=resident_id,
        colour=colour,
        category=category.value,
        event_at=None,
        now=now,
        policy=policy,
        kind=OrderKind.SERVICE,
        actor=actor,
        note=note,
    )
