"""Live push: order and alert changes as Server-Sent Events.

One LISTEN connection per API process (channel ``dispatch``, payload ``<order id>:<state>``, sent by every
order transition in the same transaction). Each notification is looked up once and fanned out
to the connected principals whose scope covers the order's site or resident.

A browser's EventSource cannot send an Authorization header, so it first trades its bearer
token for a single-use ticket (``POST /api/live/ticket``, valid for 30 s) and opens
``/api/live?ticket=...``. Tickets are kept (hashed, with the token's hash) in PostgreSQL, so
any API process redeems a ticket another one issued, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import StreamingResponse
from psycopg.rows import dict_row

from alerts.dispatch.orders import DISPATCH_CHANNEL
from dashboard_api.deps import ConnDep, Now, PoolDep, TokenDep, oauth2
from dashboard_api.errors import ApiError
from dashboard_api.schemas import Problem
from dashboard_api.view_models import TicketOut
from devices.accounts import (
    REVOKED_CHANNEL,
    Principal,
    principal_for_token,
    principal_for_token_hash,
    token_hash,
)
from devices.db import AsyncPool
from devices.domain import Role
from devices.loops import Outage
from devices.registry import Conn

log = logging.getLogger(__name__)

TICKET_TTL = timedelta(seconds=30)
KEEPALIVE_S = 15.0
SIGNED_OUT: dict[str, Any] = {"type": "signed-out"}
ORDER_SQL = (
    "SELECT o.order_id, o.alert_id, o.site_id, o.resident_id, o.colour, o.category, o.state, "
    "o.opened_at, o.accepted_at, o.resolved_at, o.outcome, a.kind, a.explanation, "
    "r.full_name AS resident_name FROM dispatch_orders o "
    "LEFT JOIN alerts a USING (alert_id) LEFT JOIN residents r ON r.resident_id = o.resident_id "
    "WHERE o.order_id = %s"
)


# The 96345 centre's operator hears of every site's orders, but not who they are about: the
# console reloads its board (the operator's own fields) when an order changes.
OPERATOR_FIELDS = ("order_id", "site_id", "colour", "category", "state", "opened_at",
                   "accepted_at", "resolved_at")  # fmt: skip


def may_see(principal: Principal, site_id: str, resident_id: int | None) -> bool:
    if principal.role is Role.ADMIN:
        return True
    if principal.role is Role.STAFF:
        return site_id in principal.site_ids
    return resident_id is not None and resident_id in principal.resident_ids


@dataclass(slots=True, eq=False)  # hashed by identity
class Subscriber:
    principal: Principal
    fingerprint: str = ""  # of the token it was opened with (devices.accounts)
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue(256))


@dataclass(slots=True)
class Hub:
    database_url: str
    subscribers: set[Subscriber] = field(default_factory=set)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    keepalive_s: float = KEEPALIVE_S

    def revoke(self, fingerprint: str) -> None:
        """A token was revoked (logout, in any API process): its streams end now, whatever
        is still queued for them."""
        for sub in list(self.subscribers):
            if sub.fingerprint == fingerprint:
                while not sub.queue.empty():
                    sub.queue.get_nowait()
                sub.queue.put_nowait(SIGNED_OUT)

    def publish(self, row: dict[str, Any]) -> None:
        event = {"type": "order", **{k: _plain(v) for k, v in row.items()}}
        centre = {"type": "order", **{k: event[k] for k in OPERATOR_FIELDS}}
        for sub in list(self.subscribers):
            if sub.principal.role is Role.OPERATOR:
                seen: dict[str, Any] | None = centre
            elif may_see(sub.principal, row["site_id"], row["resident_id"]):
                seen = event
            else:
                seen = None
            if seen is not None:
                with contextlib.suppress(asyncio.QueueFull):  # a stuck client misses events
                    sub.queue.put_nowait(seen)

    async def run(self) -> None:
        """LISTEN until cancelled; reconnect with backoff."""
        outage = Outage("live LISTEN")
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.database_url, autocommit=True, row_factory=dict_row
                ) as conn:
                    await conn.execute(f"LISTEN {DISPATCH_CHANNEL}")
                    await conn.execute(f"LISTEN {REVOKED_CHANNEL}")
                    outage.ok()
                    self.ready.set()
                    while True:
                        # The generator holds the connection's lock: leave it to look the
                        # order up; psycopg keeps what arrives meanwhile in its backlog.
                        notes = [n async for n in conn.notifies(timeout=30.0, stop_after=1)]
                        for n in notes:
                            if n.channel == REVOKED_CHANNEL:
                                self.revoke(n.payload)
                            else:
                                await self._relay(conn, n.payload)
            except psycopg.OperationalError as exc:
                self.ready.clear()
                delay = outage.failed(exc)
                await asyncio.sleep(delay)

    async def _relay(self, conn: psycopg.AsyncConnection[dict[str, Any]], payload: str) -> None:
        order_id = payload.split(":", 1)[0]  # "<order id>:<new state>"
        if not order_id.isdigit():
            return
        cur = await conn.execute(ORDER_SQL, (int(order_id),))
        row = await cur.fetchone()
        if row is not None:
            self.publish(row)


async def issue_ticket(conn: Conn, *, token: str, now: datetime) -> tuple[str, datetime]:
    """A single-use ticket for the token's stream; expired tickets are swept on the way."""
    ticket = secrets.token_urlsafe(24)
    expires = now + TICKET_TTL
    await conn.execute("DELETE FROM live_tickets WHERE expires_at <= %s", (now,))
    await conn.execute(
        "INSERT INTO live_tickets (ticket_hash, token_hash, expires_at) VALUES (%s, %s, %s)",
        (token_hash(ticket), token_hash(token), expires),
    )
    await conn.commit()
    return ticket, expires


