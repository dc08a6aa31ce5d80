"""The dispatch queue: orders opened from incidents or by hotline operators, offered to
responders by the escalation loop (``alerts.dispatch.escalation``), then accepted, en route, on site,
resolved -- or cancelled.

Every transition is timestamped and kept in ``order_transitions`` with who made it. The
site's escalation policy in force when an order opens is copied onto it, so later edits do
not change it. Side effects for the outside world (device commands) are written to an outbox
in the same transaction and published after commit.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from alerts.dispatch.examples import keep_false_alarm
from alerts.dispatch.policy import EscalationPolicy, PolicyError, parse_policy, to_builtins
from devices.domain import Colour, OrderKind, OrderState, Outcome
from devices.registry import Conn
from devices.wire import TOPIC_ROOT, AlertCancelled, Command, HelpComing, encode_command

log = logging.getLogger(__name__)

DISPATCH_CHANNEL = "dispatch"
COMMANDS_CHANNEL = "device_commands"

OPEN_STATES = (OrderState.QUEUED, OrderState.OFFERED)
ACTIVE_STATES = (OrderState.ACCEPTED, OrderState.EN_ROUTE, OrderState.ON_SITE)
# Devices a resident can see or hear: they get ``help_coming`` / ``alert_cancelled``.
FEEDBACK_KINDS = ("sos_button", "wristband")


class OrderError(Exception):
    """A transition the order's current state does not allow (or an unknown order)."""


@dataclass(frozen=True, slots=True)
class Actor:
    """Who makes a transition; ``holder_only``: they may move only orders they accepted."""

    name: str
    user_id: int | None = None
    holder_only: bool = False


SYSTEM = Actor("system")


async def site_policy(conn: Conn, site_id: str, default: EscalationPolicy) -> EscalationPolicy:
    cur = await conn.execute(
        "SELECT policy FROM escalation_policies WHERE site_id = %s", (site_id,)
    )
    row = await cur.fetchone()
    if row is None:
        return default
    try:
        return parse_policy(row["policy"])
    except PolicyError as exc:
        log.warning(
            "site %s has an invalid escalation policy (%s); using the default", site_id, exc
        )
        return default


async def set_site_policy(conn: Conn, *, site_id: str, policy: object, now: datetime) -> None:
    """Validate and store a site's policy (raises PolicyError); running orders keep theirs."""
    parsed = parse_policy(policy)
    await conn.execute(
        "INSERT INTO escalation_policies (site_id, policy, updated_at) VALUES (%s, %s, %s) "
        "ON CONFLICT (site_id) DO UPDATE SET policy = EXCLUDED.policy, updated_at = %s",
        (site_id, Jsonb(to_builtins(parsed)), now, now),
    )


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
    policy: EscalationPolicy,
    incident_id: int | None = None,
    kind: OrderKind = OrderKind.ALERT,
    actor: Actor = SYSTEM,
    note: str = "",
    hold: bool = False,
) -> int:
    """Open an order; its first escalation step is due at once. A ``hold`` order (a late
    life-safety event: an SOS stamped years ago) schedules no step: it waits, queued, on the
    wall for a person to decide (accept or cancel), and nobody is sent without that decision."""
    copied = (await site_policy(conn, site_id, policy)).for_colour(colour)
    deadline = now + timedelta(seconds=copied.accept_within_s)
    cur = await conn.execute(
        "INSERT INTO dispatch_orders (alert_id, incident_id, kind, site_id, resident_id, colour,"
        " category, state, event_at, opened_at, accept_deadline, policy, created_by, note,"
        " step_due_at, run_token) VALUES (%s, %s, %s, %s, %s, %s, %s, 'queued', %s, %s, %s, %s,"
        " %s, %s, %s, %s) RETURNING order_id",
        (
            alert_id,
            incident_id,
            kind.value,
            site_id,
            resident_id,
            colour.value,
            category,
            event_at,
            now,
            deadline,
            Jsonb(to_builtins(copied)),
            actor.user_id,
            note,
            None if hold else now,
            uuid.uuid4(),
        ),
    )
    row = await cur.fetchone()
    assert row is not None
    order_id = int(row["order_id"])
    await log_transition(
        conn, order_id=order_id, at=now, from_state=None, to_state=OrderState.QUEUED, actor=actor
    )
    return order_id


