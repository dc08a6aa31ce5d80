"""The dispatch queue: orders opened from alerts, accepted and resolved by responders.

Every transition is timestamped and kept in ``order_transitions`` with who made it. The
policy in force when an order opens is copied onto it, so later edits do not change it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from psycopg import sql
from psycopg.types.json import Jsonb

from devices.domain import Colour, OrderState, Outcome
from devices.registry import Conn

DISPATCH_CHANNEL = "dispatch"

OPEN_STATES = (OrderState.QUEUED, OrderState.OFFERED)
ACTIVE_STATES = (OrderState.ACCEPTED, OrderState.EN_ROUTE, OrderState.ON_SITE)


@dataclass(frozen=True, slots=True)
class DispatchPolicy:
    accept_within_s: dict[Colour, int]

    def for_colour(self, colour: Colour) -> dict[str, object]:
        return {"colour": colour.value, "accept_within_s": self.accept_within_s[colour]}


class OrderError(Exception):
    """A transition the order's current state does not allow (or an unknown order)."""


async def open_order(
    conn: Conn,
    *,
    alert_id: int | None,
    site_id: str,
    resident_id: int | None,
    colour: Colour,
    category: str,
    event_at: datetime | None,
    now: datetime,
    policy: DispatchPolicy,
    actor: str = "system",
) -> int:
    copied = policy.for_colour(colour)
    deadline = now + timedelta(seconds=int(str(copied["accept_within_s"])))
    cur = await conn.execute(
        "INSERT INTO dispatch_orders (alert_id, site_id, resident_id, colour, category, state, "
        "event_at, opened_at, accept_deadline, policy) "
        "VALUES (%s, %s, %s, %s, %s, 'queued', %s, %s, %s, %s) RETURNING order_id",
        (
            alert_id,
            site_id,
            resident_id,
            colour.value,
            category,
            event_at,
            now,
            deadline,
            Jsonb(copied),
        ),
    )
    row = await cur.fetchone()
    assert row is not None
    order_id = int(row["order_id"])
    await _transition_log(
        conn,
        order_id=order_id,
        at=now,
        from_state=None,
        to_state=OrderState.QUEUED,
        actor=actor,
        user_id=None,
    )
    await conn.execute("SELECT pg_notify(%s, %s)", (DISPATCH_CHANNEL, str(order_id)))
    return order_id


async def _transition_log(
    conn: Conn,
    *,
    order_id: int,
    at: datetime,
    from_state: OrderState | None,
    to_state: OrderState,
    actor: str,
    user_id: int | None,
    note: str = "",
) -> None:
    await conn.execute(
        "INSERT INTO order_transitions (order_id, at, from_state, to_state, actor, user_id, note)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (
            order_id,
            at,
            from_state.value if from_state else None,
            to_state.value,
            actor,
            user_id,
            note,
        ),
    )


async def _lock(conn: Conn, order_id: int) -> OrderState:
    cur = await conn.execute(
        "SELECT state FROM dispatch_orders WHERE order_id = %s FOR UPDATE", (order_id,)
    )
    row = await cur.fetchone()
    if row is None:
        raise OrderError(f"order {order_id} does not exist")
    return OrderState(row["state"])


async def _transition(
    conn: Conn,
    *,
    order_id: int,
    allowed: tuple[OrderState, ...],
    to_state: OrderState,
    refusal: str,
    now: datetime,
    actor: str,
    user_id: int | None,
    note: str = "",
    updates: dict[str, object] | None = None,
) -> None:
    """Lock the order, check the move is allowed, apply it, keep the audit row, notify."""
    state = await _lock(conn, order_id)
    if state not in allowed:
        raise OrderError(f"order {order_id} is {state.value}; {refusal}")
    fields = {"state": to_state.value, **(updates or {})}
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder(k)) for k in fields
    )
    await conn.execute(
        sql.SQL("UPDATE dispatch_orders SET {} WHERE order_id = %(order_id)s").format(assignments),
        {**fields, "order_id": order_id},
    )
    await _transition_log(
        conn,
        order_id=order_id,
        at=now,
        from_state=state,
        to_state=to_state,
        actor=actor,
        user_id=user_id,
        note=note,
    )
    await conn.execute("SELECT pg_notify(%s, %s)", (DISPATCH_CHANNEL, str(order_id)))


async def accept_order(
    conn: Conn, *, order_id: int, user_id: int, username: str, now: datetime
) -> None:
    await _transition(
        conn,
        order_id=order_id,
        allowed=OPEN_STATES,
        to_state=OrderState.ACCEPTED,
        refusal="only queued or offered orders can be accepted",
        now=now,
        actor=username,
        user_id=user_id,
        updates={"accepted_at": now, "accepted_by": user_id},
    )


async def resolve_order(
    conn: Conn,
    *,
    order_id: int,
    user_id: int,
    username: str,
    outcome: Outcome,
    note: str,
    now: datetime,
) -> None:
    await _transition(
        conn,
        order_id=order_id,
        allowed=ACTIVE_STATES,
        to_state=OrderState.RESOLVED,
        refusal="accept it before resolving",
        now=now,
        actor=username,
        user_id=user_id,
        note=note,
        updates={"resolved_at": now, "outcome": outcome.value, "note": note},
    )