async def redeem_ticket(conn: Conn, *, ticket: str, now: datetime) -> bytes | None:
    """The token hash a ticket stands for, once (the row goes as it is read: two processes
    racing on one ticket cannot both win)."""
    cur = await conn.execute(
        "DELETE FROM live_tickets WHERE ticket_hash = %s RETURNING token_hash, expires_at",
        (token_hash(ticket),),
    )
    row = await cur.fetchone()
    await conn.commit()
    if row is None or row["expires_at"] <= now:
        return None
    return bytes(row["token_hash"])


def _plain(v: Any) -> Any:
    return v.isoformat() if isinstance(v, datetime) else v


def _hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


HubDep = Annotated[Hub, Depends(_hub)]
router = APIRouter(prefix="/api")


@router.post(
    "/live/ticket", response_model=TicketOut, responses={401: {"model": Problem}}, tags=["live"]
)
async def ticket(conn: ConnDep, hub: HubDep, token: TokenDep, at: Now) -> TicketOut:
    """A single-use ticket (30 s) for opening the event stream from a browser."""
    if token is None or await principal_for_token(conn, token=token, now=at) is None:
        raise ApiError(status.HTTP_401_UNAUTHORIZED, "error.not_signed_in")
    value, expires = await issue_ticket(conn, token=token, now=at)
    return TicketOut(ticket=value, expires_at=expires)


@router.get(
    "/live",
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "event stream"},
        401: {"model": Problem},
    },
    response_class=StreamingResponse,
    tags=["live"],
)
async def live(
    request: Request,
    pool: PoolDep,
    hub: HubDep,
    at: Now,
    token: Annotated[str | None, Depends(oauth2)],
    ticket: Annotated[str | None, Query(max_length=64)] = None,
) -> StreamingResponse:
    """Server-Sent Events: ``order`` events (new alerts open orders; every state change)."""
    principal, bearer = None, None
    async with pool.connection() as conn:  # not held while the stream is open
        if token is not None:
            bearer = token_hash(token)
        elif ticket:
            bearer = await redeem_ticket(conn, ticket=ticket, now=at)
        if bearer is not None:
            principal = await principal_for_token_hash(conn, token_hash=bearer, now=at)
    if principal is None or bearer is None:
        raise ApiError(
            status.HTTP_401_UNAUTHORIZED,
            "error.ticket",
            headers={"WWW-Authenticate": "Bearer"},
        )
    sub = Subscriber(principal, bearer.hex())  # the fingerprint a revocation announces
    hub.subscribers.add(sub)
    return StreamingResponse(
        _stream(request, hub, sub, pool=pool, bearer=bearer),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _stream(
    request: Request, hub: Hub, sub: Subscriber, *, pool: AsyncPool, bearer: bytes
) -> AsyncIterator[str]:
    try:
        yield "retry: 2000\nevent: hello\ndata: {}\n\n"
        while not await request.is_disconnected():
            try:
                event = await asyncio.wait_for(sub.queue.get(), timeout=hub.keepalive_s)
            except TimeoutError:
                # Between events, check the token still holds: logout or expiry ends it.
                async with pool.connection() as conn:
                    still = await principal_for_token_hash(
                        conn, token_hash=bearer, now=datetime.now(UTC)
                    )
                if still is None:
                    yield "event: signed-out\ndata: {}\n\n"
                    return
                yield ": keepalive\n\n"
                continue
            if event is SIGNED_OUT:
                yield "event: signed-out\ndata: {}\n\n"
                return
            yield f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"
    finally:
        hub.subscribers.discard(sub)