async def log_transition(
    conn: Conn,
    *,
    order_id: int,
    at: datetime,
    from_state: OrderState | None,
    to_state: OrderState,
    actor: Actor,
    note: str = "",
) -> None:
    # one round trip: the alarm path's transaction makes as few as it can (issue 18)
    await conn.execute(
        "WITH logged AS (INSERT INTO order_transitions (order_id, at, from_state, to_state,"
        " actor, user_id, note) VALUES (%s, %s, %s, %s, %s, %s, %s)) SELECT pg_notify(%s, %s)",
        (
            order_id,
            at,
            from_state.value if from_state else None,
            to_state.value,
            actor.name,
            actor.user_id,
            note,
            DISPATCH_CHANNEL,
            f"{order_id}:{to_state.value}",
        ),
    )


async def _lock(conn: Conn, order_id: int) -> dict[str, Any]:
    cur = await conn.execute(
        "SELECT state, accepted_by, alert_id, kind FROM dispatch_orders WHERE order_id = %s "
        "FOR UPDATE",
        (order_id,),
    )
    row = await cur.fetchone()
    if row is None:
        raise OrderError(f"order {order_id} does not exist")
    return dict(row)


async def _transition(
    conn: Conn,
    *,
    order_id: int,
    allowed: tuple[OrderState, ...],
    to_state: OrderState,
    refusal: str,
    now: datetime,
    actor: Actor,
    note: str = "",
    updates: dict[str, object] | None = None,
) -> dict[str, Any]:
    """Lock the order, check the move is allowed, apply it, keep the audit row, notify."""
    row = await _lock(conn, order_id)
    state = OrderState(row["state"])
    if state not in allowed:
        raise OrderError(f"order {order_id} is {state.value}; {refusal}")
    if actor.holder_only and state in ACTIVE_STATES and row["accepted_by"] != actor.user_id:
        raise OrderError(f"order {order_id} was accepted by someone else")
    fields = {"state": to_state.value, **(updates or {})}
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder(k)) for k in fields
    )
    await conn.execute(
        sql.SQL("UPDATE dispatch_orders SET {} WHERE order_id = %(order_id)s").format(assignments),
        {**fields, "order_id": order_id},
    )
    await log_transition(
        conn,
        order_id=order_id,
        at=now,
        from_state=state,
        to_state=to_state,
        actor=actor,
        note=note,
    )
    return row


async def queue_command(conn: Conn, *, order_id: int, cmd: Command, now: datetime) -> int:
    """Write ``cmd`` to the outbox for every feedback device of the order's resident (the
    device that raised the alert, and the resident's own button or wristband)."""
    cur = await conn.execute(
        "INSERT INTO device_commands (device_key, topic, payload, order_id, created_at) "
        "SELECT d.device_key, %(root)s || '/' || d.site_id || '/' || d.device_id || '/cmd', "
        "%(payload)s, o.order_id, %(now)s FROM dispatch_orders o JOIN devices d ON "
        "d.device_key = (SELECT device_key FROM alerts a WHERE a.alert_id = o.alert_id) OR "
        "d.device_key IN (SELECT device_key FROM device_assignments x WHERE "
        "x.resident_id = o.resident_id AND upper_inf(x.during)) "
        "WHERE o.order_id = %(order)s AND d.retired_at IS NULL AND d.kind = ANY(%(kinds)s)",
        {
            "root": TOPIC_ROOT,
            "payload": encode_command(cmd),
            "now": now,
            "order": order_id,
            "kinds": list(FEEDBACK_KINDS),
        },
    )
    if cur.rowcount:
        await conn.execute("SELECT pg_notify(%s, '')", (COMMANDS_CHANNEL,))
    return cur.rowcount


