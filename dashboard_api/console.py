"""The 96345 centre console's own reads (issue 14 item 4): every site's orders for the board,
and a narrow resident look-up by name or phone for entering a service order.

The look-up answers only what a hotline operator needs to open an order (id, name, site,
community, address, phone): no care profile, no health data. Its input is short (2..40
characters, no control characters), matched with parameterised LIKE patterns whose
wildcards are escaped, and each user may search ``SEARCH_LIMIT`` times per
``SEARCH_WINDOW_S`` (per API process).
"""

from __future__ import annotations

import re
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from fastapi.exceptions import RequestValidationError
from psycopg import sql
from pydantic import BaseModel

from dashboard_api.deps import ConnDep, Now, OperatorUser
from dashboard_api.errors import ApiError
from dashboard_api.queries import LATE_REPLIES, centre_scope
from dashboard_api.schemas import LateReply, Problem
from devices.accounts import Principal
from devices.domain import Colour, OrderKind, OrderState, Outcome
from devices.registry import Conn

router = APIRouter(prefix="/api/console", tags=["console"])
SEARCH_LIMIT = 30
SEARCH_WINDOW_S = 10.0
MATCHES = 20
OPEN = ("queued", "offered")


@dataclass(slots=True)
class SearchWindow:
    """At most ``limit`` searches per user in any ``per_s`` seconds (a sliding window)."""

    limit: int = SEARCH_LIMIT
    per_s: float = SEARCH_WINDOW_S
    seen: dict[int, deque[float]] = field(default_factory=dict)

    def allow(self, user_id: int, *, now: float) -> bool:
        times = self.seen.setdefault(user_id, deque())
        while times and times[0] <= now - self.per_s:
            times.popleft()
        if len(times) >= self.limit:
            return False
        times.append(now)
        return True


class ResidentMatch(BaseModel):
    resident_id: int
    full_name: str
    site_id: str
    site_name: str
    community: str
    address: str
    phone: str


class ConsoleOrder(BaseModel):
    order_id: int
    kind: OrderKind
    category: str  # the alert's kind, or the service category
    colour: Colour
    state: OrderState
    site_id: str
    site_name: str
    community: str
    address: str
    resident_id: int | None
    resident_name: str | None
    room_name: str | None
    opened_at: datetime
    accept_deadline: datetime
    overdue: bool
    responder: str | None  # whom it is offered to, or who holds it (their responder name)
    closed_at: datetime | None
    outcome: Outcome | None
    note: str
    # texts from the resident after their check-in had raised this order's alert ("1" two
    # minutes late): the operator calls before standing anyone down
    late_replies: list[LateReply] = []


def name_pattern(text: str) -> str:
    return "%" + re.sub(r"([\\%_])", r"\\\1", text) + "%"


SEARCH_SQL = r"""
SELECT r.resident_id, r.full_name, r.site_id, s.name AS site_name, s.community, s.address,
       r.phone
FROM residents r JOIN sites s ON s.site_id = r.site_id
WHERE r.discharged_at IS NULL
  AND (lower(r.full_name) LIKE %(name)s ESCAPE '\'
       OR (%(digits)s::text IS NOT NULL AND regexp_replace(r.phone, '\D', '', 'g') LIKE %(digits)s))
ORDER BY lower(r.full_name) = %(exact)s DESC, r.full_name, r.resident_id
LIMIT %(limit)s
"""


async def search_residents(conn: Conn, *, text: str, limit: int = MATCHES) -> list[ResidentMatch]:
    """Residents whose name contains ``text`` (any case), or whose phone's digits contain its
    digits when ``text`` is a phone number (digits, spaces, ``+``, ``-``; at least 3 digits)."""
    digits = re.sub(r"\D", "", text)
    phone_like = re.fullmatch(r"[\d\s+()-]+", text) is not None and len(digits) >= 3
    cur = await conn.execute(
        SEARCH_SQL,
        {
            "name": name_pattern(text.lower()),
            "digits": f"%{digits}%" if phone_like else None,
            "exact": text.lower(),
            "limit": limit,
        },
    )
    return [ResidentMatch(**r) for r in await cur.fetchall()]


ORDERS_SQL = (
    """
SELECT o.order_id, o.kind, o.category, o.colour, o.state, o.site_id, s.name AS site_name,
       s.community, s.address, o.resident_id, r.full_name AS resident_name,
       rm.name AS room_name, o.opened_at, o.accept_deadline,
       o.state IN ('queued', 'offered') AND o.accept_deadline < %(now)s AS overdue,
       CASE WHEN o.state IN ('accepted', 'en_route', 'on_site')
            THEN COALESCE(h.name, NULLIF(u.display_name, ''), u.username) ELSE p.name
       END AS responder,
       COALESCE(o.resolved_at, o.cancelled_at) AS closed_at, o.outcome, o.note,
       """
    + LATE_REPLIES.format("o")
    + """
FROM dispatch_orders o
JOIN sites s ON s.site_id = o.site_id
LEFT JOIN residents r ON r.resident_id = o.resident_id
LEFT JOIN rooms rm ON rm.room_id = r.room_id
LEFT JOIN responders p ON p.responder_id = o.offered_to
LEFT JOIN responders h ON h.user_id = o.accepted_by
LEFT JOIN users u ON u.user_id = o.accepted_by
WHERE {} AND (o.state NOT IN ('resolved', 'cancelled')
              OR COALESCE(o.resolved_at, o.cancelled_at) > %(since)s)
ORDER BY o.opened_at, o.order_id LIMIT 500
"""
)


async def console_orders(
    conn: Conn, *, principal: Principal, now: datetime, done_hours: int
) -> list[ConsoleOrder]:
    """Open orders of every site the caller may see, and those closed in the last hours,
    oldest first (the page groups them by colour and state)."""
    where, params = centre_scope(principal, site_col="o.site_id")
    cur = await conn.execute(
        sql.SQL(ORDERS_SQL).format(where),
        {**params, "now": now, "since": now - timedelta(hours=done_hours)},
    )
    return [ConsoleOrder(**r) for r in await cur.fetchall()]


@router.get("/orders", response_model=list[ConsoleOrder])
async def orders(
    conn: ConnDep,
    user: OperatorUser,
    at: Now,
    done_hours: Annotated[int, Query(ge=1, le=72)] = 12,
) -> list[ConsoleOrder]:
    """Every site's and community's open orders with their deadlines, and those closed in
    the last ``done_hours``."""
    return await console_orders(conn, principal=user, now=at, done_hours=done_hours)


SearchText = Annotated[str, Query(min_length=2, max_length=40, pattern=r"^[^\x00-\x1f\x7f]*$")]


@router.get(
    "/residents",
    response_model=list[ResidentMatch],
    responses={429: {"model": Problem}},
)
async def residents(
    request: Request, conn: ConnDep, user: OperatorUser, q: SearchText
) -> list[ResidentMatch]:
    """Residents by name or phone (at least 2 characters): id, name, site, address, phone."""
    text = q.strip()
    if len(text) < 2:  # shaped like FastAPI's own validation errors: one schema for 422
        raise RequestValidationError(
            [{"type": "string_too_short", "loc": ("query", "q"), "msg": "at least 2 characters"}]
        )
    window: SearchWindow = request.app.state.search_window
    if not window.allow(user.user_id, now=time.monotonic()):
        raise ApiError(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "error.search_throttled",
            headers={"Retry-After": str(int(SEARCH_WINDOW_S))},
        )
    return await search_residents(conn, text=text)