async def queue_device_command(conn: Conn, *, device_key: int, cmd: Command, now: datetime) -> int:
    """Write ``cmd`` to the outbox for one device, outside any order (a question put to the
    resident before an alert exists: a check-in); 0 if the device is retired or unknown."""
    cur = await conn.execute(
        "INSERT INTO device_commands (device_key, topic, payload, created_at) "
        "SELECT d.device_key, %(root)s || '/' || d.site_id || '/' || d.device_id || '/cmd', "
        "%(payload)s, %(now)s FROM devices d "
        "WHERE d.device_key = %(key)s AND d.retired_at IS NULL",
        {"root": TOPIC_ROOT, "payload": encode_command(cmd), "now": now, "key": device_key},
    )
    if cur.rowcount:
        await conn.execute("SELECT pg_notify(%s, '')", (COMMANDS_CHANNEL,))
    return cur.rowcount


async def accept_order(conn: Conn, *, order_id: int, actor: Actor, now: datetime) -> None:
    row = await _transition(
        conn,
        order_id=order_id,
        allowed=OPEN_STATES,
        to_state=OrderState.ACCEPTED,
        refusal="only queued or offered orders can be accepted",
        now=now,
        actor=actor,
        updates={
            "accepted_at": now,
            "accepted_by": actor.user_id,
            "step_due_at": None,
            "run_token": None,
        },
    )
    if row["kind"] == OrderKind.ALERT and row["alert_id"] is not None:
        await queue_command(
            conn, order_id=order_id, cmd=HelpComing(alert_id=str(row["alert_id"])), now=now
        )


async def start_route(conn: Conn, *, order_id: int, actor: Actor, now: datetime) -> None:
    await _transition(
        conn,
        order_id=order_id,
        allowed=(OrderState.ACCEPTED,),
        to_state=OrderState.EN_ROUTE,
        refusal="only an accepted order can go en route",
        now=now,
        actor=actor,
        updates={"en_route_at": now},
    )


async def arrive(conn: Conn, *, order_id: int, actor: Actor, now: datetime) -> None:
    await _transition(
        conn,
        order_id=order_id,
        allowed=(OrderState.ACCEPTED, OrderState.EN_ROUTE),
        to_state=OrderState.ON_SITE,
        refusal="accept it before arriving",
        now=now,
        actor=actor,
        updates={"on_site_at": now},
    )


async def resolve_order(
    conn: Conn, *, order_id: int, actor: Actor, outcome: Outcome, note: str, now: datetime
) -> None:
    await _transition(
        conn,
        order_id=order_id,
        allowed=ACTIVE_STATES,
        to_state=OrderState.RESOLVED,
        refusal="accept it before resolving",
        now=now,
        actor=actor,
        note=note,
        updates={"resolved_at": now, "outcome": outcome.value, "note": note},
    )
    if outcome is Outcome.FALSE_ALARM:  # the carer's label: keep the window that fooled a model
        await keep_false_alarm(
            conn, order_id=order_id, actor=actor.name, user_id=actor.user_id, now=now
        )


async def cancel_order(
    conn: Conn, *, order_id: int, actor: Actor, note: str, now: datetime
) -> None:
    row = await _transition(
        conn,
        order_id=order_id,
        allowed=OPEN_STATES + ACTIVE_STATES,
        to_state=OrderState.CANCELLED,
        refusal="it is already closed",
        now=now,
        actor=actor,
        note=note,
        updates={"cancelled_at": now, "note": note, "step_due_at": None, "run_token": None},
    )
    if row["kind"] == OrderKind.ALERT and row["alert_id"] is not None:
        await queue_command(
            conn, order_id=order_id, cmd=AlertCancelled(alert_id=str(row["alert_id"])), now=now
        )
